"""Trace the OpenAI Python SDK: chat completions, the Responses API and embeddings.

Example:
    import tracemark as tm

    tm.openai.autolog()
    client = openai.OpenAI()
    client.chat.completions.create(model="gpt-4o-mini", messages=[...])  # one CHAT_MODEL span

Sync and async clients, streaming (the span's outputs are the re-assembled final message),
`chat.completions.parse`/`stream`, `responses.create`/`parse`/`stream`, and any
OpenAI-compatible server reached through `base_url` (Ollama, vLLM, ...).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from tracemark.integrations._llm import (
    LLMCall,
    StreamCollector,
    async_wrapper,
    client_info,
    set_usage,
    sync_wrapper,
)
from tracemark.integrations._media import scrub_media
from tracemark.integrations._patch import Instrumentation

__all__ = ["LIBRARY", "autolog"]

LIBRARY = "openai"
"""The module this integration instruments; `tm.autolog()` enables it when importable."""

INSTRUMENTATION = Instrumentation("openai", LIBRARY)

_REQUEST_PARAMS = {
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "max_tokens": "gen_ai.request.max_tokens",
    "max_completion_tokens": "gen_ai.request.max_tokens",
    "max_output_tokens": "gen_ai.request.max_tokens",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
    "presence_penalty": "gen_ai.request.presence_penalty",
    "seed": "gen_ai.request.seed",
    "n": "gen_ai.request.choice.count",
}
_sentinels: tuple[type, ...] = ()
_streams: tuple[type, ...] = ()


def autolog(*, disable: bool = False, log_traces: bool = True, silent: bool = False) -> None:
    """Trace every OpenAI call: chat completions, Responses API and embeddings.

    Example:
        >>> import tracemark as tm
        >>> tm.openai.autolog()

    If `openai` is not imported yet, the patches are applied when it is.

    Args:
        disable: Remove the patches and restore the library's own methods.
        log_traces: False keeps the patches but records nothing.
        silent: Do not log tracemark's own messages about this integration.
    """
    INSTRUMENTATION.autolog(
        _install,
        package="openai",
        disable=disable,
        log_traces=log_traces,
        silent=silent,
    )


def _install(module: Any) -> None:
    global _sentinels, _streams
    import importlib

    _sentinels = tuple(t for t in (getattr(module, n, None) for n in ("NotGiven", "Omit")) if t)
    _streams = (module.Stream, module.AsyncStream)
    inst = INSTRUMENTATION
    if not inst.enabled:
        return

    def sync(call: type[LLMCall]) -> Callable[[Any], Any]:
        return lambda original: sync_wrapper(inst, call, original)

    def async_(call: type[LLMCall]) -> Callable[[Any], Any]:
        return lambda original: async_wrapper(inst, call, original)

    # (module, sync class, async class, methods, call) - older SDKs lack some of them.
    targets = [
        ("chat.completions", "Completions", "AsyncCompletions", ("create", "parse"), ChatCall),
        ("responses", "Responses", "AsyncResponses", ("create", "parse"), ResponsesCall),
        ("embeddings", "Embeddings", "AsyncEmbeddings", ("create",), EmbeddingsCall),
    ]
    for path, sync_name, async_name, methods, call in targets:
        try:
            resources = importlib.import_module(f"openai.resources.{path}")
        except ImportError:
            continue
        for method in methods:
            inst.wrap(getattr(resources, sync_name), method, sync(call))
            inst.wrap(getattr(resources, async_name), method, async_(call))


# -- what each call records ------------------------------------------------------------------


@lru_cache(maxsize=256)
def _format_of(cls: type) -> dict[str, Any]:
    """Describe a `response_format`/`text_format` class as the JSON schema sent for it."""
    schema = getattr(cls, "model_json_schema", None)
    out: dict[str, Any] = {"type": "json_schema", "name": cls.__name__}
    if schema is not None:
        # The name alone still says what was asked for when no schema can be made.
        with contextlib.suppress(Exception):
            out["schema"] = schema()
    return out


def _dump(obj: Any) -> Any:
    """Return a response model as the JSON the API sent (unset fields left out)."""
    dump = getattr(obj, "model_dump", None)
    if dump is None:
        return obj
    return dump(exclude_unset=True, warnings=False)


class OpenAICall(LLMCall):
    """The part shared by every OpenAI call."""

    provider = "openai"
    __slots__ = ()

    def inputs(self) -> Any:
        """Return the request without sentinels, credentials or inline media."""
        sentinels = _sentinels
        out: dict[str, Any] = {}
        for key, value in self.kwargs.items():
            if key in ("extra_headers", "timeout") or isinstance(value, sentinels):
                continue
            if key in ("messages", "input"):
                value = scrub_media(value)
            elif key in ("response_format", "text_format") and isinstance(value, type):
                value = _format_of(value)
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
        stop = kwargs.get("stop")
        if isinstance(stop, str):
            attrs["gen_ai.request.stop_sequences"] = [stop]
        elif isinstance(stop, (list, tuple)):
            attrs["gen_ai.request.stop_sequences"] = [str(s) for s in stop]
        host = client_info(self.resource, "openai").host
        if host:
            attrs["server.address"] = host
        return attrs

    def is_stream(self, result: Any) -> bool:
        """Return whether the call returned an SDK stream."""
        return isinstance(result, _streams)

    def cost_provider(self) -> str:
        """Return the genai-prices provider of the client's base URL."""
        return client_info(self.resource, "openai").provider


