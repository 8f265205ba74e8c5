"""The scoring worker: runs registered scorers on new traces, each trace at most once.

For each active scorer a pass reads the finished traces after the scorer's cursor (in
``timestamp_ms, trace_id`` order, matching its filter), keeps those the sample rate picks
by a hash of (scorer name, trace id), scores them and commits the verdicts together with
the new cursor. The commit is a compare-and-set on the cursor, so when two workers score
the same batch only the first one's verdicts are stored; a lease per scorer keeps workers
from doing the same work at all. `tracemark score` and `tracemark server --score` run it.

Traces are ordered by start time but stored when they end, so a pass only reads traces
started at least `settle_s` seconds ago: set it above your longest traces' duration, or a
long trace may arrive after the cursor passed its start and never be scored.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from tracemark import config
from tracemark.entities.scorer import RegisteredScorer, ScorerStatus
from tracemark.evaluation import scorers as _scorers
from tracemark.evaluation._feedback import to_assessments
from tracemark.evaluation._rate_limit import RateLimiter
from tracemark.evaluation._selection import is_sampled, next_traces
from tracemark.evaluation._usage import JudgeUsage, using
from tracemark.exceptions import InvalidInputError, NotFoundError

if TYPE_CHECKING:
    from tracemark.entities.trace import Assessment, Trace, TraceInfo
    from tracemark.store.base import Store

__all__ = [
    "RateLimiter",
    "ScoringResult",
    "ScoringWorker",
    "is_sampled",
]

logger = logging.getLogger("tracemark.evaluation")


@dataclass
class ScoringResult:
    """What a scoring pass (or a worker's lifetime) did.

    Attributes:
        considered: Traces read past the scorers' cursors (matching their filters).
        sampled: Of those, traces the sample rates picked.
        scored: Traces whose verdicts were stored.
        assessments: Assessments stored.
        errors: Stored assessments that carry an error instead of a value.
        skipped: Scorers left alone because another worker held them.
        unloadable: Scorers whose spec could not be loaded (see their `last_error`).
        judge_calls: Model calls made by LLM judges.
        input_tokens: Their input tokens.
        output_tokens: Their output tokens.
        cost_usd: Their cost, when the model's price is known.
    """

    considered: int = 0
    sampled: int = 0
    scored: int = 0
    assessments: int = 0
    errors: int = 0
    skipped: int = 0
    unloadable: int = 0
    judge_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0

    def add(self, other: ScoringResult) -> None:
        """Add another result's counts to this one."""
        for key, value in asdict(other).items():
            setattr(self, key, getattr(self, key) + value)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return asdict(self)


class _Stopped(Exception):
    """The worker was asked to stop in the middle of a batch (nothing is committed)."""


class ScoringWorker:
    """Score the new traces of experiments with their registered scorers.

    Example:
        >>> from tracemark.evaluation.worker import ScoringWorker
        >>> worker = ScoringWorker("sqlite:///tracemark.db", settle_s=0)
        >>> worker.run_once().scored

    Args:
        tracking_uri: Where traces and scorers live; the current tracking URI by default.
        client: A `TracemarkClient` to use instead (its store is used).
        store: A store to use instead (the server passes its own).
        experiment_ids: Only these experiments; every experiment with a scorer by default.
        interval: Seconds between passes of `run_forever`.
        rate_limit: Scorer runs per second at most, shared by all scorers and threads;
            None for no limit.
        batch_size: Traces per commit (and per cursor move).
        settle_s: Only score traces started at least this many seconds ago.
        threads: Traces scored side by side (LLM judges mostly wait on the network).
        lease_s: How long a worker holds a scorer before another may take it over.
    """

    def __init__(
        self,
        tracking_uri: str | None = None,
        *,
        client: Any = None,
        store: Store | None = None,
        experiment_ids: Sequence[str] | None = None,
        interval: float | None = None,
        rate_limit: float | None = None,
        batch_size: int = 100,
        settle_s: float | None = None,
        threads: int = 4,
        lease_s: float = 300.0,
    ) -> None:
        if store is None:
            if client is None:
                from tracemark.client import TracemarkClient

                client = TracemarkClient(tracking_uri)
            store = client.store
        self.store: Store = store
        self.experiment_ids = None if experiment_ids is None else [str(e) for e in experiment_ids]
        self.interval = _check_number("interval", config.resolve(config.SCORE_INTERVAL_S, interval))
        self.settle_s = _check_number("settle_s", config.resolve(config.SCORE_SETTLE_S, settle_s))
        rate = config.resolve(config.SCORE_RATE_LIMIT, rate_limit)
        self.limiter = None if rate is None else RateLimiter(rate)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidInputError("batch_size must be a positive integer", field="batch_size")
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise InvalidInputError("threads must be a positive integer", field="threads")
        self.batch_size = min(batch_size, 10_000)
        self.threads = threads
        self.lease_ms = int(_check_number("lease_s", lease_s) * 1000)
        self.owner = f"{socket.gethostname()[:64]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self.totals = ScoringResult()
        self._stop = threading.Event()
        self._pool: ThreadPoolExecutor | None = None
        self._loaded: dict[tuple[str, str], _scorers.Scorer] = {}
        self._warned: dict[str, str] = {}

    # -- running ----------------------------------------------------------------------------

    def run_once(self) -> ScoringResult:
        """Score every trace waiting for an active scorer, then return what was done.

        Example:
            >>> result = ScoringWorker(settle_s=0).run_once()
            >>> result.scored, result.errors

        Returns:
            The counts of this pass; `totals` adds them up over the worker's life.
        """
        result = ScoringResult()
        usage = JudgeUsage()
        held: set[str] = set()
        traces: dict[str, Trace] = {}
        try:
            with using(usage):
                pending = self.active_scorers()
                while pending and not self._stop.is_set():
                    pending = [reg for reg in pending if self._one_batch(reg, result, held, traces)]
        except _Stopped:
            pass
        finally:
            for scorer_id in held:
                try:
                    self.store.release_scorer_lease(scorer_id, self.owner)
                except Exception:  # the lease expires on its own
                    logger.debug("could not release scorer %s", scorer_id, exc_info=True)
        result.judge_calls = usage.calls
        result.input_tokens = usage.input_tokens
        result.output_tokens = usage.output_tokens
        result.cost_usd = usage.cost_usd
        self.totals.add(result)
        return result

    def run_forever(
        self,
        stop_event: threading.Event | None = None,
        *,
        on_pass: Callable[[ScoringResult], None] | None = None,
    ) -> ScoringResult:
        """Run passes every `interval` seconds until `stop_event` is set; return the totals.

        A failing pass (the store unreachable, say) is logged and retried next time.

        Args:
            stop_event: Set it (from any thread or a signal handler) to stop.
            on_pass: Called with each pass's result.
        """
        if stop_event is not None:
            self._stop = stop_event
        try:
            while not self._stop.is_set():
                try:
                    result = self.run_once()
                except Exception:
                    logger.exception("tracemark: a scoring pass failed; retrying")
                else:
                    if on_pass is not None:
                        on_pass(result)
                self._stop.wait(self.interval)
        finally:
            self.close()
        return self.totals

    def stop(self) -> None:
        """Ask `run_forever` (and a running pass) to stop soon."""
        self._stop.set()

    def close(self) -> None:
        """Stop the scoring threads."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    # -- one scorer, one batch --------------------------------------------------------------

    def active_scorers(self) -> list[RegisteredScorer]:
        """Return the active scorers this worker runs (of its experiments)."""
        if self.experiment_ids is None:
            found = self.store.list_registered_scorers(None)
        else:
            found = [s for e in self.experiment_ids for s in self.store.list_registered_scorers(e)]
        return [s for s in found if s.status == ScorerStatus.ACTIVE]

    def _one_batch(
        self,
        reg: RegisteredScorer,
        result: ScoringResult,
        held: set[str],
        traces: dict[str, Trace],
    ) -> bool:
        """Score the next batch of one scorer; True when more traces may be waiting."""
        try:
            fresh = self.store.acquire_scorer_lease(reg.scorer_id, self.owner, self.lease_ms)
        except NotFoundError:
            return False  # unregistered meanwhile
        except Exception:
            logger.exception("tracemark: could not take scorer %r", reg.name)
            return False
        if fresh is None:
            result.skipped += 1
            return False
        held.add(fresh.scorer_id)
        if fresh.status != ScorerStatus.ACTIVE:
            return False
        scorer = self._load(fresh)
        if scorer is None:
            result.unloadable += 1
            return False
        try:
            return self._score_batch(fresh, scorer, result, traces)
        except (_Stopped, KeyboardInterrupt):
            raise
        except Exception:
            logger.exception("tracemark: scoring with %r failed; retrying next pass", fresh.name)
            return False

    def _score_batch(
        self,
        reg: RegisteredScorer,
        scorer: _scorers.Scorer,
        result: ScoringResult,
        traces: dict[str, Trace],
    ) -> bool:
        infos = next_traces(self.store, reg, settle_s=self.settle_s, max_results=self.batch_size)
        if not infos:
            return False
        chosen = [i for i in infos if is_sampled(i.trace_id, reg.name, reg.sample_rate)]
        found = self._map(lambda info: self._score_trace(reg, scorer, info, traces), chosen)
        assessments = [a for batch in found for a in batch]
        last = infos[-1]
        committed = self.store.commit_scorer_batch(
            reg.scorer_id, reg.cursor, (last.timestamp_ms, last.trace_id), assessments
        )
        if not committed:
            logger.info("tracemark: another worker committed this batch of %r first", reg.name)
            return False
        result.considered += len(infos)
        result.sampled += len(chosen)
        result.scored += sum(1 for batch in found if batch)
        result.assessments += len(assessments)
        result.errors += sum(1 for a in assessments if a.error is not None)
        return len(infos) >= self.batch_size

    def _score_trace(
        self,
        reg: RegisteredScorer,
        scorer: _scorers.Scorer,
        info: TraceInfo,
        traces: dict[str, Trace],
    ) -> list[Assessment]:
        if self.limiter is not None and not self.limiter.acquire(self._stop):
            raise _Stopped
        if self._stop.is_set():
            raise _Stopped
        trace = traces.get(info.trace_id)
        if trace is None:
            try:
                trace = self.store.get_trace(info.trace_id)
            except NotFoundError:
                return []  # deleted meanwhile
            if len(traces) > 4 * self.batch_size:
                traces.clear()
            traces[info.trace_id] = trace
        root = trace.root
        feedback = scorer.run(
            inputs=None if root is None else root.inputs,
            outputs=None if root is None else root.outputs,
            expectations=trace.expectations,
            trace=trace,
        )
        return to_assessments(feedback, trace, reg.name, scorer.source_type)

    def _map(self, func: Callable[[TraceInfo], Any], items: list[TraceInfo]) -> list[Any]:
        """Apply `func` to each item on the scoring threads; the first error cancels the rest."""
        if self.threads == 1 or len(items) <= 1:
            return [func(item) for item in items]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="tracemark-score")
        # Each task runs in a copy of this context, so judges find the pass's usage meter.
        futures: list[Future[Any]] = [
            self._pool.submit(contextvars.copy_context().run, func, item) for item in items
        ]
        try:
            return [f.result() for f in futures]
        finally:
            for f in futures:
                f.cancel()

    def _load(self, reg: RegisteredScorer) -> _scorers.Scorer | None:
        """Rebuild a registered scorer; on failure record why on it and return None."""
        key = (reg.scorer_id, repr(sorted(reg.spec.items())))
        scorer = self._loaded.get(key)
        error = None
        if scorer is None:
            try:
                scorer = copy.copy(_scorers.from_spec(reg.spec))
                with contextlib.suppress(AttributeError):  # a read-only name stays
                    scorer.name = reg.name  # verdicts are named as registered
            except Exception as exc:
                error = f"cannot load scorer {reg.name!r}: {exc}"[:2000]
            else:
                self._loaded[key] = scorer
        if error is not None:
            if self._warned.get(reg.scorer_id) != error:
                logger.error("tracemark: %s; other scorers go on", error)
                self._warned[reg.scorer_id] = error
            if reg.last_error != error:
                self._set_last_error(reg, error)
            return None
        if reg.last_error:
            self._set_last_error(reg, "")
        return scorer

    def _set_last_error(self, reg: RegisteredScorer, error: str) -> None:
        try:
            self.store.update_registered_scorer(reg.experiment_id, reg.name, last_error=error)
        except Exception:
            logger.debug("could not record the error of scorer %r", reg.name, exc_info=True)


def _check_number(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise InvalidInputError(f"{name} must be a number of at least 0, got {value!r}", field=name)
    return float(value)
