"""The tracing SDK: spans, `@trace`, context propagation, sampling, masking and export.

`tm.tracing` holds what most users only touch for tuning: `configure`, `flush`, `stats`,
`wrap_context`, `TracedThreadPoolExecutor`, `suppress` and the built-in `redact_secrets`
mask. The everyday names (`trace`, `start_span`, ...) are re-exported from `tracemark`.
"""

from tracemark.tracing._context import TracedThreadPoolExecutor, suppress, wrap_context
from tracemark.tracing._export import ExportStats, StoreExporter, TraceExporter
from tracemark.tracing._mask import redact_secrets
from tracemark.tracing._span import LiveSpan, NonRecordingSpan
from tracemark.tracing._tracer import DEFAULT_TRACER, Tracer
from tracemark.tracing.fluent import (
    configure,
    flush,
    get_current_active_span,
    get_last_active_trace_id,
    start_span,
    stats,
    trace,
    update_current_trace,
)

__all__ = [
    "DEFAULT_TRACER",
    "ExportStats",
    "LiveSpan",
    "NonRecordingSpan",
    "StoreExporter",
    "TraceExporter",
    "TracedThreadPoolExecutor",
    "Tracer",
    "configure",
    "flush",
    "get_current_active_span",
    "get_last_active_trace_id",
    "redact_secrets",
    "start_span",
    "stats",
    "suppress",
    "trace",
    "update_current_trace",
    "wrap_context",
]
