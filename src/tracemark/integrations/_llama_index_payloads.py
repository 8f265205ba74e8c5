"""LlamaIndex's objects in tracemark's forms: messages, documents, responses, model results.

Chat messages become OpenAI-style messages, nodes tracemark's documents (the score in their
metadata), query responses their text and source documents, embeddings their count and
dimension, and an LLM call's response the span's `choices`, token usage and cost. Components
passed as arguments (an LLM, an index) are named, never dumped: an LLM's fields include its
API key.
"""

from __future__ import annotations

import inspect
from typing import Any

from llama_index.core.base.llms.types import ChatMessage, ChatResponse, CompletionResponse
from llama_index.core.base.response.schema import (
    AsyncStreamingResponse,
    PydanticResponse,
    Response,
    StreamingResponse,
)
from llama_index.core.schema import (
    BaseComponent,
    BaseNode,
    MetadataMode,
    NodeWithScore,
    QueryBundle,
)
from llama_index.core.tools.types import ToolOutput

from tracemark.integrations._llm import set_usage
from tracemark.integrations._media import media_reference, scrub_media
from tracemark.integrations._steps import ModelCall, document
from tracemark.tracing._serialize import dumps
from tracemark.tracing._span import UNSET

__all__ = [
    "arguments",
    "model_attributes",
    "model_call",
    "outputs",
    "payload",
    "query_response",
    "record_response",
]

_MAX_DEPTH = 8


def model_call(instance: Any) -> ModelCall:
    # `llama_index.llms.openai.base` -> "openai"; a provider package names its provider.
    parts = type(instance).__module__.split(".")
    provider = parts[2] if len(parts) > 2 and parts[1] in ("llms", "embeddings") else ""
    model = getattr(instance, "model", None) or getattr(instance, "model_name", None)
    base_url = getattr(instance, "api_base", None) or getattr(instance, "base_url", None)
    return ModelCall(
        provider,
        model if isinstance(model, str) else None,
        base_url if isinstance(base_url, str) else None,
    )


def model_attributes(call: ModelCall, operation: str) -> dict[str, Any]:
    attributes: dict[str, Any] = {"gen_ai.operation.name": operation}
    if call.provider:
        attributes["gen_ai.provider.name"] = call.provider
    if call.model:
        attributes["gen_ai.request.model"] = call.model
    return attributes


def record_response(
    span: Any, response: Any, call: ModelCall | None, *, usage: bool = True
) -> None:
    """Set an LLM span's outputs, response attributes, token usage and cost.

    Args:
        span: The LLM call's span.
        response: LlamaIndex's `ChatResponse` or `CompletionResponse`.
        call: The model and provider, for the cost.
        usage: False leaves token usage and cost out (another span records them).
    """
    if isinstance(response, ChatResponse):
        choice: dict[str, Any] = {"index": 0, "message": _message(response.message)}
    elif isinstance(response, CompletionResponse):
        choice = {"index": 0, "text": response.text}
    else:
        return
    raw = response.raw
    first = _first_choice(raw)
    reason = _get(first, "finish_reason") or _get(raw, "stop_reason")
    choice["finish_reason"] = reason
    model = _get(raw, "model")
    outputs: dict[str, Any] = {"choices": [choice]}
    attrs = span.attributes
    if isinstance(model, str) and model:
        outputs["model"] = model
        attrs["gen_ai.response.model"] = model
    response_id = _get(raw, "id")
    if isinstance(response_id, str) and response_id:
        attrs["gen_ai.response.id"] = response_id
    if isinstance(reason, str) and reason:
        attrs["gen_ai.response.finish_reasons"] = [reason]
    span.set_outputs(outputs)
    if usage:
        _record_usage(span, response, raw, model, call)


def _record_usage(span: Any, response: Any, raw: Any, model: Any, call: ModelCall | None) -> None:
    usage = _get(raw, "usage")
    cache_read = cache_write = 0
    if _get(usage, "prompt_tokens") is not None:  # OpenAI style
        input_tokens = _get(usage, "prompt_tokens")
        output_tokens = _get(usage, "completion_tokens")
        cache_read = _get(_get(usage, "prompt_tokens_details"), "cached_tokens") or 0
    elif _get(usage, "input_tokens") is not None:  # Anthropic style: cached input is apart
        cache_read = _get(usage, "cache_read_input_tokens") or 0
        cache_write = _get(usage, "cache_creation_input_tokens") or 0
        input_tokens = _get(usage, "input_tokens") + cache_read + cache_write
        output_tokens = _get(usage, "output_tokens")
    else:  # what the LLM class reported, e.g. `prompt_tokens` in `additional_kwargs`
        extra = response.additional_kwargs or {}
        input_tokens = extra.get("prompt_tokens")
        output_tokens = extra.get("completion_tokens")
    if not isinstance(input_tokens, int) and not isinstance(output_tokens, int):
        return
    set_usage(
        span,
        provider=call.cost_provider() if call is not None else "",
        model=model if isinstance(model, str) and model else (call.model if call else None),
        input_tokens=input_tokens if isinstance(input_tokens, int) else None,
        output_tokens=output_tokens if isinstance(output_tokens, int) else None,
        cache_read_tokens=cache_read if isinstance(cache_read, int) else 0,
        cache_write_tokens=cache_write if isinstance(cache_write, int) else 0,
    )


def _get(obj: Any, key: str) -> Any:
    """Read a field of an SDK response object or of its dict form."""
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(key)
    return getattr(obj, key, None)


