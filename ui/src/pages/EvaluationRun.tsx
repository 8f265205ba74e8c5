import { Fragment, useMemo, useState } from "react";
import { Link, useNavigate, useParams, useSearchParams } from "react-router-dom";
import { api } from "../api";
import { JsonView } from "../components/JsonView";
import { Empty, ErrorState, Loading } from "../components/States";
import { ScoreDetail, VerdictChip } from "../components/Verdict";
import {
  EVALUATION_FILTER,
  cellPreview,
  RESULTS_FILE,
  formatSummary,
  isFailing,
  loadEvaluation,
  runTotals,
  scorerSummaries,
  type EvalRow,
} from "../lib/evaluation";
import { formatCost, formatNumber, formatTime } from "../lib/format";
import { useAsync } from "../lib/hooks";
import type { Run } from "../types";

const PAGE = 200;

export function EvaluationKpis({ run }: { run: Run }) {
  const totals = runTotals(run.metrics);
  const kpi = (label: string, value: string, testid?: string) => (
    <div className="kpi" key={label} data-testid={testid}>
      <div className="v">{value}</div>
      <div className="l">{label}</div>
    </div>
  );
  return (
    <div className="kpis" data-testid="evaluation-kpis">
      {kpi("rows", formatNumber(totals.rows))}
      {totals.notJudged ? kpi("rows not judged", formatNumber(totals.notJudged)) : null}
      {totals.predictionErrors ? kpi("prediction errors", formatNumber(totals.predictionErrors)) : null}
      {scorerSummaries(run.metrics).map((s) =>
        kpi(
          `${s.name} ${s.kind === "pass_rate" ? "pass rate" : "mean"}${s.errors ? ` · ${s.errors} errors` : ""}`,
          formatSummary(s),
          "scorer-kpi",
        ),
      )}
      {kpi("judge calls", formatNumber(totals.judgeCalls))}
      {kpi(
        "judge tokens in / out",
        totals.inputTokens === null && totals.outputTokens === null
          ? "–"
          : `${formatNumber(totals.inputTokens)} / ${formatNumber(totals.outputTokens)}`,
      )}
      {kpi("judge cost", formatCost(totals.cost))}
    </div>
  );
}

function CompareWith({ experimentId, run }: { experimentId: string; run: Run }) {
  const navigate = useNavigate();
  const others = useAsync(
    () => api.searchRuns(experimentId, EVALUATION_FILTER, ["attributes.start_time DESC"]),
    [experimentId],
  );
  const choices = (others.data?.runs ?? []).filter((r) => r.run_id !== run.run_id);
  if (!choices.length) return null;
  return (
    <select
      aria-label="compare with"
      value=""
      onChange={(e) => {
        const other = choices.find((r) => r.run_id === e.target.value);
        if (!other) return;
        const [baseline, candidate] = other.start_time <= run.start_time ? [other, run] : [run, other];
        navigate(
          `/experiments/${experimentId}/evaluations/compare?baseline=${baseline.run_id}&candidate=${candidate.run_id}`,
        );
      }}
    >
      <option value="">Compare with…</option>
      {choices.map((r) => (
        <option key={r.run_id} value={r.run_id}>
          {r.run_name} ({formatTime(r.start_time)})
        </option>
      ))}
    </select>
  );
}

function RowDetail({ row, scorers, span }: { row: EvalRow; scorers: string[]; span: number }) {
  return (
    <tr className="expanded" data-testid="row-detail">
      <td colSpan={span} className="wrap">
        <div className="cards">
          <div className="card">
            <h4>Inputs</h4>
            <JsonView value={row.inputs} />
          </div>
          <div className="card">
            <h4>Outputs</h4>
            <JsonView value={row.outputs} />
          </div>
          <div className="card">
            <h4>Expectations</h4>
            <JsonView value={row.expectations} />
          </div>
        </div>
        <div className="cards" style={{ marginTop: 8 }}>
          {scorers.map((s) => (
            <ScoreDetail key={s} name={s} cell={row.scores[s]} />
          ))}
        </div>
      </td>
    </tr>
  );
}

