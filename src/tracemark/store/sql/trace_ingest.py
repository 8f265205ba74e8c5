r"""Turn a batch of incoming traces into rows: validate, offload large payloads, merge.

Everything here is plain Python that runs before or between the store's queries, so the
exporter's hot path spends its time in a few executemany calls and nowhere else.

Payloads: span inputs and outputs arrive as JSON text and are kept as that text. One
larger than `INLINE_PAYLOAD_LIMIT` bytes is gzip-compressed for the artifact store at
``traces/{trace_id}/{span_id}.{inputs|outputs}.json.gz`` (relative to the artifact root)
and the row keeps that path instead.

PostgreSQL: JSONB refuses the JSON escape ``\u0000``, so such a text is stored wrapped as a
JSON string, ``{"$tracemark.json_text": "<the text>"}`` (`json_in`), and unwrapped on read
(`unwrap`); a text that merely mentions that key is wrapped too, so no user value is ever
taken for a wrapper. Plain text columns cannot hold NUL characters at all, so those become
U+FFFD there (`no_nul`).

Attachments (media the spans refer to) are checked against their SHA-256 here and written
by `trace_attachments`, once per content.

Merging, when a trace's spans arrive in several batches: see `merge_info`.
"""

from __future__ import annotations

import gzip
import hashlib
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from tracemark.entities.trace import (
    MAX_ATTACHMENT_BYTES,
    Attachment,
    Span,
    SpanStatusCode,
    Trace,
    TraceStatus,
    is_sha256,
    media_type_or_default,
)
from tracemark.exceptions import InvalidInputError
from tracemark.store import validation
from tracemark.store.sql import schema as t

__all__ = [
    "INFO_COLUMNS",
    "INLINE_PAYLOAD_LIMIT",
    "SPAN_COLUMNS",
    "TRACES_DIR",
    "WRAP_KEY",
    "Batch",
    "PreparedTrace",
    "check_span_id",
    "check_trace_id",
    "fold_batch",
    "json_in",
    "merge_info",
    "no_nul",
    "prepare_trace",
    "unwrap",
]

# Inputs or outputs larger than this many bytes of JSON go to the artifact store.
INLINE_PAYLOAD_LIMIT = 256 * 1024
# A UTF-8 character is at most 4 bytes: text this short is inline without encoding it.
_SMALL_PAYLOAD = INLINE_PAYLOAD_LIMIT // 4
# Level 1 compresses JSON about 5x at ~100 MB/s; higher levels gain little and cost 3x.
_GZIP_LEVEL = 1
TRACES_DIR = "traces"

INFO_COLUMNS = tuple(c.name for c in t.trace_info.c)
# The order of the tuples `prepare_trace` builds for the spans table.
SPAN_COLUMNS = (
    "trace_id",
    "span_id",
    "parent_id",
    "name",
    "span_type",
    "start_time_ns",
    "end_time_ns",
    "status_code",
    "status_message",
    "inputs",
    "outputs",
    "inputs_ref",
    "outputs_ref",
    "attributes",
    "events",
)
_SPAN_ID_INDEX = SPAN_COLUMNS.index("span_id")
_INFO_INTEGERS = (
    "timestamp_ms",
    "execution_time_ms",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "span_count",
)

_TRACE_ID = re.compile(r"[0-9a-f]{32}")
_SPAN_ID = re.compile(r"[0-9a-f]{16}")
_TRACE_STATUSES = frozenset((TraceStatus.OK, TraceStatus.ERROR, TraceStatus.IN_PROGRESS))
_SPAN_STATUSES = frozenset((SpanStatusCode.UNSET, SpanStatusCode.OK, SpanStatusCode.ERROR))
_USAGE_INPUT = "gen_ai.usage.input_tokens"
_USAGE_OUTPUT = "gen_ai.usage.output_tokens"

_NUL_ESCAPE = "\\u0000"
WRAP_KEY = "$tracemark.json_text"
_WRAP_PREFIX = '{"' + WRAP_KEY + '": '


def check_trace_id(trace_id: Any) -> str:
    """Check that a trace id is 32 lowercase hex digits, as OpenTelemetry writes it."""
    if not isinstance(trace_id, str) or not _TRACE_ID.fullmatch(trace_id):
        raise InvalidInputError(
            f"trace id must be 32 lowercase hex characters, got {trace_id!r}", field="trace_id"
        )
    return trace_id