def _first_choice(raw: Any) -> Any:
    choices = _get(raw, "choices")
    return choices[0] if isinstance(choices, list) and choices else None


# -- payloads ----------------------------------------------------------------------------


def arguments(bound_args: inspect.BoundArguments) -> dict[str, Any]:
    """The call's arguments by name, `**kwargs` merged in, as JSON-friendly values."""
    inputs: dict[str, Any] = {}
    parameters = bound_args.signature.parameters
    for key, value in bound_args.arguments.items():
        parameter = parameters.get(key)
        if parameter is not None and parameter.kind is inspect.Parameter.VAR_KEYWORD:
            for name, item in value.items():
                inputs[name] = payload(item)
        else:
            inputs[key] = payload(value)
    return inputs


def outputs(kind: str, result: Any) -> Any:
    if inspect.isgenerator(result) or inspect.isasyncgen(result):
        return UNSET  # what it yields is recorded by the spans that consume it
    if kind == "EMBEDDING":
        return _embedding_summary(result)
    if kind == "TOOL" and isinstance(result, ToolOutput):
        return result.raw_output if _plain(result.raw_output) else result.content
    return payload(result)


def _embedding_summary(result: Any) -> Any:
    # Vectors are large and tell a reader nothing: their count and dimension do.
    if isinstance(result, list) and result and isinstance(result[0], list):
        return {"count": len(result), "dimensions": len(result[0])}
    if isinstance(result, list) and all(isinstance(x, float) for x in result[:4]):
        return {"dimensions": len(result)}
    return payload(result)


def _plain(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool, dict, list))


def query_response(response: Any, text: str | None) -> dict[str, Any]:
    """A query response: its text and the documents it was based on."""
    if text is None:
        text = getattr(response, "response", None)
        if text is None:
            text = getattr(response, "response_txt", None)
    return {
        "response": text,
        "source_nodes": [payload(n) for n in getattr(response, "source_nodes", ()) or ()],
    }


def payload(value: Any, depth: int = 0) -> Any:
    """Return `value` with LlamaIndex objects in tracemark's forms (messages, documents)."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, QueryBundle):
        return value.query_str
    if isinstance(value, NodeWithScore):
        metadata = dict(value.node.metadata or {})
        if value.score is not None:
            metadata["score"] = value.score
        node = value.node
        return document(node.get_content(MetadataMode.NONE), metadata, node.node_id)
    if isinstance(value, BaseNode):
        return document(value.get_content(MetadataMode.NONE), value.metadata, value.node_id)
    if isinstance(value, ChatMessage):
        return _message(value)
    if isinstance(value, ChatResponse):
        return _message(value.message)
    if isinstance(value, CompletionResponse):
        return value.text
    if isinstance(value, (Response, PydanticResponse, StreamingResponse, AsyncStreamingResponse)):
        return query_response(value, None)
    if isinstance(value, ToolOutput):
        return value.content
    if isinstance(value, BaseComponent):
        # An LLM, an index, a retriever passed as an argument: named, never dumped (an
        # LLM's fields include its API key).
        return f"<{type(value).__name__}>"
    if depth < _MAX_DEPTH:
        if isinstance(value, dict):
            return {str(k): payload(v, depth + 1) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [payload(v, depth + 1) for v in value]
        result = getattr(value, "result", None)
        if type(value).__name__ == "StopEvent" and result is not None:
            return payload(result, depth + 1)
        if type(value).__name__ == "AgentOutput":
            return {
                "response": payload(value.response, depth + 1),
                "tool_calls": payload(value.tool_calls, depth + 1),
            }
    if type(value).__name__ == "Context":
        return "<Context>"  # a workflow's run state: large, and not the step's input
    return value


def _message(message: ChatMessage) -> dict[str, Any]:
    """A LlamaIndex chat message, OpenAI-style."""
    role = getattr(message.role, "value", message.role)
    out: dict[str, Any] = {"role": role}
    parts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    for block in message.blocks:
        kind = getattr(block, "block_type", None)
        if kind == "text":
            parts.append({"type": "text", "text": block.text})
        elif kind == "tool_call":
            arguments = block.tool_kwargs
            if not isinstance(arguments, str):
                arguments = dumps(arguments)
            calls.append(
                {
                    "id": block.tool_call_id,
                    "type": "function",
                    "function": {"name": block.tool_name, "arguments": arguments},
                }
            )
        elif kind == "image":
            url = getattr(block, "url", None)
            image = getattr(block, "image", None)
            if url:
                reference = str(url)
            elif image:
                mime = getattr(block, "image_mimetype", None)
                reference = media_reference(bytes(image).decode("ascii", "replace"), mime)
            else:
                reference = str(getattr(block, "path", "") or "")
            parts.append({"type": "image_url", "image_url": {"url": reference}})
        elif kind is not None:
            parts.append({"type": kind})
    if all(part.get("type") == "text" for part in parts):
        text = "".join(part["text"] for part in parts)
        out["content"] = text if parts else None
    else:
        out["content"] = scrub_media(parts)
    if not calls:
        for call in message.additional_kwargs.get("tool_calls") or ():
            dumped = call.model_dump() if hasattr(call, "model_dump") else call
            if isinstance(dumped, dict):
                calls.append(dumped)
    if calls:
        out["tool_calls"] = calls
    tool_call_id = message.additional_kwargs.get("tool_call_id")
    if tool_call_id:
        out["tool_call_id"] = tool_call_id
    return out
