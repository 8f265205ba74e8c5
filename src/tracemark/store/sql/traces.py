"""Traces in the SQL store: batch ingest, reading, search, trace tags and assessments.

`log_traces` is the exporter's hot path: a whole batch is validated and serialized in
Python first, then written in one transaction with one executemany per table and no
per-row queries. Span inputs and outputs arrive as JSON text and are stored as that text
(JSONB on PostgreSQL parses it server-side). A payload over `INLINE_PAYLOAD_LIMIT` goes
gzip-compressed to ``{artifact_root}/traces/{trace_id}/{span_id}.{inputs|outputs}.json.gz``
and the span row keeps that relative path; `get_trace` loads it back transparently.

Spans of one trace may arrive in several batches (OpenTelemetry ingest): the trace row is
merged (see `_merge_info`), spans already stored are ignored, tags are upserted and
metadata is write-once (the first value of a key stays).
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import Text, bindparam, cast, delete, distinct, or_, select, update
from sqlalchemy.exc import IntegrityError

from tracemark.entities.trace import (
    Assessment,
    AssessmentSource,
    Span,
    SpanEvent,
    SpanStatusCode,
    Trace,
    TraceInfo,
    TraceStatus,
)
from tracemark.exceptions import (
    AlreadyExistsError,
    InvalidInputError,
    NotFoundError,
    StoreError,
)
from tracemark.store import validation
from tracemark.store.artifacts import LocalArtifactRepository
from tracemark.store.sql import schema as t
from tracemark.store.sql.trace_search import assessment_value_columns, build_trace_select

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

__all__ = ["INLINE_PAYLOAD_LIMIT", "TraceStoreMixin"]

# Inputs or outputs larger than this many bytes of JSON go to the artifact store.
INLINE_PAYLOAD_LIMIT = 256 * 1024
# A UTF-8 character is at most 4 bytes: text this short is inline without encoding it.
_SMALL_PAYLOAD = INLINE_PAYLOAD_LIMIT // 4
# Level 1 compresses JSON about 5x at ~100 MB/s; higher levels gain little and cost 3x.
_GZIP_LEVEL = 1
_TRACES_DIR = "traces"
_CHUNK = 500

_TRACE_ID = re.compile(r"[0-9a-f]{32}")
_SPAN_ID = re.compile(r"[0-9a-f]{16}")
_TRACE_STATUSES = frozenset((TraceStatus.OK, TraceStatus.ERROR, TraceStatus.IN_PROGRESS))
_SPAN_STATUSES = frozenset((SpanStatusCode.UNSET, SpanStatusCode.OK, SpanStatusCode.ERROR))
_KINDS = (Assessment.FEEDBACK, Assessment.EXPECTATION)
_USAGE_INPUT = "gen_ai.usage.input_tokens"
_USAGE_OUTPUT = "gen_ai.usage.output_tokens"
_MAX_NAME_LENGTH = 250
_MAX_ASSESSMENT_ID_LENGTH = 64

# JSONB refuses the escape \u0000 that JSON allows. On PostgreSQL such a text is stored
# wrapped as a JSON string under this key and unwrapped on read, so nothing is lost.
_NUL_ESCAPE = "\\u0000"
_WRAP_KEY = "$tracemark.json_text"
_WRAP_PREFIX = '{"' + _WRAP_KEY + '": '

_UNSET: Any = object()

_INFO_COLUMNS = tuple(c.name for c in t.trace_info.c)
_SPAN_COLUMNS = (
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
_INFO_INTEGERS = (
    "timestamp_ms",
    "execution_time_ms",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "span_count",
)
_SPAN_ID_INDEX = _SPAN_COLUMNS.index("span_id")
_KEY_VALUE_COLUMNS = ("trace_id", "key", "value")
_NAMED_PARAMETER = re.compile(r"%\((\w+)\)s")


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _check_trace_id(trace_id: Any) -> str:
    if not isinstance(trace_id, str) or not _TRACE_ID.fullmatch(trace_id):
        raise InvalidInputError(
            f"trace id must be 32 lowercase hex characters, got {trace_id!r}", field="trace_id"
        )
    return trace_id


def _check_span_id(span_id: Any, what: str = "span_id") -> str:
    if not isinstance(span_id, str) or not _SPAN_ID.fullmatch(span_id):
        raise InvalidInputError(
            f"{what} must be 16 lowercase hex characters, got {span_id!r}", field=what
        )
    return span_id


def _span_error(span: Any, trace_id: str) -> InvalidInputError:
    """Describe what is wrong with a span that failed the ingest check."""
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
    return InvalidInputError(
        f"span {sid}: start and end times must be integer nanoseconds, got "
        f"{span.start_time_ns!r} and {span.end_time_ns!r}",
        field="start_time_ns",
    )


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _add(a: int | float | None, b: int | float | None) -> Any:
    if a is None:
        return b
    return a if b is None else a + b


def _payload_ref(trace_id: str, span_id: str, which: str) -> str:
    return f"{_TRACES_DIR}/{trace_id}/{span_id}.{which}.json.gz"


@dataclass(frozen=True, slots=True)
class _BulkStatement:
    """Driver-level SQL for executemany, and how to reorder a row tuple for it."""

    sql: str
    order: list[int] | None


@dataclass(slots=True)
class _Prepared:
    """One incoming trace, validated and turned into rows before the transaction."""

    info: dict[str, Any]
    spans: list[tuple[Any, ...]]  # rows in _SPAN_COLUMNS order
    span_objects: list[Span]
    payloads: dict[str, list[tuple[str, bytes]]] = field(default_factory=dict)
    tags: list[tuple[str, str]] = field(default_factory=list)
    metadata: list[tuple[str, str]] = field(default_factory=list)
    has_root: bool = False


class TraceStoreMixin:
    """The trace half of `SqlStore`: traces, spans, trace tags and assessments."""

    if TYPE_CHECKING:
        artifact_root: str
        dialect: str
        engine: Engine

        def _write(self) -> AbstractContextManager[Connection]: ...
        def _read(self) -> AbstractContextManager[Connection]: ...
        def _insert(self, table: Any) -> Any: ...
        def _experiment_id(self, experiment_id: str | int) -> int: ...

    def _build_trace_statements(self) -> None:
        """Build the trace statements once; SQLAlchemy then reuses their compiled form."""
        self._postgres = self.dialect == "postgresql"
        info = self._insert(t.trace_info)
        self._upsert_trace_info = self._bulk(
            info.on_conflict_do_update(
                index_elements=["trace_id"],
                set_={
                    name: info.excluded[name]
                    for name in _INFO_COLUMNS
                    if name not in ("trace_id", "experiment_id")
                },
            ),
            _INFO_COLUMNS,
        )
        self._insert_spans = self._bulk(
            self._insert(t.spans).on_conflict_do_nothing(index_elements=["trace_id", "span_id"]),
            _SPAN_COLUMNS,
        )
        tag = self._insert(t.trace_tags)
        self._upsert_trace_tag = self._bulk(
            tag.on_conflict_do_update(
                index_elements=["trace_id", "key"], set_={"value": tag.excluded.value}
            ),
            _KEY_VALUE_COLUMNS,
        )
        self._insert_trace_metadata = self._bulk(
            self._insert(t.trace_metadata).on_conflict_do_nothing(
                index_elements=["trace_id", "key"]
            ),
            _KEY_VALUE_COLUMNS,
        )
        s = t.spans.c
        self._select_trace_spans = (
            select(
                s.trace_id,
                s.span_id,
                s.parent_id,
                s.name,
                s.span_type,
                s.start_time_ns,
                s.end_time_ns,
                s.status_code,
                s.status_message,
                self._json_out(s.inputs),
                self._json_out(s.outputs),
                s.inputs_ref,
                s.outputs_ref,
                self._json_out(s.attributes),
                self._json_out(s.events),
            )
            .where(s.trace_id == bindparam("tid"))
            .order_by(s.start_time_ns, s.span_id)
        )
        self._assessment_columns = list(t.assessments.c)
        self._select_trace_exists = select(t.trace_info.c.trace_id).where(
            t.trace_info.c.trace_id == bindparam("tid")
        )

    def _bulk(self, stmt: Any, columns: tuple[str, ...]) -> _BulkStatement:
        """Compile a statement once to driver SQL taking one tuple per row, in `columns` order.

        Going below SQLAlchemy's per-row parameter processing roughly halves the cost of an
        executemany; these statements bind only strings, integers, floats and None, which
        need no type processing (JSON columns are text already).
        """
        compiled = stmt.compile(dialect=self.engine.dialect, column_keys=list(columns))
        sql = str(compiled)
        if compiled.positional:
            names = list(compiled.positiontup or ())
        else:
            names = _NAMED_PARAMETER.findall(sql)
            sql = _NAMED_PARAMETER.sub("%s", sql)
        order = [columns.index(name) for name in names]
        return _BulkStatement(sql, None if order == list(range(len(columns))) else order)

    def _execute_bulk(
        self, conn: Connection, bulk: _BulkStatement, rows: Sequence[tuple[Any, ...]]
    ) -> None:
        if bulk.order is not None:
            rows = [tuple(row[i] for i in bulk.order) for row in rows]
        conn.exec_driver_sql(bulk.sql, list(rows))

    def _json_out(self, column: Any) -> Any:
        """Select a JSON column as text: JSONB would otherwise be decoded by the driver."""
        return cast(column, Text).label(column.key) if self._postgres else column

    def _json_in(self, text: str) -> str:
        if self._postgres and _NUL_ESCAPE in text:
            return orjson.dumps({_WRAP_KEY: text}).decode()
        return text

    # -- writing traces -------------------------------------------------------------

    def log_traces(self, traces: Sequence[Trace]) -> None:
        """Store a batch of finished traces in one transaction: all of them or none.

        Example::

            store.log_traces([trace_a, trace_b])
            store.get_trace(trace_a.trace_id).root.name

        Spans of a trace may come in several batches: spans already stored are ignored and
        the trace row is merged (earliest start, latest end, the root span's batch sets name,
        status and previews, counts and token totals grow with the new spans). Inputs or
        outputs larger than `INLINE_PAYLOAD_LIMIT` bytes are written compressed to the
        artifact store before the transaction commits.

        Args:
            traces: The traces, each with its info and (some of) its spans.

        Raises:
            InvalidInputError: A trace, span, tag or metadata entry is malformed.
            NotFoundError: A trace names an experiment that does not exist.
        """
        if isinstance(traces, Trace):
            traces = [traces]
        prepared = [self._prepare_trace(trace) for trace in traces]
        if not prepared:
            return
        written: list[str] = []
        try:
            with self._write() as conn:
                self._require_experiments(conn, {p.info["experiment_id"] for p in prepared})
                infos, span_rows, files, tags, metadata = self._merge_batch(conn, prepared)
                self._execute_bulk(
                    conn,
                    self._upsert_trace_info,
                    [tuple(row[c] for c in _INFO_COLUMNS) for row in infos.values()],
                )
                if span_rows:
                    self._execute_bulk(conn, self._insert_spans, span_rows)
                if tags:
                    self._execute_bulk(
                        conn, self._upsert_trace_tag, [(*k, v) for k, v in tags.items()]
                    )
                if metadata:
                    self._execute_bulk(
                        conn, self._insert_trace_metadata, [(*k, v) for k, v in metadata.items()]
                    )
                # Written inside the transaction so a failed commit can take them back.
                repository = LocalArtifactRepository(self.artifact_root)
                for ref, data in files:
                    repository.write_bytes(ref, data)
                    written.append(ref)
        except BaseException:
            for ref in written:
                path = os.path.join(self.artifact_root, ref)
                if os.path.exists(path):
                    os.unlink(path)
            raise

    def _prepare_trace(self, trace: Trace) -> _Prepared:
        """Validate one trace and build its rows; compress large payloads."""
        if not isinstance(trace, Trace):
            raise InvalidInputError(
                f"log_traces expects Trace objects, got {type(trace).__name__}", field="traces"
            )
        info = trace.info
        tid = _check_trace_id(info.trace_id)
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
        span_rows: list[tuple[Any, ...]] = []
        span_objects: list[Span] = []
        payloads: dict[str, list[tuple[str, bytes]]] = {}
        seen: set[str] = set()
        has_root = False
        postgres = self._postgres
        json_in = self._json_in
        dumps = orjson.dumps
        match_span_id = _SPAN_ID.fullmatch
        small = _SMALL_PAYLOAD
        for span in trace.spans:
            sid = span.span_id
            if sid in seen:
                continue
            parent = span.parent_id
            end_ns = span.end_time_ns
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
            ):
                raise _span_error(span, tid)
            if parent is None:
                has_root = True
            seen.add(sid)
            inputs, outputs, inputs_ref, outputs_ref = (
                span.inputs_json,
                span.outputs_json,
                None,
                None,
            )
            if inputs is not None and (type(inputs) is not str or len(inputs) > small or postgres):
                inputs, inputs_ref = self._payload(tid, sid, "inputs", inputs, payloads)
            if outputs is not None and (
                type(outputs) is not str or len(outputs) > small or postgres
            ):
                outputs, outputs_ref = self._payload(tid, sid, "outputs", outputs, payloads)
            try:
                attributes = dumps(span.attributes).decode()
                events = dumps([e.to_dict() for e in span.events]).decode() if span.events else "[]"
            except (orjson.JSONEncodeError, AttributeError, TypeError) as exc:
                raise InvalidInputError(
                    f"span {sid}: attributes and events must be JSON data: {exc}",
                    field="attributes",
                ) from None
            name, span_type, message = span.name, span.span_type, span.status_message or ""
            if postgres:
                attributes, events = json_in(attributes), json_in(events)
                name, span_type, message = _no_nul(name), _no_nul(span_type), _no_nul(message)
            # In _SPAN_COLUMNS order.
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
            "experiment_id": self._experiment_id(info.experiment_id),
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
            "cost": info.cost,
            "span_count": len(span_rows) if span_rows else int(info.span_count or 0),
        }
        tags = validation.tags(info.tags)
        metadata = [
            (validation.key(k, "metadata"), str(v)) for k, v in (info.metadata or {}).items()
        ]
        if postgres:
            for key in ("name", "request_preview", "response_preview"):
                row[key] = _no_nul(row[key])
            tags = [(k, _no_nul(v)) for k, v in tags]
            metadata = [(k, _no_nul(v)) for k, v in metadata]
        return _Prepared(
            info=row,
            spans=span_rows,
            span_objects=span_objects,
            payloads=payloads,
            tags=tags,
            metadata=metadata,
            has_root=has_root,
        )

    def _payload(
        self,
        trace_id: str,
        span_id: str,
        which: str,
        text: str | None,
        payloads: dict[str, list[tuple[str, bytes]]],
    ) -> tuple[str | None, str | None]:
        """Return (inline JSON, artifact reference) for a span's inputs or outputs."""
        if text is None:
            return None, None
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
            return self._json_in(text), None
        ref = _payload_ref(trace_id, span_id, which)
        data = gzip.compress(text.encode(), compresslevel=_GZIP_LEVEL, mtime=0)
        payloads.setdefault(span_id, []).append((ref, data))
        return None, ref

    def _require_experiments(self, conn: Connection, ids: set[int]) -> None:
        e = t.experiments.c
        found = set(conn.scalars(select(e.experiment_id).where(e.experiment_id.in_(ids))))
        missing = sorted(ids - found)
        if missing:
            names = ", ".join(repr(str(m)) for m in missing)
            raise NotFoundError(f"experiment with id {names} does not exist")

    def _merge_batch(
        self, conn: Connection, prepared: list[_Prepared]
    ) -> tuple[
        dict[str, dict[str, Any]],
        list[tuple[Any, ...]],
        list[tuple[str, bytes]],
        dict[tuple[str, str], str],
        dict[tuple[str, str], str],
    ]:
        """Fold the batch into rows to write, merging traces already stored or repeated."""
        ids = list(dict.fromkeys(p.info["trace_id"] for p in prepared))
        stored: dict[str, dict[str, Any]] = {}
        ti = t.trace_info
        for chunk in _chunks(ids):
            query = select(ti).where(ti.c.trace_id.in_(chunk))
            if self._postgres:
                query = query.with_for_update()
            for row in conn.execute(query):
                stored[row.trace_id] = dict(row._mapping)
        known: dict[str, set[str]] = defaultdict(set)
        if stored:
            s = t.spans.c
            for chunk in _chunks(list(stored)):
                for tid, sid in conn.execute(
                    select(s.trace_id, s.span_id).where(s.trace_id.in_(chunk))
                ):
                    known[tid].add(sid)

        infos: dict[str, dict[str, Any]] = {}
        span_rows: list[tuple[Any, ...]] = []
        files: list[tuple[str, bytes]] = []
        tags: dict[tuple[str, str], str] = {}
        metadata: dict[tuple[str, str], str] = {}
        repeated = Counter(p.info["trace_id"] for p in prepared)
        for p in prepared:
            tid = p.info["trace_id"]
            current = infos.get(tid) or stored.get(tid)
            if current is None:
                added, added_objects = p.spans, p.span_objects
                infos[tid] = p.info
            else:
                seen = known[tid]
                keep = [i for i, r in enumerate(p.spans) if r[_SPAN_ID_INDEX] not in seen]
                added = [p.spans[i] for i in keep]
                added_objects = [p.span_objects[i] for i in keep]
                infos[tid] = _merge_info(current, p, added_objects)
            if repeated[tid] > 1:
                known[tid].update(r[_SPAN_ID_INDEX] for r in added)
            span_rows.extend(added)
            if p.payloads:
                for row in added:
                    files.extend(p.payloads.get(row[_SPAN_ID_INDEX], ()))
            for key, value in p.tags:
                tags[(tid, key)] = value
            for key, value in p.metadata:
                metadata.setdefault((tid, key), value)
        return infos, span_rows, files, tags, metadata

    # -- reading traces -------------------------------------------------------------

    def get_trace(self, trace_id: str) -> Trace:
        """Return a trace with its info, tags, metadata, assessments and every span.

        Example::

            trace = store.get_trace("0af7651916cd43dd8448eb211c80319c")
            [span.name for span in trace.search_spans(span_type="TOOL")]

        Args:
            trace_id: The trace's 32-hex-digit id.

        Raises:
            InvalidInputError: The id is not 32 lowercase hex digits.
            NotFoundError: No trace has this id.
        """
        _check_trace_id(trace_id)
        with self._read() as conn:
            row = conn.execute(
                select(t.trace_info).where(t.trace_info.c.trace_id == trace_id)
            ).first()
            if row is None:
                raise NotFoundError(f"trace {trace_id!r} does not exist")
            info = self._load_trace_infos(conn, [row])[0]
            span_rows = conn.execute(self._select_trace_spans, {"tid": trace_id}).all()
        return Trace(info, [self._span_from_row(r) for r in span_rows])

    def _span_from_row(self, r: Any) -> Span:
        unwrap = _unwrap
        return Span(
            trace_id=r.trace_id,
            span_id=r.span_id,
            parent_id=r.parent_id,
            name=r.name,
            span_type=r.span_type,
            start_time_ns=r.start_time_ns,
            end_time_ns=r.end_time_ns,
            status_code=r.status_code,
            status_message=r.status_message,
            inputs_json=self._load_payload(r.inputs_ref) if r.inputs_ref else unwrap(r.inputs),
            outputs_json=(
                self._load_payload(r.outputs_ref) if r.outputs_ref else unwrap(r.outputs)
            ),
            attributes=orjson.loads(unwrap(r.attributes)),
            events=[SpanEvent.from_dict(e) for e in orjson.loads(unwrap(r.events))],
        )

    def _load_payload(self, ref: str) -> str:
        try:
            data = LocalArtifactRepository(self.artifact_root).read_bytes(ref)
        except NotFoundError:
            raise StoreError(
                f"span payload {ref!r} is missing from the artifact store {self.artifact_root!r}"
            ) from None
        return gzip.decompress(data).decode()

    def _load_trace_infos(self, conn: Connection, rows: Sequence[Any]) -> list[TraceInfo]:
        """Build TraceInfos with tags, metadata and assessments: one query per child table."""
        ids = [r.trace_id for r in rows]
        tags: dict[str, dict[str, str]] = defaultdict(dict)
        metadata: dict[str, dict[str, str]] = defaultdict(dict)
        found: dict[str, list[Assessment]] = defaultdict(list)
        a = t.assessments.c
        for chunk in _chunks(ids):
            for table, target in ((t.trace_tags, tags), (t.trace_metadata, metadata)):
                for tid, key, value in conn.execute(
                    select(table.c.trace_id, table.c.key, table.c.value).where(
                        table.c.trace_id.in_(chunk)
                    )
                ):
                    target[tid][key] = value
            for row in conn.execute(
                select(*self._assessment_columns)
                .where(a.trace_id.in_(chunk))
                .order_by(a.created_time_ms, a.assessment_id)
            ):
                found[row.trace_id].append(_assessment_from_row(row))
        return [
            TraceInfo(
                trace_id=r.trace_id,
                experiment_id=str(r.experiment_id),
                timestamp_ms=r.timestamp_ms,
                execution_time_ms=r.execution_time_ms,
                status=r.status,
                name=r.name,
                run_id=r.run_id,
                request_preview=r.request_preview,
                response_preview=r.response_preview,
                tags=tags[r.trace_id],
                metadata=metadata[r.trace_id],
                input_tokens=r.input_tokens,
                output_tokens=r.output_tokens,
                total_tokens=r.total_tokens,
                cost=r.cost,
                span_count=r.span_count,
                assessments=found[r.trace_id],
            )
            for r in rows
        ]

    def search_traces(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 100,
        page_token: str | None = None,
        run_id: str | None = None,
    ) -> tuple[list[TraceInfo], str | None]:
        """Return one page of trace infos matching a filter, and the next page's token.

        Example::

            infos, token = store.search_traces(
                ["1"], "status = 'ERROR' AND metadata.session_id = 's-1'", max_results=50
            )

        Args:
            experiment_ids: The experiments to search.
            filter_string: A filter such as ``"span.type = 'TOOL' AND feedback.helpful = true"``;
                the keys and the assessment value rules are in `store/sql/trace_search.py`.
            order_by: Clauses such as ``"execution_time_ms DESC"``; newest first by default.
            max_results: Page size, from 1 to 50,000.
            page_token: The token the previous page returned; None for the first page.
            run_id: Only traces linked to this run.

        Raises:
            InvalidFilterError: The filter or an order_by clause is invalid.
            InvalidInputError: Another argument is malformed.
        """
        stmt, next_token = build_trace_select(
            experiment_ids, filter_string, order_by, max_results, page_token, run_id
        )
        with self._read() as conn:
            rows = conn.execute(stmt).all()
            more = len(rows) > max_results
            infos = self._load_trace_infos(conn, rows[:max_results])
        return infos, (next_token if more else None)

    # -- deleting traces ------------------------------------------------------------

    def delete_traces(
        self,
        experiment_id: str,
        max_timestamp_ms: int | None = None,
        trace_ids: Sequence[str] | None = None,
    ) -> int:
        """Delete traces of an experiment and their large payload files; return how many.

        Example::

            store.delete_traces("1", max_timestamp_ms=time.time_ns() // 1_000_000 - 86_400_000)

        Args:
            experiment_id: The experiment whose traces go.
            max_timestamp_ms: Delete traces that started at or before this time.
            trace_ids: Delete these traces. With `max_timestamp_ms` too, both must hold.

        Raises:
            InvalidInputError: Neither criterion is given, or one is malformed.
        """
        eid = self._experiment_id(experiment_id)
        if max_timestamp_ms is None and trace_ids is None:
            raise InvalidInputError(
                "delete_traces needs max_timestamp_ms or trace_ids", field="max_timestamp_ms"
            )
        ti = t.trace_info.c
        conditions: list[Any] = [ti.experiment_id == eid]
        if max_timestamp_ms is not None:
            if isinstance(max_timestamp_ms, bool) or not isinstance(max_timestamp_ms, int):
                raise InvalidInputError(
                    f"max_timestamp_ms must be an integer, got {max_timestamp_ms!r}",
                    field="max_timestamp_ms",
                )
            conditions.append(ti.timestamp_ms <= max_timestamp_ms)
        if trace_ids is None:
            batches: list[Any] = [None]
        else:
            if isinstance(trace_ids, str):
                raise InvalidInputError(
                    f"trace_ids must be a list of ids, got the string {trace_ids!r}",
                    field="trace_ids",
                )
            ids = [_check_trace_id(i) for i in trace_ids]
            batches = list(_chunks(list(dict.fromkeys(ids))))
        s = t.spans.c
        deleted = 0
        with_files: set[str] = set()
        with self._write() as conn:
            for batch in batches:
                where = conditions if batch is None else [*conditions, ti.trace_id.in_(batch)]
                doomed = select(ti.trace_id).where(*where)
                with_files.update(
                    conn.scalars(
                        select(distinct(s.trace_id)).where(
                            s.trace_id.in_(doomed),
                            or_(s.inputs_ref.is_not(None), s.outputs_ref.is_not(None)),
                        )
                    )
                )
                deleted += conn.execute(delete(t.trace_info).where(*where)).rowcount
        for tid in with_files:
            shutil.rmtree(os.path.join(self.artifact_root, _TRACES_DIR, tid), ignore_errors=True)
        return deleted

    # -- trace tags -----------------------------------------------------------------

    def _require_trace(self, conn: Connection, trace_id: str) -> None:
        if conn.execute(self._select_trace_exists, {"tid": trace_id}).first() is None:
            raise NotFoundError(f"trace {trace_id!r} does not exist")

    def set_trace_tag(self, trace_id: str, key: str, value: str) -> None:
        """Set (or replace) a tag on a trace.

        Example::

            store.set_trace_tag(trace_id, "reviewed", "yes")

        Args:
            trace_id: The trace's 32-hex-digit id.
            key: Tag key (letters, digits, ``_ - . / :`` and spaces).
            value: Tag value; non-strings are stored as their `str`.

        Raises:
            NotFoundError: No trace has this id.
        """
        _check_trace_id(trace_id)
        ((key, value),) = validation.tags({key: value})
        if self._postgres:
            value = _no_nul(value)
        with self._write() as conn:
            self._require_trace(conn, trace_id)
            self._execute_bulk(conn, self._upsert_trace_tag, [(trace_id, key, value)])

    def delete_trace_tag(self, trace_id: str, key: str) -> None:
        """Remove a tag from a trace.

        Example::

            store.delete_trace_tag(trace_id, "reviewed")

        Args:
            trace_id: The trace's 32-hex-digit id.
            key: The tag to remove.

        Raises:
            NotFoundError: No trace has this id, or the trace has no such tag.
        """
        _check_trace_id(trace_id)
        tags = t.trace_tags.c
        with self._write() as conn:
            self._require_trace(conn, trace_id)
            result = conn.execute(
                delete(t.trace_tags).where(tags.trace_id == trace_id, tags.key == key)
            )
            if result.rowcount == 0:
                raise NotFoundError(f"trace {trace_id!r} has no tag {key!r}")

    # -- assessments ----------------------------------------------------------------

    def create_assessment(self, assessment: Assessment) -> Assessment:
        """Store an assessment on a trace and return it as stored (id and times filled).

        If `assessment.overrides` names another assessment, that one must exist on the same
        trace; it stays in history with ``valid=False``, in the same transaction.

        Example::

            stored = store.create_assessment(
                Assessment("", trace_id, "helpful", "feedback", True,
                           AssessmentSource("HUMAN", "ana"), 0, 0)
            )

        Args:
            assessment: The assessment; an empty `assessment_id` gets a generated one, a zero
                `created_time_ms` becomes now.

        Raises:
            InvalidInputError: A field is malformed (the error names it).
            NotFoundError: The trace, or the assessment to override, does not exist.
            AlreadyExistsError: An assessment with this id already exists.
        """
        row = self._pg_text(_assessment_row(assessment))
        a = t.assessments.c
        try:
            with self._write() as conn:
                self._require_trace(conn, row["trace_id"])
                if row["overrides"] is not None:
                    result = conn.execute(
                        update(t.assessments)
                        .where(a.assessment_id == row["overrides"], a.trace_id == row["trace_id"])
                        .values(valid=False)
                    )
                    if result.rowcount == 0:
                        raise NotFoundError(
                            f"assessment {row['overrides']!r} to override does not exist on "
                            f"trace {row['trace_id']!r}"
                        )
                conn.execute(t.assessments.insert().values(**row))
        except IntegrityError as exc:
            raise AlreadyExistsError(f"assessment {row['assessment_id']!r} already exists") from exc
        return _assessment_from_values(row)

    def _pg_text(self, row: dict[str, Any]) -> dict[str, Any]:
        """Replace NUL characters in an assessment's plain-text columns on PostgreSQL."""
        if self._postgres:
            for key in ("name", "value_text", "rationale", "error", "source_id"):
                if key in row:
                    row[key] = _no_nul(row[key])
        return row

    def get_assessment(self, trace_id: str, assessment_id: str) -> Assessment:
        """Return one assessment of a trace.

        Example::

            store.get_assessment(trace_id, "a-5f1c...").value

        Args:
            trace_id: The trace's 32-hex-digit id.
            assessment_id: The assessment's id.

        Raises:
            NotFoundError: The trace has no assessment with this id.
        """
        _check_trace_id(trace_id)
        with self._read() as conn:
            return self._get_assessment(conn, trace_id, assessment_id)

    def _get_assessment(self, conn: Connection, trace_id: str, assessment_id: str) -> Assessment:
        a = t.assessments.c
        row = conn.execute(
            select(*self._assessment_columns).where(
                a.assessment_id == assessment_id, a.trace_id == trace_id
            )
        ).first()
        if row is None:
            raise NotFoundError(
                f"assessment {assessment_id!r} does not exist on trace {trace_id!r}"
            )
        return _assessment_from_row(row)

    def update_assessment(
        self,
        trace_id: str,
        assessment_id: str,
        *,
        name: str | None = None,
        value: Any = _UNSET,
        rationale: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Assessment:
        """Change an assessment in place and return it; `last_updated_time_ms` moves on.

        Example::

            store.update_assessment(trace_id, assessment_id, value=False, rationale="wrong")

        Args:
            trace_id: The trace's 32-hex-digit id.
            assessment_id: The assessment's id.
            name: A new name.
            value: A new value (None is a value; leave the argument out to keep the old one).
            rationale: A new rationale.
            metadata: Entries to add to or replace in the assessment's metadata.

        Raises:
            NotFoundError: The trace has no assessment with this id.
            InvalidInputError: A new field is malformed.
        """
        _check_trace_id(trace_id)
        values: dict[str, Any] = {}
        if name is not None:
            values["name"] = _assessment_name(name)
        if value is not _UNSET:
            values.update(assessment_value_columns(value))
        if rationale is not None:
            values["rationale"] = _optional_text(rationale, "rationale")
        values = self._pg_text(values)
        a = t.assessments.c
        with self._write() as conn:
            current = self._get_assessment(conn, trace_id, assessment_id)
            if metadata is not None:
                values["metadata"] = _metadata_json({**current.metadata, **metadata})
            values["last_updated_time_ms"] = max(_now_ms(), current.last_updated_time_ms)
            conn.execute(
                update(t.assessments)
                .where(a.assessment_id == assessment_id, a.trace_id == trace_id)
                .values(**values)
            )
            return self._get_assessment(conn, trace_id, assessment_id)

    def delete_assessment(self, trace_id: str, assessment_id: str) -> None:
        """Delete an assessment; if it overrode another, that one becomes valid again.

        Example::

            store.delete_assessment(trace_id, assessment_id)

        Args:
            trace_id: The trace's 32-hex-digit id.
            assessment_id: The assessment's id.

        Raises:
            NotFoundError: The trace has no assessment with this id.
        """
        _check_trace_id(trace_id)
        a = t.assessments.c
        with self._write() as conn:
            current = self._get_assessment(conn, trace_id, assessment_id)
            conn.execute(
                delete(t.assessments).where(
                    a.assessment_id == assessment_id, a.trace_id == trace_id
                )
            )
            original = current.overrides
            if original is not None:
                still_overridden = conn.execute(
                    select(a.assessment_id).where(a.trace_id == trace_id, a.overrides == original)
                ).first()
                if still_overridden is None:
                    conn.execute(
                        update(t.assessments)
                        .where(a.assessment_id == original, a.trace_id == trace_id)
                        .values(valid=True)
                    )


# --- merging ------------------------------------------------------------------------------


def _merge_info(current: dict[str, Any], p: _Prepared, added: list[Span]) -> dict[str, Any]:
    """Merge an incoming trace row into the stored (or earlier in the batch) one.

    Times cover both; the batch holding the root span (no parent) sets name, status and
    previews, otherwise empty fields are filled and IN_PROGRESS gives way. Span counts add
    the spans actually new. Token totals and cost add the incoming row's totals when all of
    its spans are new (its rollup covers exactly them); when some were already stored, the
    new spans' ``gen_ai.usage.*`` attributes are added instead and cost is kept.
    """
    new = p.info
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
        if new[key] and (p.has_root or not current[key]):
            merged[key] = new[key]
    if p.has_root or current["status"] == TraceStatus.IN_PROGRESS:
        merged["status"] = new["status"]
    merged["span_count"] = current["span_count"] + len(added)
    if not added:
        return merged
    if len(added) == len(p.spans):
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


# --- PostgreSQL text -------------------------------------------------------------------------


def _no_nul(text: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL: store U+FFFD instead (JSON columns keep it)."""
    return text.replace("\x00", "\ufffd") if text and "\x00" in text else text


def _unwrap(text: str | None) -> str | None:
    if text is not None and text.startswith(_WRAP_PREFIX):
        wrapped = orjson.loads(text)
        if isinstance(wrapped, dict) and len(wrapped) == 1:
            return wrapped[_WRAP_KEY]
    return text


# --- assessments --------------------------------------------------------------------------


def _assessment_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > _MAX_NAME_LENGTH:
        raise InvalidInputError(
            f"assessment name must be a non-empty string of at most {_MAX_NAME_LENGTH} "
            f"characters, got {name!r}",
            field="name",
        )
    return name


def _optional_text(value: Any, what: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise InvalidInputError(f"{what} must be a string, got {value!r}", field=what)
    return value


def _metadata_json(metadata: Any) -> str:
    if not isinstance(metadata, dict) or not all(isinstance(k, str) for k in metadata):
        raise InvalidInputError(
            f"assessment metadata must be a dict with string keys, got {metadata!r}",
            field="metadata",
        )
    try:
        return orjson.dumps(metadata).decode()
    except orjson.JSONEncodeError as exc:
        raise InvalidInputError(
            f"assessment metadata must be JSON data: {exc}", field="metadata"
        ) from None


def _assessment_row(a: Assessment) -> dict[str, Any]:
    """Validate an assessment and return its row (JSON columns as text)."""
    if not isinstance(a, Assessment):
        raise InvalidInputError(
            f"expected an Assessment, got {type(a).__name__}", field="assessment"
        )
    assessment_id = a.assessment_id or f"a-{uuid.uuid4().hex}"
    if not isinstance(assessment_id, str) or len(assessment_id) > _MAX_ASSESSMENT_ID_LENGTH:
        raise InvalidInputError(
            f"assessment id must be a string of at most {_MAX_ASSESSMENT_ID_LENGTH} "
            f"characters, got {assessment_id!r}",
            field="assessment_id",
        )
    if a.kind not in _KINDS:
        raise InvalidInputError(
            f"assessment kind must be 'feedback' or 'expectation', got {a.kind!r}", field="kind"
        )
    source = a.source
    if not isinstance(source, AssessmentSource) or source.source_type not in source.TYPES:
        raise InvalidInputError(
            f"assessment source must be an AssessmentSource of type "
            f"{', '.join(AssessmentSource.TYPES)}, got {source!r}",
            field="source",
        )
    if not isinstance(source.source_id, str) or len(source.source_id) > _MAX_NAME_LENGTH:
        raise InvalidInputError(
            f"assessment source id must be a string of at most {_MAX_NAME_LENGTH} characters",
            field="source",
        )
    if a.span_id is not None:
        _check_span_id(a.span_id)
    if a.run_id is not None:
        validation.run_id(a.run_id)
    overrides = a.overrides
    if overrides is not None and (not isinstance(overrides, str) or not overrides):
        raise InvalidInputError(
            f"overrides must be an assessment id, got {overrides!r}", field="overrides"
        )
    created = a.created_time_ms or _now_ms()
    updated = a.last_updated_time_ms or created
    for what, number in (("created_time_ms", created), ("last_updated_time_ms", updated)):
        if isinstance(number, bool) or not isinstance(number, int):
            raise InvalidInputError(f"{what} must be an integer, got {number!r}", field=what)
    return {
        "assessment_id": assessment_id,
        "trace_id": _check_trace_id(a.trace_id),
        "span_id": a.span_id,
        "name": _assessment_name(a.name),
        "kind": a.kind,
        **assessment_value_columns(a.value),
        "rationale": _optional_text(a.rationale, "rationale"),
        "source_type": source.source_type,
        "source_id": source.source_id,
        "error": _optional_text(a.error, "error"),
        "metadata": _metadata_json(a.metadata or {}),
        "run_id": a.run_id,
        "overrides": overrides,
        "valid": True,
        "created_time_ms": created,
        "last_updated_time_ms": updated,
    }


def _assessment_from_values(row: Mapping[str, Any]) -> Assessment:
    value = row["value"]
    return Assessment(
        assessment_id=row["assessment_id"],
        trace_id=row["trace_id"],
        name=row["name"],
        kind=row["kind"],
        value=None if value is None else orjson.loads(value),
        source=AssessmentSource(row["source_type"], row["source_id"]),
        created_time_ms=row["created_time_ms"],
        last_updated_time_ms=row["last_updated_time_ms"],
        span_id=row["span_id"],
        rationale=row["rationale"],
        error=row["error"],
        metadata=orjson.loads(row["metadata"]),
        run_id=row["run_id"],
        overrides=row["overrides"],
        valid=bool(row["valid"]),
    )


def _assessment_from_row(row: Any) -> Assessment:
    return _assessment_from_values(row._mapping)
