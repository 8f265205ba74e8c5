"""What judge calls cost: a meter per evaluation (or scoring worker), found via a contextvar.

The judge model layer calls `record_call` after every model call. When a meter is active it
adds the call's tokens and cost to the totals, enforces the cost budget, and records the
call as a span of the evaluation's own trace. With no meter active nothing is recorded.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BudgetExceeded", "JudgeUsage", "current_usage", "record_call", "using"]


class BudgetExceeded(Exception):
    """Raised before a judge call when the evaluation's `max_cost_usd` is spent."""


@dataclass
class JudgeUsage:
    """Token and cost totals of the judge calls of one evaluation.

    Attributes:
        max_cost_usd: Stop starting judge calls once the cost reaches this; None for no limit.
        client: A TracingClient to record each call as a span (with `trace_id`, `parent_id`).
        trace_id: The evaluation's own trace.
        parent_id: The span judge calls are recorded under.
    """

    max_cost_usd: float | None = None
    client: Any = None
    trace_id: str | None = None
    parent_id: str | None = None
    calls: int = 0
    failed_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def exhausted(self) -> bool:
        """True once the cost budget is spent."""
        return self.max_cost_usd is not None and self.cost_usd >= self.max_cost_usd

    def check_budget(self) -> None:
        """Raise BudgetExceeded when no more judge calls may start."""
        if self.exhausted:
            raise BudgetExceeded(
                f"the judges' cost budget of ${self.max_cost_usd:g} is spent "
                f"(${self.cost_usd:.4f} used)"
            )

    def add(self, input_tokens: int, output_tokens: int, cost: float | None, ok: bool) -> None:
        """Add one call to the totals."""
        with self._lock:
            self.calls += 1
            self.failed_calls += 0 if ok else 1
            self.input_tokens += input_tokens or 0
            self.output_tokens += output_tokens or 0
            self.cost_usd += cost or 0.0


_current: contextvars.ContextVar[JudgeUsage | None] = contextvars.ContextVar(
    "tracemark_judge_usage", default=None
)


def current_usage() -> JudgeUsage | None:
    """The meter of the evaluation running in this context, if any."""
    return _current.get()


@contextmanager
def using(usage: JudgeUsage) -> Iterator[JudgeUsage]:
    """Make `usage` the active meter inside the block (and in contexts copied from it)."""
    token = _current.set(usage)
    try:
        yield usage
    finally:
        _current.reset(token)


def record_call(
    *,
    name: str,
    provider: str,
    model: str,
    messages: Any,
    output: Any,
    input_tokens: int = 0,
    output_tokens: int = 0,
    cost: float | None = None,
    start_ns: int,
    end_ns: int | None = None,
    error: str | None = None,
) -> None:
    """Record one judge model call on the active meter (a no-op without one)."""
    usage = _current.get()
    if usage is None:
        return
    usage.add(input_tokens, output_tokens, cost, error is None)
    if usage.client is None or usage.trace_id is None:
        return
    try:
        _record_span(
            usage,
            name,
            provider,
            model,
            messages,
            output,
            input_tokens,
            output_tokens,
            cost,
            start_ns,
            end_ns,
            error,
        )
    except Exception:  # recording must never fail a judge call
        logging.getLogger("tracemark.evaluation").debug("judge span not recorded", exc_info=True)


def _record_span(
    usage: JudgeUsage,
    name: str,
    provider: str,
    model: str,
    messages: Any,
    output: Any,
    input_tokens: int,
    output_tokens: int,
    cost: float | None,
    start_ns: int,
    end_ns: int | None,
    error: str | None,
) -> None:
    attributes: dict[str, Any] = {
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": model,
        "gen_ai.usage.input_tokens": input_tokens,
        "gen_ai.usage.output_tokens": output_tokens,
    }
    if cost is not None:
        attributes["gen_ai.usage.cost"] = cost
    span = usage.client.start_span(
        name,
        trace_id=usage.trace_id,
        parent_id=usage.parent_id,
        span_type="CHAT_MODEL",
        inputs={"messages": messages},
        attributes=attributes,
        start_time_ns=start_ns,
    )
    if error:
        span.record_exception(RuntimeError(error))
    usage.client.end_span(
        usage.trace_id,
        span.span_id,
        outputs=output,
        status="ERROR" if error else "OK",
        end_time_ns=end_ns or time.time_ns(),
    )
