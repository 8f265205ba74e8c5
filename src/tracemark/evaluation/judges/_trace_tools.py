"""The tools a trace judge reads a trace with, so no trace is ever pasted into a prompt.

`list_spans` pages through the span tree in compact rows, `search_spans` finds spans whose
name, inputs, outputs or attributes contain a text (with a snippet around the match), and
`get_span` shows one span in full, each payload cut at a few thousand characters. A
500-span trace therefore costs the judge a few small tool results, not one huge prompt.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from tracemark.entities.trace import Span, Trace

__all__ = ["TOOLS", "TraceTools"]

_PAGE = 100
_MAX_PAGE = 200
_SEARCH_LIMIT = 20
_PAYLOAD_LIMIT = 4000
_ATTRIBUTES_LIMIT = 2000
_SNIPPET = 120

TOOLS: list[dict[str, Any]] = [
    {
        "name": "list_spans",
        "description": (
            "List the trace's spans depth-first, a page at a time: id, parent id, depth, "
            "name, type, status and duration in ms of each."
        ),
        "parameters": {
            "type": "object",
            "properties": {
                "offset": {"type": "integer", "description": "The first span to list (0)."},
                "limit": {"type": "integer", "description": f"Spans per page ({_PAGE})."},
            },
        },
    },
    {
        "name": "get_span",
        "description": (
            "Show one span: its inputs, outputs, attributes, events, status and children "
            "(long payloads are cut)."
        ),
        "parameters": {
            "type": "object",
            "properties": {"span_id": {"type": "string", "description": "The span's id."}},
            "required": ["span_id"],
        },
    },
    {
        "name": "search_spans",
        "description": (
            "Find spans whose name, inputs, outputs or attributes contain a text "
            "(case-insensitive), with a snippet around each match."
        ),
        "parameters": {
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "The text to look for."},
                "limit": {
                    "type": "integer",
                    "description": f"Matches to return at most ({_SEARCH_LIMIT}).",
                },
            },
            "required": ["query"],
        },
    },
]


def _int(value: Any, default: int, low: int, high: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return default
    return max(low, min(high, number))


def _clip(raw: str | None, limit: int) -> Any:
    """A payload as the model sees it: decoded when short, else its JSON text cut short."""
    if raw is None:
        return None
    if len(raw) <= limit:
        return orjson.loads(raw)
    return f"{raw[:limit]}... [cut: {len(raw) - limit} more characters]"


class TraceTools:
    """Runs the tools a trace judge calls, over one trace.

    Args:
        trace: The trace to read.
    """

    def __init__(self, trace: Trace) -> None:
        self.trace = trace
        self._order: list[tuple[int, Span]] = list(trace.walk())
        seen = {span.span_id for _, span in self._order}
        # Spans whose parent is missing from the trace still get listed, at depth 0.
        self._order += [(0, s) for s in trace.spans if s.span_id not in seen]
        self._depth = {span.span_id: depth for depth, span in self._order}
        self._by_id = {span.span_id: span for span in trace.spans}

    def summary(self) -> str:
        """One line about the trace, for the prompt in place of the trace itself."""
        root = self.trace.root
        name = f', root span "{root.name}" ({root.span_type})' if root is not None else ""
        return (
            f"[trace {self.trace.trace_id}: {len(self.trace.spans)} spans{name}, status "
            f"{self.trace.info.status}; read it with the tools list_spans, search_spans "
            "and get_span]"
        )

    def call(self, name: str, arguments: dict[str, Any]) -> str:
        """Run a tool and return its result as JSON text (an error object for bad calls)."""
        if name == "list_spans":
            result = self.list_spans(arguments.get("offset", 0), arguments.get("limit", _PAGE))
        elif name == "get_span":
            result = self.get_span(str(arguments.get("span_id", "")))
        elif name == "search_spans":
            query = arguments.get("query")
            if not isinstance(query, str) or not query:
                result = {"error": "search_spans needs a non-empty query string"}
            else:
                result = self.search_spans(query, arguments.get("limit", _SEARCH_LIMIT))
        else:
            result = {"error": f"no tool named {name!r}; use list_spans, get_span, search_spans"}
        return json.dumps(result, ensure_ascii=False, default=str)

    def _row(self, span: Span) -> dict[str, Any]:
        duration = span.duration_ns
        return {
            "id": span.span_id,
            "parent": span.parent_id,
            "depth": self._depth.get(span.span_id, 0),
            "name": span.name,
            "type": span.span_type,
            "status": span.status_code,
            "ms": None if duration is None else round(duration / 1e6, 1),
        }

    def list_spans(self, offset: Any = 0, limit: Any = _PAGE) -> dict[str, Any]:
        """A page of compact span rows, depth-first."""
        total = len(self._order)
        start = _int(offset, 0, 0, total)
        size = _int(limit, _PAGE, 1, _MAX_PAGE)
        rows = [self._row(span) for _, span in self._order[start : start + size]]
        out: dict[str, Any] = {"total": total, "offset": start, "spans": rows}
        if start + size < total:
            out["next_offset"] = start + size
        return out

    def get_span(self, span_id: str) -> dict[str, Any]:
        """One span in detail, long payloads cut."""
        span = self._by_id.get(span_id)
        if span is None:
            return {"error": f"no span with id {span_id!r} in this trace"}
        out = self._row(span)
        if span.status_message:
            out["status_message"] = span.status_message
        out["children"] = [c.span_id for c in span.children[:50]]
        if len(span.children) > 50:
            out["more_children"] = len(span.children) - 50
        out["inputs"] = _clip(span.inputs_json, _PAYLOAD_LIMIT)
        out["outputs"] = _clip(span.outputs_json, _PAYLOAD_LIMIT)
        if span.attributes:
            out["attributes"] = _clip(orjson.dumps(span.attributes).decode(), _ATTRIBUTES_LIMIT)
        if span.events:
            events = [e.to_dict() for e in span.events[:10]]
            out["events"] = _clip(orjson.dumps(events).decode(), _ATTRIBUTES_LIMIT)
        return out

    def search_spans(self, query: str, limit: Any = _SEARCH_LIMIT) -> dict[str, Any]:
        """Spans whose name, inputs, outputs or attributes contain `query`."""
        needle = query.lower()
        size = _int(limit, _SEARCH_LIMIT, 1, 100)
        matches: list[dict[str, Any]] = []
        total = 0
        for _, span in self._order:
            hit = self._find(span, needle)
            if hit is None:
                continue
            total += 1
            if len(matches) < size:
                field, snippet = hit
                matches.append({**self._row(span), "field": field, "snippet": snippet})
        return {"query": query, "total_matches": total, "matches": matches}

    def _find(self, span: Span, needle: str) -> tuple[str, str] | None:
        fields = (
            ("name", span.name),
            ("inputs", span.inputs_json),
            ("outputs", span.outputs_json),
            ("attributes", orjson.dumps(span.attributes).decode() if span.attributes else None),
        )
        for field, text in fields:
            if not text:
                continue
            at = text.lower().find(needle)
            if at >= 0:
                start, end = max(0, at - _SNIPPET), at + len(needle) + _SNIPPET
                snippet = ("..." if start else "") + text[start:end]
                return field, snippet + ("..." if end < len(text) else "")
        return None
