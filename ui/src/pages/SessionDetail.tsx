import { Link, useParams } from "react-router-dom";
import { api } from "../api";
import { Empty, ErrorState, Loading } from "../components/States";
import { formatCost, formatDuration, formatNumber, formatTime, previewText } from "../lib/format";
import { useAsync } from "../lib/hooks";

const quote = (s: string) => "'" + s.replace(/'/g, "''") + "'";

/** One conversation as a chat thread; each turn links to the trace that produced it. */
export function SessionDetail() {
  const { experimentId = "", sessionId = "" } = useParams();
  const { data, error, loading, reload } = useAsync(
    () =>
      api.searchTraces(experimentId, {
        filter: `metadata.session_id = ${quote(sessionId)}`,
        order_by: ["timestamp_ms ASC"],
        max_results: 500,
      }),
    [experimentId, sessionId],
  );
  if (error) return <ErrorState error={error} retry={reload} />;
  if (loading && !data) return <Loading what="Loading session" />;
  const traces = data?.traces ?? [];
  const tokens = traces.reduce((n, t) => n + (t.total_tokens ?? 0), 0);
  return (
    <div className="page">
      <div className="row" style={{ marginBottom: 12 }}>
        <Link to={`/experiments/${experimentId}/sessions`}>← Sessions</Link>
        <h1 style={{ margin: 0 }}>Session {sessionId}</h1>
        <span className="muted">
          {traces.length} turns · {formatNumber(tokens)} tokens
          {traces[0]?.metadata.user_id ? ` · user ${traces[0].metadata.user_id}` : ""}
        </span>
      </div>
      {traces.length === 0 ? (
        <Empty title="This session has no traces" />
      ) : (
        <div className="thread" data-testid="session-thread">
          {traces.map((t, i) => (
            <div className="turn" key={t.trace_id} data-testid="turn">
              <div className="head">
                <b>Turn {i + 1}</b>
                <span>{formatTime(t.timestamp_ms)}</span>
                <span className={`badge ${t.status}`}>{t.status}</span>
                <span>{formatDuration(t.execution_time_ms)}</span>
                {t.total_tokens !== null && <span>{formatNumber(t.total_tokens)} tokens</span>}
                {t.cost !== null && <span>{formatCost(t.cost)}</span>}
                <span className="spacer" />
                <Link to={`/experiments/${experimentId}/traces/${t.trace_id}`}>Open trace →</Link>
              </div>
              <div className="chat">
                <div className="msg user">
                  <div className="role">user</div>
                  <div className="content">{previewText(t.request_preview, 2000) || "–"}</div>
                </div>
                <div className="msg assistant">
                  <div className="role">assistant</div>
                  <div className="content">
                    {t.status === "ERROR" && !t.response_preview ? (
                      <span style={{ color: "var(--error)" }}>The agent failed on this turn.</span>
                    ) : (
                      previewText(t.response_preview, 2000) || "–"
                    )}
                  </div>
                </div>
              </div>
            </div>
          ))}
        </div>
      )}
    </div>
  );
}
