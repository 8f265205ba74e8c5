// Evaluation runs: their summary metrics, their per-row results table (eval_results.json)
// and the row-by-row comparison of two of them.
//
// An evaluation run is a run tagged `tracemark.run_type = evaluation`. For each assessment
// name N it logs the metric `N/mean` (numbers) or `N/pass_rate` (booleans, "yes"/"no") and
// `N/error_count`; its table has the columns row, row_key, trace_id, inputs, outputs,
// expectations, then N/value, N/rationale, N/error for each N.
import { api } from "../api";
import type { Run } from "../types";
import { formatValue, previewText } from "./format";

export const RUN_TYPE_TAG = "tracemark.run_type";
/** The server-side filter that finds evaluation runs. */
export const EVALUATION_FILTER = "tags.`tracemark.run_type` = 'evaluation'";
export const RESULTS_FILE = "eval_results.json";
/** How an error starts when the row was skipped (the judges' cost budget was spent, say). */
export const NOT_JUDGED = "not judged";

/** What one assessment of one row says, normalised for display and comparison. */
export type Verdict =
  | { kind: "pass" }
  | { kind: "fail" }
  | { kind: "number"; value: number }
  | { kind: "label"; value: string }
  | { kind: "error"; message: string }
  | { kind: "skipped"; message: string }
  | { kind: "missing" };

export interface ScoreCell {
  value: unknown;
  rationale: string | null;
  error: string | null;
  verdict: Verdict;
}

export interface EvalRow {
  /** The `row` column: the row's position in the evaluated data. */
  row: number;
  /** What matches this row across evaluations: row_key, else the row number. */
  key: string;
  traceId: string | null;
  inputs: unknown;
  outputs: unknown;
  expectations: unknown;
  scores: Record<string, ScoreCell>;
}

export interface EvalResults {
  /** Assessment names, in the table's column order. */
  scorers: string[];
  rows: EvalRow[];
}

const PASS = new Set(["yes", "true", "pass", "passed"]);
const FAIL = new Set(["no", "false", "fail", "failed"]);

export function verdictOf(value: unknown, error: string | null): Verdict {
  if (value === null || value === undefined) {
    if (error) {
      return error.trim().toLowerCase().startsWith(NOT_JUDGED)
        ? { kind: "skipped", message: error }
        : { kind: "error", message: error };
    }
    return { kind: "missing" };
  }
  if (value === true) return { kind: "pass" };
  if (value === false) return { kind: "fail" };
  if (typeof value === "number") return { kind: "number", value };
  if (typeof value === "string") {
    const word = value.trim().toLowerCase();
    if (PASS.has(word)) return { kind: "pass" };
    if (FAIL.has(word)) return { kind: "fail" };
    return { kind: "label", value };
  }
  return { kind: "label", value: JSON.stringify(value) };
}

function text(value: unknown): string | null {
  if (value === null || value === undefined || value === "") return null;
  return typeof value === "string" ? value : JSON.stringify(value);
}

