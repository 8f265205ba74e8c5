"""Spans around a library's async methods and async-generator methods.

`AsyncSpans.coroutine` and `AsyncSpans.generator` make the wrappers an integration passes
to `Instrumentation.wrap`; the integration only says what a call is (`describe`: name,
type, inputs, attributes) and what it gave back (`record`). For every traced call:

- the span starts under the current span, and is current itself only while the library's
  code runs: for a stream, between the consumer's requests for the next item, never in the
  consumer's own code between items;
- a method that calls another traced method of the same object (a turn's `on_messages`
  going through its `on_messages_stream`) makes one span, not two;
- inside a *leaf* call (a model call recording its own tokens and cost) nothing else is
  recorded, so the provider SDK's call made for it is not counted twice;
- what the library returns is returned as it is: the same result, and, when the call is
  not traced, the library's own generator object; a traced stream yields the very items
  the library's stream yields;
- an exception is recorded on the span and propagates unchanged.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar, Token
from typing import Any

from tracemark.integrations._patch import Instrumentation
from tracemark.tracing._context import CURRENT_SPAN
from tracemark.tracing._errors import log_internal_error
from tracemark.tracing._span import LiveSpan, NonRecordingSpan
from tracemark.tracing._tracer import DEFAULT_TRACER

__all__ = ["AsyncSpans", "Describe", "Record"]

Describe = Callable[[Any, tuple[Any, ...], dict[str, Any]], tuple[str, str, Any, dict[str, Any]]]
"""`(owner, args, kwargs) -> (name, span_type, inputs, attributes)` of a call."""

Record = Callable[[Any, Any, Any, list[Any]], None]
"""`(owner, span, result, items)`: set the outputs; `items` are a stream's items so far."""


class _Call:
    """The span of one traced call, and what is current while the call's code runs."""

    __slots__ = ("active", "marker", "owner", "span")

    def __init__(
        self, active: ContextVar[Any], owner: Any, span: LiveSpan | NonRecordingSpan, leaf: bool
    ) -> None:
        self.active = active
        self.owner = owner
        self.span = span
        self.marker = NonRecordingSpan() if leaf and span.recording else span

    def enter(self) -> tuple[Token[Any], Token[Any]]:
        return CURRENT_SPAN.set(self.marker), self.active.set(self.owner)

    def exit(self, tokens: tuple[Token[Any], Token[Any]]) -> None:
        self.active.reset(tokens[1])
        CURRENT_SPAN.reset(tokens[0])

    def finish(
        self, record: Record, result: Any, items: list[Any], exc: BaseException | None
    ) -> None:
        span = self.span
        if not span.recording:
            return
        try:
            if exc is None or isinstance(exc, GeneratorExit):  # closed early: what it saw
                record(self.owner, span, result, items)
            else:
                span.record_exception(exc)
            span.end()
        except Exception:
            log_internal_error()


class AsyncSpans:
    """Makes the wrappers of one integration's async methods.

    Args:
        inst: The integration; nothing is recorded while it is not `recording`.
    """

    def __init__(self, inst: Instrumentation) -> None:
        self._inst = inst
        # The object (team, agent, client, tool) whose traced call runs in this context.
        self._active: ContextVar[Any] = ContextVar(f"tracemark_{inst.name}_active", default=None)

    def _tracing(self, owner: Any) -> bool:
        return self._inst.recording and DEFAULT_TRACER.enabled and self._active.get() is not owner

    def _start(
        self, owner: Any, describe: Describe, args: Any, kwargs: Any, leaf: bool
    ) -> _Call | None:
        try:
            name, span_type, inputs, attributes = describe(owner, args, kwargs)
            span = DEFAULT_TRACER.start_span(name, span_type=span_type, attributes=attributes)
            if span.recording:
                span.set_inputs(inputs)
            return _Call(self._active, owner, span, leaf)
        except Exception:
            log_internal_error()
        return None

    def coroutine(
        self,
        original: Callable[..., Any],
        describe: Describe,
        record: Record,
        *,
        leaf: bool = False,
    ) -> Callable[..., Any]:
        """Wrap an async method: one span per call.

        Args:
            original: The method.
            describe: Says what a call is.
            record: Sets the span's outputs from the result.
            leaf: Record nothing inside the call.
        """
        spans = self

        @functools.wraps(original)
        async def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            traced = spans._tracing(self)
            call = spans._start(self, describe, args, kwargs, leaf) if traced else None
            if call is None:
                return await original(self, *args, **kwargs)
            tokens = call.enter()
            try:
                result = await original(self, *args, **kwargs)
            except BaseException as exc:
                call.exit(tokens)
                call.finish(record, None, [], exc)
                raise
            call.exit(tokens)
            call.finish(record, result, [result], None)
            return result

        return wrapper

    def generator(
        self,
        original: Callable[..., Any],
        describe: Describe,
        record: Record,
        *,
        leaf: bool = False,
    ) -> Callable[..., Any]:
        """Wrap an async-generator method: one span per stream, from first to last item.

        Args:
            original: The method.
            describe: Says what a call is.
            record: Sets the span's outputs from the last item and all of them.
            leaf: Record nothing inside the stream.
        """
        spans = self

        @functools.wraps(original)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            stream = original(self, *args, **kwargs)
            if not spans._tracing(self):
                return stream
            return _follow(stream, lambda: spans._start(self, describe, args, kwargs, leaf), record)

        return wrapper


async def _follow(
    stream: Any, start: Callable[[], _Call | None], record: Record
) -> AsyncIterator[Any]:
    """Pass `stream`'s items through; its span is current only while the stream's code runs."""
    call = start()  # on the first item: the span covers the stream, not its creation
    if call is None:
        async for item in stream:
            yield item
        return
    items: list[Any] = []
    method: Callable[[Any], Any] = stream.asend
    arg: Any = None
    while True:
        tokens = call.enter()
        try:
            item = await method(arg)
        except StopAsyncIteration:
            call.exit(tokens)
            call.finish(record, items[-1] if items else None, items, None)
            return
        except BaseException as exc:
            call.exit(tokens)
            call.finish(record, None, items, exc)
            raise
        call.exit(tokens)
        items.append(item)
        try:
            arg = yield item
            method = stream.asend
        except GeneratorExit as exc:  # closed before the end
            tokens = call.enter()
            try:
                await stream.aclose()
            finally:
                call.exit(tokens)
                call.finish(record, items[-1] if items else None, items, exc)
            raise
        except BaseException as exc:
            method, arg = stream.athrow, exc
