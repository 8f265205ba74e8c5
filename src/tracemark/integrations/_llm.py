"""One traced LLM API call: the wrappers every provider integration puts around its methods.

A provider describes its calls with an `LLMCall` subclass (name, inputs, attributes, how to
read a response, how to follow a stream); this module does the rest the same way for all:

- the span starts when the request is made, under whatever span is current, and is not
  made current itself (nothing of the caller's runs inside it);
- the library's return value is handed back untouched; for a stream, the very stream
  object is returned and only its internal iterator is replaced by one that passes every
  item through unchanged while collecting it, so the span ends when the stream is
  exhausted, fails or is closed;
- an exception from the library is recorded on the span and re-raised as it is;
- a failure of tracemark's own code never reaches the caller (`log_internal_error`).
"""

from __future__ import annotations

import contextlib
import functools
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from tracemark.integrations import _cost
from tracemark.integrations._media import keep_media_with
from tracemark.integrations._patch import Instrumentation
from tracemark.tracing._errors import log_internal_error
from tracemark.tracing._tracer import DEFAULT_TRACER

__all__ = [
    "ClientInfo",
    "LLMCall",
    "client_info",
    "StreamCollector",
    "async_wrapper",
    "follow_stream",
    "set_usage",
    "sync_wrapper",
]

INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
CACHE_READ_TOKENS = "gen_ai.usage.cache_read.input_tokens"
CACHE_WRITE_TOKENS = "gen_ai.usage.cache_creation.input_tokens"
SKIPPED_KWARGS = frozenset({"extra_headers", "timeout"})  # headers may carry credentials


class ClientInfo:
    """What a call needs to know about the SDK client it went through (cached per client)."""

    __slots__ = ("_provider", "base_url", "default_provider", "host", "url")

    def __init__(self, url: Any, default_provider: str) -> None:
        self.url = url
        self.base_url = str(url or "")
        self.host = getattr(url, "host", None)
        self.default_provider = default_provider
        self._provider: str | None = None

    @property
    def provider(self) -> str:
        """The genai-prices provider serving this base URL (resolved on first use)."""
        provider = self._provider
        if provider is None:
            provider = self._provider = _cost.provider_for_url(self.base_url, self.default_provider)
        return provider


_clients: weakref.WeakKeyDictionary[Any, ClientInfo] = weakref.WeakKeyDictionary()


def client_info(resource: Any, default_provider: str) -> ClientInfo:
    """Return the `ClientInfo` of the client behind an SDK resource object.

    Args:
        resource: The SDK resource (`client.chat.completions`, ...): its `_client`.
        default_provider: The provider of the SDK, for unknown hosts.
    """
    client = getattr(resource, "_client", None)
    # `_base_url`, not the `base_url` property: the property costs an import per read.
    url = getattr(client, "_base_url", None)
    if url is None:
        url = getattr(client, "base_url", None)
    info = _clients.get(client) if client is not None else None
    if info is None or info.url is not url:
        info = ClientInfo(url, default_provider)
        with contextlib.suppress(TypeError):  # a client that cannot be weakly referenced
            _clients[client] = info
    return info


class StreamCollector:
    """Collects the items of a stream and turns them into the span's outputs at the end."""

    def add(self, item: Any) -> None:
        """Take one item (called for every item, so keep it cheap)."""
        raise NotImplementedError

    def finish(self, span: Any) -> None:
        """Set the span's outputs and attributes from what was collected."""
        raise NotImplementedError


