"""Turn a scorer's Feedback into assessments a store accepts, whatever the scorer returned.

A value the store would refuse (not JSON, NaN, a span that is not in the trace) becomes an
assessment with an error instead, so one odd verdict never blocks a worker's commit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import orjson

from tracemark.entities.trace import Assessment, AssessmentSource, Trace
from tracemark.evaluation.scorers import Feedback

__all__ = ["SCORER_METADATA_KEY", "to_assessments"]

SCORER_METADATA_KEY = "tracemark.scorer"
"""Metadata key naming the registered scorer that wrote an assessment."""

_MAX_NAME = 250
_MAX_TEXT = 100_000


def to_assessments(
    feedback: Sequence[Feedback], trace: Trace, scorer_name: str, source_type: str
) -> list[Assessment]:
    """Return one feedback assessment per Feedback, sourced from the registered scorer.

    Example:
        >>> to_assessments([Feedback(value=True)], trace, "is_concise", "CODE")[0].name
        'is_concise'

    Args:
        feedback: What `Scorer.run` returned.
        trace: The trace judged.
        scorer_name: The registered name: the source id, and the name of unnamed feedback.
        source_type: `CODE` or `LLM_JUDGE` (the scorer's `source_type`).
    """
    if source_type not in AssessmentSource.TYPES:
        source_type = AssessmentSource.CODE
    span_ids = {s.span_id for s in trace.spans}
    out = []
    for fb in feedback:
        name = fb.name if isinstance(fb.name, str) and fb.name.strip() else scorer_name
        value, error = fb.value, _text(fb.error)
        problem = _value_problem(value)
        if problem is not None:
            value, error = None, problem
        span_id = fb.span_id
        if span_id is not None and span_id not in span_ids:
            value, span_id = None, None
            error = f"the scorer named span {fb.span_id!r}, which is not in this trace"
        if value is None and error is None:
            error = "the scorer returned no value"
        metadata = {str(k): str(v) for k, v in (fb.metadata or {}).items()}
        metadata[SCORER_METADATA_KEY] = scorer_name
        out.append(
            Assessment(
                assessment_id="",
                trace_id=trace.trace_id,
                name=name[:_MAX_NAME],
                kind=Assessment.FEEDBACK,
                value=value,
                source=AssessmentSource(source_type, scorer_name),
                created_time_ms=0,
                last_updated_time_ms=0,
                span_id=span_id,
                rationale=_text(fb.rationale),
                error=error,
                metadata=metadata,
            )
        )
    return out


def _text(value: Any) -> str | None:
    return None if value is None else str(value)[:_MAX_TEXT]


def _value_problem(value: Any) -> str | None:
    if value is None:
        return None
    try:
        orjson.dumps(value)
    except (orjson.JSONEncodeError, TypeError) as exc:
        return f"the scorer returned a value that is not JSON data: {exc}"
    if not _finite(value, 0):
        return "the scorer returned NaN or an infinite number, which JSON cannot hold"
    return None


def _finite(value: Any, depth: int) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if depth > 100:
        return True
    if isinstance(value, dict):
        return all(_finite(v, depth + 1) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(_finite(v, depth + 1) for v in value)
    return True
