"""Trace the Anthropic Python SDK: `messages.create`, `messages.parse` and `messages.stream`.

Example:
    import tracemark as tm

    tm.anthropic.autolog()
    client = anthropic.Anthropic()
    client.messages.create(model="claude-sonnet-4-5", max_tokens=512, messages=[...])

Sync and async clients; `create(stream=True)` and the `messages.stream()` helper give one
span whose outputs are the re-assembled message (text, tool use, thinking).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tracemark.integrations._llm import (
    LLMCall,
    StreamCollector,
    async_wrapper,
    client_info,
    end_call,
    set_usage,
    start_call,
    sync_wrapper,
)
from tracemark.integrations._media import scrub_media
from tracemark.integrations._patch import Instrumentation
from tracemark.tracing._errors import log_internal_error

__all__ = ["LIBRARY", "autolog"]

LIBRARY = "anthropic"
"""The module this integration instruments; `tm.autolog()` enables it when importable."""

INSTRUMENTATION = Instrumentation("anthropic", LIBRARY)

_REQUEST_PARAMS = {
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "top_k": "gen_ai.request.top_k",
    "max_tokens": "gen_ai.request.max_tokens",
}
_sentinels: tuple[type, ...] = ()
_streams: tuple[type, ...] = ()


def autolog(*, disable: bool = False, log_traces: bool = True, silent: bool = False) -> None:
    """Trace every Anthropic Messages API call, streaming included.

    Example:
        >>> import tracemark as tm
        >>> tm.anthropic.autolog()

    If `anthropic` is not imported yet, the patches are applied when it is.

    Args:
        disable: Remove the patches and restore the library's own methods.
        log_traces: False keeps the patches but records nothing.
        silent: Do not log tracemark's own messages about this integration.
    """
    INSTRUMENTATION.autolog(
        _install,
        package="anthropic",
        disable=disable,
        log_traces=log_traces,
        silent=silent,
    )


def _install(module: Any) -> None:
    global _sentinels, _streams
    from anthropic.resources.messages import AsyncMessages, Messages

    _sentinels = tuple(t for t in (getattr(module, n, None) for n in ("NotGiven", "Omit")) if t)
    _streams = (module.Stream, module.AsyncStream)
    inst = INSTRUMENTATION
    if not inst.enabled:
        return
    for name in ("create", "parse"):
        inst.wrap(Messages, name, lambda original: sync_wrapper(inst, MessagesCall, original))
        inst.wrap(AsyncMessages, name, lambda original: async_wrapper(inst, MessagesCall, original))
    inst.wrap(Messages, "stream", lambda original: _stream_wrapper(original, is_async=False))
    inst.wrap(AsyncMessages, "stream", lambda original: _stream_wrapper(original, is_async=True))


class MessagesCall(LLMCall):
    """One Messages API call."""

    provider = "anthropic"
    __slots__ = ()

    def inputs(self) -> Any:
        """Return the request without sentinels, credentials or inline media."""
        sentinels = _sentinels
        out: dict[str, Any] = {}
        for key, value in self.kwargs.items():
            if key in ("extra_headers", "timeout") or isinstance(value, sentinels):
                continue
            if key in ("messages", "system"):
                value = scrub_media(value)
            elif key == "output_format" and isinstance(value, type):
                value = value.__name__
            out[key] = value
        return out

    def attributes(self) -> dict[str, Any]:
        """Return the OpenTelemetry GenAI request attributes."""
        attrs = super().attributes()
        kwargs = self.kwargs
        for key, attr in _REQUEST_PARAMS.items():
            value = kwargs.get(key)
            if value is not None and value.__class__ in (int, float):
                attrs[attr] = value
        stop = kwargs.get("stop_sequences")
        if isinstance(stop, (list, tuple)):
            attrs["gen_ai.request.stop_sequences"] = [str(s) for s in stop]
        host = client_info(self.resource, "anthropic").host
        if host:
            attrs["server.address"] = host
        return attrs

    def is_stream(self, result: Any) -> bool:
        """Return whether the call returned an SDK stream."""
        return isinstance(result, _streams)

    def record(self, span: Any, response: Any) -> None:
        """Record a `Message`."""
        if getattr(response, "content", None) is None:  # e.g. a raw response wrapper
            return
        dump = getattr(response, "model_dump", None)
        span.set_outputs(response if dump is None else dump(exclude_unset=True, warnings=False))
        _record_message(
            self, span, response.model, response.id, response.stop_reason, response.usage
        )

    def collector(self) -> StreamCollector:
        """Return a collector re-assembling the streamed events into the message."""
        return _MessageEvents(self)

    def cost_provider(self) -> str:
        """Return the genai-prices provider of the client's base URL."""
        return client_info(self.resource, "anthropic").provider


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, dict) else getattr(obj, key, None)