def check_span_id(span_id: Any, what: str = "span_id") -> str:
    """Check that a span id is 16 lowercase hex digits, as OpenTelemetry writes it."""
    if not isinstance(span_id, str) or not _SPAN_ID.fullmatch(span_id):
        raise InvalidInputError(
            f"{what} must be 16 lowercase hex characters, got {span_id!r}", field=what
        )
    return span_id


def json_in(text: str, postgres: bool) -> str:
    """Return JSON text as the JSON column stores it (see the module docstring)."""
    if postgres and (_NUL_ESCAPE in text or WRAP_KEY in text):
        return orjson.dumps({WRAP_KEY: text}).decode()
    return text


def unwrap(text: str | None) -> str | None:
    """Undo `json_in` on text read from a PostgreSQL JSON column."""
    if text is not None and text.startswith(_WRAP_PREFIX):
        wrapped = orjson.loads(text)
        if isinstance(wrapped, dict) and len(wrapped) == 1:
            inner = wrapped[WRAP_KEY]
            if isinstance(inner, str):
                return inner
    return text


def no_nul(text: str | None) -> str | None:
    """Replace NUL characters, which PostgreSQL text columns cannot hold, with U+FFFD."""
    return text.replace("\x00", "\ufffd") if text and "\x00" in text else text


@dataclass(slots=True)
class PreparedTrace:
    """One incoming trace, validated and turned into rows before the transaction."""

    info: dict[str, Any]  # the trace_info row
    spans: list[tuple[Any, ...]]  # rows in SPAN_COLUMNS order, no span twice
    span_objects: list[Span]  # the spans behind `spans`, same order
    payloads: dict[str, list[tuple[str, bytes]]] = field(default_factory=dict)  # by span id
    tags: list[tuple[str, str]] = field(default_factory=list)
    metadata: list[tuple[str, str]] = field(default_factory=list)
    has_root: bool = False  # holds a span without a parent
    attachments: list[Attachment] = field(default_factory=list)


def prepare_trace(
    trace: Trace, *, experiment_id: Callable[[Any], int], postgres: bool
) -> PreparedTrace:
    """Validate one trace and build its rows, compressing payloads over the inline limit.

    Example::

        prepared = prepare_trace(trace, experiment_id=int, postgres=False)
        prepared.spans[0][SPAN_COLUMNS.index("name")]

    Args:
        trace: The trace to store.
        experiment_id: Turns the trace's experiment id into the database's integer id.
        postgres: Whether the rows go to PostgreSQL (see the module docstring).

    Raises:
        InvalidInputError: A field of the trace, a span, a tag or a metadata entry is wrong.
    """
    if not isinstance(trace, Trace):
        raise InvalidInputError(
            f"log_traces expects Trace objects, got {type(trace).__name__}", field="traces"
        )
    info = trace.info
    tid = check_trace_id(info.trace_id)
    _check_info(info, tid)
    span_rows: list[tuple[Any, ...]] = []
    span_objects: list[Span] = []
    payloads: dict[str, list[tuple[str, bytes]]] = {}
    seen: set[str] = set()
    has_root = False
    dumps = orjson.dumps
    match_span_id = _SPAN_ID.fullmatch
    small = _SMALL_PAYLOAD
    for span in trace.spans:
        sid = span.span_id
        if sid in seen:
            continue
        parent = span.parent_id
        end_ns = span.end_time_ns
        message = span.status_message
        # One combined test on the hot path; _span_error says what exactly is wrong.
        if not (
            type(sid) is str
            and match_span_id(sid)
            and span.trace_id == tid
            and (parent is None or (type(parent) is str and match_span_id(parent)))
            and type(span.name) is str
            and type(span.span_type) is str
            and span.status_code in _SPAN_STATUSES
            and type(span.start_time_ns) is int
            and (end_ns is None or type(end_ns) is int)
            and (message is None or type(message) is str)
        ):
            raise _span_error(span, tid)
        if parent is None:
            has_root = True
        seen.add(sid)
        inputs, inputs_ref = span.inputs_json, None
        if inputs is not None and (type(inputs) is not str or len(inputs) > small or postgres):
            inputs, inputs_ref = _payload(tid, sid, "inputs", inputs, payloads, postgres)
        outputs, outputs_ref = span.outputs_json, None
        if outputs is not None and (type(outputs) is not str or len(outputs) > small or postgres):
            outputs, outputs_ref = _payload(tid, sid, "outputs", outputs, payloads, postgres)
        try:
            attributes = dumps(span.attributes).decode()
            events = dumps([e.to_dict() for e in span.events]).decode() if span.events else "[]"
        except (orjson.JSONEncodeError, AttributeError, TypeError) as exc:
            raise InvalidInputError(
                f"span {sid}: attributes and events must be JSON data: {exc}", field="attributes"
            ) from None
        name, span_type, message = span.name, span.span_type, message or ""
        if postgres:
            attributes, events = json_in(attributes, True), json_in(events, True)
            name, span_type, message = no_nul(name), no_nul(span_type), no_nul(message)
        span_rows.append(
            (
                tid,
                sid,
                parent,
                name,
                span_type,
                span.start_time_ns,
                end_ns,
                span.status_code,
                message,
                inputs,
                outputs,
                inputs_ref,
                outputs_ref,
                attributes,
                events,
            )
        )
        span_objects.append(span)
    row = {
        "trace_id": tid,
        "experiment_id": experiment_id(info.experiment_id),
        "run_id": info.run_id,
        "name": info.name or "",
        "timestamp_ms": info.timestamp_ms,
        "execution_time_ms": info.execution_time_ms,
        "status": info.status,
        "request_preview": info.request_preview,
        "response_preview": info.response_preview,
        "input_tokens": info.input_tokens,
        "output_tokens": info.output_tokens,
        "total_tokens": info.total_tokens,
        "cost": None if info.cost is None else float(info.cost),
        # What is stored, unless the trace came without spans.
        "span_count": len(span_rows) if span_rows else int(info.span_count or 0),
    }
    tags = validation.tags(info.tags)
    metadata = [(validation.key(k, "metadata"), str(v)) for k, v in (info.metadata or {}).items()]
    if postgres:
        for key in ("name", "request_preview", "response_preview"):
            row[key] = no_nul(row[key])
        tags = [(k, no_nul(v)) for k, v in tags]
        metadata = [(k, no_nul(v)) for k, v in metadata]
    attachments = _check_attachments(trace.attachments, tid) if trace.attachments else []
    return PreparedTrace(
        row, span_rows, span_objects, payloads, tags, metadata, has_root, attachments
    )


