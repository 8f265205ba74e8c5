import { useState, type ReactNode } from "react";
import { Link, useNavigate } from "react-router-dom";
import { useAsync } from "../lib/hooks";
import { searchEveryExperiment } from "../lib/linked";
import type { TraceInfo } from "../types";
import { Empty, ErrorState, Loading } from "./States";
import { TRACE_COLUMNS } from "./TraceColumns";

const PAGE_SIZE = 25;
// The Traces tab's own columns, so both tables read alike.
const column = (id: string) => TRACE_COLUMNS.find((c) => c.id === id)!;
const [TIME, NAME, STATUS, LATENCY, REQUEST] = ["time", "name", "status", "latency", "request"].map(column);

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

export const traceLink = (t: TraceInfo) => `/experiments/${t.experiment_id}/traces/${t.trace_id}`;

/**
 * The traces matching `filter` in every experiment, newest first, each opening its trace.
 * `keep` drops the results the filter cannot tell apart; `empty` explains an empty list.
 */
export function LinkedTraces({
  filter,
  keep,
  empty,
  testId,
}: {
  filter: string;
  keep?: (trace: TraceInfo) => boolean;
  empty: { title: string; hint?: ReactNode };
  testId: string;
}) {
  const navigate = useNavigate();
  // A new filter starts from the first page again.
  const [shown, setShown] = useState({ filter, limit: PAGE_SIZE });
  const limit = shown.filter === filter ? shown.limit : PAGE_SIZE;
  const { data, error, loading, reload } = useAsync(
    async () => ({ filter, ...(await searchEveryExperiment(filter, limit, keep)) }),
    [filter, limit],
  );
  if (error) return <ErrorState error={error} retry={reload} />;
  // Another version's traces stay out of sight while this one's load.
  if (!data || data.filter !== filter) return <Loading what="Loading traces" />;
  if (!data.traces.length) return <Empty title={empty.title}>{empty.hint}</Empty>;
  return (
    <div data-testid={testId}>
      <table className="grid">
        <thead>
          <tr>
            <th>{TIME.label}</th>
            <th>{NAME.label}</th>
            <th>Experiment</th>
            <th>{STATUS.label}</th>
            <th className="num">{LATENCY.label}</th>
            <th>{REQUEST.label}</th>
          </tr>
        </thead>
        <tbody>
          {data.traces.map((t) => (
            <tr
              key={t.trace_id}
              className="clickable"
              data-testid="linked-trace-row"
              data-trace-id={t.trace_id}
              onClick={() => navigate(traceLink(t))}
            >
              <td>{TIME.render(t)}</td>
              <td>
                <Link to={traceLink(t)} onClick={(e) => e.stopPropagation()}>
                  {t.name || t.trace_id.slice(0, 8)}
                </Link>
              </td>
              <td>
                <Link to={`/experiments/${t.experiment_id}/traces`} onClick={(e) => e.stopPropagation()}>
                  {data.experiments.get(t.experiment_id) ?? t.experiment_id}
                </Link>
              </td>
              <td>{STATUS.render(t)}</td>
              <td className="num">{LATENCY.render(t)}</td>
              <td className="preview">{REQUEST.render(t)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <div className="row muted small" style={{ marginTop: 6 }}>
        {loading && <span className="spinner" />}
        {data.more ? `The newest ${data.traces.length} traces` : plural(data.traces.length, "trace")}
        {data.more && (
          <button onClick={() => setShown({ filter, limit: limit + PAGE_SIZE })} disabled={loading}>
            Show more
          </button>
        )}
      </div>
    </div>
  );
}
