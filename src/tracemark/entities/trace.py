"""Traces, spans and assessments: what tracing records and what readers get back.

Span inputs and outputs are kept as the JSON text they were serialized to once on the
hot path; `Span.inputs` and `Span.outputs` decode it on access, and
`Span.to_dict(raw_payloads=True)` hands the text to orjson as it is.

Media a span carries inline (a base64 image in a chat message) travels beside the spans as
an `Attachment`; the span payload holds its reference,
``tracemark-attachment:sha256:<hex>?type=image/png&size=<bytes>``.
"""

from __future__ import annotations

import hashlib
import html
import operator
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson


class SpanType:
    """The kinds of step a span can stand for."""

    LLM = "LLM"
    CHAT_MODEL = "CHAT_MODEL"
    CHAIN = "CHAIN"
    AGENT = "AGENT"
    TOOL = "TOOL"
    RETRIEVER = "RETRIEVER"
    EMBEDDING = "EMBEDDING"
    RERANKER = "RERANKER"
    PARSER = "PARSER"
    MEMORY = "MEMORY"
    GUARDRAIL = "GUARDRAIL"
    EVALUATOR = "EVALUATOR"
    UNKNOWN = "UNKNOWN"
    ALL = (
        "LLM",
        "CHAT_MODEL",
        "CHAIN",
        "AGENT",
        "TOOL",
        "RETRIEVER",
        "EMBEDDING",
        "RERANKER",
        "PARSER",
        "MEMORY",
        "GUARDRAIL",
        "EVALUATOR",
        "UNKNOWN",
    )


class SpanStatusCode:
    """OpenTelemetry's span status codes."""

    UNSET = "UNSET"
    OK = "OK"
    ERROR = "ERROR"


class TraceStatus:
    """The state of a whole trace, taken from its root span."""

    OK = "OK"
    ERROR = "ERROR"
    IN_PROGRESS = "IN_PROGRESS"


@dataclass(slots=True)
class SpanEvent:
    """A point-in-time event on a span; an exception is the event named `exception`."""

    name: str
    timestamp_ns: int
    attributes: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {"name": self.name, "timestamp_ns": self.timestamp_ns, "attributes": self.attributes}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SpanEvent:
        """Build an event from `to_dict` output."""
        return cls(data["name"], int(data["timestamp_ns"]), dict(data.get("attributes") or {}))


ATTACHMENT_SCHEME = "tracemark-attachment:"
MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024
"""Media larger than this is not kept; the span then only describes it."""

_SHA256 = re.compile(r"[0-9a-f]{64}")
_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,127}", re.I)
_REFERENCE = re.compile(
    re.escape(ATTACHMENT_SCHEME) + r"sha256:([0-9a-f]{64})(?:\?type=([^&\s]*)(?:&size=(\d+))?)?"
)
DEFAULT_MEDIA_TYPE = "application/octet-stream"


def media_type_or_default(media_type: Any) -> str:
    """Return `media_type` when it is a plain `type/subtype`, else `application/octet-stream`."""
    if isinstance(media_type, str) and _MEDIA_TYPE.fullmatch(media_type):
        return media_type.lower()
    return DEFAULT_MEDIA_TYPE


def is_sha256(value: Any) -> bool:
    """Tell whether `value` is a SHA-256 digest as 64 lowercase hex digits."""
    return isinstance(value, str) and _SHA256.fullmatch(value) is not None


def parse_attachment_reference(text: str) -> tuple[str, str | None, int | None] | None:
    """Return `(sha256, media_type, size)` of an attachment reference, or None if it is not one.

    Example:
        >>> parse_attachment_reference(
        ...     "tracemark-attachment:sha256:" + "0" * 64 + "?type=image/png&size=8"
        ... )[1:]
        ('image/png', 8)

    Args:
        text: A reference as a span payload holds it.
    """
    found = _REFERENCE.fullmatch(text) if isinstance(text, str) else None
    if found is None:
        return None
    digest, media_type, size = found.groups()
    return digest, media_type or None, None if size is None else int(size)


