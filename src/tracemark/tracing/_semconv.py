"""Map OpenTelemetry GenAI and OpenInference span attributes onto tracemark's span model.

Shared by the span processor (`tracemark.tracing.otel`) and the server's OTLP ingest: one
pure function, no OpenTelemetry import. Chat messages end up OpenAI-style whichever
convention carried them (GenAI's role/parts messages are rewritten, see `_chat_messages`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from tracemark.entities.trace import SpanType

__all__ = ["SPAN_TYPE_KEY", "MappedAttributes", "map_otel_attributes"]

SPAN_TYPE_KEY = "tracemark.span.type"
INPUT_VALUE, INPUT_MIME = "input.value", "input.mime_type"
OUTPUT_VALUE, OUTPUT_MIME = "output.value", "output.mime_type"

_OPENINFERENCE_KINDS = {
    "LLM": SpanType.LLM,
    "CHAIN": SpanType.CHAIN,
    "TOOL": SpanType.TOOL,
    "AGENT": SpanType.AGENT,
    "RETRIEVER": SpanType.RETRIEVER,
    "EMBEDDING": SpanType.EMBEDDING,
    "RERANKER": SpanType.RERANKER,
    "GUARDRAIL": SpanType.GUARDRAIL,
    "EVALUATOR": SpanType.EVALUATOR,
    "PROMPT": SpanType.CHAIN,
}
_GEN_AI_OPERATIONS = {
    "chat": SpanType.CHAT_MODEL,
    "text_completion": SpanType.LLM,
    "generate_content": SpanType.LLM,
    "embeddings": SpanType.EMBEDDING,
    "execute_tool": SpanType.TOOL,
    "invoke_agent": SpanType.AGENT,
    "create_agent": SpanType.AGENT,
}
_TRACELOOP_KINDS = {
    "workflow": SpanType.CHAIN,
    "task": SpanType.CHAIN,
    "agent": SpanType.AGENT,
    "tool": SpanType.TOOL,
}
_LLM_REQUEST_TYPES = {
    "chat": SpanType.CHAT_MODEL,
    "completion": SpanType.LLM,
    "embedding": SpanType.EMBEDDING,
    "rerank": SpanType.RERANKER,
}
# Canonical OpenTelemetry GenAI name <- aliases used by other conventions.
_ALIASES = {
    "gen_ai.usage.input_tokens": ("gen_ai.usage.prompt_tokens", "llm.token_count.prompt"),
    "gen_ai.usage.output_tokens": ("gen_ai.usage.completion_tokens", "llm.token_count.completion"),
    "gen_ai.usage.total_tokens": ("llm.usage.total_tokens", "llm.token_count.total"),
    "gen_ai.request.model": ("llm.model_name",),
    "gen_ai.provider.name": ("gen_ai.system", "llm.provider", "llm.system"),
}
_INPUT_MESSAGE_PREFIXES = ("llm.input_messages.", "gen_ai.prompt.")
_OUTPUT_MESSAGE_PREFIXES = ("llm.output_messages.", "gen_ai.completion.")
_UNWRAP = ("message", "tool_call", "document", "message_content")
_SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"
_DOCUMENTS_PREFIX = "retrieval.documents."
_ALIAS_KEYS = frozenset(alias for aliases in _ALIASES.values() for alias in aliases)
_METADATA_KEYS = frozenset(("session.id", "user.id", "gen_ai.conversation.id"))


@dataclass(slots=True)
class MappedAttributes:
    """What a foreign span's attributes mean in tracemark terms.

    Attributes:
        span_type: The tracemark span type, or None when nothing says.
        has_inputs: Whether `inputs` was found.
        inputs: The span's inputs (a request body or a list of messages).
        has_outputs: Whether `outputs` was found.
        outputs: The span's outputs.
        attributes: The remaining attributes, token counts and model under GenAI names.
        metadata: Trace-level metadata found on the span (`session_id`, `user_id`).
    """

    span_type: str | None = None
    has_inputs: bool = False
    inputs: Any = None
    has_outputs: bool = False
    outputs: Any = None
    attributes: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)


def map_otel_attributes(attributes: Mapping[str, Any], *, owned: bool = False) -> MappedAttributes:
    """Map OpenTelemetry GenAI, OpenInference and OpenLLMetry attributes onto tracemark's.

    Example:
        >>> m = map_otel_attributes({"openinference.span.kind": "LLM", "input.value": "hi"})
        >>> m.span_type, m.inputs
        ('LLM', 'hi')

    Args:
        attributes: A span's attributes as OpenTelemetry reports them.
        owned: The caller hands over a fresh dict without tuple values (OTLP ingest): it
            is reused as the result's `attributes` instead of copied, which matters at
            thousands of spans per request.
    """
    if owned and isinstance(attributes, dict):
        attrs = attributes
    else:
        attrs = {k: list(v) if isinstance(v, tuple) else v for k, v in attributes.items()}
    mapped = MappedAttributes(span_type=_span_type(attrs))
    consumed: list[str] = [SPAN_TYPE_KEY]

    found, value = _payload(attrs, INPUT_VALUE, INPUT_MIME, "gen_ai.input.messages")
    if found and INPUT_VALUE not in attrs and _SYSTEM_INSTRUCTIONS in attrs:
        value = _with_system_instructions(attrs[_SYSTEM_INSTRUCTIONS], value)
        consumed.append(_SYSTEM_INSTRUCTIONS)
    if not found:
        found, value = _messages(attrs, _INPUT_MESSAGE_PREFIXES, consumed)
    if not found and "traceloop.entity.input" in attrs:
        found, value = True, _json_or_text(attrs["traceloop.entity.input"])
        consumed.append("traceloop.entity.input")
    mapped.has_inputs, mapped.inputs = found, value
    if found:
        consumed += (INPUT_VALUE, INPUT_MIME)
        if INPUT_VALUE not in attrs:
            consumed.append("gen_ai.input.messages")

    found, value = _payload(attrs, OUTPUT_VALUE, OUTPUT_MIME, "gen_ai.output.messages")
    if not found:
        found, value = _messages(attrs, _OUTPUT_MESSAGE_PREFIXES, consumed)
    if not found:
        found, value = _documents(attrs, consumed)
    if not found and "traceloop.entity.output" in attrs:
        found, value = True, _json_or_text(attrs["traceloop.entity.output"])
        consumed.append("traceloop.entity.output")
    mapped.has_outputs, mapped.outputs = found, value
    if found:
        consumed += (OUTPUT_VALUE, OUTPUT_MIME)
        if OUTPUT_VALUE not in attrs:
            consumed.append("gen_ai.output.messages")

    if not _METADATA_KEYS.isdisjoint(attrs):
        for key in ("session.id", "user.id"):
            if key in attrs:
                mapped.metadata[key.replace(".", "_")] = str(attrs[key])
        if "session_id" not in mapped.metadata and "gen_ai.conversation.id" in attrs:
            mapped.metadata["session_id"] = str(attrs["gen_ai.conversation.id"])

    for key in consumed:
        attrs.pop(key, None)
    if not _ALIAS_KEYS.isdisjoint(attrs):
        for canonical, aliases in _ALIASES.items():
            if canonical not in attrs:
                for alias in aliases:
                    if alias in attrs:
                        attrs[canonical] = attrs[alias]
                        break
    mapped.attributes = attrs
    return mapped


def _span_type(attrs: Mapping[str, Any]) -> str | None:
    explicit = attrs.get(SPAN_TYPE_KEY)
    if isinstance(explicit, str) and explicit:
        return explicit
    kind = attrs.get("openinference.span.kind")
    if isinstance(kind, str) and kind.upper() in _OPENINFERENCE_KINDS:
        return _OPENINFERENCE_KINDS[kind.upper()]
    for key, table in (
        ("gen_ai.operation.name", _GEN_AI_OPERATIONS),
        ("traceloop.span.kind", _TRACELOOP_KINDS),
        ("llm.request.type", _LLM_REQUEST_TYPES),
    ):
        value = attrs.get(key)
        if isinstance(value, str) and value.lower() in table:
            return table[value.lower()]
    return None


def _payload(
    attrs: Mapping[str, Any], value_key: str, mime_key: str, messages_key: str
) -> tuple[bool, Any]:
    if value_key in attrs:
        value = attrs[value_key]
        mime = str(attrs.get(mime_key, ""))
        if isinstance(value, str) and (mime == "application/json" or not mime):
            return True, _json_or_text(value) if mime == "application/json" else value
        return True, value
    if messages_key in attrs:
        return True, _chat_messages(_json_or_text(attrs[messages_key]))
    return False, None


def _json_or_text(value: Any) -> Any:
    if not isinstance(value, (str, bytes)):
        return value
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return value


def _messages(
    attrs: Mapping[str, Any], prefixes: tuple[str, ...], consumed: list[str]
) -> tuple[bool, Any]:
    # One pass finds whether any key qualifies: most spans carry no flattened messages.
    candidates = [key for key in attrs if key.startswith(prefixes)]
    for prefix in prefixes if candidates else ():
        tree: dict[Any, Any] = {}
        for key in candidates:
            if key.startswith(prefix):
                rest = key[len(prefix) :].split(".")
                if rest[0].isdigit():
                    _set_path(tree, rest, attrs[key])
                    consumed.append(key)
        if tree:
            return True, _chat_messages(_listify(tree))
    return False, None


def _documents(attrs: Mapping[str, Any], consumed: list[str]) -> tuple[bool, Any]:
    """Read OpenInference `retrieval.documents.N.document.*` as tracemark documents."""
    found, docs = _messages(attrs, (_DOCUMENTS_PREFIX,), consumed)
    if not found or not isinstance(docs, list):
        return found, docs
    out = []
    for doc in docs:
        if not isinstance(doc, dict):
            out.append(doc)
            continue
        metadata = _json_or_text(doc.get("metadata")) if "metadata" in doc else {}
        if not isinstance(metadata, dict):
            metadata = {"metadata": metadata}
        if "score" in doc:
            metadata = {**metadata, "score": doc["score"]}
        out.append({"page_content": doc.get("content"), "metadata": metadata, "id": doc.get("id")})
    return True, out


def _chat_messages(value: Any) -> Any:
    """Rewrite messages OpenAI-style: GenAI role/parts messages, OpenInference `contents`.

    Messages already in OpenAI's shape, and anything that is not a list of messages, are
    returned unchanged.
    """
    if not isinstance(value, list):
        return value
    out: list[Any] = []
    for message in value:
        if not isinstance(message, dict):
            out.append(message)
        elif "contents" in message and "content" not in message:
            message = dict(message)
            message["content"] = message.pop("contents")
            out.append(message)
        elif isinstance(message.get("parts"), list) and "content" not in message:
            out.extend(_from_parts(message))
        else:
            out.append(message)
    return out


def _from_parts(message: dict[str, Any]) -> list[dict[str, Any]]:
    """Turn one GenAI `{"role", "parts": [...]}` message into OpenAI-style messages."""
    role = message.get("role")
    rest = {k: v for k, v in message.items() if k not in ("role", "parts")}
    content: list[Any] = []
    tool_calls: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    for part in message["parts"]:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            content.append({"type": "text", "text": part.get("content", "")})
        elif kind == "tool_call":
            arguments = part.get("arguments")
            if not isinstance(arguments, str):
                arguments = orjson.dumps(arguments).decode()
            call = {"name": part.get("name"), "arguments": arguments}
            tool_calls.append({"id": part.get("id"), "type": "function", "function": call})
        elif kind == "tool_call_response":
            response = part.get("response")
            if not isinstance(response, str):
                response = orjson.dumps(response).decode()
            results.append({"role": "tool", "tool_call_id": part.get("id"), "content": response})
        else:
            content.append(part)
    if results and not content and not tool_calls:
        return results
    out: dict[str, Any] = {"role": role, "content": content or None}
    if len(content) == 1 and isinstance(content[0], dict) and content[0].get("type") == "text":
        out["content"] = content[0]["text"]
    if tool_calls:
        out["tool_calls"] = tool_calls
    out.update(rest)
    return [out, *results]


def _with_system_instructions(instructions: Any, messages: Any) -> Any:
    """Put GenAI's `gen_ai.system_instructions` first, as an OpenAI system message."""
    if not isinstance(messages, list):
        return messages
    parts = _json_or_text(instructions)
    if isinstance(parts, list):
        system = _from_parts({"role": "system", "parts": parts})[0]
    else:
        system = {"role": "system", "content": parts}
    return [system, *messages]


def _set_path(node: dict[Any, Any], path: list[str], value: Any) -> None:
    for segment in path[:-1]:
        key = int(segment) if segment.isdigit() else segment
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            return  # `a.0` and `a.0.b` both set: the flat value stays, the deeper one is dropped
        node = child
    last = path[-1]
    node[int(last) if last.isdigit() else last] = value


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    if node and all(isinstance(k, int) for k in node):
        return [_listify(node[k]) for k in sorted(node)]
    if len(node) == 1:
        (key,) = node
        if key in _UNWRAP:
            return _listify(node[key])
    return {k: _listify(v) for k, v in node.items()}