class LLMCall:
    """What a provider integration knows about one kind of call (one API method).

    Args:
        resource: The library's resource object the method was called on (`self`).
        kwargs: The keyword arguments of the call.
    """

    span_type = "CHAT_MODEL"
    operation = "chat"
    provider = ""

    __slots__ = ("kwargs", "resource")

    def __init__(self, resource: Any, kwargs: dict[str, Any]) -> None:
        self.resource = resource
        self.kwargs = kwargs

    @property
    def model(self) -> str | None:
        """The requested model."""
        model = self.kwargs.get("model")
        return model if isinstance(model, str) else None

    def name(self) -> str:
        """The span name: `{operation} {model}` as the OpenTelemetry GenAI conventions say."""
        model = self.model
        return f"{self.operation} {model}" if model else self.operation

    def inputs(self) -> Any:
        """The span's inputs: the request as the caller wrote it."""
        return {k: v for k, v in self.kwargs.items() if k not in SKIPPED_KWARGS}

    def attributes(self) -> dict[str, Any]:
        """The attributes known before the call."""
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": self.operation,
            "gen_ai.provider.name": self.provider,
        }
        if self.model:
            attrs["gen_ai.request.model"] = self.model
        return attrs

    def is_stream(self, result: Any) -> bool:
        """Whether the call returned a stream to follow."""
        return False

    def record(self, span: Any, response: Any) -> None:
        """Set the span's outputs and attributes from the response."""
        span.set_outputs(response)

    def collector(self) -> StreamCollector | None:
        """A collector for the stream this call returned."""
        return None


def set_usage(
    span: Any,
    *,
    provider: str,
    model: str | None,
    input_tokens: int | None,
    output_tokens: int | None,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
    extra: dict[str, int] | None = None,
    service_tier: str | None = None,
) -> None:
    """Set the token usage attributes and the cost of a call.

    Args:
        span: The call's span.
        provider: The genai-prices provider id for the cost.
        model: The model the API reported.
        input_tokens: All input tokens, cached ones included (OpenTelemetry GenAI).
        output_tokens: All output tokens, reasoning included.
        cache_read_tokens: Input tokens read from the provider's prompt cache.
        cache_write_tokens: Input tokens written to the provider's prompt cache.
        extra: Further genai-prices usage keys (e.g. `cache_write_1h_tokens`).
        service_tier: The service tier the API reported.
    """
    attrs = span.attributes
    if input_tokens is None and output_tokens is None:
        return
    usage: dict[str, int] = {}
    if input_tokens is not None:
        attrs[INPUT_TOKENS] = usage["input_tokens"] = int(input_tokens)
    if output_tokens is not None:
        attrs[OUTPUT_TOKENS] = usage["output_tokens"] = int(output_tokens)
    if cache_read_tokens:
        attrs[CACHE_READ_TOKENS] = usage["cache_read_tokens"] = int(cache_read_tokens)
    if cache_write_tokens:
        attrs[CACHE_WRITE_TOKENS] = usage["cache_write_tokens"] = int(cache_write_tokens)
    if extra:
        usage.update({k: int(v) for k, v in extra.items() if v})
    cost = _cost.cost_usd(provider, model, usage, service_tier=service_tier)
    if cost is not None:
        attrs[_cost.COST_KEY] = cost


# -- starting and ending the span ---------------------------------------------------------


def _start(call: LLMCall) -> Any:
    """Start the call's span; None when nothing is recorded (disabled, sampled out, error)."""
    try:
        span = DEFAULT_TRACER.start_span(call.name(), span_type=call.span_type)
        if not span.recording:
            return None
        # Plain JSON values (attributes() copies what it takes from the request).
        span.attributes.update(call.attributes())
        with keep_media_with(span):  # inline images go with this span's trace
            span.set_inputs(call.inputs())
        return span
    except Exception:
        log_internal_error()
    return None


def _fail(span: Any, exc: BaseException) -> None:
    try:
        span.record_exception(exc)
        span.end()
    except Exception:
        log_internal_error()


def _complete(call: LLMCall, span: Any, result: Any, is_async: bool) -> None:
    try:
        if call.is_stream(result):
            collector = call.collector()
            if collector is not None and follow_stream(result, span, collector, is_async):
                return
        else:
            call.record(span, result)
    except Exception:
        log_internal_error()
    try:
        span.end()
    except Exception:
        log_internal_error()


def sync_wrapper(
    inst: Instrumentation, call_type: type[LLMCall], original: Callable[..., Any]
) -> Callable[..., Any]:
    """Return a wrapper of a sync method that traces each call as `call_type` describes."""

    @functools.wraps(original)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not inst.recording or not DEFAULT_TRACER.enabled:
            return original(self, *args, **kwargs)
        call = call_type(self, kwargs)
        span = _start(call)
        if span is None:
            return original(self, *args, **kwargs)
        try:
            result = original(self, *args, **kwargs)
        except BaseException as exc:
            _fail(span, exc)
            raise
        _complete(call, span, result, False)
        return result

    return wrapper