@dataclass(frozen=True, slots=True)
class Attachment:
    """Bytes a trace refers to by content, such as an image sent in a chat message.

    Stored once per content (by SHA-256) however many spans and traces refer to it.

    Example:
        >>> png = Attachment.from_bytes(b"PNG...", "image/png")
        >>> png.reference.startswith("tracemark-attachment:sha256:")
        True
    """

    sha256: str
    media_type: str
    data: bytes = field(repr=False)

    @classmethod
    def from_bytes(cls, data: bytes, media_type: str | None = None) -> Attachment:
        """Make an attachment of `data`, computing its digest.

        Args:
            data: The content.
            media_type: Its media type; `application/octet-stream` when unknown.
        """
        return cls(hashlib.sha256(data).hexdigest(), media_type_or_default(media_type), data)

    @property
    def size(self) -> int:
        """The size of the content in bytes."""
        return len(self.data)

    @property
    def reference(self) -> str:
        """The text a span payload holds in place of the content."""
        return f"{ATTACHMENT_SCHEME}sha256:{self.sha256}?type={self.media_type}&size={self.size}"


def _decode(raw: str | None) -> Any:
    return None if raw is None else orjson.loads(raw)


def _fragment(raw: str | None) -> orjson.Fragment | None:
    return None if raw is None else orjson.Fragment(raw)


_start_time = operator.attrgetter("start_time_ns")


@dataclass(slots=True, eq=False)
class Span:
    """One finished step of a trace.

    A store can return spans without their payloads (``get_trace(trace_id,
    include_payloads=False)``): `inputs_json` and `outputs_json` are then None and
    `inputs_size` and `outputs_size` give the size in bytes of the JSON text left out, or
    None when the span has no inputs or outputs. `Store.get_span` fetches the whole span.
    """

    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    span_type: str
    start_time_ns: int
    end_time_ns: int | None
    status_code: str = SpanStatusCode.UNSET
    status_message: str = ""
    inputs_json: str | None = None
    outputs_json: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    events: list[SpanEvent] = field(default_factory=list)
    # Set only on spans read without their payloads (see the class docstring).
    inputs_size: int | None = None
    outputs_size: int | None = None
    children: list[Span] = field(default_factory=list, repr=False)

    @property
    def inputs(self) -> Any:
        """The span's inputs, decoded from JSON."""
        return _decode(self.inputs_json)

    @property
    def outputs(self) -> Any:
        """The span's outputs, decoded from JSON."""
        return _decode(self.outputs_json)

    @property
    def duration_ns(self) -> int | None:
        """End minus start, or None while the span is open."""
        return None if self.end_time_ns is None else self.end_time_ns - self.start_time_ns

    def to_dict(self, *, raw_payloads: bool = False) -> dict[str, Any]:
        """Return a JSON-ready dict; ``inputs_size`` and ``outputs_size`` only when set.

        Example::

            orjson.dumps(span.to_dict(raw_payloads=True))

        Args:
            raw_payloads: Give inputs and outputs as their JSON text wrapped in
                `orjson.Fragment`, which `orjson.dumps` splices in without decoding it;
                by default they are decoded.
        """
        payload = _fragment if raw_payloads else _decode
        data = {
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "parent_id": self.parent_id,
            "name": self.name,
            "span_type": self.span_type,
            "start_time_ns": self.start_time_ns,
            "end_time_ns": self.end_time_ns,
            "status_code": self.status_code,
            "status_message": self.status_message,
            "inputs": payload(self.inputs_json),
            "outputs": payload(self.outputs_json),
            "attributes": self.attributes,
            "events": [e.to_dict() for e in self.events] if self.events else [],
        }
        if self.inputs_size is not None or self.outputs_size is not None:
            data["inputs_size"] = self.inputs_size
            data["outputs_size"] = self.outputs_size
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Span:
        """Build a span from `to_dict` output."""
        inputs, outputs = data.get("inputs"), data.get("outputs")
        return cls(
            trace_id=data["trace_id"],
            span_id=data["span_id"],
            parent_id=data.get("parent_id"),
            name=data["name"],
            span_type=data.get("span_type", SpanType.UNKNOWN),
            start_time_ns=int(data["start_time_ns"]),
            end_time_ns=None if data.get("end_time_ns") is None else int(data["end_time_ns"]),
            status_code=data.get("status_code", SpanStatusCode.UNSET),
            status_message=data.get("status_message", ""),
            inputs_json=None if inputs is None else orjson.dumps(inputs).decode(),
            outputs_json=None if outputs is None else orjson.dumps(outputs).decode(),
            attributes=dict(data.get("attributes") or {}),
            events=[SpanEvent.from_dict(e) for e in data.get("events") or []],
            inputs_size=data.get("inputs_size"),
            outputs_size=data.get("outputs_size"),
        )


