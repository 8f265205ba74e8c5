"""Map OpenTelemetry GenAI and OpenInference span attributes onto tracemark's span model.

Shared by the span processor (`tracemark.tracing.otel`) and usable by OTLP ingest: one
pure function, no OpenTelemetry import.
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
_UNWRAP = ("message", "tool_call", "document")


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


def map_otel_attributes(attributes: Mapping[str, Any]) -> MappedAttributes:
    """Map OpenTelemetry GenAI, OpenInference and OpenLLMetry attributes onto tracemark's.

    Example:
        >>> m = map_otel_attributes({"openinference.span.kind": "LLM", "input.value": "hi"})
        >>> m.span_type, m.inputs
        ('LLM', 'hi')

    Args:
        attributes: A span's attributes as OpenTelemetry reports them.
    """
    attrs = {k: list(v) if isinstance(v, tuple) else v for k, v in attributes.items()}
    mapped = MappedAttributes(span_type=_span_type(attrs))
    consumed: set[str] = {SPAN_TYPE_KEY}

    found, value = _payload(attrs, INPUT_VALUE, INPUT_MIME, "gen_ai.input.messages")
    if not found:
        found, value = _messages(attrs, _INPUT_MESSAGE_PREFIXES, consumed)
    if not found and "traceloop.entity.input" in attrs:
        found, value = True, _json_or_text(attrs["traceloop.entity.input"])
        consumed.add("traceloop.entity.input")
    mapped.has_inputs, mapped.inputs = found, value
    consumed.update((INPUT_VALUE, INPUT_MIME) if found else ())
    if found and "gen_ai.input.messages" in attrs and INPUT_VALUE not in attrs:
        consumed.add("gen_ai.input.messages")

    found, value = _payload(attrs, OUTPUT_VALUE, OUTPUT_MIME, "gen_ai.output.messages")
    if not found:
        found, value = _messages(attrs, _OUTPUT_MESSAGE_PREFIXES, consumed)
    if not found and "traceloop.entity.output" in attrs:
        found, value = True, _json_or_text(attrs["traceloop.entity.output"])
        consumed.add("traceloop.entity.output")
    mapped.has_outputs, mapped.outputs = found, value
    consumed.update((OUTPUT_VALUE, OUTPUT_MIME) if found else ())
    if found and "gen_ai.output.messages" in attrs and OUTPUT_VALUE not in attrs:
        consumed.add("gen_ai.output.messages")

    for key in ("session.id", "user.id"):
        if key in attrs:
            mapped.metadata[key.replace(".", "_")] = str(attrs[key])

    out = {k: v for k, v in attrs.items() if k not in consumed}
    for canonical, aliases in _ALIASES.items():
        if canonical not in out:
            for alias in aliases:
                if alias in out:
                    out[canonical] = out[alias]
                    break
    mapped.attributes = out
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
        return True, _json_or_text(attrs[messages_key])
    return False, None


def _json_or_text(value: Any) -> Any:
    if not isinstance(value, (str, bytes)):
        return value
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return value


def _messages(
    attrs: Mapping[str, Any], prefixes: tuple[str, ...], consumed: set[str]
) -> tuple[bool, Any]:
    for prefix in prefixes:
        tree: dict[Any, Any] = {}
        for key, value in attrs.items():
            if key.startswith(prefix):
                rest = key[len(prefix) :].split(".")
                if rest[0].isdigit():
                    _set_path(tree, rest, value)
                    consumed.add(key)
        if tree:
            return True, _listify(tree)
    return False, None


def _set_path(node: dict[Any, Any], path: list[str], value: Any) -> None:
    for segment in path[:-1]:
        key = int(segment) if segment.isdigit() else segment
        node = node.setdefault(key, {})
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
