"""Assessments in the SQL store: feedback and expectations on a trace or one of its spans.

A value (bool, number, string, list or dict) is stored as JSON text, so it comes back with
its type; two derived columns serve filters without JSON functions: ``value_text`` (the
value's text form, see `text_form`) and ``value_number`` (numbers only). A correction
overrides an earlier assessment, which stays in history with ``valid=False``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from tracemark.entities.trace import Assessment, AssessmentSource, new_assessment_id
from tracemark.exceptions import AlreadyExistsError, InvalidInputError, NotFoundError
from tracemark.store import validation
from tracemark.store.sql import schema as t
from tracemark.store.sql.trace_ingest import check_span_id, check_trace_id, no_nul

if TYPE_CHECKING:
    from sqlalchemy import Connection

__all__ = ["AssessmentStoreMixin", "assessment_value_columns", "text_form"]

_KINDS = (Assessment.FEEDBACK, Assessment.EXPECTATION)
_MAX_NAME_LENGTH = 250
_MAX_ID_LENGTH = 64
_TEXT_COLUMNS = ("name", "value_text", "rationale", "error", "source_id")

_UNSET: Any = object()


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class AssessmentStoreMixin:
    """Create, read, update and delete assessments; `SqlStore` gets these methods."""

    if TYPE_CHECKING:
        _postgres: bool

        def _write(self) -> AbstractContextManager[Connection]: ...
        def _read(self) -> AbstractContextManager[Connection]: ...
        def _require_trace(self, conn: Connection, trace_id: str) -> None: ...

    def create_assessment(self, assessment: Assessment) -> Assessment:
        """Store an assessment on a trace and return it as stored (id and times filled).

        If `assessment.overrides` names another assessment, that one must exist on the same
        trace; it stays in history with ``valid=False``, set in the same transaction.

        Example::

            stored = store.create_assessment(
                Assessment("", trace_id, "helpful", "feedback", True,
                           AssessmentSource("HUMAN", "ana"), 0, 0)
            )

        Args:
            assessment: The assessment; an empty `assessment_id` gets a generated one and a
                zero `created_time_ms` becomes now.

        Raises:
            InvalidInputError: A field is malformed (the error names it).
            NotFoundError: The trace, or the assessment to override, does not exist.
            AlreadyExistsError: An assessment with this id already exists.
        """
        row = self._plain_text(_assessment_row(assessment))
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
        return assessment_from_row(row)

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
        check_trace_id(trace_id)
        with self._read() as conn:
            return self._get_assessment(conn, trace_id, assessment_id)

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
            metadata: Entries to add to the assessment's metadata or replace in it.

        Raises:
            NotFoundError: The trace has no assessment with this id.
            InvalidInputError: A new field is malformed.
        """
        check_trace_id(trace_id)
        values: dict[str, Any] = {}
        if name is not None:
            values["name"] = _name(name)
        if value is not _UNSET:
            values.update(assessment_value_columns(value))
        if rationale is not None:
            values["rationale"] = _optional_text(rationale, "rationale")
        values = self._plain_text(values)
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
        """Delete an assessment; the one it overrode becomes valid again if nothing else does.

        Example::

            store.delete_assessment(trace_id, assessment_id)

        Args:
            trace_id: The trace's 32-hex-digit id.
            assessment_id: The assessment's id.

        Raises:
            NotFoundError: The trace has no assessment with this id.
        """
        check_trace_id(trace_id)
        a = t.assessments.c
        with self._write() as conn:
            original = self._get_assessment(conn, trace_id, assessment_id).overrides
            conn.execute(
                delete(t.assessments).where(
                    a.assessment_id == assessment_id, a.trace_id == trace_id
                )
            )
            if original is None:
                return
            still_overridden = conn.execute(
                select(a.assessment_id).where(a.trace_id == trace_id, a.overrides == original)
            ).first()
            if still_overridden is None:
                conn.execute(
                    update(t.assessments)
                    .where(a.assessment_id == original, a.trace_id == trace_id)
                    .values(valid=True)
                )

    def _get_assessment(self, conn: Connection, trace_id: str, assessment_id: str) -> Assessment:
        a = t.assessments.c
        row = conn.execute(
            select(t.assessments).where(a.assessment_id == assessment_id, a.trace_id == trace_id)
        ).first()
        if row is None:
            raise NotFoundError(
                f"assessment {assessment_id!r} does not exist on trace {trace_id!r}"
            )
        return assessment_from_row(row._mapping)

    def _plain_text(self, row: dict[str, Any]) -> dict[str, Any]:
        """Replace NUL characters in plain-text columns, which PostgreSQL cannot hold."""
        if self._postgres:
            for key in _TEXT_COLUMNS:
                if key in row:
                    row[key] = no_nul(row[key])
        return row


