"""Traces in the SQL store: batch ingest, reading, search, deletion and trace tags.

`log_traces` is the exporter's hot path: `trace_ingest` validates and serializes the whole
batch in Python, then one transaction writes it with one bulk statement per table and no
per-row queries. Reading a trace is one query for its info row (plus one per child table:
tags, metadata, assessments) and one for all its spans, with or without their payloads
(`trace_read`); `get_span` reads one span whole. Media the spans refer to is stored in the
artifact store once per content (`trace_attachments`); `get_trace_attachment` reads it.
"""

from __future__ import annotations

import os
import re
import shutil
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    Integer,
    bindparam,
    delete,
    select,
)

from tracemark.entities.trace import Assessment, Attachment, Span, Trace, TraceInfo
from tracemark.exceptions import InvalidInputError, NotFoundError
from tracemark.store import validation
from tracemark.store.artifacts import LocalArtifactRepository
from tracemark.store.sql import schema as t
from tracemark.store.sql.assessments import AssessmentStoreMixin, assessment_from_row
from tracemark.store.sql.engine import unprepared
from tracemark.store.sql.trace_attachments import AttachmentFiles, check_sha256
from tracemark.store.sql.trace_ingest import (
    INFO_COLUMNS,
    SPAN_COLUMNS,
    TRACES_DIR,
    Batch,
    check_span_id,
    check_trace_id,
    fold_batch,
    no_nul,
    prepare_trace,
)
from tracemark.store.sql.trace_read import SpanReader
from tracemark.store.sql.trace_search import build_trace_select

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

__all__ = ["TraceStoreMixin"]

_CHUNK = 500
# Rows per INSERT statement on PostgreSQL (each column goes as one array parameter).
_PG_ROWS_PER_STATEMENT = 5000
_PG_ARRAY_TYPES = {BigInteger: "int8", Integer: "int8", Float: "float8", Boolean: "bool"}
_KEY_VALUE_COLUMNS = ("trace_id", "key", "value")
# Advisory locks per trace id; the first key ("trac") keeps them apart from other users'.
_PG_LOCK_CLASS = 0x74726163
_PG_LOCK_TRACES = "SELECT pg_advisory_xact_lock(%s, hashtext(id)) FROM unnest(%b::text[]) AS id"

_NAMED_PARAMETER = re.compile(r"%\((\w+)\)s")


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class _BulkStatement:
    """Driver-level SQL for a batch of rows, and how to reorder a row tuple for it.

    SQLite takes the rows through executemany. PostgreSQL would run one statement per row
    that way, so there the rows go as one binary array per column in a single statement:
    ``INSERT ... SELECT ... FROM unnest(%b::text[], ...)``, about twice as fast.
    """

    __slots__ = ("order", "sql")

    def __init__(self, sql: str, order: list[int] | None) -> None:
        self.sql = sql
        self.order = order


def _unnest_sql(sql: str, table: Any, names: list[str]) -> str:
    """Rewrite a compiled single-row PostgreSQL INSERT to take one array per column."""
    values = sql.index(" VALUES (")
    end = sql.index(") ON CONFLICT", values) + 1
    arrays, selected = [], []
    for name in names:
        kind = table.c[name].type
        if isinstance(kind, t.JsonText):
            arrays.append("%b::text[]")
            selected.append(f'u."{name}"::jsonb')
        else:
            arrays.append(f"%b::{_PG_ARRAY_TYPES.get(type(kind), 'text')}[]")
            selected.append(f'u."{name}"')
    columns = ", ".join(f'"{name}"' for name in names)
    return (
        f"{sql[:values]} SELECT {', '.join(selected)} "
        f"FROM unnest({', '.join(arrays)}) AS u({columns}){sql[end:]}"
    )