@dataclass(slots=True)
class AssessmentSource:
    """Who produced an assessment: a person, an LLM judge or code."""

    source_type: str
    source_id: str = "default"

    HUMAN = "HUMAN"
    LLM_JUDGE = "LLM_JUDGE"
    CODE = "CODE"
    TYPES = ("HUMAN", "LLM_JUDGE", "CODE")

    def to_dict(self) -> dict[str, str]:
        """Return a JSON-ready dict."""
        return {"source_type": self.source_type, "source_id": self.source_id}


def new_assessment_id() -> str:
    """Return a new assessment id that sorts after the ids made before it.

    Assessments are listed by creation time, then id: a time prefix keeps those made in
    the same millisecond in the order they were made.
    """
    return f"a-{time.time_ns():016x}{os.urandom(8).hex()}"


@dataclass(slots=True)
class Assessment:
    """A verdict (feedback) or ground truth (expectation) on a trace or one of its spans."""

    assessment_id: str
    trace_id: str
    name: str
    kind: str  # "feedback" | "expectation"
    value: Any
    source: AssessmentSource
    created_time_ms: int
    last_updated_time_ms: int
    span_id: str | None = None
    rationale: str | None = None
    error: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    run_id: str | None = None
    overrides: str | None = None
    valid: bool = True

    FEEDBACK = "feedback"
    EXPECTATION = "expectation"

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "assessment_id": self.assessment_id,
            "trace_id": self.trace_id,
            "name": self.name,
            "kind": self.kind,
            "value": self.value,
            "source": self.source.to_dict(),
            "created_time_ms": self.created_time_ms,
            "last_updated_time_ms": self.last_updated_time_ms,
            "span_id": self.span_id,
            "rationale": self.rationale,
            "error": self.error,
            "metadata": dict(self.metadata),
            "run_id": self.run_id,
            "overrides": self.overrides,
            "valid": self.valid,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Assessment:
        """Build an assessment from `to_dict` output."""
        src = data.get("source") or {}
        return cls(
            assessment_id=data["assessment_id"],
            trace_id=data["trace_id"],
            name=data["name"],
            kind=data["kind"],
            value=data.get("value"),
            source=AssessmentSource(
                src.get("source_type", AssessmentSource.CODE), src.get("source_id", "default")
            ),
            created_time_ms=int(data["created_time_ms"]),
            last_updated_time_ms=int(data["last_updated_time_ms"]),
            span_id=data.get("span_id"),
            rationale=data.get("rationale"),
            error=data.get("error"),
            metadata=dict(data.get("metadata") or {}),
            run_id=data.get("run_id"),
            overrides=data.get("overrides"),
            valid=bool(data.get("valid", True)),
        )


@dataclass(slots=True)
class TraceInfo:
    """One row per trace: what lists and searches read without loading spans."""

    trace_id: str
    experiment_id: str
    timestamp_ms: int
    execution_time_ms: int | None
    status: str
    name: str = ""
    run_id: str | None = None
    request_preview: str | None = None
    response_preview: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    cost: float | None = None
    span_count: int = 0
    assessments: list[Assessment] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "trace_id": self.trace_id,
            "experiment_id": self.experiment_id,
            "timestamp_ms": self.timestamp_ms,
            "execution_time_ms": self.execution_time_ms,
            "status": self.status,
            "name": self.name,
            "run_id": self.run_id,
            "request_preview": self.request_preview,
            "response_preview": self.response_preview,
            "tags": dict(self.tags),
            "metadata": dict(self.metadata),
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
            "cost": self.cost,
            "span_count": self.span_count,
            "assessments": [a.to_dict() for a in self.assessments],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TraceInfo:
        """Build a TraceInfo from `to_dict` output."""
        fields = {k: v for k, v in data.items() if k != "assessments"}
        info = cls(**fields)
        info.assessments = [Assessment.from_dict(a) for a in data.get("assessments") or []]
        return info


