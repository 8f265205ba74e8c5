import { Link, useParams } from "react-router-dom";
import { api } from "../api";
import { ArtifactBrowser } from "../components/Artifacts";
import { LineChart } from "../components/Chart";
import { ErrorState, Loading } from "../components/States";
import { formatDuration, formatTime, formatValue, previewText } from "../lib/format";
import { useAsync } from "../lib/hooks";
import type { MetricPoint } from "../types";

export function MetricChart({ points, label }: { points: MetricPoint[]; label: string }) {
  const sorted = [...points].sort((a, b) => a.step - b.step || a.timestamp - b.timestamp);
  return (
    <LineChart
      x={sorted.map((p) => p.step)}
      series={[{ label, values: sorted.map((p) => Number(p.value)) }]}
      height={180}
    />
  );
}

export function RunDetail() {
  const { experimentId = "", runId = "" } = useParams();
  const run = useAsync(() => api.getRun(runId), [runId]);
  const histories = useAsync(async () => {
    const r = await api.getRun(runId);
    const keys = Object.keys(r.metrics).sort();
    const all = await Promise.all(keys.map((k) => api.metricHistory(runId, k)));
    return keys.map((k, i) => ({ key: k, points: all[i].metrics }));
  }, [runId]);
  const traces = useAsync(() => api.searchTraces(experimentId, { run_id: runId, max_results: 20 }), [experimentId, runId]);

  if (run.error) return <ErrorState error={run.error} retry={run.reload} />;
  if (!run.data) return <Loading what="Loading run" />;
  const r = run.data;
  const userTags = Object.entries(r.tags).filter(([k]) => !k.startsWith("tracemark."));
  return (
    <div className="page">
      <div className="row" style={{ marginBottom: 8 }}>
        <Link to={`/experiments/${experimentId}/runs`}>← Runs</Link>
        <h1 style={{ margin: 0 }}>{r.run_name}</h1>
        <span className={`badge ${r.status}`}>{r.status}</span>
        <span className="mono muted small">{r.run_id}</span>
      </div>
      <div className="muted">
        started {formatTime(r.start_time)}
        {r.end_time ? ` · took ${formatDuration(r.end_time - r.start_time)}` : ""}
        {r.parent_run_id && (
          <>
            {" · child of "}
            <Link to={`/experiments/${experimentId}/runs/${r.parent_run_id}`}>{r.parent_run_id.slice(0, 8)}</Link>
          </>
        )}
      </div>
      {r.tags["tracemark.note.content"] && <p>{r.tags["tracemark.note.content"]}</p>}
      <div className="cards" style={{ marginTop: 12 }}>
        <div className="card">
          <h4>Parameters</h4>
          <table className="grid" data-testid="params">
            <tbody>
              {Object.entries(r.params).map(([k, v]) => (
                <tr key={k}>
                  <td>{k}</td>
                  <td className="mono">{v}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {Object.keys(r.params).length === 0 && <div className="muted">No parameters.</div>}
        </div>
        <div className="card">
          <h4>Metrics (latest)</h4>
          <table className="grid">
            <tbody>
              {Object.entries(r.metrics).map(([k, v]) => (
                <tr key={k}>
                  <td>{k}</td>
                  <td className="num">{formatValue(v)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {Object.keys(r.metrics).length === 0 && <div className="muted">No metrics.</div>}
          <h4 style={{ marginTop: 10 }}>Tags</h4>
          {userTags.length ? (
            userTags.map(([k, v]) => (
              <span className="tag" key={k}>
                {k}={v}
              </span>
            ))
          ) : (
            <div className="muted">No tags.</div>
          )}
        </div>
      </div>
      <h2>Metric charts</h2>
      {histories.error ? (
        <ErrorState error={histories.error} />
      ) : !histories.data ? (
        <Loading what="Loading metric history" />
      ) : (
        <div className="cards">
          {histories.data.map((h) => (
            <div className="card" key={h.key} data-testid="metric-chart">
              <h4>{h.key}</h4>
              <MetricChart points={h.points} label={h.key} />
            </div>
          ))}
        </div>
      )}
      <h2>Artifacts</h2>
      <ArtifactBrowser runId={runId} />
      <h2>Linked traces</h2>
      {traces.data?.traces.length ? (
        <table className="grid">
          <tbody>
            {traces.data.traces.map((t) => (
              <tr key={t.trace_id}>
                <td>
                  <Link to={`/experiments/${experimentId}/traces/${t.trace_id}`}>{t.name || t.trace_id.slice(0, 8)}</Link>
                </td>
                <td>
                  <span className={`badge ${t.status}`}>{t.status}</span>
                </td>
                <td className="preview">{previewText(t.request_preview, 80)}</td>
                <td className="num">{formatDuration(t.execution_time_ms)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : (
        <div className="muted">No traces are linked to this run.</div>
      )}
    </div>
  );
}
