"""What an evaluation returns and records: per-row verdicts, aggregate metrics, the table.

The contract the UI reads: an evaluation run has the tag `tracemark.run_type=evaluation`,
metrics `N/pass_rate` (booleans and yes/no), `N/mean` (numbers) and `N/error_count` per
assessment name N, `evaluation/*` and `judges/*` totals, and the per-row table artifact
`eval_results.json` with columns `row`, `row_key`, `trace_id`, `inputs`, `outputs`,
`expectations`, then `N/value`, `N/rationale`, `N/error` for each N.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tracemark.evaluation.scorers import Feedback

__all__ = ["NOT_JUDGED", "EvaluationResult", "RowResult", "aggregate", "passed"]

RESULTS_FILE = "eval_results.json"
RUN_TYPE_TAG = "tracemark.run_type"
NOT_JUDGED = "not judged: cost budget spent"

_YES = {"yes", "true", "pass", "passed"}
_NO = {"no", "false", "fail", "failed"}


@dataclass
class RowResult:
    """The outcome of one row: its data, its trace and each scorer's verdict."""

    index: int
    row_key: str
    trace_id: str | None
    inputs: Any
    outputs: Any
    expectations: dict[str, Any]
    feedback: dict[str, Feedback] = field(default_factory=dict)
    error: str | None = None  # the prediction's error, when predict_fn raised

    @property
    def judged(self) -> bool:
        """False when a judge was skipped because the cost budget was spent."""
        return not any(f.error == NOT_JUDGED for f in self.feedback.values())


@dataclass
class EvaluationResult:
    """What `tm.evaluate` returns.

    Attributes:
        run_id: The evaluation run holding the metrics and the per-row table.
        metrics: Aggregates such as `correctness/pass_rate` and `judges/cost_usd`.
        rows: One RowResult per input row, in input order.
    """

    run_id: str
    metrics: dict[str, float]
    rows: list[RowResult]

    @property
    def rows_not_judged(self) -> list[RowResult]:
        """Rows some judge skipped because the cost budget was spent."""
        return [row for row in self.rows if not row.judged]

    def table(self) -> dict[str, list[Any]]:
        """The per-row results as columns (the `eval_results.json` artifact)."""
        names = _names(self.rows)
        columns: dict[str, list[Any]] = {
            "row": [],
            "row_key": [],
            "trace_id": [],
            "inputs": [],
            "outputs": [],
            "expectations": [],
        }
        for name in names:
            for part in ("value", "rationale", "error"):
                columns[f"{name}/{part}"] = []
        for row in self.rows:
            columns["row"].append(row.index)
            columns["row_key"].append(row.row_key)
            columns["trace_id"].append(row.trace_id)
            columns["inputs"].append(row.inputs)
            columns["outputs"].append(row.outputs)
            columns["expectations"].append(row.expectations)
            for name in names:
                fb = row.feedback.get(name)
                columns[f"{name}/value"].append(None if fb is None else fb.value)
                columns[f"{name}/rationale"].append(None if fb is None else fb.rationale)
                columns[f"{name}/error"].append(None if fb is None else fb.error)
        return columns

    def to_pandas(self) -> Any:
        """The per-row results as a pandas DataFrame (one column per verdict part)."""
        import pandas as pd

        return pd.DataFrame(self.table())

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v:.3g}" for k, v in sorted(self.metrics.items()))
        return f"EvaluationResult(run_id={self.run_id!r}, rows={len(self.rows)}, {shown})"


def _names(rows: list[RowResult]) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows:
        for name in row.feedback:
            seen.setdefault(name)
    return list(seen)


def passed(value: Any) -> bool | None:
    """Read a verdict as pass/fail: booleans and yes/no strings; None for anything else."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _YES:
            return True
        if text in _NO:
            return False
    return None


def aggregate(rows: list[RowResult]) -> dict[str, float]:
    """Per assessment name: pass rate or mean over the rows that have a value; error count."""
    metrics: dict[str, float] = {}
    for name in _names(rows):
        values, errors = [], 0
        for row in rows:
            fb = row.feedback.get(name)
            if fb is None or fb.error == NOT_JUDGED:
                continue
            if fb.error is not None:
                errors += 1
            else:
                values.append(fb.value)
        metrics[f"{name}/error_count"] = float(errors)
        verdicts = [passed(v) for v in values]
        if values and all(v is not None for v in verdicts):
            metrics[f"{name}/pass_rate"] = sum(bool(v) for v in verdicts) / len(verdicts)
        elif values and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in values
        ):
            metrics[f"{name}/mean"] = sum(values) / len(values)
    return metrics
