"""Turn a completed trace buffer into a `Trace` with its `TraceInfo` rollups.

Runs on the exporter thread: converting spans, masking, previews and token totals are
all work the caller never waits for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tracemark.entities.trace import Span, SpanStatusCode, Trace, TraceInfo, TraceStatus
from tracemark.tracing._mask import MASK_FAILED, Mask, mask_span

if TYPE_CHECKING:
    from tracemark.tracing._buffer import TraceBuffer

__all__ = [
    "COST",
    "INPUT_TOKENS",
    "OUTPUT_TOKENS",
    "PREVIEW_CHARS",
    "TOTAL_TOKENS",
    "build_trace",
]

PREVIEW_CHARS = 1000
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
TOTAL_TOKENS = "gen_ai.usage.total_tokens"
COST = "gen_ai.usage.cost"  # USD, set by integrations (tracemark.integrations._cost)


def build_trace(buffer: TraceBuffer, mask: Mask | None = None) -> Trace:
    """Return the finished `Trace` for a completed buffer, masked when a mask is given."""
    spans = [live.to_span() for live in buffer.spans]
    if mask is not None:
        for span in spans:
            mask_span(span, mask)
    trace = Trace(_info(buffer, spans), spans)
    if buffer.attachments:
        trace.attachments = list(buffer.attachments.values())
    if mask is not None:
        info = trace.info
        if info.request_preview is not None:
            info.request_preview = _mask_text(mask, info.request_preview)
        if info.response_preview is not None:
            info.response_preview = _mask_text(mask, info.response_preview)
    root = trace.root
    if root is not None:
        info = trace.info
        info.name = root.name
        info.timestamp_ms = root.start_time_ns // 1_000_000
        if root.end_time_ns is not None:
            info.execution_time_ms = (root.end_time_ns - root.start_time_ns) // 1_000_000
        info.status = TraceStatus.ERROR if root.status_code == SpanStatusCode.ERROR else "OK"
        if info.request_preview is None and root.inputs_json is not None:
            info.request_preview = root.inputs_json[:PREVIEW_CHARS]
        if info.response_preview is None and root.outputs_json is not None:
            info.response_preview = root.outputs_json[:PREVIEW_CHARS]
    return trace


def _info(buffer: TraceBuffer, spans: list[Span]) -> TraceInfo:
    input_tokens = output_tokens = total_tokens = 0
    has_usage = has_total = False
    cost: float | None = None
    for span in spans:
        attrs = span.attributes
        if not attrs or not (
            INPUT_TOKENS in attrs
            or OUTPUT_TOKENS in attrs
            or TOTAL_TOKENS in attrs
            or COST in attrs
        ):
            continue
        c = attrs.get(COST)
        if _is_count(c):
            cost = (cost or 0.0) + float(c)
        i, o, t = attrs.get(INPUT_TOKENS), attrs.get(OUTPUT_TOKENS), attrs.get(TOTAL_TOKENS)
        if _is_count(i):
            input_tokens += int(i)
            has_usage = True
        if _is_count(o):
            output_tokens += int(o)
            has_usage = True
        if _is_count(t):
            total_tokens += int(t)
            has_total = True
        elif _is_count(i) or _is_count(o):
            total_tokens += (int(i) if _is_count(i) else 0) + (int(o) if _is_count(o) else 0)
    usage = has_usage or has_total
    first_start = min([s.start_time_ns for s in spans], default=0)
    return TraceInfo(
        trace_id=buffer.trace_id,
        experiment_id=buffer.experiment_id,
        timestamp_ms=first_start // 1_000_000,
        execution_time_ms=None,
        status=TraceStatus.OK,
        run_id=buffer.run_id,
        request_preview=_truncate(buffer.request_preview),
        response_preview=_truncate(buffer.response_preview),
        tags=dict(buffer.tags),
        metadata=dict(buffer.metadata),
        input_tokens=input_tokens if usage else None,
        output_tokens=output_tokens if usage else None,
        total_tokens=total_tokens if usage else None,
        span_count=len(spans),
        cost=cost,
    )


def _is_count(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _truncate(text: str | None) -> str | None:
    return None if text is None else text[:PREVIEW_CHARS]


def _mask_text(mask: Mask, text: str) -> str:
    try:
        masked = mask(text)
    except Exception:
        return MASK_FAILED
    return masked if isinstance(masked, str) else str(masked)