/** One evaluation run: its aggregates and its per-row results. */
export function EvaluationRun() {
  const { experimentId = "", runId = "" } = useParams();
  const [params, setParams] = useSearchParams();
  const failingOnly = params.get("failing") === "1";
  const [open, setOpen] = useState<Set<number>>(new Set());
  const [limit, setLimit] = useState(PAGE);
  const { data, error, reload } = useAsync(() => loadEvaluation(runId), [runId]);
  const results = data?.results ?? null;
  const rows = useMemo(
    () => (results ? results.rows.filter((r) => !failingOnly || isFailing(r)) : []),
    [results, failingOnly],
  );

  if (error) return <ErrorState error={error} retry={reload} />;
  if (!data) return <Loading what="Loading evaluation" />;
  const { run } = data;
  const base = `/experiments/${experimentId}`;
  const toggle = (i: number) => {
    const next = new Set(open);
    if (next.has(i)) next.delete(i);
    else next.add(i);
    setOpen(next);
  };
  const scorers = results?.scorers ?? [];
  const columns = 5 + scorers.length;
  return (
    <div className="page" data-testid="evaluation-run">
      <div className="row" style={{ marginBottom: 8 }}>
        <Link to={`${base}/evaluations`}>← Evaluations</Link>
        <h1 style={{ margin: 0 }}>{run.run_name}</h1>
        <span className={`badge ${run.status}`}>{run.status}</span>
        <span className="muted">{formatTime(run.start_time)}</span>
        <Link to={`${base}/runs/${run.run_id}`}>run details</Link>
        <span className="spacer" />
        <CompareWith experimentId={experimentId} run={run} />
      </div>
      <EvaluationKpis run={run} />
      {!results ? (
        <Empty title={`This run has no ${RESULTS_FILE}`}>
          <p>An evaluation stores its per-row results there with <code>tm.log_table</code>.</p>
        </Empty>
      ) : (
        <>
          <div className="toolbar">
            <button
              className={failingOnly ? "on" : ""}
              aria-pressed={failingOnly}
              title="Rows where an assessment failed or raised an error"
              onClick={() => {
                setParams(failingOnly ? {} : { failing: "1" }, { replace: true });
                setOpen(new Set());
              }}
            >
              Failing only
            </button>
            <span className="muted" data-testid="row-count">
              {rows.length === results.rows.length
                ? `${rows.length} rows`
                : `${rows.length} of ${results.rows.length} rows`}
            </span>
            <span className="muted small">Click a row for its inputs, outputs and rationales.</span>
          </div>
          {rows.length === 0 ? (
            <Empty title={failingOnly ? "No failing rows" : "No rows"} />
          ) : (
            <div style={{ overflow: "auto" }}>
              <table className="grid" data-testid="results-table">
                <thead>
                  <tr>
                    <th className="num">#</th>
                    <th>Inputs</th>
                    <th>Outputs</th>
                    <th>Expectations</th>
                    {scorers.map((s) => (
                      <th key={s}>{s}</th>
                    ))}
                    <th>Trace</th>
                  </tr>
                </thead>
                <tbody>
                  {rows.slice(0, limit).map((r, i) => (
                    <Fragment key={i}>
                      <tr
                        className="clickable"
                        data-testid="result-row"
                        data-row={r.row}
                        aria-expanded={open.has(i)}
                        onClick={() => toggle(i)}
                      >
                        <td className="num">{r.row}</td>
                        <td className="preview">{cellPreview(r.inputs)}</td>
                        <td className="preview">{cellPreview(r.outputs)}</td>
                        <td className="preview">{cellPreview(r.expectations)}</td>
                        {scorers.map((s) => (
                          <td key={s} data-scorer={s}>
                            <VerdictChip cell={r.scores[s]} />
                          </td>
                        ))}
                        <td>
                          {r.traceId ? (
                            <Link to={`${base}/traces/${r.traceId}`} onClick={(e) => e.stopPropagation()}>
                              trace
                            </Link>
                          ) : (
                            <span className="muted">–</span>
                          )}
                        </td>
                      </tr>
                      {open.has(i) && <RowDetail row={r} scorers={scorers} span={columns} />}
                    </Fragment>
                  ))}
                </tbody>
              </table>
              {rows.length > limit && (
                <div className="toolbar" style={{ marginTop: 8 }}>
                  <span className="muted">
                    first {limit} of {rows.length} rows
                  </span>
                  <button onClick={() => setLimit(limit + PAGE)}>Show more</button>
                </div>
              )}
            </div>
          )}
        </>
      )}
    </div>
  );
}
