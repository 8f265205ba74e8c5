import { Fragment, useMemo, useState } from "react";
import { Link, useParams, useSearchParams } from "react-router-dom";
import { JsonView } from "../components/JsonView";
import { Empty, ErrorState, Loading } from "../components/States";
import { ScoreDetail, VerdictChip } from "../components/Verdict";
import {
  RESULTS_FILE,
  STATUS_LABEL,
  STATUS_ORDER,
  cellPreview,
  compareResults,
  formatSummary,
  loadEvaluation,
  scorerSummaries,
  type RowComparison,
  type RowStatus,
} from "../lib/evaluation";
import { formatTime } from "../lib/format";
import { useAsync } from "../lib/hooks";
import type { Run } from "../types";

const PAGE = 200;

async function loadBoth(baseline: string, candidate: string) {
  const [b, c] = await Promise.all([loadEvaluation(baseline), loadEvaluation(candidate)]);
  return { baseline: b, candidate: c, comparison: b.results && c.results ? compareResults(b.results, c.results) : null };
}

function TraceLink({ experimentId, traceId, label }: { experimentId: string; traceId: string | null | undefined; label: string }) {
  if (!traceId) return null;
  return (
    <Link to={`/experiments/${experimentId}/traces/${traceId}`} onClick={(e) => e.stopPropagation()}>
      {label}
    </Link>
  );
}

function RowDetail({ row, scorers, span, runs }: { row: RowComparison; scorers: string[]; span: number; runs: [Run, Run] }) {
  const sides = [row.baseline, row.candidate];
  return (
    <tr className="expanded" data-testid="row-detail">
      <td colSpan={span} className="wrap">
        <div className="card" style={{ marginBottom: 8 }}>
          <h4>Inputs</h4>
          <JsonView value={(row.candidate ?? row.baseline)?.inputs} />
        </div>
        <div className="side-by-side" style={{ gridTemplateColumns: "1fr 1fr" }}>
          {sides.map((side, i) => (
            <div className="card" key={i}>
              <h4>
                {i === 0 ? "Baseline" : "Candidate"}: {runs[i].run_name}
              </h4>
              {side ? (
                <>
                  <JsonView value={side.outputs} />
                  {scorers.map((s) => (
                    <ScoreDetail key={s} name={s} cell={side.scores[s]} />
                  ))}
                </>
              ) : (
                <div className="muted">This row is not in this evaluation.</div>
              )}
            </div>
          ))}
        </div>
      </td>
    </tr>
  );
}

