"""OpenTelemetry interoperability; opentelemetry is imported only when these are used.

- Joining: a tracemark root span started while an OpenTelemetry span is recording joins its
  trace (same trace id, parent = that span), see `current_otel_parent`.
- Capturing: `TracemarkSpanProcessor` records spans from any OpenTelemetry instrumentation
  into tracemark traces, mapping GenAI / OpenInference attributes (`map_otel_attributes`).
- Exporting: `OtlpExporter` sends tracemark traces to an OTLP/HTTP endpoint; it is added
  to the default exporters when `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from tracemark.entities.trace import Span, SpanStatusCode, SpanType, Trace
from tracemark.exceptions import TracemarkError
from tracemark.tracing._context import CURRENT_SPAN
from tracemark.tracing._errors import handle_internal_errors
from tracemark.tracing._semconv import SPAN_TYPE_KEY, MappedAttributes, map_otel_attributes
from tracemark.tracing._serialize import dumps, to_jsonable
from tracemark.tracing._span import LiveSpan

if TYPE_CHECKING:
    from tracemark.tracing._buffer import TraceBuffer
    from tracemark.tracing._tracer import Tracer

__all__ = [
    "MappedAttributes",
    "OtlpExporter",
    "TracemarkSpanProcessor",
    "current_otel_parent",
    "map_otel_attributes",
    "to_readable_spans",
]

_STATUS_NAMES = {0: SpanStatusCode.UNSET, 1: SpanStatusCode.OK, 2: SpanStatusCode.ERROR}


@functools.cache
def _otel_current_span() -> tuple[Callable[[], Any], Any]:
    """Return OpenTelemetry's `get_current_span` and the span it returns when there is none."""
    from opentelemetry import trace as otel_trace

    return otel_trace.get_current_span, otel_trace.INVALID_SPAN


def current_otel_parent() -> tuple[str, str] | None:
    """Return `(trace_id, span_id)` in hex of the recording OpenTelemetry span, if any."""
    # Called for every root span once OpenTelemetry is loaded: no import statement here.
    get_current_span, no_span = _otel_current_span()
    span = get_current_span()
    if span is no_span:
        return None
    context = span.get_span_context()
    if not context.is_valid or not span.is_recording():
        return None
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


def _default_tracer() -> Tracer:
    from tracemark.tracing._tracer import DEFAULT_TRACER

    return DEFAULT_TRACER


