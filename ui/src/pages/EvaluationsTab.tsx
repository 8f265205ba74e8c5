import { useMemo, useState } from "react";
import { Link, useNavigate, useParams, useSearchParams } from "react-router-dom";
import { ApiError, api } from "../api";
import { FilterBar, type FilterError } from "../components/FilterBar";
import { Empty, ErrorState, Loading } from "../components/States";
import { EVALUATION_FILTER, formatSummary, runTotals, scorerSummaries } from "../lib/evaluation";
import { composeFilter, userPosition } from "../lib/filter";
import { formatCost, formatNumber, formatTime } from "../lib/format";
import { useAsync } from "../lib/hooks";
import type { Run } from "../types";

/** The experiment's evaluation runs, newest first, with each assessment's aggregate. */
export function EvaluationsTab() {
  const { experimentId = "" } = useParams();
  const [params, setParams] = useSearchParams();
  const navigate = useNavigate();
  const filter = params.get("filter") ?? "";
  const [tokens, setTokens] = useState<(string | null)[]>([null]);
  const [checked, setChecked] = useState<string[]>([]);
  const page = tokens.length - 1;
  const composed = composeFilter(filter, [EVALUATION_FILTER]);
  const { data, error, loading, reload } = useAsync(
    () => api.searchRuns(experimentId, composed, ["attributes.start_time DESC"], tokens[page] ?? undefined),
    [experimentId, composed, tokens],
  );
  const runs = useMemo(() => data?.runs ?? [], [data]);
  const scorers = useMemo(
    () => [...new Set(runs.flatMap((r) => scorerSummaries(r.metrics).map((s) => s.name)))].sort(),
    [runs],
  );

  let filterError: FilterError | null = null;
  if (error instanceof ApiError && error.code === "INVALID_FILTER") {
    filterError = {
      message: error.message,
      position: error.position === undefined ? null : userPosition(filter, [EVALUATION_FILTER], error.position),
    };
  }
  const toggle = (id: string) =>
    setChecked(checked.includes(id) ? checked.filter((c) => c !== id) : [...checked.slice(-1), id]);
  const compare = () => {
    const picked = checked.map((id) => runs.find((r) => r.run_id === id)).filter((r): r is Run => !!r);
    // The older run is the baseline the newer one is judged against.
    const [baseline, candidate] = picked.sort((a, b) => a.start_time - b.start_time);
    navigate(`/experiments/${experimentId}/evaluations/compare?baseline=${baseline.run_id}&candidate=${candidate.run_id}`);
  };

  return (
    <div className="page">
      <FilterBar
        value={filter}
        error={filterError}
        placeholder="params.model = 'gpt-4o-mini' AND metrics.`correctness/pass_rate` < 0.9"
        onSubmit={(f) => {
          setTokens([null]);
          setParams(f ? { filter: f } : {}, { replace: true });
        }}
      />
      <div className="toolbar">
        <button className="primary" disabled={checked.length !== 2} onClick={compare}>
          Compare 2 evaluations
        </button>
        <span className="muted small">Select two evaluations to compare them row by row.</span>
        <span className="spacer" />
        <button disabled={page === 0} onClick={() => setTokens(tokens.slice(0, -1))}>
          ← Newer
        </button>
        <button disabled={!data?.next_page_token} onClick={() => setTokens([...tokens, data!.next_page_token])}>
          Older →
        </button>
      </div>
      {error && !filterError ? (
        <ErrorState error={error} retry={reload} />
      ) : filterError ? null : loading && !data ? (
        <Loading what="Loading evaluations" />
      ) : runs.length === 0 ? (
        <Empty title={filter ? "No evaluation matches this filter" : "No evaluations yet"}>
          {!filter && (
            <p>
              Run one with <code>tm.evaluate(data=rows, predict_fn=agent, scorers=[...])</code>; each evaluation is a
              run tagged <code>tracemark.run_type = evaluation</code>.
            </p>
          )}
        </Empty>
      ) : (
        <div style={{ overflow: "auto" }}>
          <table className="grid" data-testid="evaluations-table">
            <thead>
              <tr>
                <th />
                <th>Evaluation</th>
                <th>Status</th>
                <th>Started</th>
                <th className="num">Rows</th>
                {scorers.map((s) => (
                  <th key={s} className="num">
                    {s}
                  </th>
                ))}
                <th className="num">Judge calls</th>
                <th className="num">Judge cost</th>
              </tr>
            </thead>
            <tbody>
              {runs.map((r) => {
                const totals = runTotals(r.metrics);
                const summaries = new Map(scorerSummaries(r.metrics).map((s) => [s.name, s]));
                return (
                  <tr key={r.run_id} data-testid="evaluation-row" data-run-name={r.run_name}>
                    <td>
                      <input
                        type="checkbox"
                        aria-label={`select ${r.run_name}`}
                        checked={checked.includes(r.run_id)}
                        onChange={() => toggle(r.run_id)}
                      />
                    </td>
                    <td>
                      <Link to={`/experiments/${experimentId}/evaluations/${r.run_id}`}>{r.run_name}</Link>
                    </td>
                    <td>
                      <span className={`badge ${r.status}`}>{r.status}</span>
                    </td>
                    <td>{formatTime(r.start_time)}</td>
                    <td className="num">
                      {formatNumber(totals.rows)}
                      {totals.notJudged ? (
                        <span className="muted small" title="rows not judged">
                          {" "}
                          ({formatNumber(totals.notJudged)} not judged)
                        </span>
                      ) : null}
                    </td>
                    {scorers.map((name) => {
                      const s = summaries.get(name);
                      return (
                        <td key={name} className="num" data-scorer={name}>
                          {s ? formatSummary(s) : "–"}
                          {s?.errors ? (
                            <span className="badge ERROR" title={`${s.errors} rows could not be judged`}>
                              {formatNumber(s.errors)} err
                            </span>
                          ) : null}
                        </td>
                      );
                    })}
                    <td className="num">{formatNumber(totals.judgeCalls)}</td>
                    <td className="num">{formatCost(totals.cost)}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}