def _check_attachments(attachments: Any, tid: str) -> list[Attachment]:
    """Check a trace's attachments: well-formed, not too large, true to their digest."""
    if not isinstance(attachments, (list, tuple)):
        raise InvalidInputError(
            f"trace {tid}: attachments must be a list of Attachment", field="attachments"
        )
    checked: list[Attachment] = []
    for attachment in attachments:
        if not isinstance(attachment, Attachment):
            raise InvalidInputError(
                f"trace {tid}: attachments must be Attachment objects, "
                f"got {type(attachment).__name__}",
                field="attachments",
            )
        sha, data, media_type = attachment.sha256, attachment.data, attachment.media_type
        if not is_sha256(sha):
            raise InvalidInputError(
                f"trace {tid}: attachment sha256 must be 64 lowercase hex characters, got {sha!r}",
                field="attachments.sha256",
            )
        if not isinstance(media_type, str) or media_type_or_default(media_type) != media_type:
            raise InvalidInputError(
                f"trace {tid}: attachment {sha}: media type {media_type!r} is not a lowercase "
                "type/subtype",
                field="attachments.media_type",
            )
        if not isinstance(data, bytes):
            raise InvalidInputError(
                f"trace {tid}: attachment {sha}: data must be bytes", field="attachments.data"
            )
        if len(data) > MAX_ATTACHMENT_BYTES:
            raise InvalidInputError(
                f"trace {tid}: attachment {sha} has {len(data)} bytes, more than the limit of "
                f"{MAX_ATTACHMENT_BYTES}",
                field="attachments.data",
            )
        if hashlib.sha256(data).hexdigest() != sha:
            raise InvalidInputError(
                f"trace {tid}: attachment {sha} does not match the SHA-256 of its data",
                field="attachments.sha256",
            )
        checked.append(attachment)
    return checked


def _check_info(info: Any, tid: str) -> None:
    if info.status not in _TRACE_STATUSES:
        raise InvalidInputError(
            f"trace {tid}: status must be one of OK, ERROR, IN_PROGRESS, got {info.status!r}",
            field="status",
        )
    for name in _INFO_INTEGERS:
        number = getattr(info, name)
        if not (type(number) is int or (number is None and name != "timestamp_ms")):
            raise InvalidInputError(
                f"trace {tid}: {name} must be an integer, got {number!r}", field=name
            )
    if info.cost is not None and type(info.cost) not in (int, float):
        raise InvalidInputError(
            f"trace {tid}: cost must be a number, got {info.cost!r}", field="cost"
        )
    if info.run_id is not None:
        validation.run_id(info.run_id)
    for name in ("name", "request_preview", "response_preview"):
        text = getattr(info, name)
        if text is not None and not isinstance(text, str):
            raise InvalidInputError(
                f"trace {tid}: {name} must be a string, got {type(text).__name__}", field=name
            )


