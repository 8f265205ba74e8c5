"""LangChain's objects in tracemark's forms: messages, documents, model results.

LangChain messages become OpenAI-style messages (with inline media replaced by references),
documents tracemark's documents, and a model run's `LLMResult` the span's `choices`, response
attributes, token usage and cost.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.documents import Document
from langchain_core.messages import BaseMessage, convert_to_openai_messages
from langchain_core.outputs import ChatGeneration, LLMResult
from langchain_core.prompt_values import ChatPromptValue, StringPromptValue

from tracemark.integrations._llm import set_usage
from tracemark.integrations._media import scrub_media
from tracemark.integrations._steps import ModelCall, document

__all__ = [
    "base_url",
    "is_graph_signal",
    "openai_messages",
    "payload",
    "record_result",
    "run_name",
]

_MAX_DEPTH = 8
# Keys under which a chat model's serialized constructor arguments hold its base URL.
_BASE_URL_KEYS = ("openai_api_base", "base_url", "anthropic_api_url", "api_base")


def run_name(serialized: dict[str, Any] | None, kwargs: dict[str, Any], default: str) -> str:
    name = kwargs.get("name")
    if name:
        return str(name)
    if serialized:
        name = serialized.get("name")
        if name:
            return str(name)
        ids = serialized.get("id")
        if isinstance(ids, list) and ids:
            return str(ids[-1])
    return default


def base_url(serialized: dict[str, Any] | None) -> str | None:
    kwargs = (serialized or {}).get("kwargs")
    if isinstance(kwargs, dict):
        for key in _BASE_URL_KEYS:
            value = kwargs.get(key)
            if isinstance(value, str) and value:
                return value
    return None


def _message(message: BaseMessage) -> Any:
    try:
        return convert_to_openai_messages(message)
    except Exception:  # content blocks it does not know: keep LangChain's own form
        return message


def openai_messages(items: Sequence[BaseMessage]) -> Any:
    """Return LangChain messages OpenAI-style, inline media replaced by references."""
    return scrub_media([_message(m) for m in items])


def payload(value: Any, depth: int = 0) -> Any:
    """Return `value` with LangChain messages OpenAI-style and documents as tracemark's."""
    if isinstance(value, BaseMessage):
        return scrub_media([_message(value)])[0]
    if isinstance(value, Document):
        return document(value.page_content, value.metadata, value.id)
    if isinstance(value, ChatPromptValue):
        return {"messages": openai_messages(value.messages)}
    if isinstance(value, StringPromptValue):
        return value.text
    if depth < _MAX_DEPTH:
        if isinstance(value, dict):
            return {key: payload(item, depth + 1) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [payload(item, depth + 1) for item in value]
    return value


def is_graph_signal(error: BaseException) -> bool:
    # LangGraph's interrupts and parent-graph commands travel as exceptions but are not
    # failures; matched by name so that LangGraph need not be installed.
    return any(cls.__name__ == "GraphBubbleUp" for cls in type(error).__mro__)


# -- model results ---------------------------------------------------------------------------


def record_result(span: Any, response: LLMResult, call: ModelCall | None) -> None:
    """Set a model span's outputs, response attributes, token usage and cost."""
    generations = response.generations[0] if response.generations else []
    llm_output = response.llm_output or {}
    choices: list[dict[str, Any]] = []
    reasons: list[str] = []
    model = llm_output.get("model_name") or llm_output.get("model")
    response_id = llm_output.get("id")
    usage: dict[str, Any] | None = None
    tier = None
    for index, generation in enumerate(generations):
        info = generation.generation_info or {}
        reason = info.get("finish_reason") or info.get("stop_reason")
        if isinstance(generation, ChatGeneration):
            message = generation.message
            meta = message.response_metadata or {}
            reason = reason or meta.get("finish_reason") or meta.get("stop_reason")
            model = model or meta.get("model_name") or meta.get("model")
            response_id = response_id or meta.get("id")
            usage = usage or getattr(message, "usage_metadata", None)
            tier = tier or meta.get("service_tier")
            choice: dict[str, Any] = {"index": index, "message": payload(message)}
        else:
            model = model or info.get("model_name") or info.get("model")
            choice = {"index": index, "text": generation.text}
        choice["finish_reason"] = reason
        if reason:
            reasons.append(str(reason))
        choices.append(choice)
    outputs: dict[str, Any] = {"choices": choices}
    if model:
        outputs["model"] = model
        span.attributes["gen_ai.response.model"] = model
    if response_id:
        span.attributes["gen_ai.response.id"] = response_id
    if reasons:
        span.attributes["gen_ai.response.finish_reasons"] = reasons
    if usage:
        outputs["usage"] = dict(usage)
    span.set_outputs(outputs)
    _record_usage(span, usage, llm_output, model, call, tier)


def _record_usage(
    span: Any,
    usage: Any,
    llm_output: dict[str, Any],
    model: str | None,
    call: ModelCall | None,
    service_tier: str | None,
) -> None:
    cache_read = cache_write = 0
    if usage:
        input_tokens = usage.get("input_tokens")
        output_tokens = usage.get("output_tokens")
        details = usage.get("input_token_details") or {}
        cache_read = details.get("cache_read") or 0
        cache_write = details.get("cache_creation") or 0
    else:
        # Providers that only report usage the legacy way (`llm_output["token_usage"]`).
        legacy = llm_output.get("token_usage") or llm_output.get("usage") or {}
        if not isinstance(legacy, dict):
            return
        input_tokens = legacy.get("prompt_tokens", legacy.get("input_tokens"))
        output_tokens = legacy.get("completion_tokens", legacy.get("output_tokens"))
    if input_tokens is None and output_tokens is None:
        return
    provider = call.cost_provider() if call is not None else ""
    set_usage(
        span,
        provider=provider,
        model=model or (call.model if call is not None else None),
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        service_tier=service_tier,
    )
