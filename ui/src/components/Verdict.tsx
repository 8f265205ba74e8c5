import type { Change, ScoreCell } from "../lib/evaluation";
import { formatNumber } from "../lib/format";

function label(cell: ScoreCell): string {
  const v = cell.verdict;
  switch (v.kind) {
    case "pass":
      return "pass";
    case "fail":
      return "fail";
    case "number":
      return formatNumber(v.value);
    case "label":
      return v.value.length > 24 ? v.value.slice(0, 23) + "…" : v.value;
    case "error":
      return "error";
    case "skipped":
      return "not judged";
    case "missing":
      return "–";
  }
}

/** The hover text of a score: its raw value, rationale and error. */
export function scoreTitle(cell: ScoreCell): string {
  const parts: string[] = [];
  if (cell.value !== null && cell.value !== undefined) parts.push(`value: ${JSON.stringify(cell.value)}`);
  if (cell.rationale) parts.push(cell.rationale);
  if (cell.error) parts.push(`error: ${cell.error}`);
  return parts.join("\n\n");
}

/** One assessment of one row as a chip: pass, fail, a number, an error, not judged. */
export function VerdictChip({ cell, change }: { cell: ScoreCell | undefined; change?: Change }) {
  if (!cell || cell.verdict.kind === "missing") return <span className="muted">–</span>;
  const kind = cell.verdict.kind;
  return (
    <span
      className={`verdict ${kind}${change ? " " + change : ""}`}
      data-testid="verdict"
      data-verdict={kind}
      title={scoreTitle(cell) || undefined}
    >
      {label(cell)}
      {cell.error && kind !== "error" && kind !== "skipped" ? " ⚠" : ""}
    </span>
  );
}

/** A score in full: value, rationale and error, for an expanded row. */
export function ScoreDetail({ name, cell }: { name: string; cell: ScoreCell | undefined }) {
  return (
    <div className="score-detail" data-testid="score-detail">
      <div className="row">
        <b>{name}</b>
        <VerdictChip cell={cell} />
      </div>
      {cell?.rationale && <div className="rationale">{cell.rationale}</div>}
      {cell?.error && <div className="filter-error">{cell.error}</div>}
    </div>
  );
}
