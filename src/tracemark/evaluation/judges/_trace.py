"""What judges read from a trace: its root's inputs and outputs, retrieved documents, tool calls."""

from __future__ import annotations

from typing import Any

from tracemark.entities.trace import Span, SpanType, Trace
from tracemark.exceptions import InvalidInputError

__all__ = ["as_trace", "retrieved_documents", "root_io", "tool_calls"]

_TEXT_KEYS = ("page_content", "content", "text", "document")
_LIST_KEYS = ("documents", "docs", "results", "chunks")


def as_trace(trace: Any) -> Trace | None:
    """Return a Trace given a Trace, a trace id (read from the default client), or None."""
    if trace is None or isinstance(trace, Trace):
        return trace
    if isinstance(trace, str):
        from tracemark.tracing.fluent import get_trace

        return get_trace(trace)
    raise InvalidInputError(
        f"expected a Trace or a trace id, got {type(trace).__name__}", field="trace"
    )


def root_io(trace: Trace) -> tuple[Any, Any]:
    """The inputs and outputs of the trace's root span."""
    root = trace.root
    return (None, None) if root is None else (root.inputs, root.outputs)


def _document(item: Any) -> dict[str, Any] | None:
    if isinstance(item, str):
        return {"page_content": item}
    if not isinstance(item, dict):
        return None
    for key in _TEXT_KEYS:
        if isinstance(item.get(key), str):
            doc: dict[str, Any] = {"page_content": item[key]}
            if item.get("metadata"):
                doc["metadata"] = item["metadata"]
            if item.get("id") is not None:
                doc["id"] = item["id"]
            return doc
    return None


def _documents(outputs: Any) -> list[dict[str, Any]]:
    if isinstance(outputs, dict):
        for key in _LIST_KEYS:
            if isinstance(outputs.get(key), list):
                outputs = outputs[key]
                break
        else:
            single = _document(outputs)
            return [single] if single else []
    if not isinstance(outputs, list):
        single = _document(outputs)
        return [single] if single else []
    return [doc for doc in (_document(item) for item in outputs) if doc is not None]


def retrieved_documents(trace: Trace) -> list[tuple[Span, list[dict[str, Any]]]]:
    """Each RETRIEVER span with its documents (`page_content`, `metadata`, `id`), in order."""
    return [
        (span, _documents(span.outputs))
        for span in trace.search_spans(span_type=SpanType.RETRIEVER)
    ]


def retriever_query(span: Span, fallback: Any) -> Any:
    """The query a retriever span was given, else `fallback` (the request)."""
    inputs = span.inputs
    if isinstance(inputs, str):
        return inputs
    if isinstance(inputs, dict):
        for key in ("query", "question", "input", "text"):
            if isinstance(inputs.get(key), str):
                return inputs[key]
    return fallback


def _chat_tool_calls(outputs: Any) -> list[dict[str, Any]]:
    """Tool calls in a chat span's outputs: OpenAI completions or messages, Anthropic content."""
    if not isinstance(outputs, dict):
        return []
    messages = [c.get("message") for c in outputs.get("choices") or () if isinstance(c, dict)]
    messages.append(outputs)
    calls: list[dict[str, Any]] = []
    for message in messages:
        if not isinstance(message, dict):
            continue
        for tc in message.get("tool_calls") or ():
            function = tc.get("function") if isinstance(tc, dict) else None
            if isinstance(function, dict):
                calls.append({"name": function.get("name"), "arguments": function.get("arguments")})
    content = outputs.get("content")
    for block in content if isinstance(content, list) else ():
        if isinstance(block, dict) and block.get("type") == "tool_use":
            calls.append({"name": block.get("name"), "arguments": block.get("input")})
    return calls


def tool_calls(trace: Trace) -> list[dict[str, Any]]:
    """The tools the trace called, in order: TOOL spans, else tool calls of chat spans."""
    spans = trace.search_spans(span_type=SpanType.TOOL)
    if spans:
        return [
            {
                "span_id": span.span_id,
                "name": span.name,
                "arguments": span.inputs,
                "result": span.outputs,
                "status": span.status_code,
            }
            for span in spans
        ]
    calls: list[dict[str, Any]] = []
    for span in sorted(trace.spans, key=lambda s: s.start_time_ns):
        if span.span_type in (SpanType.CHAT_MODEL, SpanType.LLM):
            calls += [{"span_id": span.span_id, **c} for c in _chat_tool_calls(span.outputs)]
    return calls
