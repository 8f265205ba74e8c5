"""Registered (production) scorers in the SQL store: settings, leases and the scoring cursor.

A worker scores a batch of traces, then calls `commit_scorer_batch`: one transaction that
moves the scorer's cursor only if it still is where the worker read it (compare-and-set)
and stores the batch's assessments. The row lock of that update queues concurrent
commits, so two workers can never store the verdicts of one trace twice; the lease only
keeps them from doing the same work in the first place.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Connection, and_, delete, or_, select, update
from sqlalchemy.exc import IntegrityError

from tracemark.entities.scorer import RegisteredScorer, ScorerStatus
from tracemark.entities.trace import Assessment
from tracemark.exceptions import AlreadyExistsError, InvalidInputError, NotFoundError
from tracemark.store.filter_grammar import parse_filter
from tracemark.store.sql import schema as t
from tracemark.store.sql.assessments import _assessment_row
from tracemark.store.sql.registry import now_ms
from tracemark.store.sql.trace_ingest import no_nul
from tracemark.store.sql.trace_search import trace_filter_clause

__all__ = ["ScorerStoreMixin", "check_filter_string", "check_scorer_settings"]

_rs = t.registered_scorers.c
_MAX_NAME_LENGTH = 250  # the name is the source id of assessments, which allow 250
_MAX_SPEC_BYTES = 64 * 1024
_MAX_FILTER_LENGTH = 10_000

Cursor = tuple[int, str | None]


def check_scorer_name(name: Any) -> str:
    """Check a registered scorer's name: 1 to 250 characters, no NUL."""
    if (
        not isinstance(name, str)
        or not name.strip()
        or len(name) > _MAX_NAME_LENGTH
        or "\x00" in name
    ):
        raise InvalidInputError(
            f"scorer name must be a non-empty string of at most {_MAX_NAME_LENGTH} "
            f"characters, got {name!r}",
            field="name",
        )
    return name


def check_filter_string(filter_string: Any) -> str | None:
    """Check a trace filter (syntax and keys); a blank one means no filter."""
    if filter_string is None:
        return None
    if not isinstance(filter_string, str) or len(filter_string) > _MAX_FILTER_LENGTH:
        raise InvalidInputError(
            f"filter_string must be a string of at most {_MAX_FILTER_LENGTH} characters",
            field="filter_string",
        )
    if "\x00" in filter_string:
        raise InvalidInputError("filter_string cannot hold a NUL character", field="filter_string")
    expr = parse_filter(filter_string)
    if expr is None:
        return None
    trace_filter_clause(expr, filter_string=filter_string)  # unknown keys and bad values
    return filter_string


def check_scorer_settings(
    *,
    sample_rate: Any = None,
    status: Any = None,
    spec: Any = None,
) -> None:
    """Check the settings given (None ones are skipped); raise InvalidInputError naming one."""
    if sample_rate is not None and (
        isinstance(sample_rate, bool)
        or not isinstance(sample_rate, (int, float))
        or not math.isfinite(sample_rate)
        or not 0.0 <= sample_rate <= 1.0
    ):
        raise InvalidInputError(
            f"sample_rate must be a number from 0 to 1, got {sample_rate!r}", field="sample_rate"
        )
    if status is not None and status not in ScorerStatus.ALL:
        raise InvalidInputError(
            f"scorer status must be one of {', '.join(ScorerStatus.ALL)}, got {status!r}",
            field="status",
        )
    if spec is not None:
        _spec_json(spec)


def _spec_json(spec: Any) -> str:
    if not isinstance(spec, dict) or not isinstance(spec.get("kind"), str):
        raise InvalidInputError(
            f"scorer spec must be an object with a 'kind', got {spec!r}"[:300], field="spec"
        )
    try:
        text = orjson.dumps(spec).decode()
    except (orjson.JSONEncodeError, TypeError) as exc:
        raise InvalidInputError(f"scorer spec must be JSON data: {exc}", field="spec") from None
    if len(text) > _MAX_SPEC_BYTES or "\x00" in text:
        raise InvalidInputError(
            f"scorer spec must be at most {_MAX_SPEC_BYTES} bytes of JSON without NUL",
            field="spec",
        )
    return text


def _check_id(scorer_id: Any) -> str:
    if not isinstance(scorer_id, str) or len(scorer_id) != 32:
        raise NotFoundError(f"registered scorer {scorer_id!r} does not exist")
    return scorer_id


def _check_cursor(cursor: Any, what: str) -> Cursor | None:
    if cursor is None:
        return None
    ok = isinstance(cursor, (tuple, list)) and len(cursor) == 2
    if ok:
        ts, tid = cursor
        ok = (
            isinstance(ts, int)
            and not isinstance(ts, bool)
            and 0 <= ts < 2**63
            and (tid is None or (isinstance(tid, str) and len(tid) <= 32))
        )
    if not ok:
        raise InvalidInputError(
            f"{what} must be (timestamp_ms, trace_id or None), got {cursor!r}", field=what
        )
    return (cursor[0], cursor[1])


