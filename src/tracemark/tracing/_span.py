"""The live span: what `start_span` yields and `@trace` fills in while a step runs.

A live span holds plain slots and the JSON text of its inputs and outputs; it becomes a
`tracemark.entities.trace.Span` only on the exporter thread, so the caller pays for ids,
the clock and one serialization, nothing more.
"""

from __future__ import annotations

import contextlib
import time
import traceback
from collections.abc import Mapping
from contextvars import Token
from types import TracebackType
from typing import TYPE_CHECKING, Any

import orjson

from tracemark.entities.trace import Span, SpanEvent, SpanStatusCode
from tracemark.tracing._context import CURRENT_SPAN
from tracemark.tracing._errors import handle_internal_errors, log_internal_error, logger
from tracemark.tracing._serialize import dumps_bytes, to_jsonable

if TYPE_CHECKING:
    from tracemark.tracing._buffer import TraceBuffer

__all__ = ["UNSET", "LiveSpan", "NonRecordingSpan", "exception_event_attributes"]


class _Unset:
    __slots__ = ()

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()
"""Marks an argument that was not given (None is a legitimate output)."""

_PRIMITIVES = (str, int, float, bool, type(None))
_STATUS_CODES = {
    SpanStatusCode.UNSET: SpanStatusCode.UNSET,
    SpanStatusCode.OK: SpanStatusCode.OK,
    SpanStatusCode.ERROR: SpanStatusCode.ERROR,
}
TOOL_DEFINITIONS_KEY = "gen_ai.tool.definitions"
_UNSET_CODE = SpanStatusCode.UNSET
_OK_CODE = SpanStatusCode.OK


def _status_code(code: Any) -> str:
    name = getattr(code, "name", code)  # accepts OpenTelemetry's StatusCode enum too
    try:
        return _STATUS_CODES[str(name).upper()]
    except KeyError:
        raise ValueError(f"unknown span status {code!r}; use OK, ERROR or UNSET") from None


def _qualified_name(cls: type) -> str:
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def exception_event_attributes(exc: BaseException) -> dict[str, str]:
    """Return the OpenTelemetry `exception.*` attributes describing `exc`."""
    return {
        "exception.type": _qualified_name(type(exc)),
        "exception.message": str(exc),
        "exception.stacktrace": "".join(traceback.format_exception(exc)),
    }


def _text(json: bytes | str | None) -> str | None:
    return json.decode() if json.__class__ is bytes else json  # type: ignore[union-attr,return-value]


def _reset_current(span: LiveSpan | NonRecordingSpan) -> None:
    token, span._token = span._token, None
    if token is not None:
        # Exited in another context than it was entered in (e.g. across an async
        # generator's yields): that context no longer sees this span anyway.
        with contextlib.suppress(ValueError):
            CURRENT_SPAN.reset(token)