class ChatCall(OpenAICall):
    """`chat.completions.create` and `parse` (and `stream`, which calls `create`)."""

    __slots__ = ()

    def record(self, span: Any, response: Any) -> None:
        """Record a `ChatCompletion`."""
        if getattr(response, "choices", None) is None:  # e.g. a raw response wrapper
            return
        span.set_outputs(_dump(response))
        _record_chat(
            self,
            span,
            response.model,
            response.id,
            response.choices,
            response.usage,
            getattr(response, "service_tier", None),
        )

    def collector(self) -> StreamCollector:
        """Return a collector re-assembling the streamed chunks."""
        return _ChatChunks(self)


def _record_chat(
    call: OpenAICall,
    span: Any,
    model: str | None,
    response_id: str | None,
    choices: list[Any],
    usage: Any,
    service_tier: str | None,
) -> None:
    attrs = span.attributes
    if model:
        attrs["gen_ai.response.model"] = model
    if response_id:
        attrs["gen_ai.response.id"] = response_id
    reasons = [c.finish_reason for c in choices if getattr(c, "finish_reason", None)]
    if reasons:
        attrs["gen_ai.response.finish_reasons"] = reasons
    if usage is not None:
        prompt = getattr(usage, "prompt_tokens_details", None)
        completion = getattr(usage, "completion_tokens_details", None)
        set_usage(
            span,
            provider=call.cost_provider(),
            model=model or call.model,
            input_tokens=usage.prompt_tokens,
            output_tokens=usage.completion_tokens,
            cache_read_tokens=getattr(prompt, "cached_tokens", None) or 0,
            extra={
                "input_audio_tokens": getattr(prompt, "audio_tokens", None) or 0,
                "output_audio_tokens": getattr(completion, "audio_tokens", None) or 0,
            },
            service_tier=service_tier,
        )


class _ChatChunks(StreamCollector):
    """Re-assembles `ChatCompletionChunk`s into the final `ChatCompletion`."""

    __slots__ = ("call", "chunks")

    def __init__(self, call: ChatCall) -> None:
        self.call = call
        self.chunks: list[Any] = []

    def add(self, item: Any) -> None:
        """Keep the chunk (assembly waits for the end)."""
        self.chunks.append(item)

    def finish(self, span: Any) -> None:
        """Set the assembled completion as outputs, with usage and finish reasons."""
        head: dict[str, Any] = {}
        usage = None
        choices: dict[int, dict[str, Any]] = {}
        for chunk in self.chunks:
            if not head and getattr(chunk, "id", None):
                head = {
                    "id": chunk.id,
                    "object": "chat.completion",
                    "created": chunk.created,
                    "model": chunk.model,
                }
                for key in ("system_fingerprint", "service_tier"):
                    value = getattr(chunk, key, None)
                    if value is not None:
                        head[key] = value
            if getattr(chunk, "usage", None) is not None:
                usage = chunk.usage
            for choice in chunk.choices or ():
                _merge_choice(choices.setdefault(choice.index, {"parts": []}), choice)
        out_choices = [_assembled_choice(i, choices[i]) for i in sorted(choices)]
        outputs: dict[str, Any] = {**head, "choices": out_choices}
        if usage is not None:
            outputs["usage"] = _dump(usage)
        span.set_outputs(outputs)
        reasons = [c for c in out_choices if c.get("finish_reason")]
        _record_chat(
            self.call,
            span,
            head.get("model"),
            head.get("id"),
            [_Reason(c["finish_reason"]) for c in reasons],
            usage,
            head.get("service_tier"),
        )


class _Reason:
    __slots__ = ("finish_reason",)

    def __init__(self, finish_reason: str) -> None:
        self.finish_reason = finish_reason


