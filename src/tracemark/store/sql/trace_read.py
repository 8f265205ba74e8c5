"""Read spans back as `Span` objects: a whole trace with or without payloads, or one span.

The UI opens a trace before it needs any span's inputs or outputs, so `SpanReader` can
select, instead of those payloads, their sizes in bytes: computed by the database for
inline payloads, and read from the gzip trailer (4 bytes) for those in the artifact store.
The payloads come later, one span at a time, when a span is opened.

Reading 10,000 spans is dominated by per-row Python work, so rows are plain tuples
unpacked positionally into `Span`'s positional constructor, JSON columns are decoded once
each (``[]`` events not at all), and `unwrap` runs only on PostgreSQL, the one database
`json_in` wraps values for.
"""

from __future__ import annotations

import gzip
import os
import re
from collections.abc import Iterable
from typing import Any

import orjson
from sqlalchemy import (
    LargeBinary,
    Select,
    Text,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal_column,
    select,
)

from tracemark.entities.trace import Span, SpanEvent
from tracemark.exceptions import NotFoundError, StoreError
from tracemark.store.artifacts import LocalArtifactRepository
from tracemark.store.sql import schema as t
from tracemark.store.sql.trace_ingest import TRACES_DIR, WRAP_KEY, unwrap

__all__ = ["SpanReader"]

# The references `trace_ingest` writes; nothing else is opened by `payload_size`.
_PAYLOAD_REF = re.compile(
    re.escape(TRACES_DIR) + r"/[0-9a-f]{32}/[0-9a-f]{16}\.(?:inputs|outputs)\.json\.gz"
)

_s = t.spans.c
# The columns every span read selects, in the order `SpanReader.spans` unpacks them; the
# inputs and outputs (or their sizes) follow.
_COLUMNS = (
    _s.span_id,
    _s.parent_id,
    _s.name,
    _s.span_type,
    _s.start_time_ns,
    _s.end_time_ns,
    _s.status_code,
    _s.status_message,
    _s.inputs_ref,
    _s.outputs_ref,
    _s.attributes,
    _s.events,
)


class SpanReader:
    """The span statements of one store, and the conversion of their rows to spans.

    Example::

        reader = SpanReader(postgres=False, artifact_root="/data/artifacts")
        rows = conn.execute(reader.select_trace(False), {"tid": trace_id})
        spans = reader.spans(rows, trace_id, include_payloads=False)

    Args:
        postgres: Whether the database is PostgreSQL (JSONB columns) or SQLite (text).
        artifact_root: Where payloads over the inline limit are stored.
    """

    def __init__(self, *, postgres: bool, artifact_root: str) -> None:
        self.postgres = postgres
        self.artifact_root = artifact_root
        columns = tuple(self._text(c) if isinstance(c.type, t.JsonText) else c for c in _COLUMNS)
        payloads = (self._text(_s.inputs), self._text(_s.outputs))
        sizes = (self._size(_s.inputs), self._size(_s.outputs))
        in_trace = _s.trace_id == bindparam("tid")
        order = (_s.start_time_ns, _s.span_id)
        self._select_trace = {
            True: select(*columns, *payloads).where(in_trace).order_by(*order),
            False: select(*columns, *sizes).where(in_trace).order_by(*order),
        }
        self._select_span = select(*columns, *payloads).where(
            in_trace, _s.span_id == bindparam("sid")
        )

    def select_trace(self, include_payloads: bool) -> Select[Any]:
        """The statement selecting all spans of trace ``:tid`` in start order."""
        return self._select_trace[include_payloads]

    def select_span(self) -> Select[Any]:
        """The statement selecting span ``:sid`` of trace ``:tid`` with its payloads."""
        return self._select_span

    def _text(self, column: Any) -> Any:
        """Select a JSON column as text: JSONB would otherwise be decoded by the driver."""
        return cast(column, Text).label(column.key) if self.postgres else column

    def _size(self, column: Any) -> Any:
        """Select the size in bytes of the JSON text `spans` would return for a column."""
        label = f"{column.key}_size"
        if not self.postgres:
            return func.length(cast(column, LargeBinary)).label(label)
        # The text of a value `json_in` wrapped is the wrapper's string. Any text that
        # mentions the wrapper's key is wrapped, so an object with that key is a wrapper.
        key = literal_column(f"'{WRAP_KEY}'")
        wrapped = and_(func.jsonb_typeof(column) == literal_column("'object'"), column.op("?")(key))
        return case(
            (wrapped, func.octet_length(column.op("->>")(key))),
            else_=func.octet_length(cast(column, Text)),
        ).label(label)

    def spans(self, rows: Iterable[Any], trace_id: str, *, include_payloads: bool) -> list[Span]:
        """Turn rows of `select_trace` (or `select_span`) into spans.

        Args:
            rows: The result rows.
            trace_id: The trace they belong to (not selected again per row).
            include_payloads: Whether the rows hold the payloads (else their sizes).

        Raises:
            StoreError: A payload file of the artifact store is missing.
        """
        loads = orjson.loads
        event = SpanEvent.from_dict
        postgres = self.postgres
        spans: list[Span] = []
        append = spans.append
        for (
            span_id,
            parent_id,
            name,
            span_type,
            start,
            end,
            status,
            message,
            inputs_ref,
            outputs_ref,
            attributes,
            events,
            inputs,
            outputs,
        ) in rows:
            if postgres:
                attributes, events = unwrap(attributes), unwrap(events)
            if include_payloads:
                if inputs_ref:
                    inputs = self.load_payload(inputs_ref)
                elif postgres:
                    inputs = unwrap(inputs)
                if outputs_ref:
                    outputs = self.load_payload(outputs_ref)
                elif postgres:
                    outputs = unwrap(outputs)
                inputs_size = outputs_size = None
            else:
                inputs_size = self.payload_size(inputs_ref) if inputs_ref else inputs
                outputs_size = self.payload_size(outputs_ref) if outputs_ref else outputs
                inputs = outputs = None
            append(
                Span(
                    trace_id,
                    span_id,
                    parent_id,
                    name,
                    span_type,
                    start,
                    end,
                    status,
                    message,
                    inputs,
                    outputs,
                    loads(attributes),
                    [] if events == "[]" else [event(e) for e in loads(events)],
                    inputs_size,
                    outputs_size,
                )
            )
        return spans

    def load_payload(self, ref: str) -> str:
        """Return the JSON text of a payload kept in the artifact store."""
        try:
            data = LocalArtifactRepository(self.artifact_root).read_bytes(ref)
        except NotFoundError:
            raise self._missing(ref) from None
        return gzip.decompress(data).decode()

    def payload_size(self, ref: str) -> int:
        """Return the size in bytes of a stored payload's JSON text, without reading it.

        gzip's trailer holds the uncompressed size modulo 2**32; payloads are bounded by
        the request size far below that.
        """
        if not _PAYLOAD_REF.fullmatch(ref):
            raise StoreError(f"span payload reference {ref!r} is malformed")
        try:
            with open(os.path.join(self.artifact_root, ref), "rb") as fh:
                fh.seek(-4, os.SEEK_END)
                return int.from_bytes(fh.read(4), "little")
        except FileNotFoundError:
            raise self._missing(ref) from None

    def _missing(self, ref: str) -> StoreError:
        return StoreError(
            f"span payload {ref!r} is missing from the artifact store {self.artifact_root!r}"
        )