def _span_error(span: Any, trace_id: str) -> InvalidInputError:
    """Describe what is wrong with a span that failed the combined check."""
    sid = span.span_id
    if not isinstance(sid, str) or not _SPAN_ID.fullmatch(sid):
        return InvalidInputError(
            f"span_id must be 16 lowercase hex characters, got {sid!r}", field="span_id"
        )
    if span.trace_id != trace_id:
        return InvalidInputError(
            f"span {sid} has trace id {span.trace_id!r} but sits in trace {trace_id}",
            field="trace_id",
        )
    parent = span.parent_id
    if parent is not None and (not isinstance(parent, str) or not _SPAN_ID.fullmatch(parent)):
        return InvalidInputError(
            f"span {sid}: parent_id must be 16 lowercase hex characters, got {parent!r}",
            field="parent_id",
        )
    if not isinstance(span.name, str) or not isinstance(span.span_type, str):
        return InvalidInputError(f"span {sid}: name and span_type must be strings", field="name")
    if span.status_code not in _SPAN_STATUSES:
        return InvalidInputError(
            f"span {sid}: status must be one of UNSET, OK, ERROR, got {span.status_code!r}",
            field="status_code",
        )
    if span.status_message is not None and not isinstance(span.status_message, str):
        return InvalidInputError(
            f"span {sid}: status_message must be a string, got {span.status_message!r}",
            field="status_message",
        )
    return InvalidInputError(
        f"span {sid}: start and end times must be integer nanoseconds, got "
        f"{span.start_time_ns!r} and {span.end_time_ns!r}",
        field="start_time_ns",
    )


def _payload(
    trace_id: str,
    span_id: str,
    which: str,
    text: Any,
    payloads: dict[str, list[tuple[str, bytes]]],
    postgres: bool,
) -> tuple[str | None, str | None]:
    """Return (inline JSON, artifact reference) for a span's inputs or outputs."""
    if not isinstance(text, str):
        raise InvalidInputError(
            f"span {span_id}: {which}_json must be JSON text, got {type(text).__name__}",
            field=f"{which}_json",
        )
    size = len(text)
    # Characters never outnumber UTF-8 bytes; only encode when the two could disagree.
    if size <= _SMALL_PAYLOAD or (
        size <= INLINE_PAYLOAD_LIMIT and len(text.encode()) <= INLINE_PAYLOAD_LIMIT
    ):
        return json_in(text, postgres), None
    ref = f"{TRACES_DIR}/{trace_id}/{span_id}.{which}.json.gz"
    data = gzip.compress(text.encode(), compresslevel=_GZIP_LEVEL, mtime=0)
    payloads.setdefault(span_id, []).append((ref, data))
    return None, ref


@dataclass(slots=True)
class Batch:
    """What one `log_traces` call writes, after merging."""

    infos: dict[str, dict[str, Any]] = field(default_factory=dict)  # trace_info rows by id
    spans: list[tuple[Any, ...]] = field(default_factory=list)  # only spans not yet stored
    files: list[tuple[str, bytes]] = field(default_factory=list)  # (reference, gzip bytes)
    attachments: list[tuple[str, Attachment]] = field(default_factory=list)  # (trace id, ...)
    tags: dict[tuple[str, str], str] = field(default_factory=dict)  # (trace, key) -> value
    metadata: dict[tuple[str, str], str] = field(default_factory=dict)