/** A JSON cell; one stored as JSON text (an object or a list) is decoded. */
function json(value: unknown): unknown {
  if (typeof value === "string" && /^\s*[[{]/.test(value)) {
    try {
      return JSON.parse(value);
    } catch {
      // plain text that happens to start with a bracket
    }
  }
  return value;
}

const SUFFIXES = ["/value", "/rationale", "/error"];

/** Read a `log_table` table of evaluation results. */
export function parseResults(table: { columns: string[]; data: unknown[][] }): EvalResults {
  const at = new Map(table.columns.map((c, i) => [c, i]));
  const scorers: string[] = [];
  for (const column of table.columns) {
    const suffix = SUFFIXES.find((s) => column.endsWith(s));
    if (!suffix) continue;
    const name = column.slice(0, -suffix.length);
    if (name && !scorers.includes(name)) scorers.push(name);
  }
  const cell = (data: unknown[], column: string): unknown => {
    const i = at.get(column);
    return i === undefined ? undefined : data[i];
  };
  const rows = table.data.map((data, index): EvalRow => {
    const number = cell(data, "row");
    const row = typeof number === "number" ? number : index;
    const rowKey = cell(data, "row_key");
    const scores: Record<string, ScoreCell> = {};
    for (const name of scorers) {
      const value = cell(data, `${name}/value`) ?? null;
      const error = text(cell(data, `${name}/error`));
      scores[name] = { value, rationale: text(cell(data, `${name}/rationale`)), error, verdict: verdictOf(value, error) };
    }
    return {
      row,
      key: typeof rowKey === "string" && rowKey ? rowKey : `row:${row}`,
      traceId: text(cell(data, "trace_id")),
      inputs: json(cell(data, "inputs")),
      outputs: json(cell(data, "outputs")),
      expectations: json(cell(data, "expectations")),
      scores,
    };
  });
  return { scorers, rows };
}

export interface LoadedEvaluation {
  run: Run;
  /** Null when the run has no results table. */
  results: EvalResults | null;
}

/** A run and its results table, read through the artifact endpoints the Runs page uses. */
export async function loadEvaluation(runId: string): Promise<LoadedEvaluation> {
  const [run, listing] = await Promise.all([api.getRun(runId), api.listArtifacts(runId)]);
  if (!listing.files.some((f) => !f.is_dir && f.path === RESULTS_FILE)) return { run, results: null };
  const table = (await api.readJsonArtifact(runId, RESULTS_FILE)) as { columns?: unknown; data?: unknown };
  if (!table || !Array.isArray(table.columns) || !Array.isArray(table.data)) {
    throw new Error(`${RESULTS_FILE} of run ${run.run_name} is not a table logged by log_table`);
  }
  return { run, results: parseResults({ columns: table.columns.map(String), data: table.data as unknown[][] }) };
}

/** A one-line preview of a JSON cell (inputs, outputs, expectations). */
export function cellPreview(value: unknown, max = 80): string {
  if (value === null || value === undefined) return "";
  return previewText(JSON.stringify(value), max);
}

/** A row some assessment failed or could not judge because of an error. */
export function isFailing(row: EvalRow): boolean {
  return Object.values(row.scores).some((s) => s.verdict.kind === "fail" || s.verdict.kind === "error");
}

// -- run metrics ---------------------------------------------------------------------------

export interface ScorerSummary {
  name: string;
  kind: "pass_rate" | "mean";
  value: number | null;
  errors: number | null;
}

const num = (v: number | string | undefined): number | null => {
  if (v === undefined || v === "") return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
};

/** Each assessment's aggregate (pass rate or mean) and error count, from a run's metrics. */
export function scorerSummaries(metrics: Record<string, number | string>): ScorerSummary[] {
  const out: ScorerSummary[] = [];
  for (const key of Object.keys(metrics).sort()) {
    const kind = key.endsWith("/pass_rate") ? "pass_rate" : key.endsWith("/mean") ? "mean" : null;
    if (!kind) continue;
    const name = key.slice(0, key.lastIndexOf("/"));
    out.push({ name, kind, value: num(metrics[key]), errors: num(metrics[`${name}/error_count`]) });
  }
  return out;
}

export interface RunTotals {
  rows: number | null;
  notJudged: number | null;
  predictionErrors: number | null;
  judgeCalls: number | null;
  inputTokens: number | null;
  outputTokens: number | null;
  cost: number | null;
}

export function runTotals(metrics: Record<string, number | string>): RunTotals {
  return {
    rows: num(metrics["evaluation/rows"]),
    notJudged: num(metrics["evaluation/rows_not_judged"]),
    predictionErrors: num(metrics["evaluation/prediction_errors"]),
    judgeCalls: num(metrics["judges/calls"]),
    inputTokens: num(metrics["judges/input_tokens"]),
    outputTokens: num(metrics["judges/output_tokens"]),
    cost: num(metrics["judges/cost_usd"]),
  };
}

export function formatSummary(s: ScorerSummary): string {
  if (s.value === null) return "–";
  if (s.kind === "pass_rate") {
    const pct = s.value * 100;
    return `${Number.isInteger(pct) ? pct : pct.toFixed(1)}%`;
  }
  return s.value.toLocaleString("en-US", { maximumFractionDigits: 3 });
}

export const isEvaluation = (run: Run): boolean => run.tags[RUN_TYPE_TAG] === "evaluation";

export interface KeyMetric {
  name: string;
  value: string;
}

/**
 * The metrics that sum a run up in a list: an evaluation's assessments (pass rate or mean),
 * else its first metrics by name; `hidden` counts the ones left out.
 */
export function keyMetrics(run: Run, max = 4): { shown: KeyMetric[]; hidden: number } {
  const all = isEvaluation(run)
    ? scorerSummaries(run.metrics).map((s) => ({ name: s.name, value: formatSummary(s) }))
    : Object.keys(run.metrics)
        .sort()
        .map((name) => ({ name, value: formatValue(run.metrics[name]) }));
  return { shown: all.slice(0, max), hidden: Math.max(all.length - max, 0) };
}

// -- comparison ----------------------------------------------------------------------------

/** How one assessment of one row changed from the baseline to the candidate. */
export type Change = "regressed" | "improved" | "same" | "differs";

/** Where a row lands; the order of STATUS_ORDER is the order rows are listed in. */
export type RowStatus = "regression" | "improvement" | "changed" | "unchanged" | "removed" | "added";

export const STATUS_ORDER: RowStatus[] = ["regression", "improvement", "changed", "unchanged", "removed", "added"];

export const STATUS_LABEL: Record<RowStatus, string> = {
  regression: "Regressions",
  improvement: "Improvements",
  changed: "Changed",
  unchanged: "Unchanged",
  removed: "Only in baseline",
  added: "Only in candidate",
};

export interface RowComparison {
  key: string;
  status: RowStatus;
  baseline: EvalRow | null;
  candidate: EvalRow | null;
  /** Per assessment, for rows present in both runs. */
  changes: Record<string, Change>;
}

export interface Comparison {
  scorers: string[];
  rows: RowComparison[];
  counts: Record<RowStatus, number>;
  /** Per assessment: how many rows regressed and improved. */
  perScorer: Record<string, { regressed: number; improved: number }>;
}

const NO_VALUE = new Set(["error", "skipped", "missing"]);

function close(a: number, b: number): boolean {
  return Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));
}