class TraceStoreMixin(AssessmentStoreMixin):
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
            t.trace_info,
            info.on_conflict_do_update(
                index_elements=["trace_id"],
                set_={
                    name: info.excluded[name]
                    for name in INFO_COLUMNS
                    if name not in ("trace_id", "experiment_id")
                },
            ),
            INFO_COLUMNS,
        )
        self._insert_spans = self._bulk(
            t.spans,
            self._insert(t.spans).on_conflict_do_nothing(index_elements=["trace_id", "span_id"]),
            SPAN_COLUMNS,
        )
        tag = self._insert(t.trace_tags)
        self._upsert_trace_tag = self._bulk(
            t.trace_tags,
            tag.on_conflict_do_update(
                index_elements=["trace_id", "key"], set_={"value": tag.excluded.value}
            ),
            _KEY_VALUE_COLUMNS,
        )
        self._insert_trace_metadata = self._bulk(
            t.trace_metadata,
            self._insert(t.trace_metadata).on_conflict_do_nothing(
                index_elements=["trace_id", "key"]
            ),
            _KEY_VALUE_COLUMNS,
        )
        self._span_reader = SpanReader(postgres=self._postgres, artifact_root=self.artifact_root)
        self._select_trace_exists = select(t.trace_info.c.trace_id).where(
            t.trace_info.c.trace_id == bindparam("tid")
        )

    def _bulk(self, table: Any, stmt: Any, columns: tuple[str, ...]) -> _BulkStatement:
        """Compile an INSERT once to driver SQL taking row tuples in `columns` order.

        Going below SQLAlchemy's per-row parameter processing roughly halves the cost of a
        bulk insert; these statements bind only strings, integers, floats and None, which
        need no type processing (JSON columns are text already).
        """
        compiled = stmt.compile(dialect=self.engine.dialect, column_keys=list(columns))
        sql = str(compiled)
        if compiled.positional:
            names = list(compiled.positiontup or ())
        else:
            names = _NAMED_PARAMETER.findall(sql)
            sql = _unnest_sql(sql, table, names)
        order = [columns.index(name) for name in names]
        return _BulkStatement(sql, None if order == list(range(len(columns))) else order)

    def _execute_bulk(
        self, conn: Connection, bulk: _BulkStatement, rows: Sequence[tuple[Any, ...]]
    ) -> None:
        if bulk.order is not None:
            rows = [tuple(row[i] for i in bulk.order) for row in rows]
        if not self._postgres:
            conn.exec_driver_sql(bulk.sql, list(rows))
            return
        for start in range(0, len(rows), _PG_ROWS_PER_STATEMENT):
            chunk = rows[start : start + _PG_ROWS_PER_STATEMENT]
            conn.exec_driver_sql(
                bulk.sql, tuple(list(column) for column in zip(*chunk, strict=True))
            )

    # -- writing traces -------------------------------------------------------------

    def log_traces(self, traces: Sequence[Trace]) -> None:
        """Store a batch of finished traces in one transaction: all of them or none.

        Example::

            store.log_traces([trace_a, trace_b])
            store.get_trace(trace_a.trace_id).root.name

        Spans of a trace may come in several batches: spans already stored are ignored and
        the trace row is merged (`trace_ingest.merge_info` gives the rules). Tags are
        upserted; metadata is write-once (the first value of a key stays). Inputs or
        outputs over `INLINE_PAYLOAD_LIMIT` bytes, and the traces' attachments (once per
        content), are written to the artifact store before the transaction commits, and
        removed again if it fails.

        Args:
            traces: The traces, each with its info and (some of) its spans.

        Raises:
            InvalidInputError: A trace, span, tag or metadata entry is malformed.
            NotFoundError: A trace names an experiment that does not exist.
        """
        if isinstance(traces, Trace):
            traces = [traces]
        prepared = [
            prepare_trace(trace, experiment_id=self._experiment_id, postgres=self._postgres)
            for trace in traces
        ]
        if not prepared:
            return
        written: list[str] = []
        attached: list[str] = []
        files = AttachmentFiles(self.artifact_root)
        try:
            with self._write() as conn:
                self._require_experiments(conn, {p.info["experiment_id"] for p in prepared})
                batch = fold_batch(prepared, *self._stored_state(conn, prepared))
                self._write_batch(conn, batch)
                # Written inside the transaction so a failed commit can take them back.
                repository = LocalArtifactRepository(self.artifact_root)
                for ref, data in batch.files:
                    repository.write_bytes(ref, data)
                    written.append(ref)
                for trace_id, attachment in batch.attachments:
                    files.write(trace_id, attachment, attached)
        except BaseException:
            for ref in written:
                path = os.path.join(self.artifact_root, ref)
                if os.path.exists(path):
                    os.unlink(path)
            files.undo(attached)
            raise

    def _require_experiments(self, conn: Connection, ids: set[int]) -> None:
        e = t.experiments.c
        found = set(conn.scalars(select(e.experiment_id).where(e.experiment_id.in_(ids))))
        missing = sorted(ids - found)
        if missing:
            names = ", ".join(repr(str(m)) for m in missing)
            raise NotFoundError(f"experiment with id {names} does not exist")

    def _stored_state(
        self, conn: Connection, prepared: Sequence[Any]
    ) -> tuple[dict[str, dict[str, Any]], dict[str, set[str]]]:
        """Return the stored rows and span ids of the batch's traces: one query each.

        On PostgreSQL it first takes a transaction-scoped lock per trace id, in sorted order:
        two batches merging into the same trace then run one after the other (the second
        reads what the first committed), and they cannot deadlock. SQLite's write
        transactions are serialized already.
        """
        ids = sorted({p.info["trace_id"] for p in prepared})
        if self._postgres:
            conn.exec_driver_sql(_PG_LOCK_TRACES, (_PG_LOCK_CLASS, ids))
        stored: dict[str, dict[str, Any]] = {}
        stored_spans: dict[str, set[str]] = defaultdict(set)
        ti, s = t.trace_info, t.spans.c
        with unprepared(conn):
            for chunk in _chunks(ids):
                for row in conn.execute(select(ti).where(ti.c.trace_id.in_(chunk))):
                    stored[row.trace_id] = dict(row._mapping)
            for chunk in _chunks(list(stored)):
                for tid, sid in conn.execute(
                    select(s.trace_id, s.span_id).where(s.trace_id.in_(chunk))
                ):
                    stored_spans[tid].add(sid)
        return stored, stored_spans

    def _write_batch(self, conn: Connection, batch: Batch) -> None:
        self._execute_bulk(
            conn,
            self._upsert_trace_info,
            [tuple(row[c] for c in INFO_COLUMNS) for row in batch.infos.values()],
        )
        if batch.spans:
            self._execute_bulk(conn, self._insert_spans, batch.spans)
        if batch.tags:
            self._execute_bulk(
                conn, self._upsert_trace_tag, [(*k, v) for k, v in batch.tags.items()]
            )
        if batch.metadata:
            self._execute_bulk(
                conn, self._insert_trace_metadata, [(*k, v) for k, v in batch.metadata.items()]
            )

    # -- reading traces -------------------------------------------------------------

    def get_trace(self, trace_id: str, *, include_payloads: bool = True) -> Trace:
        """Return a trace with its info, tags, metadata, assessments and every span.

        Example::

            trace = store.get_trace("0af7651916cd43dd8448eb211c80319c")
            [span.name for span in trace.search_spans(span_type="TOOL")]

        Args:
            trace_id: The trace's 32-hex-digit id.
            include_payloads: False leaves every span's inputs and outputs out (None) and
                gives their sizes in bytes instead (`Span.inputs_size`, `outputs_size`);
                `get_span` then fetches one span whole.

        Raises:
            InvalidInputError: The id is not 32 lowercase hex digits.
            NotFoundError: No trace has this id.
            StoreError: A payload file is missing from the artifact store.
        """
        check_trace_id(trace_id)
        reader = self._span_reader
        with self._read() as conn:
            row = conn.execute(
                select(t.trace_info).where(t.trace_info.c.trace_id == trace_id)
            ).first()
            if row is None:
                raise NotFoundError(f"trace {trace_id!r} does not exist")
            info = self._load_trace_infos(conn, [row])[0]
            rows = conn.execute(reader.select_trace(include_payloads), {"tid": trace_id}).all()
        return Trace(info, reader.spans(rows, trace_id, include_payloads=include_payloads))

    def get_span(self, trace_id: str, span_id: str) -> Span:
        """Return one span of a trace with its inputs and outputs.

        Example::

            light = store.get_trace(trace_id, include_payloads=False)
            store.get_span(trace_id, light.root.span_id).inputs

        Args:
            trace_id: The trace's 32-hex-digit id.
            span_id: The span's 16-hex-digit id.

        Raises:
            InvalidInputError: An id is malformed.
            NotFoundError: The trace has no such span (or does not exist).
            StoreError: A payload file is missing from the artifact store.
        """
        check_trace_id(trace_id)
        check_span_id(span_id)
        reader = self._span_reader
        with self._read() as conn:
            rows = conn.execute(reader.select_span(), {"tid": trace_id, "sid": span_id}).all()
        if not rows:
            raise NotFoundError(f"span {span_id!r} of trace {trace_id!r} does not exist")
        return reader.spans(rows, trace_id, include_payloads=True)[0]

    def get_trace_attachment(self, trace_id: str, sha256: str) -> Attachment:
        """Return an attachment of a trace (media a span refers to), with its media type.

        Example::

            store.get_trace_attachment(trace_id, "9f86d081884c7d65...").media_type

        Args:
            trace_id: The trace's 32-hex-digit id.
            sha256: The attachment's SHA-256 digest, 64 lowercase hex digits.

        Raises:
            InvalidInputError: An id is malformed.
            NotFoundError: The trace holds no such attachment (or does not exist).
            StoreError: The attachment's bytes are missing from the artifact store.
        """
        check_trace_id(trace_id)
        check_sha256(sha256)
        return AttachmentFiles(self.artifact_root).read(trace_id, sha256)

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
                select(t.assessments)
                .where(a.trace_id.in_(chunk))
                .order_by(a.created_time_ms, a.assessment_id)
            ):
                found[row.trace_id].append(assessment_from_row(row._mapping))
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
            ids = [check_trace_id(i) for i in trace_ids]
            batches = list(_chunks(list(dict.fromkeys(ids))))
        deleted = 0
        doomed: list[str] = []
        with self._write() as conn:
            for batch in batches:
                where = conditions if batch is None else [*conditions, ti.trace_id.in_(batch)]
                doomed.extend(conn.scalars(select(ti.trace_id).where(*where)))
                deleted += conn.execute(delete(t.trace_info).where(*where)).rowcount
        # Large payloads and attachment listings live in one folder per trace.
        files = AttachmentFiles(self.artifact_root)
        for tid in doomed:
            folder = os.path.join(self.artifact_root, TRACES_DIR, tid)
            if os.path.isdir(folder):
                files.release(tid)
                shutil.rmtree(folder, ignore_errors=True)
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
        check_trace_id(trace_id)
        ((key, value),) = validation.tags({key: value})
        if self._postgres:
            value = no_nul(value)
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
        check_trace_id(trace_id)
        tags = t.trace_tags.c
        with self._write() as conn:
            self._require_trace(conn, trace_id)
            result = conn.execute(
                delete(t.trace_tags).where(tags.trace_id == trace_id, tags.key == key)
            )
            if result.rowcount == 0:
                raise NotFoundError(f"trace {trace_id!r} has no tag {key!r}")