/** Two evaluation runs row by row, matched by row_key: regressions first. */
export function CompareEvaluations() {
  const { experimentId = "" } = useParams();
  const [params, setParams] = useSearchParams();
  const baselineId = params.get("baseline") ?? "";
  const candidateId = params.get("candidate") ?? "";
  const show = params.get("show") as RowStatus | null;
  const [open, setOpen] = useState<Set<string>>(new Set());
  const [limit, setLimit] = useState(PAGE);
  const { data, error, reload } = useAsync(() => loadBoth(baselineId, candidateId), [baselineId, candidateId]);
  const comparison = data?.comparison ?? null;
  const rows = useMemo(
    () => (comparison ? comparison.rows.filter((r) => !show || r.status === show) : []),
    [comparison, show],
  );

  if (!baselineId || !candidateId) {
    return <Empty title="Pick two evaluations on the Evaluations tab to compare them." />;
  }
  if (error) return <ErrorState error={error} retry={reload} />;
  if (!data) return <Loading what="Loading evaluations" />;
  const base = `/experiments/${experimentId}`;
  const runs: [Run, Run] = [data.baseline.run, data.candidate.run];
  const set = (changes: Record<string, string | null>) => {
    const next = new URLSearchParams(params);
    for (const [k, v] of Object.entries(changes)) {
      if (v) next.set(k, v);
      else next.delete(k);
    }
    setParams(next, { replace: true });
    setOpen(new Set());
  };
  const header = (
    <div className="row" style={{ marginBottom: 8, flexWrap: "wrap" }}>
      <Link to={`${base}/evaluations`}>← Evaluations</Link>
      <h1 style={{ margin: 0 }}>Compare evaluations</h1>
      <span className="muted">baseline</span>
      <Link to={`${base}/evaluations/${runs[0].run_id}`} data-testid="baseline-name">
        {runs[0].run_name}
      </Link>
      <span className="muted small">{formatTime(runs[0].start_time)}</span>
      <span>→</span>
      <span className="muted">candidate</span>
      <Link to={`${base}/evaluations/${runs[1].run_id}`} data-testid="candidate-name">
        {runs[1].run_name}
      </Link>
      <span className="muted small">{formatTime(runs[1].start_time)}</span>
      <button onClick={() => set({ baseline: candidateId, candidate: baselineId })} title="Swap baseline and candidate">
        ⇄ Swap
      </button>
    </div>
  );
  if (!comparison) {
    const without = runs.filter((_, i) => !(i === 0 ? data.baseline : data.candidate).results);
    return (
      <div className="page">
        {header}
        <Empty title={`${without.map((r) => r.run_name).join(" and ")} has no ${RESULTS_FILE}`} />
      </div>
    );
  }
  const { scorers, counts, perScorer } = comparison;
  const summaries = runs.map((r) => new Map(scorerSummaries(r.metrics).map((s) => [s.name, s])));
  const toggle = (key: string) => {
    const next = new Set(open);
    if (next.has(key)) next.delete(key);
    else next.add(key);
    setOpen(next);
  };
  const columns = 4 + scorers.length;
  return (
    <div className="page" data-testid="compare-evaluations">
      {header}
      <div className="kpis" data-testid="comparison-summary">
        {STATUS_ORDER.filter((s) => counts[s] > 0 || s === "regression" || s === "improvement" || s === "unchanged").map(
          (s) => (
            <button
              key={s}
              className={`kpi status-kpi ${s}${show === s ? " on" : ""}`}
              aria-pressed={show === s}
              data-testid={`summary-${s}`}
              onClick={() => set({ show: show === s ? null : s })}
              title={show === s ? "Show all rows" : `Show only: ${STATUS_LABEL[s].toLowerCase()}`}
            >
              <div className="v">{counts[s]}</div>
              <div className="l">{STATUS_LABEL[s]}</div>
            </button>
          ),
        )}
      </div>
      <table className="grid" data-testid="scorer-summary" style={{ marginBottom: 12 }}>
        <thead>
          <tr>
            <th>Assessment</th>
            <th className="num">{runs[0].run_name}</th>
            <th className="num">{runs[1].run_name}</th>
            <th className="num">Rows regressed</th>
            <th className="num">Rows improved</th>
          </tr>
        </thead>
        <tbody>
          {scorers.map((s) => {
            const [a, b] = summaries.map((m) => m.get(s));
            return (
              <tr key={s}>
                <td>{s}</td>
                <td className="num">{a ? formatSummary(a) : "–"}</td>
                <td className="num">{b ? formatSummary(b) : "–"}</td>
                <td className="num">{perScorer[s].regressed || ""}</td>
                <td className="num">{perScorer[s].improved || ""}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {rows.length === 0 ? (
        <Empty title={show ? `No rows: ${STATUS_LABEL[show].toLowerCase()}` : "No rows"} />
      ) : (
        <div style={{ overflow: "auto" }}>
          <table className="grid" data-testid="comparison-table">
            <thead>
              <tr>
                <th>Change</th>
                <th className="num">#</th>
                <th>Inputs</th>
                {scorers.map((s) => (
                  <th key={s}>{s}</th>
                ))}
                <th>Traces</th>
              </tr>
            </thead>
            <tbody>
              {rows.slice(0, limit).map((r) => (
                <Fragment key={r.key}>
                  <tr
                    className="clickable"
                    data-testid="comparison-row"
                    data-status={r.status}
                    data-key={r.key}
                    aria-expanded={open.has(r.key)}
                    onClick={() => toggle(r.key)}
                  >
                    <td>
                      <span className={`status ${r.status}`}>{STATUS_LABEL[r.status].replace(/s$/, "")}</span>
                    </td>
                    <td className="num">
                      {r.baseline && r.candidate && r.baseline.row !== r.candidate.row
                        ? `${r.baseline.row} → ${r.candidate.row}`
                        : (r.baseline ?? r.candidate)!.row}
                    </td>
                    <td className="preview">{cellPreview((r.candidate ?? r.baseline)!.inputs)}</td>
                    {scorers.map((s) => (
                      <td key={s} data-scorer={s} data-change={r.changes[s] ?? ""}>
                        <span className="row" style={{ gap: 4 }}>
                          {r.baseline ? <VerdictChip cell={r.baseline.scores[s]} /> : <span className="muted">absent</span>}
                          <span className="muted">→</span>
                          {r.candidate ? (
                            <VerdictChip cell={r.candidate.scores[s]} change={r.changes[s]} />
                          ) : (
                            <span className="muted">absent</span>
                          )}
                        </span>
                      </td>
                    ))}
                    <td>
                      <span className="row" style={{ gap: 6 }}>
                        <TraceLink experimentId={experimentId} traceId={r.baseline?.traceId} label="baseline" />
                        <TraceLink experimentId={experimentId} traceId={r.candidate?.traceId} label="candidate" />
                      </span>
                    </td>
                  </tr>
                  {open.has(r.key) && <RowDetail row={r} scorers={scorers} span={columns} runs={runs} />}
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
    </div>
  );
}