def async_wrapper(
    inst: Instrumentation, call_type: type[LLMCall], original: Callable[..., Any]
) -> Callable[..., Any]:
    """Return a wrapper of an async method that traces each call as `call_type` describes."""

    @functools.wraps(original)
    async def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not inst.recording or not DEFAULT_TRACER.enabled:
            return await original(self, *args, **kwargs)
        call = call_type(self, kwargs)
        span = _start(call)
        if span is None:
            return await original(self, *args, **kwargs)
        try:
            result = await original(self, *args, **kwargs)
        except BaseException as exc:
            _fail(span, exc)
            raise
        _complete(call, span, result, True)
        return result

    return wrapper


def start_call(inst: Instrumentation, call: LLMCall) -> Any:
    """Start a call's span by hand (for helpers that send the request later); None if off."""
    if not inst.recording or not DEFAULT_TRACER.enabled:
        return None
    return _start(call)


def end_call(
    call: LLMCall,
    span: Any,
    result: Any = None,
    exc: BaseException | None = None,
    *,
    is_async: bool = False,
) -> None:
    """End a span started with `start_call` with the call's result or exception."""
    if exc is not None:
        _fail(span, exc)
    else:
        _complete(call, span, result, is_async)


# -- following a stream -------------------------------------------------------------------


class _StreamState:
    __slots__ = ("collector", "done", "span")

    def __init__(self, span: Any, collector: StreamCollector) -> None:
        self.span = span
        self.collector = collector
        self.done = False

    def add(self, item: Any) -> None:
        try:
            self.collector.add(item)
        except Exception:
            log_internal_error()

    def end(self, exc: BaseException | None) -> None:
        if self.done:
            return
        self.done = True
        span = self.span
        try:
            self.collector.finish(span)
        except Exception:
            log_internal_error()
        if exc is not None and not isinstance(exc, GeneratorExit):
            _fail(span, exc)
            return
        try:
            span.end()
        except Exception:
            log_internal_error()


def _follow(iterator: Iterator[Any], state: _StreamState) -> Iterator[Any]:
    add = state.add
    try:
        for item in iterator:
            add(item)
            yield item
    except BaseException as exc:
        state.end(exc)
        if isinstance(exc, GeneratorExit):
            close = getattr(iterator, "close", None)
            if close is not None:
                close()
        raise
    state.end(None)


async def _afollow(iterator: AsyncIterator[Any], state: _StreamState) -> AsyncIterator[Any]:
    add = state.add
    try:
        async for item in iterator:
            add(item)
            yield item
    except BaseException as exc:
        state.end(exc)
        if isinstance(exc, GeneratorExit):
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                await aclose()
        raise
    state.end(None)


def follow_stream(stream: Any, span: Any, collector: StreamCollector, is_async: bool) -> bool:
    """Make `stream` report its items to `collector` and end `span` when it is done.

    The stream stays the same object: only its `_iterator` (what `__iter__`/`__next__`
    read in the OpenAI and Anthropic SDKs) is wrapped, and `close` ends the span too.
    Returns False when the stream has no such iterator (then nothing was changed).
    """
    try:
        iterator = stream._iterator
    except AttributeError:
        return False
    state = _StreamState(span, collector)
    stream._iterator = _afollow(iterator, state) if is_async else _follow(iterator, state)
    close = getattr(type(stream), "close", None)
    if close is not None:
        # A weak reference: the stream holding a closure that holds the stream would be a
        # cycle, left to the cyclic GC when the caller drops an unfinished stream.
        ref = weakref.ref(stream)
        if is_async:

            async def aclose_and_end() -> None:
                state.end(None)
                target = ref()
                if target is not None:
                    await close(target)

            stream.close = aclose_and_end
        else:

            def close_and_end() -> None:
                state.end(None)
                target = ref()
                if target is not None:
                    close(target)

            stream.close = close_and_end
    return True