/** Compare two verdicts: a pass that became a fail, or a number that went down, regressed. */
export function compareVerdicts(before: Verdict, after: Verdict): Change {
  const rank = (v: Verdict) => (v.kind === "pass" ? 1 : v.kind === "fail" ? 0 : null);
  const a = rank(before);
  const b = rank(after);
  if (a !== null && b !== null) return b < a ? "regressed" : b > a ? "improved" : "same";
  if (before.kind === "number" && after.kind === "number") {
    if (close(before.value, after.value)) return "same";
    return after.value < before.value ? "regressed" : "improved";
  }
  if (before.kind === "label" && after.kind === "label") return before.value === after.value ? "same" : "differs";
  // Neither side has a value (errors, rows not judged): nothing to compare.
  if (NO_VALUE.has(before.kind) && NO_VALUE.has(after.kind)) return "same";
  return "differs";
}

/** Key each row by row_key; a key seen again (the same inputs twice) gets an occurrence suffix. */
function byKey(rows: EvalRow[]): Map<string, EvalRow> {
  const seen = new Map<string, number>();
  const out = new Map<string, EvalRow>();
  for (const row of rows) {
    const n = seen.get(row.key) ?? 0;
    seen.set(row.key, n + 1);
    out.set(n ? `${row.key}#${n}` : row.key, row);
  }
  return out;
}

function statusOf(changes: Change[]): RowStatus {
  if (changes.includes("regressed")) return "regression";
  if (changes.includes("improved")) return "improvement";
  if (changes.includes("differs")) return "changed";
  return "unchanged";
}

/** Match the rows of two evaluations by row_key and list regressions first. */
export function compareResults(baseline: EvalResults, candidate: EvalResults): Comparison {
  const scorers = [...baseline.scorers, ...candidate.scorers.filter((s) => !baseline.scorers.includes(s))];
  const before = byKey(baseline.rows);
  const after = byKey(candidate.rows);
  const missing: ScoreCell = { value: null, rationale: null, error: null, verdict: { kind: "missing" } };
  const perScorer = Object.fromEntries(scorers.map((s) => [s, { regressed: 0, improved: 0 }]));
  const rows: RowComparison[] = [];
  for (const [key, b] of before) {
    const c = after.get(key) ?? null;
    if (!c) {
      rows.push({ key, status: "removed", baseline: b, candidate: null, changes: {} });
      continue;
    }
    const changes: Record<string, Change> = {};
    for (const s of scorers) {
      const change = compareVerdicts((b.scores[s] ?? missing).verdict, (c.scores[s] ?? missing).verdict);
      changes[s] = change;
      if (change === "regressed") perScorer[s].regressed++;
      if (change === "improved") perScorer[s].improved++;
    }
    rows.push({ key, status: statusOf(Object.values(changes)), baseline: b, candidate: c, changes });
  }
  for (const [key, c] of after) {
    if (!before.has(key)) rows.push({ key, status: "added", baseline: null, candidate: c, changes: {} });
  }
  const count = (r: RowComparison, change: Change) => Object.values(r.changes).filter((x) => x === change).length;
  const weight = (r: RowComparison) =>
    r.status === "regression" ? count(r, "regressed") : r.status === "improvement" ? count(r, "improved") : 0;
  const position = (r: RowComparison) => (r.baseline ?? r.candidate)!.row;
  rows.sort(
    (x, y) =>
      STATUS_ORDER.indexOf(x.status) - STATUS_ORDER.indexOf(y.status) ||
      weight(y) - weight(x) ||
      position(x) - position(y),
  );
  const counts = Object.fromEntries(STATUS_ORDER.map((s) => [s, 0])) as Record<RowStatus, number>;
  for (const r of rows) counts[r.status]++;
  return { scorers, rows, counts, perScorer };
}