def fold_batch(
    prepared: list[PreparedTrace],
    stored: dict[str, dict[str, Any]],
    stored_spans: dict[str, set[str]],
) -> Batch:
    """Fold prepared traces into the rows to write, merging with what is already stored.

    Example::

        batch = fold_batch(prepared, stored={}, stored_spans={})
        len(batch.spans)

    Args:
        prepared: The batch, in arrival order; a trace id may repeat.
        stored: The trace_info rows already in the database for the batch's trace ids.
        stored_spans: The span ids already stored, for the traces in `stored`.
    """
    batch = Batch()
    repeated = Counter(p.info["trace_id"] for p in prepared)
    known = {tid: set(spans) for tid, spans in stored_spans.items()}
    for p in prepared:
        tid = p.info["trace_id"]
        current = batch.infos.get(tid) or stored.get(tid)
        if current is None:
            added, added_objects = p.spans, p.span_objects
            batch.infos[tid] = p.info
        else:
            seen = known.setdefault(tid, set())
            keep = [i for i, row in enumerate(p.spans) if row[_SPAN_ID_INDEX] not in seen]
            added = [p.spans[i] for i in keep]
            added_objects = [p.span_objects[i] for i in keep]
            batch.infos[tid] = merge_info(
                current, p, added_objects, holds_root=_holds_root(added_objects, seen)
            )
        if repeated[tid] > 1:
            known.setdefault(tid, set()).update(row[_SPAN_ID_INDEX] for row in added)
        batch.spans.extend(added)
        if p.payloads:
            for row in added:
                batch.files.extend(p.payloads.get(row[_SPAN_ID_INDEX], ()))
        batch.attachments.extend((tid, attachment) for attachment in p.attachments)
        for key, value in p.tags:
            batch.tags[(tid, key)] = value
        for key, value in p.metadata:
            batch.metadata.setdefault((tid, key), value)  # write-once: the first value stays
    return batch


def _holds_root(added: list[Span], stored_ids: set[str]) -> bool:
    """Tell whether new spans include the trace's top span: no parent, or one never seen.

    A service's top span often has a parent in an upstream service that sends elsewhere;
    it is still the root here once its children are stored.
    """
    ids = {s.span_id for s in added}
    return any(
        s.parent_id is None or (s.parent_id not in stored_ids and s.parent_id not in ids)
        for s in added
    )


def merge_info(
    current: dict[str, Any],
    incoming: PreparedTrace,
    added: list[Span],
    *,
    holds_root: bool | None = None,
) -> dict[str, Any]:
    """Merge an incoming trace row into the stored one (or one earlier in the batch).

    - Times cover both: the earliest start, the latest end.
    - The batch holding the root span (no parent, or a parent never seen) sets name,
      status, previews and run;
      otherwise only empty fields are filled, and an IN_PROGRESS status gives way.
    - `span_count` adds the spans that were actually new.
    - Token totals and cost add the incoming row's totals when all its spans are new (its
      rollup covers exactly them); when some were stored already, the new spans'
      ``gen_ai.usage.*`` attributes are added instead and cost stays.

    Example::

        merged = merge_info(stored_row, prepared, added=[new_span])

    Args:
        current: The trace_info row so far.
        incoming: The prepared trace being merged in.
        added: Its spans that were not stored yet.
        holds_root: Whether `added` has the trace's top span; by default, whether the
            incoming trace has a span without a parent.
    """
    new = incoming.info
    has_root = incoming.has_root if holds_root is None else holds_root
    merged = dict(current)
    start = min(current["timestamp_ms"], new["timestamp_ms"])
    ends = [
        row["timestamp_ms"] + row["execution_time_ms"]
        for row in (current, new)
        if row["execution_time_ms"] is not None
    ]
    merged["timestamp_ms"] = start
    merged["execution_time_ms"] = max(ends) - start if ends else None
    for key in ("name", "request_preview", "response_preview", "run_id"):
        if new[key] and (has_root or not current[key]):
            merged[key] = new[key]
    if has_root or current["status"] == TraceStatus.IN_PROGRESS:
        merged["status"] = new["status"]
    merged["span_count"] = current["span_count"] + len(added)
    if not added:
        return merged
    if len(added) == len(incoming.spans):
        for key in ("input_tokens", "output_tokens", "total_tokens", "cost"):
            merged[key] = _add(current[key], new[key])
        return merged
    usage_in = usage_out = None
    for span in added:
        usage_in = _add(usage_in, _usage(span, _USAGE_INPUT))
        usage_out = _add(usage_out, _usage(span, _USAGE_OUTPUT))
    merged["input_tokens"] = _add(current["input_tokens"], usage_in)
    merged["output_tokens"] = _add(current["output_tokens"], usage_out)
    merged["total_tokens"] = _add(current["total_tokens"], _add(usage_in, usage_out))
    return merged


def _usage(span: Span, key: str) -> int | None:
    value = span.attributes.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _add(a: Any, b: Any) -> Any:
    """Add two optional numbers; None only when both are None."""
    if a is None:
        return b
    return a if b is None else a + b
