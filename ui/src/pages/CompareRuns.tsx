import { Link, useParams, useSearchParams } from "react-router-dom";
import { api } from "../api";
import { TableView, isTable, type Table } from "../components/Artifacts";
import { LineChart, alignSeries } from "../components/Chart";
import { Empty, ErrorState, Loading } from "../components/States";
import { formatValue } from "../lib/format";
import { useAsync } from "../lib/hooks";
import type { Run } from "../types";

async function loadComparison(ids: string[]) {
  const runs = await Promise.all(ids.map((id) => api.getRun(id)));
  const metricKeys = [...new Set(runs.flatMap((r) => Object.keys(r.metrics)))].sort();
  const histories = await Promise.all(
    metricKeys.map(async (key) => ({
      key,
      perRun: await Promise.all(
        runs.map((r) => (key in r.metrics ? api.metricHistory(r.run_id, key).then((h) => h.metrics) : Promise.resolve([]))),
      ),
    })),
  );
  // Prediction tables: JSON files at the root of every run that hold a log_table table.
  const listings = await Promise.all(runs.map((r) => api.listArtifacts(r.run_id).catch(() => ({ files: [] }))));
  const common = listings
    .map((l) => new Set(l.files.filter((f) => !f.is_dir && f.path.endsWith(".json")).map((f) => f.path)))
    .reduce((a, b) => new Set([...a].filter((x) => b.has(x))));
  const tables: { path: string; perRun: (Table | null)[] }[] = [];
  for (const path of [...common].sort().slice(0, 3)) {
    const perRun = await Promise.all(
      runs.map((r) =>
        fetch(api.artifactUrl(r.run_id, path))
          .then((res) => (res.ok ? res.json() : null))
          .then((v) => (isTable(v) ? v : null))
          .catch(() => null),
      ),
    );
    if (perRun.some(Boolean)) tables.push({ path, perRun });
  }
  return { runs, histories, tables };
}

function differs(runs: Run[], pick: (r: Run) => unknown): boolean {
  const values = runs.map((r) => JSON.stringify(pick(r) ?? null));
  return new Set(values).size > 1;
}

export function CompareRuns() {
  const { experimentId = "" } = useParams();
  const [params] = useSearchParams();
  const ids = (params.get("runs") ?? "").split(",").filter(Boolean);
  const { data, error, reload } = useAsync(() => loadComparison(ids), [ids.join(",")]);
  if (ids.length < 2) return <Empty title="Pick two or more runs on the Runs tab to compare them." />;
  if (error) return <ErrorState error={error} retry={reload} />;
  if (!data) return <Loading what="Loading runs" />;
  const { runs, histories, tables } = data;
  const paramKeys = [...new Set(runs.flatMap((r) => Object.keys(r.params)))].sort();
  const metricKeys = histories.map((h) => h.key);
  const cols = `repeat(${runs.length}, minmax(0, 1fr))`;
  return (
    <div className="page" data-testid="compare">
      <div className="row" style={{ marginBottom: 8 }}>
        <Link to={`/experiments/${experimentId}/runs`}>← Runs</Link>
        <h1 style={{ margin: 0 }}>Compare {runs.length} runs</h1>
      </div>
      <h2>Parameters</h2>
      <table className="grid" data-testid="compare-params">
        <thead>
          <tr>
            <th>param</th>
            {runs.map((r) => (
              <th key={r.run_id}>
                <Link to={`/experiments/${experimentId}/runs/${r.run_id}`}>{r.run_name}</Link>
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {paramKeys.map((k) => {
            const diff = differs(runs, (r) => r.params[k]);
            return (
              <tr key={k} data-diff={diff}>
                <td>{k}</td>
                {runs.map((r) => (
                  <td key={r.run_id} className={"mono" + (diff ? " diff" : "")}>
                    {r.params[k] ?? "–"}
                  </td>
                ))}
              </tr>
            );
          })}
        </tbody>
      </table>
      <h2>Metrics</h2>
      <table className="grid">
        <thead>
          <tr>
            <th>metric</th>
            {runs.map((r) => (
              <th key={r.run_id} className="num">
                {r.run_name}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {metricKeys.map((k) => {
            const diff = differs(runs, (r) => r.metrics[k]);
            return (
              <tr key={k}>
                <td>{k}</td>
                {runs.map((r) => (
                  <td key={r.run_id} className={"num" + (diff ? " diff" : "")}>
                    {formatValue(r.metrics[k])}
                  </td>
                ))}
              </tr>
            );
          })}
        </tbody>
      </table>
      <div className="cards" style={{ marginTop: 12 }}>
        {histories.map((h) => {
          const aligned = alignSeries(
            h.perRun.map((points, i) => ({
              label: runs[i].run_name,
              points: points.map((p) => [p.step, Number(p.value)] as [number, number]),
            })),
          );
          return (
            <div className="card" key={h.key} data-testid="overlay-chart">
              <h4>{h.key}</h4>
              <LineChart x={aligned.x} series={aligned.series} height={200} />
            </div>
          );
        })}
      </div>
      {tables.map((t) => (
        <div key={t.path}>
          <h2>{t.path}</h2>
          <div className="side-by-side" style={{ gridTemplateColumns: cols }}>
            {t.perRun.map((table, i) => (
              <div key={runs[i].run_id}>
                <b>{runs[i].run_name}</b>
                {table ? <TableView table={table} limit={50} /> : <div className="muted">not logged</div>}
              </div>
            ))}
          </div>
        </div>
      ))}
    </div>
  );
}
