"""`@trace`: wrap functions, methods, coroutines, generators and async generators in spans.

The wrapper's own work is a flag check, starting the span (ids, clock, one serialization
of the bound arguments), a context-variable set/reset and ending the span. When tracing
is disabled it is one attribute read and a call through.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncGenerator, Callable, Generator
from typing import TYPE_CHECKING, Any

from tracemark.tracing._context import CURRENT_SPAN
from tracemark.tracing._errors import logger
from tracemark.tracing._serialize import dumps_bytes

if TYPE_CHECKING:
    from tracemark.tracing._span import LiveSpan, NonRecordingSpan
    from tracemark.tracing._tracer import Tracer

__all__ = ["make_binder", "trace_function"]

Binder = Callable[[tuple[Any, ...], dict[str, Any]], dict[str, Any]]
_SIMPLE_KINDS = (
    inspect.Parameter.POSITIONAL_ONLY,
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
    inspect.Parameter.KEYWORD_ONLY,
)


def make_binder(fn: Callable[..., Any]) -> Binder:
    """Return a function mapping a call's `(args, kwargs)` to inputs by parameter name.

    Defaults are filled in and a leading `self`/`cls` is left out. The binder never
    raises: a call that does not fit the signature is recorded as `args`/`kwargs`.
    """
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return _raw_binder
    params = list(signature.parameters.values())
    skip = params[0].name if params and params[0].name in ("self", "cls") else None
    if not all(p.kind in _SIMPLE_KINDS for p in params):
        return _signature_binder(signature, skip)
    names = [p.name for p in params]
    positional = [p.name for p in params if p.kind != inspect.Parameter.KEYWORD_ONLY]
    defaults = {p.name: p.default for p in params if p.default is not p.empty}
    count = len(names)

    def bind(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        # Extra positional args cannot happen here (no *args); fewer are filled in below.
        inputs = dict(zip(positional, args))  # noqa: B905 - strict= costs a keyword call
        if len(inputs) < count:
            for name in names[len(inputs) :]:
                if name in kwargs:
                    inputs[name] = kwargs[name]
                elif name in defaults:
                    inputs[name] = defaults[name]
        if skip is not None:
            inputs.pop(skip, None)
        return inputs

    return bind


def _raw_binder(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    return {"args": list(args), "kwargs": kwargs}


def _signature_binder(signature: inspect.Signature, skip: str | None) -> Binder:
    def bind(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError:
            return _raw_binder(args, kwargs)
        bound.apply_defaults()
        inputs = dict(bound.arguments)
        if skip is not None:
            inputs.pop(skip, None)
        return inputs

    return bind


def trace_function(
    tracer: Tracer,
    fn: Any,
    *,
    name: str | None,
    span_type: str,
    attributes: dict[str, Any] | None,
    sample_ratio: float | None,
    output_reducer: Callable[[list[Any]], Any] | None,
) -> Any:
    """Return `fn` wrapped so each call is a span; see `Tracer.trace` for the options."""
    if isinstance(fn, (classmethod, staticmethod)):
        wrapped = trace_function(
            tracer,
            fn.__func__,
            name=name,
            span_type=span_type,
            attributes=attributes,
            sample_ratio=sample_ratio,
            output_reducer=output_reducer,
        )
        return type(fn)(wrapped)
    span_name = name or getattr(fn, "__name__", None) or type(fn).__name__
    binder = make_binder(fn)
    attrs = dict(attributes) if attributes else None
    start = functools.partial(tracer.start_call, span_name, span_type, attrs, sample_ratio, binder)

    if inspect.isasyncgenfunction(fn):
        return _wrap_async_generator(tracer, fn, start, output_reducer)
    if inspect.isgeneratorfunction(fn):
        return _wrap_generator(tracer, fn, start, output_reducer)
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            if not tracer.enabled:
                return await fn(*args, **kwargs)
            span = start(args, kwargs)
            token = CURRENT_SPAN.set(span)
            try:
                result = await fn(*args, **kwargs)
            except BaseException as exc:
                CURRENT_SPAN.reset(token)
                span._fail(exc)
                raise
            CURRENT_SPAN.reset(token)
            span._succeed(result)
            return result

        return async_wrapper

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not tracer.enabled:
            return fn(*args, **kwargs)
        span = start(args, kwargs)
        token = CURRENT_SPAN.set(span)
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            CURRENT_SPAN.reset(token)
            span._fail(exc)
            raise
        CURRENT_SPAN.reset(token)
        span._succeed(result)
        return result

    return wrapper


def _reduce(items: list[Any], reducer: Callable[[list[Any]], Any] | None) -> bytes:
    if reducer is None:
        return dumps_bytes(items)
    try:
        return dumps_bytes(reducer(items))
    except Exception:
        logger.warning("tracemark: output_reducer failed; recording the raw items", exc_info=True)
        return dumps_bytes(items)


def _end_stream(
    span: LiveSpan | NonRecordingSpan,
    items: list[Any],
    reducer: Callable[[list[Any]], Any] | None,
    exc: BaseException | None = None,
) -> None:
    if span.recording:
        span._end_stream(_reduce(items, reducer), exc)


def _wrap_generator(
    tracer: Tracer,
    fn: Callable[..., Generator[Any, Any, Any]],
    start: Callable[[tuple[Any, ...], dict[str, Any]], LiveSpan | NonRecordingSpan],
    reducer: Callable[[list[Any]], Any] | None,
) -> Callable[..., Generator[Any, Any, Any]]:
    @functools.wraps(fn)
    def generator_wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        if not tracer.enabled:
            return (yield from fn(*args, **kwargs))
        span = start(args, kwargs)
        items: list[Any] = []
        token = CURRENT_SPAN.set(span)
        try:
            gen = fn(*args, **kwargs)
        except BaseException as exc:
            CURRENT_SPAN.reset(token)
            _end_stream(span, items, reducer, exc)
            raise
        CURRENT_SPAN.reset(token)
        # Make the span current only while the generator body runs, not between yields.
        method: Callable[[Any], Any] = gen.send
        arg: Any = None
        while True:
            token = CURRENT_SPAN.set(span)
            try:
                item = method(arg)
            except StopIteration as stop:
                CURRENT_SPAN.reset(token)
                _end_stream(span, items, reducer)
                return stop.value
            except BaseException as exc:
                CURRENT_SPAN.reset(token)
                _end_stream(span, items, reducer, exc)
                raise
            CURRENT_SPAN.reset(token)
            items.append(item)
            try:
                arg = yield item
                method = gen.send
            except GeneratorExit:
                token = CURRENT_SPAN.set(span)
                try:
                    gen.close()
                finally:
                    CURRENT_SPAN.reset(token)
                    _end_stream(span, items, reducer)
                raise
            except BaseException as exc:
                method, arg = gen.throw, exc

    return generator_wrapper


def _wrap_async_generator(
    tracer: Tracer,
    fn: Callable[..., AsyncGenerator[Any, Any]],
    start: Callable[[tuple[Any, ...], dict[str, Any]], LiveSpan | NonRecordingSpan],
    reducer: Callable[[list[Any]], Any] | None,
) -> Callable[..., AsyncGenerator[Any, Any]]:
    @functools.wraps(fn)
    async def async_generator_wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        if not tracer.enabled:
            async for item in fn(*args, **kwargs):
                yield item
            return
        span = start(args, kwargs)
        items: list[Any] = []
        token = CURRENT_SPAN.set(span)
        try:
            agen = fn(*args, **kwargs)
        except BaseException as exc:
            CURRENT_SPAN.reset(token)
            _end_stream(span, items, reducer, exc)
            raise
        CURRENT_SPAN.reset(token)
        method: Callable[[Any], Any] = agen.asend
        arg: Any = None
        while True:
            token = CURRENT_SPAN.set(span)
            try:
                item = await method(arg)
            except StopAsyncIteration:
                CURRENT_SPAN.reset(token)
                _end_stream(span, items, reducer)
                return
            except BaseException as exc:
                CURRENT_SPAN.reset(token)
                _end_stream(span, items, reducer, exc)
                raise
            CURRENT_SPAN.reset(token)
            items.append(item)
            try:
                arg = yield item
                method = agen.asend
            except GeneratorExit:
                token = CURRENT_SPAN.set(span)
                try:
                    await agen.aclose()
                finally:
                    CURRENT_SPAN.reset(token)
                    _end_stream(span, items, reducer)
                raise
            except BaseException as exc:
                method, arg = agen.athrow, exc

    return async_generator_wrapper