def _cursor_is(cursor: Cursor | None) -> ColumnElement[bool]:
    if cursor is None:
        return and_(_rs.cursor_timestamp_ms.is_(None), _rs.cursor_trace_id.is_(None))
    ts, tid = cursor
    same_id = _rs.cursor_trace_id.is_(None) if tid is None else _rs.cursor_trace_id == tid
    return and_(_rs.cursor_timestamp_ms == ts, same_id)


def _scorer(row: Any) -> RegisteredScorer:
    return RegisteredScorer(
        scorer_id=row.scorer_id,
        experiment_id=str(row.experiment_id),
        name=row.name,
        spec=orjson.loads(row.spec),
        sample_rate=row.sample_rate,
        filter_string=row.filter_string,
        status=row.status,
        last_error=row.last_error,
        cursor_timestamp_ms=row.cursor_timestamp_ms,
        cursor_trace_id=row.cursor_trace_id,
        creation_time=row.creation_time,
        last_updated_time=row.last_updated_time,
    )


class ScorerStoreMixin:
    """Registered-scorer methods of `SqlStore` (which provides `_read`, `_write`, ...)."""

    _read: Callable[..., Any]
    _write: Callable[..., Any]
    _experiment_id: Callable[[Any], int]
    _plain_text: Callable[[dict[str, Any]], dict[str, Any]]

    def create_registered_scorer(
        self,
        experiment_id: str,
        name: str,
        spec: dict[str, Any],
        sample_rate: float = 1.0,
        filter_string: str | None = None,
        status: str = ScorerStatus.ACTIVE,
    ) -> RegisteredScorer:
        """Register a scorer on an experiment; it scores traces started from now on."""
        eid = self._experiment_id(experiment_id)
        check_scorer_settings(sample_rate=sample_rate, status=status)
        now = now_ms()
        row = {
            "scorer_id": uuid.uuid4().hex,
            "experiment_id": eid,
            "name": check_scorer_name(name),
            "spec": _spec_json(spec),
            "sample_rate": float(sample_rate),
            "filter_string": check_filter_string(filter_string),
            "status": status,
            # Traces started before registration are not its business.
            "cursor_timestamp_ms": now - 1,
            "cursor_trace_id": None,
            "creation_time": now,
            "last_updated_time": now,
        }
        try:
            with self._write() as conn:
                found = conn.execute(
                    select(t.experiments.c.experiment_id).where(
                        t.experiments.c.experiment_id == eid
                    )
                ).first()
                if found is None:
                    raise NotFoundError(f"experiment with id {str(experiment_id)!r} does not exist")
                conn.execute(t.registered_scorers.insert().values(**row))
        except IntegrityError as exc:
            raise AlreadyExistsError(
                f"a scorer named {name!r} is already registered in experiment {eid}"
            ) from exc
        return self.get_registered_scorer(str(eid), name)

    def get_registered_scorer(self, experiment_id: str, name: str) -> RegisteredScorer:
        """Return the scorer registered under `name` in an experiment."""
        eid = self._experiment_id(experiment_id)
        with self._read() as conn:
            row = conn.execute(
                select(t.registered_scorers).where(
                    _rs.experiment_id == eid, _rs.name == check_scorer_name(name)
                )
            ).first()
        if row is None:
            raise NotFoundError(f"no scorer named {name!r} is registered in experiment {eid}")
        return _scorer(row)

    def list_registered_scorers(self, experiment_id: str | None = None) -> list[RegisteredScorer]:
        """Return the scorers of one experiment, or of all, oldest first."""
        stmt = select(t.registered_scorers)
        if experiment_id is not None:
            stmt = stmt.where(_rs.experiment_id == self._experiment_id(experiment_id))
        stmt = stmt.order_by(_rs.experiment_id, _rs.creation_time, _rs.name)
        with self._read() as conn:
            return [_scorer(r) for r in conn.execute(stmt).all()]

    def update_registered_scorer(
        self,
        experiment_id: str,
        name: str,
        *,
        sample_rate: float | None = None,
        filter_string: str | None = None,
        status: str | None = None,
        last_error: str | None = None,
    ) -> RegisteredScorer:
        """Change a scorer's settings; None leaves one as is, `filter_string=""` removes it.

        `last_error` is set by workers (an empty string clears it).
        """
        eid = self._experiment_id(experiment_id)
        check_scorer_settings(sample_rate=sample_rate, status=status)
        values: dict[str, Any] = {}
        if sample_rate is not None:
            values["sample_rate"] = float(sample_rate)
        if filter_string is not None:
            values["filter_string"] = check_filter_string(filter_string)
        if status is not None:
            values["status"] = status
        if values:
            values["last_updated_time"] = now_ms()
        if last_error is not None:
            if not isinstance(last_error, str):
                raise InvalidInputError("last_error must be a string", field="last_error")
            values["last_error"] = no_nul(last_error[:10_000]) or None
        with self._write() as conn:
            if values:
                result = conn.execute(
                    update(t.registered_scorers)
                    .where(_rs.experiment_id == eid, _rs.name == check_scorer_name(name))
                    .values(**values)
                )
                if not result.rowcount:
                    raise NotFoundError(
                        f"no scorer named {name!r} is registered in experiment {eid}"
                    )
        return self.get_registered_scorer(str(eid), name)

    def delete_registered_scorer(self, experiment_id: str, name: str) -> None:
        """Unregister a scorer; the assessments it wrote stay."""
        eid = self._experiment_id(experiment_id)
        with self._write() as conn:
            result = conn.execute(
                delete(t.registered_scorers).where(
                    _rs.experiment_id == eid, _rs.name == check_scorer_name(name)
                )
            )
            if not result.rowcount:
                raise NotFoundError(f"no scorer named {name!r} is registered in experiment {eid}")

    # -- what workers call ----------------------------------------------------------------

    def acquire_scorer_lease(
        self, scorer_id: str, owner: str, lease_ms: int
    ) -> RegisteredScorer | None:
        """Take (or renew) a scorer for `lease_ms`; None while another worker holds it."""
        _check_owner(owner)
        if isinstance(lease_ms, bool) or not isinstance(lease_ms, int) or lease_ms < 0:
            raise InvalidInputError("lease_ms must be a non-negative integer", field="lease_ms")
        now = now_ms()
        free = or_(
            _rs.lease_owner.is_(None),
            _rs.lease_owner == owner,
            _rs.lease_expires_ms.is_(None),
            _rs.lease_expires_ms <= now,
        )
        with self._write() as conn:
            result = conn.execute(
                update(t.registered_scorers)
                .where(_rs.scorer_id == _check_id(scorer_id), free)
                .values(lease_owner=owner, lease_expires_ms=min(now + lease_ms, 2**63 - 1))
            )
            row = conn.execute(
                select(t.registered_scorers).where(_rs.scorer_id == scorer_id)
            ).first()
        if row is None:
            raise NotFoundError(f"registered scorer {scorer_id!r} does not exist")
        return _scorer(row) if result.rowcount else None

    def release_scorer_lease(self, scorer_id: str, owner: str) -> None:
        """Give a scorer back before the lease expires (no-op unless `owner` holds it)."""
        _check_owner(owner)
        with self._write() as conn:
            conn.execute(
                update(t.registered_scorers)
                .where(_rs.scorer_id == _check_id(scorer_id), _rs.lease_owner == owner)
                .values(lease_owner=None, lease_expires_ms=None)
            )

    def commit_scorer_batch(
        self,
        scorer_id: str,
        expected_cursor: Cursor | None,
        new_cursor: Cursor,
        assessments: Sequence[Assessment] = (),
    ) -> bool:
        """Move a scorer's cursor and store a batch's assessments, in one transaction.

        Nothing is written, and False returned, when the cursor is no longer at
        `expected_cursor` (another worker committed this batch first). Assessments of traces
        deleted in the meantime are dropped.

        Args:
            scorer_id: The registered scorer.
            expected_cursor: The cursor the worker read before scoring.
            new_cursor: The last trace of the batch, as (timestamp_ms, trace_id).
            assessments: The batch's feedback.
        """
        expected = _check_cursor(expected_cursor, "expected_cursor")
        new = _check_cursor(new_cursor, "new_cursor")
        if new is None:
            raise InvalidInputError("new_cursor is required", field="new_cursor")
        rows = [self._plain_text(_assessment_row(a)) for a in assessments]
        with self._write() as conn:
            moved = conn.execute(
                update(t.registered_scorers)
                .where(_rs.scorer_id == _check_id(scorer_id), _cursor_is(expected))
                .values(cursor_timestamp_ms=new[0], cursor_trace_id=new[1])
            )
            if not moved.rowcount:
                return False
            rows = _rows_of_existing_traces(conn, rows)
            if rows:
                conn.execute(t.assessments.insert(), rows)
        return True


def _check_owner(owner: Any) -> str:
    if not isinstance(owner, str) or not 0 < len(owner) <= 128 or "\x00" in owner:
        raise InvalidInputError(
            "lease owner must be a string of 1 to 128 characters", field="owner"
        )
    return owner


def _rows_of_existing_traces(conn: Connection, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ids = sorted({r["trace_id"] for r in rows})
    if not ids:
        return rows
    ti = t.trace_info.c
    found = set(conn.execute(select(ti.trace_id).where(ti.trace_id.in_(ids))).scalars())
    return [r for r in rows if r["trace_id"] in found]
