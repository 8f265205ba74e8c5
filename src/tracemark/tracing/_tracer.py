"""The Tracer: the one object holding tracing state, and the methods the fluent API binds.

`DEFAULT_TRACER` backs `tm.trace`, `tm.start_span` and friends; tests build their own
`Tracer` (or reconfigure this one through `tracemark.testing.capture_traces`).
"""

from __future__ import annotations

import atexit
import sys
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar, overload

from tracemark import config
from tracemark.entities.trace import SpanType
from tracemark.exceptions import InvalidInputError, TracemarkError
from tracemark.tracing._buffer import TraceBuffer
from tracemark.tracing._context import CURRENT_SPAN
from tracemark.tracing._decorator import trace_function
from tracemark.tracing._errors import handle_internal_errors, log_internal_error, logger
from tracemark.tracing._export import ExportPipeline, ExportStats, TraceExporter, default_exporters
from tracemark.tracing._ids import Clock, IdGenerator, RandomIdGenerator, system_clock
from tracemark.tracing._mask import Mask
from tracemark.tracing._sampling import should_sample
from tracemark.tracing._serialize import dumps_bytes, to_jsonable
from tracemark.tracing._span import UNSET, LiveSpan, NonRecordingSpan

if TYPE_CHECKING:
    from tracemark.tracing._decorator import Binder

__all__ = ["DEFAULT_TRACER", "ExperimentResolver", "Tracer"]

F = TypeVar("F", bound=Callable[..., Any])
ExperimentResolver = Callable[[], "tuple[str, str | None]"]
"""Returns `(experiment_id, run_id or None)` for a trace starting now."""

EXIT_FLUSH_TIMEOUT_S = 30.0
_LOOKUP_RETRY_S = 30.0
SESSION_KEY = "session_id"
USER_KEY = "user_id"
MODEL_ID_KEY = "tracemark.model_id"

ACTIVE_MODEL_ID: ContextVar[str | None] = ContextVar("tracemark_active_model_id", default=None)
"""The model (application version) new traces of this context link to; None: the tracer's."""


class TrackerExperiment:
    """Resolves a new trace's experiment from the tracking API: the active run's, else current.

    The tracking module is imported on first use, so tracing never pulls it in at import.
    """

    __slots__ = ("_retry_after", "_tracker")

    def __init__(self) -> None:
        self._tracker: Any = None
        self._retry_after = 0.0

    def __call__(self) -> tuple[str, str | None]:
        """Return `(experiment_id, run_id)` for a trace starting now."""
        tracker = self._tracker
        if tracker is None:
            try:
                from tracemark.tracking.fluent import DEFAULT_TRACKER
            except ImportError:
                return "0", None
            tracker = self._tracker = DEFAULT_TRACKER
        run = tracker.active_run()
        if run is not None:
            return str(run.experiment_id), run.run_id
        if time.monotonic() < self._retry_after:
            return "0", None
        try:
            return str(tracker.current_experiment_id()), None
        except TracemarkError as exc:
            # The store cannot name the experiment now (a server down, say): the trace goes
            # to the default experiment, and the lookup waits before trying again, so the
            # application is never held up trace after trace.
            self._retry_after = time.monotonic() + _LOOKUP_RETRY_S
            logger.warning("tracemark: cannot resolve the experiment (%s); using '0'", exc)
            return "0", None


def _setting(setting: config.Setting[Any], explicit: Any) -> Any:
    try:
        return setting.get(explicit)
    except InvalidInputError as exc:
        logger.warning("tracemark: %s; using the default %r", exc.message, setting.default)
        return setting.default


