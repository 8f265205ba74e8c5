"""Which traces a registered scorer takes next: after its cursor, settled, filtered, sampled."""

from __future__ import annotations

import hashlib
import time
from typing import TYPE_CHECKING

from tracemark.entities.trace import TraceInfo, TraceStatus

if TYPE_CHECKING:
    from tracemark.entities.scorer import RegisteredScorer
    from tracemark.store.base import Store

__all__ = ["is_sampled", "next_traces"]


def is_sampled(trace_id: str, scorer_name: str, sample_rate: float) -> bool:
    """Tell whether a scorer with this sample rate scores this trace (the same every time).

    Example:
        >>> is_sampled("0af7651916cd43dd8448eb211c80319c", "is_concise", 1.0)
        True

    Args:
        trace_id: The trace.
        scorer_name: The registered scorer's name, so scorers sample independently.
        sample_rate: From 0 (none) to 1 (all).
    """
    if sample_rate >= 1.0:
        return True
    if sample_rate <= 0.0:
        return False
    digest = hashlib.blake2b(f"{scorer_name}\x00{trace_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") < sample_rate * 2**64


def next_traces(
    store: Store, reg: RegisteredScorer, *, settle_s: float, max_results: int
) -> list[TraceInfo]:
    """Return the finished traces after a scorer's cursor, oldest first.

    Only traces started at least `settle_s` seconds ago and matching the scorer's filter
    count; the order is (timestamp_ms, trace_id), the order of the cursor.

    Example:
        >>> next_traces(store, registered, settle_s=60, max_results=100)

    Args:
        store: Where the traces are.
        reg: The registered scorer, as just read (its cursor and filter).
        settle_s: How long ago a trace must have started.
        max_results: How many traces at most.
    """
    until = time.time_ns() // 1_000_000 - int(settle_s * 1000)
    cursor = reg.cursor
    parts = [f"status != '{TraceStatus.IN_PROGRESS}'", f"timestamp_ms <= {until}"]
    if cursor is not None:
        if cursor[0] > until:
            return []
        # Ties on the timestamp are told apart by trace id below: the grammar has no `>`
        # on strings.
        parts.append(f"timestamp_ms {'>' if cursor[1] is None else '>='} {cursor[0]}")
    if reg.filter_string:
        parts.append(f"({reg.filter_string})")
    found: list[TraceInfo] = []
    token = None
    while len(found) < max_results:
        page, token = store.search_traces(
            [reg.experiment_id],
            filter_string=" AND ".join(parts),
            order_by=["timestamp_ms ASC", "trace_id ASC"],
            max_results=max_results,
            page_token=token,
        )
        found.extend(info for info in page if _after(info, cursor))
        if not token:
            break
    return found[:max_results]


def _after(info: TraceInfo, cursor: tuple[int, str | None] | None) -> bool:
    if cursor is None:
        return True
    ts, tid = cursor
    if info.timestamp_ms != ts:
        return info.timestamp_ms > ts
    return tid is not None and info.trace_id > tid