def text_form(value: Any) -> str:
    """Return how an assessment value reads as text in filters.

    A string is itself, a boolean is ``true`` or ``false``, anything else is its compact
    JSON (``5``, ``0.5``, ``{"a":1}``).

    Example::

        text_form(True)  # 'true'

    Args:
        value: A JSON value.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return orjson.dumps(value).decode()


def assessment_value_columns(value: Any) -> dict[str, Any]:
    """Return the ``value``, ``value_text`` and ``value_number`` columns for a value.

    Example::

        assessment_value_columns(0.5)  # {'value': '0.5', 'value_text': '0.5', ...}

    Args:
        value: An assessment value: None, bool, number, string, or JSON (dict or list).

    Raises:
        InvalidInputError: The value is not JSON, or holds a NaN or infinite number.
    """
    _check_finite(value, 0)
    try:
        text = orjson.dumps(value).decode()
    except orjson.JSONEncodeError as exc:
        raise InvalidInputError(
            f"assessment value must be JSON (bool, number, string, list or dict): {exc}",
            field="value",
        ) from None
    number = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    return {
        "value": None if value is None else text,
        "value_text": None if value is None else text_form(value),
        "value_number": number,
    }


def _check_finite(value: Any, depth: int) -> None:
    # orjson writes NaN and infinities as null; refuse them rather than change the value.
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInputError(
            f"assessment value cannot hold {value!r}: JSON has no NaN or infinity", field="value"
        )
    if depth > 100:
        return  # orjson reports anything deeper than it can write
    if isinstance(value, dict):
        for item in value.values():
            _check_finite(item, depth + 1)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _check_finite(item, depth + 1)


def _name(name: Any) -> str:
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
    """Validate an assessment and return its row."""
    if not isinstance(a, Assessment):
        raise InvalidInputError(
            f"expected an Assessment, got {type(a).__name__}", field="assessment"
        )
    assessment_id = a.assessment_id or new_assessment_id()
    if not isinstance(assessment_id, str) or len(assessment_id) > _MAX_ID_LENGTH:
        raise InvalidInputError(
            f"assessment id must be a string of at most {_MAX_ID_LENGTH} characters, "
            f"got {assessment_id!r}",
            field="assessment_id",
        )
    if a.kind not in _KINDS:
        raise InvalidInputError(
            f"assessment kind must be 'feedback' or 'expectation', got {a.kind!r}", field="kind"
        )
    source = a.source
    if (
        not isinstance(source, AssessmentSource)
        or source.source_type not in AssessmentSource.TYPES
        or not isinstance(source.source_id, str)
        or len(source.source_id) > _MAX_NAME_LENGTH
    ):
        raise InvalidInputError(
            f"assessment source must be an AssessmentSource of type "
            f"{', '.join(AssessmentSource.TYPES)} with an id of at most {_MAX_NAME_LENGTH} "
            f"characters, got {source!r}",
            field="source",
        )
    if a.span_id is not None:
        check_span_id(a.span_id)
    if a.run_id is not None:
        validation.run_id(a.run_id)
    if a.overrides is not None and (not isinstance(a.overrides, str) or not a.overrides):
        raise InvalidInputError(
            f"overrides must be an assessment id, got {a.overrides!r}", field="overrides"
        )
    created = a.created_time_ms or _now_ms()
    updated = a.last_updated_time_ms or created
    for what, number in (("created_time_ms", created), ("last_updated_time_ms", updated)):
        if isinstance(number, bool) or not isinstance(number, int):
            raise InvalidInputError(f"{what} must be an integer, got {number!r}", field=what)
    return {
        "assessment_id": assessment_id,
        "trace_id": check_trace_id(a.trace_id),
        "span_id": a.span_id,
        "name": _name(a.name),
        "kind": a.kind,
        **assessment_value_columns(a.value),
        "rationale": _optional_text(a.rationale, "rationale"),
        "source_type": source.source_type,
        "source_id": source.source_id,
        "error": _optional_text(a.error, "error"),
        "metadata": _metadata_json(a.metadata or {}),
        "run_id": a.run_id,
        "overrides": a.overrides,
        "valid": True,
        "created_time_ms": created,
        "last_updated_time_ms": updated,
    }


def assessment_from_row(row: Mapping[str, Any]) -> Assessment:
    """Build an Assessment from an ``assessments`` row (a mapping of its columns).

    Example::

        [assessment_from_row(r._mapping) for r in conn.execute(select(assessments))]

    Args:
        row: The row's columns by name.
    """
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
