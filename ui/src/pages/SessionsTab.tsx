import { useState } from "react";
import { Link, useNavigate, useParams, useSearchParams } from "react-router-dom";
import { ApiError, api } from "../api";
import { FilterBar } from "../components/FilterBar";
import { Empty, ErrorState, Loading } from "../components/States";
import { formatCost, formatNumber, formatRelative, formatTime, previewText } from "../lib/format";
import { useAsync } from "../lib/hooks";

export function SessionsTab() {
  const { experimentId = "" } = useParams();
  const [params, setParams] = useSearchParams();
  const navigate = useNavigate();
  const filter = params.get("filter") ?? "";
  const [tokens, setTokens] = useState<(string | null)[]>([null]);
  const page = tokens.length - 1;
  const { data, error, loading, reload } = useAsync(
    () => api.listSessions(experimentId, filter, tokens[page]),
    [experimentId, filter, tokens],
  );
  const filterError =
    error instanceof ApiError && error.code === "INVALID_FILTER"
      ? { message: error.message, position: error.position ?? null }
      : null;
  const sessions = data?.sessions ?? [];
  return (
    <div className="page">
      <FilterBar
        value={filter}
        error={filterError}
        placeholder="Only sessions with traces matching, e.g. status = 'ERROR'"
        onSubmit={(f) => {
          setTokens([null]);
          setParams(f ? { filter: f } : {}, { replace: true });
        }}
      />
      {error && !filterError ? (
        <ErrorState error={error} retry={reload} />
      ) : filterError ? null : loading && !data ? (
        <Loading what="Loading sessions" />
      ) : sessions.length === 0 ? (
        <Empty title="No sessions">
          <p>
            Group a conversation's traces with <code>tm.update_current_trace(session_id=...)</code>.
          </p>
        </Empty>
      ) : (
        <>
          <table className="grid" data-testid="sessions-table">
            <thead>
              <tr>
                <th>Session</th>
                <th>First message</th>
                <th className="num">Turns</th>
                <th>Users</th>
                <th className="num">Errors</th>
                <th className="num">Tokens</th>
                <th className="num">Cost</th>
                <th>Last active</th>
              </tr>
            </thead>
            <tbody>
              {sessions.map((s) => (
                <tr
                  key={s.session_id}
                  className="clickable"
                  data-testid="session-row"
                  onClick={() => navigate(`/experiments/${experimentId}/sessions/${encodeURIComponent(s.session_id)}`)}
                >
                  <td>
                    <Link
                      to={`/experiments/${experimentId}/sessions/${encodeURIComponent(s.session_id)}`}
                      onClick={(e) => e.stopPropagation()}
                    >
                      {s.session_id}
                    </Link>
                  </td>
                  <td className="preview">{previewText(s.first_request_preview, 80)}</td>
                  <td className="num">{s.trace_count}</td>
                  <td>{s.user_ids.join(", ")}</td>
                  <td className="num">{s.error_count ? <span className="badge ERROR">{s.error_count}</span> : 0}</td>
                  <td className="num">{formatNumber(s.total_tokens)}</td>
                  <td className="num">{formatCost(s.cost)}</td>
                  <td title={formatTime(s.last_timestamp_ms)}>{formatRelative(s.last_timestamp_ms)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <div className="toolbar" style={{ marginTop: 8 }}>
            <button disabled={page === 0} onClick={() => setTokens(tokens.slice(0, -1))}>
              ← Newer
            </button>
            <button disabled={!data?.next_page_token} onClick={() => setTokens([...tokens, data!.next_page_token])}>
              Older →
            </button>
          </div>
        </>
      )}
    </div>
  );
}