class LiveSpan:
    """A span that is still running; set its inputs, outputs and attributes, then end it.

    Used as a context manager (`with tm.start_span("step") as span:`) it becomes the current
    span for the block and ends when the block exits, recording any exception.

    Example:
        >>> import tracemark as tm
        >>> with tm.start_span("retrieve", span_type="RETRIEVER") as span:
        ...     span.set_inputs({"query": "refund policy"})
        ...     span.set_outputs([{"page_content": "30 days", "metadata": {}}])
    """

    __slots__ = (
        "trace_id",
        "span_id",
        "parent_id",
        "name",
        "span_type",
        "start_time_ns",
        "end_time_ns",
        "status_code",
        "status_message",
        "_inputs",
        "_outputs",
        "attributes",
        "events",
        "_buffer",
        "_token",
    )

    recording = True

    def __init__(
        self,
        buffer: TraceBuffer,
        span_id: str,
        parent_id: str | None,
        name: str,
        span_type: str,
        start_time_ns: int,
        attributes: dict[str, Any],
    ) -> None:
        self.trace_id = buffer.trace_id
        self.span_id = span_id
        self.parent_id = parent_id
        self.name = name
        self.span_type = span_type
        self.start_time_ns = start_time_ns
        self.end_time_ns: int | None = None
        self.status_code = SpanStatusCode.UNSET
        self.status_message = ""
        # JSON as orjson made it (bytes), or as text when set through `inputs_json`.
        self._inputs: bytes | str | None = None
        self._outputs: bytes | str | None = None
        self.attributes = attributes
        self.events: list[SpanEvent] | None = None
        self._buffer: TraceBuffer | None = buffer
        self._token: Token[Any] | None = None

    def __repr__(self) -> str:
        return (
            f"LiveSpan(name={self.name!r}, span_type={self.span_type!r}, "
            f"trace_id={self.trace_id!r}, span_id={self.span_id!r}, parent_id={self.parent_id!r})"
        )

    # -- what user code calls -------------------------------------------------------------

    @property
    def inputs(self) -> Any:
        """The inputs set so far, decoded from their JSON form."""
        return None if self._inputs is None else orjson.loads(self._inputs)

    @property
    def outputs(self) -> Any:
        """The outputs set so far, decoded from their JSON form."""
        return None if self._outputs is None else orjson.loads(self._outputs)

    @property
    def inputs_json(self) -> str | None:
        """The inputs set so far, as JSON text."""
        return _text(self._inputs)

    @inputs_json.setter
    def inputs_json(self, text: str | bytes | None) -> None:
        self._inputs = text

    @property
    def outputs_json(self) -> str | None:
        """The outputs set so far, as JSON text."""
        return _text(self._outputs)

    @outputs_json.setter
    def outputs_json(self, text: str | bytes | None) -> None:
        self._outputs = text

    def set_inputs(self, inputs: Any) -> None:
        """Record the step's inputs (serialized to JSON now, once).

        Args:
            inputs: Any value; dicts of named arguments read best.
        """
        self._inputs = dumps_bytes(inputs)

    def set_outputs(self, outputs: Any) -> None:
        """Record the step's outputs (serialized to JSON now, once).

        Args:
            outputs: Any value; a retriever returns a list of documents
                (`page_content`, `metadata`, `id`), a chat model OpenAI-style messages.
        """
        self._outputs = dumps_bytes(outputs)

    def set_attribute(self, key: str, value: Any) -> None:
        """Set one attribute; values that are not JSON primitives are snapshotted as JSON data.

        Args:
            key: The attribute name, e.g. `gen_ai.request.model`.
            value: A JSON-representable value.
        """
        self.attributes[key] = value if value.__class__ in _PRIMITIVES else to_jsonable(value)

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        """Set several attributes at once.

        Args:
            attributes: Attribute names mapped to values.
        """
        for key, value in attributes.items():
            self.set_attribute(key, value)

    def set_chat_tools(self, tools: list[dict[str, Any]]) -> None:
        """Record the OpenAI-style tool definitions offered to a chat model.

        Args:
            tools: Tool definitions such as `{"type": "function", "function": {...}}`.
        """
        self.set_attribute(TOOL_DEFINITIONS_KEY, tools)

    def add_event(
        self,
        name: str,
        attributes: Mapping[str, Any] | None = None,
        timestamp_ns: int | None = None,
    ) -> None:
        """Add a point-in-time event to the span.

        Args:
            name: The event name.
            attributes: Event attributes.
            timestamp_ns: Event time in nanoseconds; now when omitted.
        """
        attrs = {} if attributes is None else to_jsonable(dict(attributes))
        when = self._now() if timestamp_ns is None else int(timestamp_ns)
        event = SpanEvent(name, when, attrs)
        if self.events is None:
            self.events = [event]
        else:
            self.events.append(event)

    def set_status(self, status: Any, message: str = "") -> None:
        """Set the span's status.

        Args:
            status: `"OK"`, `"ERROR"` or `"UNSET"` (or a `SpanStatusCode` value).
            message: A description, usually of the error.
        """
        self.status_code = _status_code(status)
        self.status_message = message

    def record_exception(self, exception: BaseException) -> None:
        """Record `exception` as an `exception` event and set the status to ERROR.

        Args:
            exception: The exception raised by the step.
        """
        attrs = exception_event_attributes(exception)
        self.add_event("exception", attrs)
        self.status_code = SpanStatusCode.ERROR
        self.status_message = f"{attrs['exception.type']}: {attrs['exception.message']}"

    def end(
        self, outputs: Any = UNSET, *, status: Any = None, end_time_ns: int | None = None
    ) -> None:
        """End the span; a span already ended logs a warning and stays as it was.

        Args:
            outputs: Outputs to record, if not set already.
            status: Final status; OK when omitted and no status was set.
            end_time_ns: End time in nanoseconds; now when omitted.
        """
        if self.end_time_ns is not None:
            logger.warning("tracemark: span %r (%s) was already ended", self.name, self.span_id)
            return
        if outputs is not UNSET:
            self._outputs = dumps_bytes(outputs)
        if status is not None:
            self.status_code = _status_code(status)
        elif self.status_code == SpanStatusCode.UNSET:
            self.status_code = SpanStatusCode.OK
        buffer = self._buffer
        if buffer is None:  # the trace was already exported
            self.end_time_ns = time.time_ns() if end_time_ns is None else int(end_time_ns)
            return
        self.end_time_ns = buffer.tracer.clock() if end_time_ns is None else int(end_time_ns)
        buffer.span_ended(self)

    def _now(self) -> int:
        buffer = self._buffer
        # A span whose trace was already exported has let go of its buffer.
        return time.time_ns() if buffer is None else buffer.tracer.clock()

    def __enter__(self) -> LiveSpan:
        self._token = CURRENT_SPAN.set(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _reset_current(self)
        with handle_internal_errors:
            if exc is not None and not isinstance(exc, GeneratorExit):
                self.record_exception(exc)
            if self.end_time_ns is None:
                self.end()

    # -- what the decorator and the exporter call -----------------------------------------

    def _succeed(self, result: Any) -> None:
        try:
            self._outputs = dumps_bytes(result)
            buffer = self._buffer
            if self.end_time_ns is not None or buffer is None:
                self.end()  # the rare paths: warn about a second end, or a released trace
                return
            # `end()` inlined for the common case: this runs for every traced call.
            if self.status_code == _UNSET_CODE:
                self.status_code = _OK_CODE
            self.end_time_ns = buffer.tracer.clock()
            buffer.span_ended(self)
        except Exception:
            log_internal_error()

    def _fail(self, exc: BaseException) -> None:
        try:
            if not isinstance(exc, GeneratorExit):
                self.record_exception(exc)
            self.end()
        except Exception:
            log_internal_error()

    def _end_stream(self, outputs_json: bytes, exc: BaseException | None) -> None:
        try:
            self._outputs = outputs_json
            if exc is not None and not isinstance(exc, GeneratorExit):
                self.record_exception(exc)
            self.end()
        except Exception:
            log_internal_error()

    def to_span(self) -> Span:
        """Return the finished-span entity (called on the exporter thread)."""
        attributes, events = self.attributes, self.events
        inputs, outputs = self._inputs, self._outputs
        if inputs.__class__ is bytes:
            inputs = inputs.decode()  # type: ignore[union-attr]
        if outputs.__class__ is bytes:
            outputs = outputs.decode()  # type: ignore[union-attr]
        # Positional, in Span's field order: the exporter calls this for every span.
        return Span(
            self.trace_id,
            self.span_id,
            self.parent_id,
            self.name,
            self.span_type,
            self.start_time_ns,
            self.end_time_ns,
            self.status_code,
            self.status_message,
            inputs,  # type: ignore[arg-type]
            outputs,  # type: ignore[arg-type]
            dict(attributes) if attributes else {},
            list(events) if events else [],
        )


class NonRecordingSpan:
    """Stands in for a span that is not recorded (sampled out); every method does nothing.

    It still becomes the current span, so the steps under it are skipped too.
    """

    __slots__ = ("_token",)

    recording = False
    trace_id = None
    span_id = None
    parent_id = None
    name = ""
    span_type = ""
    attributes: Mapping[str, Any] = {}
    inputs = None
    outputs = None

    def __init__(self) -> None:
        self._token: Token[Any] | None = None

    def __repr__(self) -> str:
        return "NonRecordingSpan()"

    def set_inputs(self, inputs: Any) -> None:
        """Do nothing."""

    def set_outputs(self, outputs: Any) -> None:
        """Do nothing."""

    def set_attribute(self, key: str, value: Any) -> None:
        """Do nothing."""

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        """Do nothing."""

    def set_chat_tools(self, tools: list[dict[str, Any]]) -> None:
        """Do nothing."""

    def add_event(
        self,
        name: str,
        attributes: Mapping[str, Any] | None = None,
        timestamp_ns: int | None = None,
    ) -> None:
        """Do nothing."""

    def set_status(self, status: Any, message: str = "") -> None:
        """Do nothing."""

    def record_exception(self, exception: BaseException) -> None:
        """Do nothing."""

    def end(
        self, outputs: Any = UNSET, *, status: Any = None, end_time_ns: int | None = None
    ) -> None:
        """Do nothing."""

    def __enter__(self) -> NonRecordingSpan:
        self._token = CURRENT_SPAN.set(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _reset_current(self)

    def _succeed(self, result: Any) -> None:
        pass

    def _fail(self, exc: BaseException) -> None:
        pass

    def _end_stream(self, outputs_json: bytes, exc: BaseException | None) -> None:
        pass