class Tracer:
    """Creates spans, tracks in-flight traces and owns the export pipeline.

    Every argument defaults to its setting (argument, then environment, then default).

    Args:
        enabled: False turns tracing off; decorated functions are called straight through.
        sampling_ratio: Fraction of traces recorded, decided at the root span.
        queue_size: Finished traces waiting for export at most.
        batch_size: Traces per export call at most.
        retry_timeout: Seconds a batch is retried while the store is unavailable.
        async_export: False exports each trace before its root span returns.
        mask: A function applied to inputs, outputs and attributes before export.
        exporters: Where traces go; default: the tracking store (+ OTLP when configured).
        id_generator: Makes trace and span ids.
        clock: Returns the time in nanoseconds.
        experiment_resolver: Returns `(experiment_id, run_id)` for a new trace.
    """

    def __init__(
        self,
        *,
        enabled: bool | None = None,
        sampling_ratio: float | None = None,
        queue_size: int | None = None,
        batch_size: int | None = None,
        retry_timeout: float | None = None,
        async_export: bool | None = None,
        mask: Mask | None = None,
        exporters: list[TraceExporter] | None = None,
        id_generator: IdGenerator | None = None,
        clock: Clock | None = None,
        experiment_resolver: ExperimentResolver | None = None,
    ) -> None:
        self.enabled: bool = _setting(config.TRACING_ENABLED, enabled)
        self.sampling_ratio: float = _setting(config.TRACE_SAMPLING_RATIO, sampling_ratio)
        self.ids: IdGenerator = id_generator or RandomIdGenerator()
        self.clock: Clock = clock or system_clock
        self.experiment_resolver: ExperimentResolver = experiment_resolver or TrackerExperiment()
        self.last_trace_id: str | None = None
        # Where ACTIVE_MODEL_ID is unset (a fresh thread): the process-wide active model.
        self.active_model_id: str | None = None
        self.inflight: dict[str, TraceBuffer] = {}
        self._exporters = exporters
        self._atexit_registered = False
        self.pipeline = ExportPipeline(
            self._make_exporters,
            queue_size=_setting(config.TRACE_QUEUE_SIZE, queue_size),
            batch_size=_setting(config.TRACE_BATCH_SIZE, batch_size),
            retry_timeout=_setting(config.TRACE_EXPORT_RETRY_S, retry_timeout),
            async_export=_setting(config.ASYNC_EXPORT, async_export),
            mask=mask,
        )

    def _make_exporters(self) -> list[TraceExporter]:
        return default_exporters() if self._exporters is None else list(self._exporters)

    # -- configuration --------------------------------------------------------------------

    def configure(
        self,
        *,
        enabled: bool | None = None,
        sampling_ratio: float | None = None,
        queue_size: int | None = None,
        batch_size: int | None = None,
        retry_timeout: float | None = None,
        async_export: bool | None = None,
        mask: Mask | None = UNSET,
        exporters: list[TraceExporter] | None = UNSET,
        id_generator: IdGenerator | None = None,
        clock: Clock | None = None,
        experiment_resolver: ExperimentResolver | None = None,
    ) -> None:
        """Change tracing settings; arguments left out keep their current value.

        Example:
            >>> import tracemark as tm
            >>> tm.tracing.configure(sampling_ratio=1.0, mask=tm.tracing.redact_secrets)

        Args:
            enabled: False turns tracing off entirely.
            sampling_ratio: Fraction of traces recorded, between 0 and 1.
            queue_size: Finished traces waiting for export at most.
            batch_size: Traces per export call at most.
            retry_timeout: Seconds the exporter keeps retrying a batch while the store is
                unreachable or answers 429/5xx; new traces wait in the queue meanwhile.
            async_export: False exports each trace before its root span returns.
            mask: Applied to inputs, outputs and attributes before export
                (`redact_secrets` is built in); None removes the mask.
            exporters: Replace where traces go; None restores the default (the tracking
                store, plus OTLP when `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set).
            id_generator: Makes trace and span ids (see `tracemark.testing`).
            clock: Returns the time in integer nanoseconds (see `tracemark.testing`).
            experiment_resolver: Returns `(experiment_id, run_id)` for a new trace.
        """
        if sampling_ratio is not None and not 0.0 <= sampling_ratio <= 1.0:
            raise InvalidInputError(
                f"sampling_ratio must be between 0 and 1, got {sampling_ratio!r}",
                field="sampling_ratio",
            )
        for name, value in (
            ("queue_size", queue_size),
            ("batch_size", batch_size),
            ("retry_timeout", retry_timeout),
        ):
            if value is not None and not value > 0:
                raise InvalidInputError(f"{name} must be positive, got {value!r}", field=name)
        pipeline = self.pipeline
        if exporters is not UNSET or async_export is not None or mask is not UNSET:
            pipeline.flush()  # what was queued goes out under the settings it was made with
        if enabled is not None:
            self.enabled = enabled
        if sampling_ratio is not None:
            self.sampling_ratio = sampling_ratio
        if queue_size is not None:
            pipeline.queue_size = queue_size
        if batch_size is not None:
            pipeline.batch_size = batch_size
        if retry_timeout is not None:
            pipeline.retry_timeout = retry_timeout
        if async_export is not None:
            pipeline.async_export = async_export
        if mask is not UNSET:
            pipeline.mask = mask
        if exporters is not UNSET:
            self._exporters = None if exporters is None else list(exporters)
            pipeline._exporters = None
        if id_generator is not None:
            self.ids = id_generator
        if clock is not None:
            self.clock = clock
        if experiment_resolver is not None:
            self.experiment_resolver = experiment_resolver

    def _config_snapshot(self) -> dict[str, Any]:
        pipeline = self.pipeline
        return {
            "enabled": self.enabled,
            "sampling_ratio": self.sampling_ratio,
            "queue_size": pipeline.queue_size,
            "batch_size": pipeline.batch_size,
            "retry_timeout": pipeline.retry_timeout,
            "async_export": pipeline.async_export,
            "mask": pipeline.mask,
            "exporters": self._exporters,
            "id_generator": self.ids,
            "clock": self.clock,
            "experiment_resolver": self.experiment_resolver,
        }

    # -- creating spans -------------------------------------------------------------------

    @overload
    def trace(self, func: F, /) -> F: ...

    @overload
    def trace(
        self,
        func: None = None,
        /,
        *,
        name: str | None = None,
        span_type: str = SpanType.UNKNOWN,
        attributes: Mapping[str, Any] | None = None,
        sample_ratio: float | None = None,
        output_reducer: Callable[[list[Any]], Any] | None = None,
    ) -> Callable[[F], F]: ...

    def trace(
        self,
        func: Any = None,
        /,
        *,
        name: str | None = None,
        span_type: str = SpanType.UNKNOWN,
        attributes: Mapping[str, Any] | None = None,
        sample_ratio: float | None = None,
        output_reducer: Callable[[list[Any]], Any] | None = None,
    ) -> Any:
        """Trace every call of a function, method, coroutine, generator or async generator.

        Inputs are the bound arguments by parameter name (without `self`/`cls`), outputs
        the return value; a generator's span lasts until it is exhausted or closed and its
        outputs are the yielded items (or `output_reducer(items)`). An exception is recorded
        on the span, which gets status ERROR, and propagates unchanged.

        Example:
            >>> import tracemark as tm
            >>> @tm.trace(span_type="TOOL")
            ... def lookup(order_id: str) -> dict:
            ...     return {"order_id": order_id, "status": "shipped"}

        Args:
            func: The function, when used as `@trace` without parentheses.
            name: Span name; the function's name by default.
            span_type: One of `SpanType` (`"TOOL"`, `"LLM"`, ...).
            attributes: Attributes set on every span of this function.
            sample_ratio: Overrides the global sampling ratio when this call is a root.
            output_reducer: For generators: turns the list of yielded items into the outputs.
        """
        if sample_ratio is not None and not 0.0 <= sample_ratio <= 1.0:
            raise InvalidInputError(
                f"sample_ratio must be between 0 and 1, got {sample_ratio!r}", field="sample_ratio"
            )
        safe_attributes = to_jsonable(dict(attributes)) if attributes else None

        def decorate(fn: F) -> F:
            return trace_function(
                self,
                fn,
                name=name,
                span_type=span_type,
                attributes=safe_attributes,
                sample_ratio=sample_ratio,
                output_reducer=output_reducer,
            )

        return decorate if func is None else decorate(func)

    def start_span(
        self,
        name: str,
        /,
        *,
        span_type: str = SpanType.UNKNOWN,
        inputs: Any = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> LiveSpan | NonRecordingSpan:
        """Start a span under the current one; use it as a context manager.

        Example:
            >>> import tracemark as tm
            >>> with tm.start_span("retrieve", span_type="RETRIEVER") as span:
            ...     span.set_inputs({"query": "refunds"})
            ...     span.set_outputs([{"page_content": "30 days", "metadata": {}}])

        Args:
            name: The span name.
            span_type: One of `SpanType`.
            inputs: The step's inputs, if known up front.
            attributes: Initial attributes.
        """
        if not self.enabled:
            return NonRecordingSpan()
        with handle_internal_errors:
            span = self._start(name, span_type, _attributes(attributes), None)
            if inputs is not None:
                span.set_inputs(inputs)
            return span
        return NonRecordingSpan()

    def start_call(
        self,
        name: str,
        span_type: str,
        attributes: dict[str, Any] | None,
        sample_ratio: float | None,
        binder: Binder,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> LiveSpan | NonRecordingSpan:
        """Start the span of one decorated call (used by `@trace`)."""
        # `_start` inlined: this runs for every traced call.
        try:
            attrs = attributes.copy() if attributes else {}
            parent = CURRENT_SPAN.get()
            if parent is None:
                span = self.start_root(name, span_type, attrs, sample_ratio=sample_ratio)
                if not span.recording:
                    return span
            elif not parent.recording:
                return NonRecordingSpan()
            else:
                buffer: TraceBuffer | None = parent._buffer  # type: ignore[union-attr]
                if buffer is None:  # the parent's trace was already exported
                    return self._late(name, parent.trace_id)  # type: ignore[arg-type]
                span = LiveSpan(
                    buffer, self.ids.span_id(), parent.span_id, name, span_type, self.clock(), attrs
                )
                if not buffer.add(span):
                    return self._late(name, buffer.trace_id)
            span._inputs = dumps_bytes(binder(args, kwargs))
            return span
        except Exception:
            log_internal_error()
        return NonRecordingSpan()

    def _late(self, name: str, trace_id: str) -> NonRecordingSpan:
        logger.warning(
            "tracemark: span %r started after its trace %s completed; it is not recorded",
            name,
            trace_id,
        )
        return NonRecordingSpan()

    def _start(
        self, name: str, span_type: str, attributes: dict[str, Any], sample_ratio: float | None
    ) -> LiveSpan | NonRecordingSpan:
        parent = CURRENT_SPAN.get()
        if parent is None:
            return self.start_root(name, span_type, attributes, sample_ratio=sample_ratio)
        if not parent.recording:
            return NonRecordingSpan()
        buffer: TraceBuffer | None = parent._buffer  # type: ignore[union-attr]
        if buffer is None:  # the parent's trace was already exported
            return self._late(name, parent.trace_id)  # type: ignore[arg-type]
        span = LiveSpan(
            buffer, self.ids.span_id(), parent.span_id, name, span_type, self.clock(), attributes
        )
        if buffer.add(span):
            return span
        return self._late(name, buffer.trace_id)

    def start_root(
        self,
        name: str,
        span_type: str,
        attributes: dict[str, Any],
        *,
        sample_ratio: float | None = None,
        experiment_id: str | None = None,
        start_time_ns: int | None = None,
        join_otel: bool = True,
    ) -> LiveSpan | NonRecordingSpan:
        """Start a root span (a new trace, or a local root joining an OpenTelemetry trace)."""
        trace_id = parent_id = None
        buffer = None
        if join_otel and "opentelemetry.trace" in sys.modules:
            from tracemark.tracing.otel import current_otel_parent

            joined = current_otel_parent()
            if joined is not None:
                trace_id, parent_id = joined
                buffer = self.inflight.get(trace_id)
        if buffer is None:
            ratio = self.sampling_ratio if sample_ratio is None else sample_ratio
            if ratio < 1.0 and not should_sample(ratio):
                return NonRecordingSpan()
            buffer = self.new_buffer(trace_id or self.ids.trace_id(), experiment_id)
        span = LiveSpan(
            buffer,
            self.ids.span_id(),
            parent_id,
            name,
            span_type,
            self.clock() if start_time_ns is None else start_time_ns,
            attributes,
        )
        if not buffer.add(span):
            buffer = self.new_buffer(buffer.trace_id, experiment_id)
            span._buffer = buffer
            buffer.add(span)
        return span

    def new_buffer(self, trace_id: str, experiment_id: str | None = None) -> TraceBuffer:
        """Create and register the in-flight state of a new trace."""
        if experiment_id is None:
            experiment_id, run_id = self.experiment_resolver()
        else:
            run_id = None
        buffer = TraceBuffer(self, trace_id, experiment_id, run_id)
        model_id = ACTIVE_MODEL_ID.get() or self.active_model_id
        if model_id is not None:
            buffer.metadata[MODEL_ID_KEY] = model_id
        self.inflight[trace_id] = buffer
        return buffer

    def trace_completed(self, buffer: TraceBuffer) -> None:
        """Hand a completed trace to the export pipeline (called when its last span ends)."""
        try:
            inflight = self.inflight
            if inflight.get(buffer.trace_id) is buffer:
                del inflight[buffer.trace_id]
            if not self._atexit_registered:
                self._atexit_registered = True
                atexit.register(self._at_exit)
            self.pipeline.submit(buffer)
        except Exception:
            log_internal_error()

    # -- the current trace ----------------------------------------------------------------

    def get_current_active_span(self) -> LiveSpan | NonRecordingSpan | None:
        """Return the span current in this context, or None outside any span.

        Example:
            >>> import tracemark as tm
            >>> tm.get_current_active_span() is None
            True
        """
        return CURRENT_SPAN.get()

    def get_last_active_trace_id(self) -> str | None:
        """Return the id of the trace whose root span ended last in this process.

        Example:
            >>> import tracemark as tm
            >>> trace_id = tm.get_last_active_trace_id()
        """
        return self.last_trace_id

    def update_current_trace(
        self,
        *,
        tags: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        session_id: str | None = None,
        user_id: str | None = None,
        request_preview: str | None = None,
        response_preview: str | None = None,
    ) -> None:
        """Add tags and metadata to the trace of the current span.

        Example:
            >>> import tracemark as tm
            >>> with tm.start_span("handle"):
            ...     tm.update_current_trace(tags={"env": "prod"}, session_id="s-1")

        Args:
            tags: Mutable key/value labels (values become strings).
            metadata: Write-once key/value context such as an app version.
            session_id: Stored as metadata `session_id` (filter `metadata.session_id`).
            user_id: Stored as metadata `user_id`.
            request_preview: Replaces the preview built from the root span's inputs.
            response_preview: Replaces the preview built from the root span's outputs.
        """
        span = CURRENT_SPAN.get()
        if span is None:
            logger.warning("tracemark: update_current_trace called outside any span; ignored")
            return
        if not span.recording:
            return
        buffer: TraceBuffer = span._buffer  # type: ignore[union-attr]
        with buffer.lock:
            for key, value in (tags or {}).items():
                buffer.tags[str(key)] = str(value)
            for key, value in (metadata or {}).items():
                buffer.metadata[str(key)] = str(value)
            if session_id is not None:
                buffer.metadata[SESSION_KEY] = str(session_id)
            if user_id is not None:
                buffer.metadata[USER_KEY] = str(user_id)
            if request_preview is not None:
                buffer.request_preview = str(request_preview)
            if response_preview is not None:
                buffer.response_preview = str(response_preview)

    def set_inflight_tag(self, trace_id: str, key: str, value: Any) -> bool:
        """Set a tag on a trace still running; False when it is not in flight."""
        buffer = self.inflight.get(trace_id)
        if buffer is None:
            return False
        with buffer.lock:
            buffer.tags[str(key)] = str(value)
        return True

    def delete_inflight_tag(self, trace_id: str, key: str) -> bool:
        """Remove a tag from a trace still running; False when it is not in flight."""
        buffer = self.inflight.get(trace_id)
        if buffer is None:
            return False
        with buffer.lock:
            buffer.tags.pop(key, None)
        return True

    def find_live_span(self, trace_id: str, span_id: str) -> LiveSpan:
        """Return an in-flight span by id; raise `TracemarkError` when there is none."""
        buffer = self.inflight.get(trace_id)
        if buffer is None:
            raise TracemarkError(f"trace {trace_id!r} is not in progress")
        span = buffer.find(span_id)
        if span is None:
            raise TracemarkError(f"span {span_id!r} is not part of trace {trace_id!r}")
        return span

    # -- export ---------------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every finished trace has been exported; False if `timeout` ran out.

        Example:
            >>> import tracemark as tm
            >>> tm.flush(timeout=5)
            True

        Args:
            timeout: Seconds to wait at most; None waits as long as it takes.
        """
        return self.pipeline.flush(timeout)

    def stats(self) -> ExportStats:
        """Return export counters: traces exported, dropped, queued and failed.

        Example:
            >>> import tracemark as tm
            >>> tm.tracing.stats().dropped
            0
        """
        return self.pipeline.stats()

    def shutdown(self, timeout: float | None = None) -> bool:
        """End unfinished traces, drain the queue and stop the exporter thread.

        Args:
            timeout: Seconds to wait for the drain at most.
        """
        self._complete_lingering()
        if self._atexit_registered:
            atexit.unregister(self._at_exit)
            self._atexit_registered = False
        return self.pipeline.shutdown(timeout)

    def _complete_lingering(self) -> None:
        now = self.clock()
        for buffer in list(self.inflight.values()):
            root = buffer.root
            if root is not None and root.end_time_ns is not None:
                buffer.force_complete(now)

    def _at_exit(self) -> None:
        with handle_internal_errors:
            self._complete_lingering()
            if not self.pipeline.flush(EXIT_FLUSH_TIMEOUT_S):
                logger.warning(
                    "tracemark: %d traces were still waiting for export at exit",
                    self.pipeline.stats().queued,
                )


def _attributes(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    if not attributes:
        return {}
    return {str(k): to_jsonable(v) for k, v in attributes.items()}


DEFAULT_TRACER = Tracer()
"""The tracer behind the module-level API."""
