"""Read-only aggregates over traces for the UI: sessions and metrics over time.

Functions take an open `SqlStore` and use the same filter grammar as `search_traces`
(compiled by `trace_search.trace_filter_clause`), so a filter typed in the UI narrows the
sessions list and the overview charts exactly as it narrows the traces table.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, case, func, select

from tracemark.entities.trace import TraceStatus
from tracemark.store import validation
from tracemark.store.filter_grammar import parse_filter
from tracemark.store.sql.filter_compile import parse_experiment_ids
from tracemark.store.sql.paging import decode_page_token, encode_page_token
from tracemark.store.sql.schema import assessments, trace_info, trace_metadata
from tracemark.store.sql.trace_search import trace_filter_clause

if TYPE_CHECKING:
    from tracemark.store.sql.store import SqlStore

__all__ = ["SessionSummary", "assessment_names", "list_sessions", "trace_overview"]

SESSION_KEY = "session_id"
USER_KEY = "user_id"

_ti = trace_info.c
_md = trace_metadata.c

# Bucket widths the overview picks from, so axis ticks land on round times.
_BUCKET_WIDTHS_MS = (
    1_000,
    5_000,
    15_000,
    60_000,
    5 * 60_000,
    15 * 60_000,
    3_600_000,
    3 * 3_600_000,
    6 * 3_600_000,
    86_400_000,
    7 * 86_400_000,
)


@dataclass(slots=True)
class SessionSummary:
    """One conversation: the traces that share a `session_id` metadata value."""

    session_id: str
    trace_count: int
    first_timestamp_ms: int
    last_timestamp_ms: int
    error_count: int
    total_tokens: int | None
    cost: float | None
    user_ids: list[str] = field(default_factory=list)
    first_request_preview: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return asdict(self)


def _filtered(stmt: Select[Any], experiment_ids: Sequence[str], filter_string: str | None) -> Any:
    stmt = stmt.where(_ti.experiment_id.in_(parse_experiment_ids(experiment_ids)))
    expr = parse_filter(filter_string)
    if expr is not None:
        stmt = stmt.where(trace_filter_clause(expr, filter_string=filter_string or ""))
    return stmt


def list_sessions(
    store: SqlStore,
    experiment_ids: Sequence[str],
    *,
    filter_string: str | None = None,
    max_results: int = 50,
    page_token: str | None = None,
) -> tuple[list[SessionSummary], str | None]:
    """Return one page of sessions, most recently active first, and the next page's token.

    Example::

        sessions, token = list_sessions(store, ["1"], filter_string="status = 'ERROR'")
        [s.session_id for s in sessions]

    Args:
        store: The open SQL store.
        experiment_ids: The experiments whose traces are grouped.
        filter_string: Only traces matching this filter count (the trace filter grammar).
        max_results: Page size, from 1 to 50,000.
        page_token: The token the previous page returned; None for the first page.

    Raises:
        InvalidFilterError: The filter is invalid.
        InvalidInputError: Another argument is malformed.
    """
    validation.max_results(max_results)
    offset = decode_page_token(page_token)
    session = _md.value.label("session_id")
    last = func.max(_ti.timestamp_ms)
    stmt = (
        select(
            session,
            func.count().label("trace_count"),
            func.min(_ti.timestamp_ms).label("first_ms"),
            last.label("last_ms"),
            func.sum(case((_ti.status == TraceStatus.ERROR, 1), else_=0)).label("errors"),
            func.sum(_ti.total_tokens).label("tokens"),
            func.sum(_ti.cost).label("cost"),
        )
        .select_from(trace_metadata.join(trace_info, _md.trace_id == _ti.trace_id))
        .where(_md.key == SESSION_KEY)
    )
    stmt = _filtered(stmt, experiment_ids, filter_string)
    stmt = (
        stmt.group_by(_md.value)
        .order_by(last.desc(), _md.value)
        .limit(max_results + 1)
        .offset(offset)
    )
    with store._read() as conn:
        rows = conn.execute(stmt).all()
        more = len(rows) > max_results
        rows = rows[:max_results]
        sessions = [
            SessionSummary(
                session_id=r.session_id,
                trace_count=int(r.trace_count),
                first_timestamp_ms=int(r.first_ms),
                last_timestamp_ms=int(r.last_ms),
                error_count=int(r.errors or 0),
                total_tokens=None if r.tokens is None else int(r.tokens),
                cost=None if r.cost is None else float(r.cost),
            )
            for r in rows
        ]
        if sessions:
            _add_session_details(conn, sessions, experiment_ids)
    return sessions, (encode_page_token(offset + max_results) if more else None)


def _add_session_details(
    conn: Any, sessions: list[SessionSummary], experiment_ids: Sequence[str]
) -> None:
    """Fill the users and the opening request of each session: one query for the page."""
    by_id = {s.session_id: s for s in sessions}
    user = trace_metadata.alias("user_md")
    stmt = (
        select(_md.value, _ti.timestamp_ms, _ti.request_preview, user.c.value.label("user_id"))
        .select_from(
            trace_metadata.join(trace_info, _md.trace_id == _ti.trace_id).outerjoin(
                user, (user.c.trace_id == _ti.trace_id) & (user.c.key == USER_KEY)
            )
        )
        .where(_md.key == SESSION_KEY, _md.value.in_(list(by_id)))
        .where(_ti.experiment_id.in_(parse_experiment_ids(experiment_ids)))
        .order_by(_ti.timestamp_ms, _ti.trace_id)
    )
    for session_id, _, preview, user_id in conn.execute(stmt):
        summary = by_id[session_id]
        if summary.first_request_preview is None:
            summary.first_request_preview = preview
        if user_id is not None and user_id not in summary.user_ids:
            summary.user_ids.append(user_id)


def _percentile(ordered: list[int], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not ordered:
        return None
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _bucket_width(span_ms: int, buckets: int) -> int:
    wanted = max(1, span_ms // max(1, buckets))
    for width in _BUCKET_WIDTHS_MS:
        if width >= wanted:
            return width
    return _BUCKET_WIDTHS_MS[-1] * math.ceil(wanted / _BUCKET_WIDTHS_MS[-1])


def trace_overview(
    store: SqlStore,
    experiment_ids: Sequence[str],
    *,
    filter_string: str | None = None,
    start_ms: int | None = None,
    end_ms: int | None = None,
    buckets: int = 48,
) -> dict[str, Any]:
    """Aggregate traces into time buckets: count, errors, latency p50/p95, tokens and cost.

    Only the narrow numeric columns of matching traces are read; percentiles are computed
    here so SQLite and PostgreSQL give identical answers.

    Example::

        overview = trace_overview(store, ["1"], filter_string="tags.env = 'prod'")
        [(b["start_ms"], b["count"]) for b in overview["buckets"]]

    Args:
        store: The open SQL store.
        experiment_ids: The experiments whose traces are aggregated.
        filter_string: Only traces matching this filter count.
        start_ms: Start of the window (inclusive); the first matching trace by default.
        end_ms: End of the window (inclusive); the last matching trace by default.
        buckets: About how many buckets to cut the window into, from 1 to 1,000.

    Raises:
        InvalidFilterError: The filter is invalid.
        InvalidInputError: Another argument is malformed.
    """
    if not 1 <= buckets <= 1000:
        from tracemark.exceptions import InvalidInputError

        raise InvalidInputError(f"buckets must be 1 to 1000, got {buckets}", field="buckets")
    stmt = select(
        _ti.timestamp_ms,
        _ti.execution_time_ms,
        _ti.status,
        _ti.input_tokens,
        _ti.output_tokens,
        _ti.total_tokens,
        _ti.cost,
    )
    stmt = _filtered(stmt, experiment_ids, filter_string)
    if start_ms is not None:
        stmt = stmt.where(_ti.timestamp_ms >= start_ms)
    if end_ms is not None:
        stmt = stmt.where(_ti.timestamp_ms <= end_ms)
    with store._read() as conn:
        rows = conn.execute(stmt).all()
    if not rows:
        return {"bucket_ms": None, "buckets": [], "totals": _summarize([])}
    first = start_ms if start_ms is not None else min(r.timestamp_ms for r in rows)
    last = end_ms if end_ms is not None else max(r.timestamp_ms for r in rows)
    width = _bucket_width(max(1, last - first), buckets)
    origin = first - first % width
    grouped: dict[int, list[Any]] = defaultdict(list)
    for row in rows:
        grouped[(row.timestamp_ms - origin) // width].append(row)
    count = (last - origin) // width + 1
    return {
        "bucket_ms": width,
        "buckets": [
            {"start_ms": origin + i * width, **_summarize(grouped.get(i, []))} for i in range(count)
        ],
        "totals": _summarize(rows),
    }


def _summarize(rows: Sequence[Any]) -> dict[str, Any]:
    latencies = sorted(r.execution_time_ms for r in rows if r.execution_time_ms is not None)
    errors = sum(1 for r in rows if r.status == TraceStatus.ERROR)

    def total(name: str) -> int | float | None:
        values = [getattr(r, name) for r in rows if getattr(r, name) is not None]
        return sum(values) if values else None

    return {
        "count": len(rows),
        "errors": errors,
        "error_rate": errors / len(rows) if rows else None,
        "latency_p50_ms": _percentile(latencies, 0.5),
        "latency_p95_ms": _percentile(latencies, 0.95),
        "input_tokens": total("input_tokens"),
        "output_tokens": total("output_tokens"),
        "total_tokens": total("total_tokens"),
        "cost": total("cost"),
    }


def assessment_names(store: SqlStore, experiment_ids: Sequence[str]) -> dict[str, list[str]]:
    """Return the distinct names of valid feedback and expectations, by kind, sorted.

    The UI builds its "has feedback" filter from them (``feedback.<name> IS NOT NULL``).

    Example::

        assessment_names(store, ["1"])  # {"feedback": ["helpful"], "expectation": []}

    Args:
        store: The open SQL store.
        experiment_ids: The experiments whose traces are looked at.
    """
    a = assessments.c
    stmt = (
        select(a.kind, a.name)
        .distinct()
        .select_from(assessments.join(trace_info, a.trace_id == _ti.trace_id))
        .where(_ti.experiment_id.in_(parse_experiment_ids(experiment_ids)), a.valid.is_(True))
    )
    names: dict[str, list[str]] = {"feedback": [], "expectation": []}
    with store._read() as conn:
        for kind, name in conn.execute(stmt):
            names.setdefault(kind, []).append(name)
    return {kind: sorted(found) for kind, found in names.items()}
