"""What `evaluate(data=...)` accepts, turned into one list of rows.

Rows come from a list of dicts, a pandas DataFrame, a dataset (anything with
`to_eval_rows()`), or traces (`Trace`, `TraceInfo`, trace ids, or what `search_traces`
returns, list or DataFrame). A row from a trace keeps its trace, so verdicts land on it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from tracemark.entities.trace import Trace, TraceInfo
from tracemark.exceptions import InvalidInputError

__all__ = ["EvalRow", "row_key", "to_rows"]

_ROW_KEYS = ("inputs", "outputs", "expectations", "tags", "trace", "trace_id", "source_trace_id")


@dataclass
class EvalRow:
    """One row to evaluate."""

    index: int
    inputs: Any
    outputs: Any = None
    expectations: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    trace_id: str | None = None  # set for rows that come with a trace
    has_outputs: bool = False
    trace: Trace | None = None

    @property
    def key(self) -> str:
        """A digest of the inputs: the same row in two evaluations has the same key."""
        return row_key(self.inputs)


def row_key(inputs: Any) -> str:
    """Return a stable digest of a row's inputs (sorted-key JSON, sha256, 16 hex chars)."""
    try:
        raw = orjson.dumps(inputs, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    except TypeError:
        raw = repr(inputs).encode()
    return hashlib.sha256(raw).hexdigest()[:16]


def to_rows(data: Any) -> list[EvalRow]:
    """Normalize `data` into rows; raise InvalidInputError naming what is wrong."""
    if data is None:
        raise InvalidInputError(
            "evaluate needs data: a list of rows, a DataFrame, a dataset or traces", field="data"
        )
    if hasattr(data, "to_eval_rows"):
        data = data.to_eval_rows()
    elif _is_dataframe(data):
        data = _frame_records(data)
    elif isinstance(data, (str, bytes, Mapping)):
        raise InvalidInputError(
            "data must be a list of rows, a DataFrame, a dataset or traces, "
            f"not a {type(data).__name__}",
            field="data",
        )
    items = list(data)
    if not items:
        raise InvalidInputError("data is empty: there is nothing to evaluate", field="data")
    rows = [_row(i, item) for i, item in enumerate(items)]
    _fetch_traces(rows)
    return rows


def _row(index: int, item: Any) -> EvalRow:
    if isinstance(item, Trace):
        return _trace_row(index, item)
    if isinstance(item, TraceInfo):
        return EvalRow(index, inputs=None, trace_id=item.trace_id)
    if isinstance(item, str):
        return EvalRow(index, inputs=None, trace_id=item)
    if not isinstance(item, Mapping):
        raise InvalidInputError(
            f"row {index} is a {type(item).__name__}; a row is a dict with 'inputs' "
            "(and optional 'outputs', 'expectations'), a Trace or a trace id",
            field="data",
        )
    trace = item.get("trace")
    if isinstance(trace, Trace):
        row = _trace_row(index, trace)
        if "expectations" in item and item["expectations"] is not None:
            row.expectations = _expectations(index, item["expectations"])
        return row
    if "inputs" not in item:
        if item.get("trace_id") and not item.get("inputs"):
            return EvalRow(index, inputs=None, trace_id=str(item["trace_id"]))
        unknown = sorted(set(map(str, item)) - set(_ROW_KEYS))
        hint = f" (it has {', '.join(unknown)})" if unknown else ""
        raise InvalidInputError(f"row {index} has no 'inputs'{hint}", field="data")
    inputs = item["inputs"]
    if not isinstance(inputs, Mapping):
        raise InvalidInputError(
            f"row {index}: 'inputs' must be a dict of argument names to values, "
            f"not a {type(inputs).__name__}",
            field="data",
        )
    tags = item.get("tags") or {}
    if not isinstance(tags, Mapping):
        raise InvalidInputError(f"row {index}: 'tags' must be a dict", field="data")
    return EvalRow(
        index,
        inputs=dict(inputs),
        outputs=item.get("outputs"),
        expectations=_expectations(index, item.get("expectations")),
        tags={str(k): str(v) for k, v in tags.items()},
        trace_id=item.get("trace_id") if isinstance(item.get("trace_id"), str) else None,
        has_outputs="outputs" in item and item["outputs"] is not None,
    )


def _expectations(index: int, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidInputError(
            f"row {index}: 'expectations' must be a dict of names to expected values, "
            f"not a {type(value).__name__}",
            field="data",
        )
    return dict(value)


def _trace_row(index: int, trace: Trace) -> EvalRow:
    root = trace.root
    return EvalRow(
        index,
        inputs=root.inputs if root is not None else None,
        outputs=root.outputs if root is not None else None,
        expectations=trace.expectations,
        trace_id=trace.trace_id,
        has_outputs=True,
        trace=trace,
    )


def _fetch_traces(rows: list[EvalRow]) -> None:
    """Load the traces of rows given by id (TraceInfo or trace id)."""
    missing = [row for row in rows if row.trace_id and row.trace is None and row.inputs is None]
    if not missing:
        return
    from tracemark.tracing.fluent import get_trace

    for row in missing:
        trace = get_trace(row.trace_id)
        filled = _trace_row(row.index, trace)
        row.inputs, row.outputs, row.trace = filled.inputs, filled.outputs, trace
        row.expectations = filled.expectations
        row.has_outputs = True


def _is_dataframe(data: Any) -> bool:
    return type(data).__name__ == "DataFrame" and hasattr(data, "to_dict")


def _frame_records(frame: Any) -> list[Any]:
    columns = set(map(str, frame.columns))
    if "trace_id" in columns and "inputs" not in columns:
        return [str(t) for t in frame["trace_id"]]  # a search_traces(return_type="pandas") page
    records = frame.to_dict(orient="records")
    return [{k: _plain(v) for k, v in r.items()} for r in records]


def _plain(value: Any) -> Any:
    # pandas gives NaN for missing cells; a missing cell is "not given".
    if isinstance(value, float) and value != value:
        return None
    return value
