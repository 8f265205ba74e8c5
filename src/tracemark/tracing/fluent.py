"""The module-level tracing API: methods of the default tracer and client, bound once.

There is no second implementation here: `trace is DEFAULT_TRACER.trace`, and
`get_trace(...)` calls `get_trace` of the client for the current tracking URI.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from tracemark.tracing._tracer import DEFAULT_TRACER
from tracemark.tracing.client import TracingClient

__all__ = [
    "DEFAULT_TRACER",
    "configure",
    "delete_assessment",
    "delete_trace_tag",
    "delete_traces",
    "flush",
    "get_assessment",
    "get_current_active_span",
    "get_last_active_trace_id",
    "get_trace",
    "get_trace_attachment",
    "log_expectation",
    "log_feedback",
    "override_feedback",
    "search_traces",
    "set_trace_tag",
    "start_span",
    "stats",
    "trace",
    "update_assessment",
    "update_current_trace",
]

trace = DEFAULT_TRACER.trace
start_span = DEFAULT_TRACER.start_span
get_current_active_span = DEFAULT_TRACER.get_current_active_span
get_last_active_trace_id = DEFAULT_TRACER.get_last_active_trace_id
update_current_trace = DEFAULT_TRACER.update_current_trace
flush = DEFAULT_TRACER.flush
configure = DEFAULT_TRACER.configure
stats = DEFAULT_TRACER.stats


def _on_default_client(method: Callable[..., Any]) -> Callable[..., Any]:
    """Call `method` on the client of the current tracking URI (which can change)."""
    name = method.__name__

    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        from tracemark.tracking.fluent import DEFAULT_TRACKER

        return getattr(DEFAULT_TRACKER.client, name)(*args, **kwargs)

    return call


get_trace = _on_default_client(TracingClient.get_trace)
search_traces = _on_default_client(TracingClient.search_traces)
delete_traces = _on_default_client(TracingClient.delete_traces)
set_trace_tag = _on_default_client(TracingClient.set_trace_tag)
delete_trace_tag = _on_default_client(TracingClient.delete_trace_tag)
log_feedback = _on_default_client(TracingClient.log_feedback)
log_expectation = _on_default_client(TracingClient.log_expectation)
override_feedback = _on_default_client(TracingClient.override_feedback)
get_assessment = _on_default_client(TracingClient.get_assessment)
update_assessment = _on_default_client(TracingClient.update_assessment)
delete_assessment = _on_default_client(TracingClient.delete_assessment)
get_trace_attachment = _on_default_client(TracingClient.get_trace_attachment)