def _record_message(
    call: MessagesCall,
    span: Any,
    model: str | None,
    message_id: str | None,
    stop_reason: str | None,
    usage: Any,
) -> None:
    attrs = span.attributes
    if model:
        attrs["gen_ai.response.model"] = model
    if message_id:
        attrs["gen_ai.response.id"] = message_id
    if stop_reason:
        attrs["gen_ai.response.finish_reasons"] = [stop_reason]
    if usage is None:
        return
    uncached = _get(usage, "input_tokens") or 0
    cache_read = _get(usage, "cache_read_input_tokens") or 0
    cache_write = _get(usage, "cache_creation_input_tokens") or 0
    split = _get(usage, "cache_creation")
    one_hour = (_get(split, "ephemeral_1h_input_tokens") or 0) if split is not None else 0
    set_usage(
        span,
        provider=call.cost_provider(),
        model=model or call.model,
        # OpenTelemetry counts cached input tokens as input tokens; Anthropic does not.
        input_tokens=uncached + cache_read + cache_write,
        output_tokens=_get(usage, "output_tokens"),
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        extra={"cache_write_1h_tokens": one_hour},
    )


class _MessageEvents(StreamCollector):
    """Re-assembles raw Messages stream events into the final message."""

    __slots__ = ("blocks", "call", "json_parts", "message", "stop_reason", "usage")

    def __init__(self, call: MessagesCall) -> None:
        self.call = call
        self.message: dict[str, Any] = {}
        self.blocks: dict[int, dict[str, Any]] = {}
        self.json_parts: dict[int, list[str]] = {}
        self.usage: dict[str, Any] = {}
        self.stop_reason: dict[str, Any] = {}

    def add(self, item: Any) -> None:
        """Fold one stream event into the message."""
        kind = item.type
        if kind == "content_block_delta":
            delta = item.delta
            block = self.blocks.get(item.index)
            if block is None:
                return
            dtype = delta.type
            if dtype == "text_delta":
                block["text"] = block.get("text", "") + delta.text
            elif dtype == "input_json_delta":
                self.json_parts.setdefault(item.index, []).append(delta.partial_json)
            elif dtype == "thinking_delta":
                block["thinking"] = block.get("thinking", "") + delta.thinking
            elif dtype == "signature_delta":
                block["signature"] = delta.signature
            elif dtype == "citations_delta":
                block.setdefault("citations", []).append(delta.citation.model_dump())
        elif kind == "content_block_start":
            self.blocks[item.index] = item.content_block.model_dump(exclude_unset=True)
        elif kind == "message_start":
            message = item.message
            self.message = message.model_dump(exclude_unset=True)
            self.usage = dict(self.message.get("usage") or {})
        elif kind == "message_delta":
            self.stop_reason = item.delta.model_dump(exclude_unset=True)
            usage = getattr(item, "usage", None)
            if usage is not None:
                self.usage.update(
                    {k: v for k, v in usage.model_dump(exclude_unset=True).items() if v is not None}
                )

    def finish(self, span: Any) -> None:
        """Set the assembled message as outputs, with usage and stop reason."""
        for index, parts in self.json_parts.items():
            raw = "".join(parts)
            try:
                self.blocks[index]["input"] = json.loads(raw) if raw else {}
            except ValueError:
                self.blocks[index]["input"] = raw
        message = {**self.message, **self.stop_reason}
        message["content"] = [self.blocks[i] for i in sorted(self.blocks)]
        if self.usage:
            message["usage"] = self.usage
        span.set_outputs(message)
        _record_message(
            self.call,
            span,
            message.get("model"),
            message.get("id"),
            message.get("stop_reason"),
            self.usage or None,
        )


# -- messages.stream(): the request is sent when the manager is entered ----------------------


def _stream_wrapper(original: Callable[..., Any], *, is_async: bool) -> Callable[..., Any]:
    import functools

    inst = INSTRUMENTATION
    attribute = (
        "_AsyncMessageStreamManager__api_request"
        if is_async
        else "_MessageStreamManager__api_request"
    )

    @functools.wraps(original)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        manager = original(self, *args, **kwargs)
        if not inst.recording:
            return manager
        try:
            request = getattr(manager, attribute)
            call = MessagesCall(self, kwargs)
            traced = (
                _traced_async_request(call, request) if is_async else _traced_request(call, request)
            )
            setattr(manager, attribute, traced)
        except Exception:
            log_internal_error()
        return manager

    return wrapper


def _traced_request(call: MessagesCall, request: Callable[[], Any]) -> Callable[[], Any]:
    def send() -> Any:
        span = start_call(INSTRUMENTATION, call)
        if span is None:
            return request()
        try:
            raw_stream = request()
        except BaseException as exc:
            end_call(call, span, exc=exc)
            raise
        end_call(call, span, raw_stream)
        return raw_stream

    return send


def _traced_async_request(call: MessagesCall, request: Any) -> Any:
    async def send() -> Any:
        span = start_call(INSTRUMENTATION, call)
        if span is None:
            return await request
        try:
            raw_stream = await request
        except BaseException as exc:
            end_call(call, span, exc=exc)
            raise
        end_call(call, span, raw_stream, is_async=True)
        return raw_stream

    return send()