def _merge_choice(state: dict[str, Any], choice: Any) -> None:
    delta = choice.delta
    if delta is not None:
        if delta.role:
            state["role"] = delta.role
        if delta.content:
            state["parts"].append(delta.content)
        refusal = getattr(delta, "refusal", None)
        if refusal:
            state["refusal"] = state.get("refusal", "") + refusal
        function_call = getattr(delta, "function_call", None)
        if function_call is not None:
            fc = state.setdefault("function_call", {"name": "", "arguments": ""})
            fc["name"] += function_call.name or ""
            fc["arguments"] += function_call.arguments or ""
        for tc in getattr(delta, "tool_calls", None) or ():
            calls = state.setdefault("tool_calls", {})
            slot = calls.setdefault(
                tc.index,
                {"id": None, "type": "function", "function": {"name": "", "arguments": ""}},
            )
            if tc.id:
                slot["id"] = tc.id
            if tc.type:
                slot["type"] = tc.type
            fn = tc.function
            if fn is not None:
                slot["function"]["name"] += fn.name or ""
                slot["function"]["arguments"] += fn.arguments or ""
    if choice.finish_reason:
        state["finish_reason"] = choice.finish_reason


def _assembled_choice(index: int, state: dict[str, Any]) -> dict[str, Any]:
    parts = state["parts"]
    message: dict[str, Any] = {
        "role": state.get("role", "assistant"),
        "content": "".join(parts) if parts else None,
    }
    if "refusal" in state:
        message["refusal"] = state["refusal"]
    if "function_call" in state:
        message["function_call"] = state["function_call"]
    if "tool_calls" in state:
        calls = state["tool_calls"]
        message["tool_calls"] = [calls[i] for i in sorted(calls)]
    return {"index": index, "message": message, "finish_reason": state.get("finish_reason")}


class ResponsesCall(OpenAICall):
    """`responses.create` and `parse` (and `stream`, which calls `create`)."""

    __slots__ = ()

    def record(self, span: Any, response: Any) -> None:
        """Record a `Response`."""
        if getattr(response, "output", None) is None:
            return
        span.set_outputs(_dump(response))
        _record_response(self, span, response)

    def collector(self) -> StreamCollector:
        """Return a collector keeping the final response of the event stream."""
        return _ResponseEvents(self)


def _record_response(call: OpenAICall, span: Any, response: Any) -> None:
    attrs = span.attributes
    if response.model:
        attrs["gen_ai.response.model"] = response.model
    if response.id:
        attrs["gen_ai.response.id"] = response.id
    incomplete = getattr(response, "incomplete_details", None)
    reason = getattr(incomplete, "reason", None) or getattr(response, "status", None)
    if reason:
        attrs["gen_ai.response.finish_reasons"] = [reason]
    usage = getattr(response, "usage", None)
    if usage is not None:
        details = getattr(usage, "input_tokens_details", None)
        set_usage(
            span,
            provider=call.cost_provider(),
            model=response.model or call.model,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_tokens=getattr(details, "cached_tokens", None) or 0,
            service_tier=getattr(response, "service_tier", None),
        )


_FINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})


class _ResponseEvents(StreamCollector):
    """Keeps the final `Response` of a Responses API event stream (or the text so far)."""

    __slots__ = ("call", "final", "text")

    def __init__(self, call: ResponsesCall) -> None:
        self.call = call
        self.final: Any = None
        self.text: list[str] = []

    def add(self, item: Any) -> None:
        """Look at one event."""
        kind = getattr(item, "type", None)
        if kind == "response.output_text.delta":
            self.text.append(item.delta)
        elif kind in _FINAL_EVENTS:
            self.final = item.response

    def finish(self, span: Any) -> None:
        """Set the final response as outputs, or the text received before the stream ended."""
        if self.final is not None:
            span.set_outputs(_dump(self.final))
            _record_response(self.call, span, self.final)
        elif self.text:
            span.set_outputs({"output_text": "".join(self.text)})


class EmbeddingsCall(OpenAICall):
    """`embeddings.create`."""

    span_type = "EMBEDDING"
    operation = "embeddings"
    __slots__ = ()

    def record(self, span: Any, response: Any) -> None:
        """Record a `CreateEmbeddingResponse`."""
        if getattr(response, "data", None) is None:
            return
        span.set_outputs(_dump(response))
        attrs = span.attributes
        if response.model:
            attrs["gen_ai.response.model"] = response.model
        usage = getattr(response, "usage", None)
        if usage is not None:
            set_usage(
                span,
                provider=self.cost_provider(),
                model=response.model or self.model,
                input_tokens=usage.prompt_tokens,
                output_tokens=None,
            )