class TracemarkSpanProcessor:
    """An OpenTelemetry span processor that records every span into tracemark.

    Spans are grouped by trace into tracemark traces, exported through the tracer's
    pipeline when their last span ends. An OpenTelemetry root span started inside a
    tracemark span is recorded under that span, in its trace.

    Example:
        >>> from opentelemetry.sdk.trace import TracerProvider
        >>> provider = TracerProvider()
        >>> provider.add_span_processor(TracemarkSpanProcessor())

    Args:
        tracer: The tracemark tracer to record into; the default one when omitted.
    """

    def __init__(self, tracer: Tracer | None = None) -> None:
        self._tracer = tracer
        self._lock = threading.Lock()
        self._spans: dict[int, LiveSpan] = {}
        self._traces: dict[int, TraceBuffer] = {}

    @property
    def tracer(self) -> Tracer:
        """The tracemark tracer spans are recorded into."""
        if self._tracer is None:
            self._tracer = _default_tracer()
        return self._tracer

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        """Start recording an OpenTelemetry span (called by the SDK)."""
        with handle_internal_errors:
            tracer = self.tracer
            if not tracer.enabled:
                return
            context = span.get_span_context()
            parent = span.parent
            parent_id: str | None = None
            with self._lock:
                buffer = self._traces.get(context.trace_id)
            if parent is not None and parent.is_valid:
                parent_id = f"{parent.span_id:016x}"
            elif buffer is None:
                current = CURRENT_SPAN.get()
                if current is not None and current.recording:
                    buffer = current._buffer  # type: ignore[union-attr]
                    parent_id = current.span_id
            trace_id = f"{context.trace_id:032x}"
            if buffer is None or buffer.done:
                buffer = tracer.inflight.get(trace_id)
                if buffer is None or buffer.done:
                    buffer = tracer.new_buffer(trace_id)
            live = LiveSpan(
                buffer,
                f"{context.span_id:016x}",
                parent_id,
                span.name,
                SpanType.UNKNOWN,
                span.start_time or tracer.clock(),
                {},
            )
            if not buffer.add(live):
                return
            with self._lock:
                self._spans[context.span_id] = live
                self._traces.setdefault(context.trace_id, buffer)

    def _on_ending(self, span: Any) -> None:
        """Do nothing; the SDK calls this just before `on_end`."""

    def on_end(self, span: Any) -> None:
        """Finish recording an OpenTelemetry span (called by the SDK)."""
        with handle_internal_errors:
            context = span.get_span_context()
            with self._lock:
                live = self._spans.pop(context.span_id, None)
            if live is None:
                return
            mapped = map_otel_attributes(span.attributes or {})
            live.name = span.name
            live.span_type = mapped.span_type or SpanType.UNKNOWN
            if mapped.has_inputs:
                live.inputs_json = dumps(mapped.inputs)
            if mapped.has_outputs:
                live.outputs_json = dumps(mapped.outputs)
            live.attributes = to_jsonable(mapped.attributes)
            buffer = live._buffer
            if mapped.metadata:
                with buffer.lock:
                    buffer.metadata.update(mapped.metadata)
            for event in span.events:
                live.add_event(event.name, dict(event.attributes or {}), event.timestamp)
            status = span.status
            live.status_message = status.description or ""
            live.end(
                status=_STATUS_NAMES.get(status.status_code.value, SpanStatusCode.UNSET),
                end_time_ns=span.end_time,
            )
            parent = span.parent
            if parent is None or not parent.is_valid or parent.is_remote or buffer.done:
                # The local root of this OpenTelemetry trace ended: stop routing its id.
                with self._lock:
                    if self._traces.get(context.trace_id) is buffer:
                        del self._traces[context.trace_id]

    def shutdown(self) -> None:
        """Export what has been recorded."""
        self.tracer.flush()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Export what has been recorded, waiting `timeout_millis` at most."""
        return self.tracer.flush(timeout_millis / 1000)


def _otel_value(value: Any) -> Any:
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (list, tuple)) and value:
        kinds = {type(v) for v in value}
        if len(kinds) == 1 and kinds.pop() in (str, bool, int, float):
            return list(value)
    return dumps(value)


def _attributes_for_otel(span: Span, trace: Trace, is_root: bool) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for key, value in span.attributes.items():
        converted = _otel_value(value)
        if converted is not None:
            attrs[key] = converted
    attrs[SPAN_TYPE_KEY] = span.span_type
    if span.inputs_json is not None:
        attrs["input.value"] = span.inputs_json
        attrs["input.mime_type"] = "application/json"
    if span.outputs_json is not None:
        attrs["output.value"] = span.outputs_json
        attrs["output.mime_type"] = "application/json"
    if is_root:
        info = trace.info
        for key, value in info.tags.items():
            attrs[f"tracemark.trace.tag.{key}"] = value
        for key, value in info.metadata.items():
            attrs[f"tracemark.trace.metadata.{key}"] = value
        if "session_id" in info.metadata:
            attrs["session.id"] = info.metadata["session_id"]
        if "user_id" in info.metadata:
            attrs["user.id"] = info.metadata["user_id"]
    return attrs


def to_readable_spans(traces: Sequence[Trace], resource: Any = None) -> list[Any]:
    """Convert tracemark traces into OpenTelemetry SDK `ReadableSpan`s.

    Args:
        traces: Finished traces.
        resource: The OpenTelemetry `Resource` to attach; built from the environment
            (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`) when omitted.
    """
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

    from tracemark._version import __version__

    if resource is None:
        resource = Resource.create(
            {"service.name": os.environ.get("OTEL_SERVICE_NAME", "tracemark")}
        )
    scope = InstrumentationScope("tracemark", __version__)
    flags = TraceFlags(TraceFlags.SAMPLED)
    codes = {"OK": StatusCode.OK, "ERROR": StatusCode.ERROR, "UNSET": StatusCode.UNSET}
    out = []
    for trace in traces:
        root = trace.root
        trace_int = int(trace.trace_id, 16)
        for span in trace.spans:
            parent = None
            if span.parent_id is not None:
                parent = SpanContext(trace_int, int(span.parent_id, 16), False, flags)
            code = codes.get(span.status_code, StatusCode.UNSET)
            out.append(
                ReadableSpan(
                    name=span.name,
                    context=SpanContext(trace_int, int(span.span_id, 16), False, flags),
                    parent=parent,
                    resource=resource,
                    attributes=_attributes_for_otel(span, trace, span is root),
                    events=[
                        Event(
                            e.name,
                            {k: _otel_value(v) for k, v in e.attributes.items()},
                            e.timestamp_ns,
                        )
                        for e in span.events
                    ],
                    kind=SpanKind.INTERNAL,
                    status=Status(code, span.status_message or None)
                    if code == StatusCode.ERROR
                    else Status(code),
                    start_time=span.start_time_ns,
                    end_time=span.end_time_ns,
                    instrumentation_scope=scope,
                )
            )
    return out


class OtlpExporter:
    """Sends tracemark traces to an OTLP/HTTP endpoint (protobuf), one request per batch.

    Example:
        >>> import tracemark as tm
        >>> tm.tracing.configure(exporters=[OtlpExporter("http://127.0.0.1:4318/v1/traces")])

    Args:
        endpoint: The full traces URL; `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` when omitted.
        headers: Extra HTTP headers (e.g. authorization); `OTEL_EXPORTER_OTLP_TRACES_HEADERS`
            when omitted.
        timeout: Seconds per request.
    """

    def __init__(
        self,
        endpoint: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        self._exporter = OTLPSpanExporter(endpoint=endpoint, headers=headers, timeout=timeout)
        self._resource: Any = None

    def export(self, traces: Sequence[Trace]) -> None:
        """Send one batch; raise `TracemarkError` when the endpoint refuses it."""
        from opentelemetry.sdk.trace.export import SpanExportResult

        if self._resource is None:
            from opentelemetry.sdk.resources import Resource

            name = os.environ.get("OTEL_SERVICE_NAME", "tracemark")
            self._resource = Resource.create({"service.name": name})
        result = self._exporter.export(to_readable_spans(traces, self._resource))
        if result is not SpanExportResult.SUCCESS:
            raise TracemarkError(f"OTLP export of {len(traces)} traces failed")

    def shutdown(self) -> None:
        """Release the HTTP session."""
        self._exporter.shutdown()
