"""Spans opened and closed by a framework's own start and end events, keyed by its ids.

DSPy's callbacks and the OpenAI Agents SDK's trace processors report the start and the end
of one step as two calls sharing an id of the framework's. A `KeyedSpans` keeps the live
span of each id in between, so that:

- a step whose parent the framework names (by its id) nests under that parent's span; a
  step without one nests under the current span (the caller's `@tm.trace` function, or the
  step that is running around it), or starts a trace of its own;
- while a step runs its span is the current one, so the user's own `@tm.trace` functions
  and other integrations' spans made inside it nest under it. Inside a *leaf* step (a model
  call that records its own tokens and cost) nothing is recorded: the provider SDK's call
  made for it (`tm.openai.autolog()` on as well) would count the same tokens twice;
- a step under a parent that is not recorded (sampled out, tracing off) is not recorded
  either, and neither are its children.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Mapping
from contextvars import Token
from typing import Any

from tracemark.exceptions import TracemarkError
from tracemark.integrations._patch import Instrumentation
from tracemark.tracing._context import CURRENT_SPAN
from tracemark.tracing._errors import log_internal_error, logger
from tracemark.tracing._span import UNSET, LiveSpan, NonRecordingSpan
from tracemark.tracing._tracer import DEFAULT_TRACER
from tracemark.tracing.client import TracingClient

__all__ = ["KeyedSpans"]

_client = TracingClient()
_MAX_PENDING = 256


class _Step:
    __slots__ = ("data", "marker", "span", "token")

    def __init__(self, span: LiveSpan | None, marker: Any, data: Any) -> None:
        self.span = span  # None: the step is not recorded
        self.marker = marker  # what is current while the step runs
        self.data = data
        self.token: Token[Any] | None = None


class KeyedSpans:
    """The live spans of one integration's running steps, by the framework's step ids.

    Args:
        inst: The integration; nothing is recorded while it is not `recording`.
    """

    def __init__(self, inst: Instrumentation) -> None:
        self._inst = inst
        self._steps: dict[Hashable, _Step] = {}
        # Steps that ended while a step started after them was still current: what they
        # made current is undone when that one ends.
        self._pending: dict[int, _Step] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._steps)

    def start(
        self,
        key: Hashable,
        name: str,
        span_type: str,
        *,
        parent_key: Hashable | None = None,
        inputs: Any = UNSET,
        attributes: Mapping[str, Any] | None = None,
        leaf: bool = False,
        data: Any = None,
    ) -> LiveSpan | None:
        """Start the span of step `key` and make it current; None when it is not recorded.

        Args:
            key: The framework's id for the step.
            name: The span name.
            span_type: One of `SpanType`.
            parent_key: The framework's id for the parent step, when it names one.
            inputs: The step's inputs.
            attributes: The span's attributes.
            leaf: Record nothing inside the step (a model call recording its own usage).
            data: Anything the integration wants back when the step ends (`data`).
        """
        if not self._inst.recording or not DEFAULT_TRACER.enabled:
            return None
        try:
            span = self._open(name, span_type, parent_key)
            if span is not None:
                if attributes:
                    span.set_attributes(attributes)
                if inputs is not UNSET:
                    span.set_inputs(inputs)
            marker = span if span is not None and not leaf else NonRecordingSpan()
            step = _Step(span, marker, data)
            step.token = CURRENT_SPAN.set(marker)
            self._steps[key] = step
            return span
        except Exception:
            log_internal_error()
        return None

    def _open(self, name: str, span_type: str, parent_key: Hashable | None) -> LiveSpan | None:
        parent = None if parent_key is None else self._steps.get(parent_key)
        if parent is not None and parent.span is None:
            return None
        if parent is not None:
            try:
                span: Any = _client.start_span(
                    name,
                    trace_id=parent.span.trace_id,  # type: ignore[union-attr]
                    parent_id=parent.span.span_id,  # type: ignore[union-attr]
                    span_type=span_type,
                )
            except TracemarkError as exc:  # the parent's trace has completed already
                logger.debug("tracemark: span %r not recorded: %s", name, exc)
                return None
        else:
            span = DEFAULT_TRACER.start_span(name, span_type=span_type)
        return span if isinstance(span, LiveSpan) else None

    def get(self, key: Hashable) -> LiveSpan | None:
        """Return the live span of step `key`, or None when it is not recorded."""
        step = self._steps.get(key)
        return None if step is None else step.span

    def data(self, key: Hashable) -> Any:
        """Return the `data` step `key` was started with, or None."""
        step = self._steps.get(key)
        return None if step is None else step.data

    def end(
        self,
        key: Hashable,
        *,
        outputs: Any = UNSET,
        error: BaseException | str | None = None,
    ) -> None:
        """End the span of step `key` and make current again what was current before it.

        Args:
            key: The framework's id for the step.
            outputs: The step's outputs.
            error: The exception the step raised (a `GeneratorExit`, a stream closed
                early, is none), or the error message the framework reported.
        """
        step = self._steps.pop(key, None)
        if step is None:
            return
        try:
            span = step.span
            if span is not None:
                if outputs is not UNSET:
                    span.set_outputs(outputs)
                if isinstance(error, BaseException):
                    if not isinstance(error, GeneratorExit):
                        span.record_exception(error)
                elif error:
                    span.set_status("ERROR", error)
                span.end()
        except Exception:
            log_internal_error()
        finally:
            self._restore(step)

    def _restore(self, step: _Step) -> None:
        with self._lock:
            if CURRENT_SPAN.get() is not step.marker:
                # A step started after this one is current here (the framework ended them
                # out of order), or this context never saw the step: undo it when that ends.
                self._pending[id(step.marker)] = step
                if len(self._pending) > _MAX_PENDING:  # contexts that are gone: forget them
                    del self._pending[next(iter(self._pending))]
                return
            while step is not None:
                token = step.token
                try:
                    CURRENT_SPAN.reset(token)  # type: ignore[arg-type]
                except ValueError:  # ended in another context than the one it started in
                    old = token.old_value  # type: ignore[union-attr]
                    CURRENT_SPAN.set(None if old is Token.MISSING else old)
                current = CURRENT_SPAN.get()
                step = self._pending.pop(id(current), None)
                if step is not None and step.marker is not current:
                    step = None
