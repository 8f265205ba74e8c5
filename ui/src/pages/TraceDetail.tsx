import { useEffect, useMemo, useState } from "react";
import { Link, useParams, useSearchParams } from "react-router-dom";
import { api } from "../api";
import { Assessments } from "../components/Assessments";
import { SpanPanel } from "../components/SpanPanel";
import { SpanTree } from "../components/SpanTree";
import { ErrorState, Loading } from "../components/States";
import { formatCost, formatDuration, formatNumber, formatTime } from "../lib/format";
import { useAsync } from "../lib/hooks";
import { useSpanPayload } from "../lib/payloads";
import { buildTree } from "../lib/tree";

export function TraceDetail() {
  const { experimentId = "", traceId = "" } = useParams();
  const [params, setParams] = useSearchParams();
  const [query, setQuery] = useState("");
  // Spans come without their inputs and outputs, so a 10,000-span trace opens at once; the
  // opened span's payload is fetched (and kept) by useSpanPayload.
  const { data, error, loading, reload } = useAsync(
    () => api.getTrace(traceId, { payloads: false }),
    [traceId],
  );
  const tree = useMemo(() => (data ? buildTree(data.spans) : null), [data]);

  const requested = params.get("span");
  const selectedId =
    requested && tree?.byId.has(requested) ? requested : (tree?.roots[0]?.span.span_id ?? null);
  const selected = selectedId && tree ? tree.byId.get(selectedId)!.span : null;
  const payload = useSpanPayload(traceId, selected);

  useEffect(() => {
    if (tree) {
      // Read by the e2e benchmark: the tree is on screen and answers input.
      requestAnimationFrame(() => performance.mark("tracemark:trace-interactive"));
    }
  }, [tree]);

  if (error) return <ErrorState error={error} retry={reload} />;
  if (loading && !data) return <Loading what="Loading trace" />;
  if (!data || !tree) return null;
  const { info } = data;
  const select = (spanId: string) => {
    const next = new URLSearchParams(params);
    next.set("span", spanId);
    setParams(next, { replace: true });
  };

  return (
    <div className="trace-layout">
      <div className="trace-left">
        <div className="trace-head">
          <div className="row">
            <Link to={`/experiments/${experimentId}/traces`}>← Traces</Link>
            <b style={{ fontSize: 15 }}>{info.name || "trace"}</b>
            <span className={`badge ${info.status}`}>{info.status}</span>
            <span className="mono muted small">{info.trace_id}</span>
          </div>
          <div className="stats">
            <span>{formatTime(info.timestamp_ms)}</span>
            <span>latency {formatDuration(info.execution_time_ms)}</span>
            <span>{formatNumber(info.span_count || data.spans.length)} spans</span>
            {info.total_tokens !== null && (
              <span>
                {formatNumber(info.total_tokens)} tokens ({formatNumber(info.input_tokens)} in /{" "}
                {formatNumber(info.output_tokens)} out)
              </span>
            )}
            {info.cost !== null && <span>{formatCost(info.cost)}</span>}
            {info.metadata.session_id && (
              <Link to={`/experiments/${experimentId}/sessions/${encodeURIComponent(info.metadata.session_id)}`}>
                session {info.metadata.session_id}
              </Link>
            )}
            {info.metadata.user_id && <span>user {info.metadata.user_id}</span>}
            {info.run_id && <Link to={`/experiments/${experimentId}/runs/${info.run_id}`}>run</Link>}
          </div>
          {Object.keys(info.tags).length > 0 && (
            <div style={{ marginTop: 4 }}>
              {Object.entries(info.tags).map(([k, v]) => (
                <span className="tag" key={k}>
                  {k}={v}
                </span>
              ))}
            </div>
          )}
        </div>
        <div className="tree-tools">
          <input
            aria-label="search spans"
            placeholder="Search spans by name or type"
            value={query}
            onChange={(e) => setQuery(e.target.value)}
          />
        </div>
        <SpanTree tree={tree} selectedId={selectedId} onSelect={select} query={query} />
      </div>
      <div className="trace-right">
        {selected && <SpanPanel span={selected} payload={payload} />}
        <div className="panel">
          <h3>Assessments</h3>
          <Assessments
            traceId={info.trace_id}
            assessments={info.assessments}
            spanId={selectedId}
            spanName={selected?.name}
            onChange={reload}
          />
        </div>
      </div>
    </div>
  );
}