@dataclass(slots=True)
class Trace:
    """A trace: its info row and all its spans, navigable as a tree."""

    info: TraceInfo
    spans: list[Span]
    # Where a tracemark server shows this trace; set when it was read from a server.
    ui_url: str | None = field(default=None, repr=False, compare=False)
    # Media the spans refer to by reference, travelling to the store with a recorded trace
    # (a stored trace is read without it: `get_trace_attachment` fetches one).
    attachments: list[Attachment] = field(default_factory=list, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_id = {s.span_id: s for s in self.spans}
        for span in self.spans:
            span.children = []
        for span in self.spans:
            parent = by_id.get(span.parent_id) if span.parent_id else None
            if parent is not None:
                parent.children.append(span)
        for span in self.spans:
            if len(span.children) > 1:  # most spans are leaves: 10,000 sorts add up
                span.children.sort(key=_start_time)

    @property
    def trace_id(self) -> str:
        """The trace's 32-hex-digit id."""
        return self.info.trace_id

    @property
    def root(self) -> Span | None:
        """The span without a parent in this trace (the earliest one if several)."""
        ids = {s.span_id for s in self.spans}
        roots = [s for s in self.spans if s.parent_id is None or s.parent_id not in ids]
        return min(roots, key=lambda s: s.start_time_ns) if roots else None

    @property
    def expectations(self) -> dict[str, Any]:
        """The trace's ground truth: its valid trace-level expectations by name, latest first.

        Span-level expectations (with a `span_id`) describe one step, not the whole trace,
        and are left out; of two valid expectations with one name the newer wins.
        """
        found = sorted(
            (
                a
                for a in self.info.assessments
                if a.kind == Assessment.EXPECTATION and a.valid and a.span_id is None
            ),
            key=lambda a: a.created_time_ms,
        )
        return {a.name: a.value for a in found}

    def search_spans(self, name: str | None = None, span_type: str | None = None) -> list[Span]:
        """Return the spans matching a name and/or a span type, in start order."""
        found = [
            s
            for s in self.spans
            if (name is None or s.name == name) and (span_type is None or s.span_type == span_type)
        ]
        return sorted(found, key=lambda s: s.start_time_ns)

    def walk(self) -> Iterator[tuple[int, Span]]:
        """Yield (depth, span) depth-first from the root."""
        root = self.root
        if root is None:
            return
        stack = [(0, root)]
        while stack:
            depth, span = stack.pop()
            yield depth, span
            stack.extend((depth + 1, c) for c in reversed(span.children))

    def to_dict(self, *, raw_payloads: bool = False) -> dict[str, Any]:
        """Return a JSON-ready dict; `raw_payloads` as in `Span.to_dict`."""
        return {
            "info": self.info.to_dict(),
            "spans": [s.to_dict(raw_payloads=raw_payloads) for s in self.spans],
        }

    def to_json(self) -> str:
        """Serialize the whole trace to JSON text."""
        return orjson.dumps(self.to_dict()).decode()

    @classmethod
    def from_json(cls, text: str | bytes) -> Trace:
        """Rebuild a trace from `to_json` output."""
        data = orjson.loads(text)
        return cls(TraceInfo.from_dict(data["info"]), [Span.from_dict(s) for s in data["spans"]])

    def _repr_html_(self) -> str:
        if self.ui_url:
            # In a notebook, the server's own trace view, with the span tree and panels.
            src = html.escape(self.ui_url, quote=True)
            return f'<iframe src="{src}" width="100%" height="640" style="border:0"></iframe>'
        rows = []
        for depth, span in self.walk():
            ms = "" if span.duration_ns is None else f"{span.duration_ns / 1e6:.1f} ms"
            name, kind = html.escape(span.name), html.escape(span.span_type)
            rows.append(
                f"<tr><td style='padding-left:{depth * 1.5}em'>{name}</td><td>{kind}</td>"
                f"<td>{html.escape(span.status_code)}</td>"
                f"<td style='text-align:right'>{ms}</td></tr>"
            )
        head = html.escape(f"Trace {self.trace_id} ({self.info.status})")
        return (
            f"<div><b>{head}</b><table><tr><th>span</th><th>type</th><th>status</th>"
            f"<th>duration</th></tr>{''.join(rows)}</table></div>"
        )
