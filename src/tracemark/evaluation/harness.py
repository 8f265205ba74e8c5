"""`tm.evaluate`: run an application over rows, score every row, record the verdicts.

Rows run in parallel on a bounded pool of worker threads. Each worker takes one row: it
runs `predict_fn` inside a new trace (or reuses the row's trace), then every scorer in
turn, and hands the verdicts to one writer thread that stores them as assessments, so
the store sees one steady writer instead of a burst of concurrent transactions. Judge
model calls are metered (tokens, cost, one span each in the evaluation's own trace) and
stop being scheduled once `max_cost_usd` is spent.
"""

from __future__ import annotations

import contextvars
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

from tracemark.entities.run import Metric
from tracemark.entities.trace import AssessmentSource, SpanType
from tracemark.evaluation._data import EvalRow, to_rows
from tracemark.evaluation._usage import BudgetExceeded, JudgeUsage, using
from tracemark.evaluation.results import (
    NOT_JUDGED,
    RESULTS_FILE,
    RUN_TYPE_TAG,
    EvaluationResult,
    RowResult,
    aggregate,
)
from tracemark.evaluation.scorers import Feedback, Scorer, as_scorers
from tracemark.exceptions import InvalidInputError, TracemarkError

__all__ = ["evaluate"]

logger = logging.getLogger("tracemark.evaluation")

DEFAULT_MAX_WORKERS = 10
# Row traces carry the evaluation run's id; the evaluation's own trace (its judge calls)
# carries it under another key, so searching the rows does not find it.
_EVAL_RUN_TAG = "tracemark.evaluation.run_id"
_JUDGES_OF_TAG = "tracemark.evaluation.judges_of"


def evaluate(
    data: Any,
    predict_fn: Callable[..., Any] | None = None,
    scorers: Sequence[Any] = (),
    *,
    experiment: str | None = None,
    run_name: str | None = None,
    max_workers: int = DEFAULT_MAX_WORKERS,
    max_cost_usd: float | None = None,
    progress: bool | None = None,
) -> EvaluationResult:
    """Run `predict_fn` on every row (traced), score each row, and record an evaluation run.

    Example:
        >>> import tracemark as tm
        >>> @tm.scorer
        ... def exact(outputs, expectations) -> bool:
        ...     return outputs == expectations["expected_response"]
        >>> rows = [{"inputs": {"q": "2+2"}, "expectations": {"expected_response": "4"}}]
        >>> result = tm.evaluate(data=rows, predict_fn=lambda q: "4", scorers=[exact])
        >>> result.metrics["exact/pass_rate"]
        1.0

    Args:
        data: Rows (dicts with `inputs` and optional `outputs`, `expectations`), a pandas
            DataFrame of them, a dataset, or traces (then no `predict_fn` is needed).
        predict_fn: Called as `predict_fn(**inputs)` for rows without outputs.
        scorers: Code scorers (`@tm.scorer`), built-in judges or `make_judge` judges.
        experiment: Experiment name or id; the current experiment by default.
        run_name: Name of the evaluation run (when no run is active).
        max_workers: Rows processed at once.
        max_cost_usd: Stop scheduling judge calls once the judges have cost this much;
            the rows left are reported as not judged.
        progress: Show a progress bar; by default only when stderr is a terminal.
    """
    checked = as_scorers(scorers)
    if not checked:
        raise InvalidInputError("evaluate needs at least one scorer", field="scorers")
    if predict_fn is not None and not callable(predict_fn):
        raise InvalidInputError("predict_fn must be callable", field="predict_fn")
    if not isinstance(max_workers, int) or isinstance(max_workers, bool) or max_workers < 1:
        raise InvalidInputError(
            f"max_workers must be a positive integer, got {max_workers!r}", field="max_workers"
        )
    if max_cost_usd is not None and not (
        isinstance(max_cost_usd, (int, float)) and max_cost_usd >= 0
    ):
        raise InvalidInputError(
            f"max_cost_usd must be a number >= 0, got {max_cost_usd!r}", field="max_cost_usd"
        )
    rows = to_rows(data)
    if predict_fn is None:
        bare = [row.index for row in rows if not row.has_outputs]
        if bare:
            raise InvalidInputError(
                f"row {bare[0]} has no outputs and no predict_fn was given"
                + (f" ({len(bare)} rows in all)" if len(bare) > 1 else ""),
                field="data",
            )
    return _Evaluation(rows, predict_fn, checked, max_workers, max_cost_usd).run(
        experiment, run_name, progress
    )


class _Evaluation:
    """One call of `evaluate`: the rows, the pool, the writer and the meter."""

    def __init__(
        self,
        rows: list[EvalRow],
        predict_fn: Callable[..., Any] | None,
        scorers: list[Scorer],
        max_workers: int,
        max_cost_usd: float | None,
    ) -> None:
        from tracemark.tracing._tracer import DEFAULT_TRACER
        from tracemark.tracking.fluent import DEFAULT_TRACKER

        self.rows = rows
        self.predict_fn = predict_fn
        self.scorers = scorers
        self.max_workers = min(max_workers, len(rows))
        self.max_cost_usd = max_cost_usd
        self.tracker = DEFAULT_TRACKER
        self.tracer = DEFAULT_TRACER
        self.client = DEFAULT_TRACKER.client
        self.needs_trace = any(s.needs_trace for s in scorers)
        self.run_id = ""
        self.predict_name = getattr(predict_fn, "__name__", "predict") or "predict"
        if self.predict_name == "<lambda>":
            self.predict_name = "predict"

    def run(
        self, experiment: str | None, run_name: str | None, progress: bool | None
    ) -> EvaluationResult:
        tracker = self.tracker
        active = tracker.active_run()
        own = active is None or experiment is not None
        if own:
            experiment_id = self._experiment_id(experiment)
            run = tracker.start_run(
                experiment_id=experiment_id,
                run_name=run_name,
                nested=active is not None,
                tags={RUN_TYPE_TAG: "evaluation"},
            )
            self.run_id = run.run_id
        else:
            assert active is not None
            self.run_id = active.run_id
            self.client.set_tag(self.run_id, RUN_TYPE_TAG, "evaluation")
        try:
            result = self._run_rows(progress)
        except BaseException:
            if own:
                tracker.end_run("FAILED")
            raise
        if own:
            tracker.end_run()
        return result

    def _experiment_id(self, experiment: str | None) -> str | None:
        if experiment is None:
            return None
        found = self.client.get_experiment_by_name(experiment)
        if found is not None:
            return found.experiment_id
        if experiment.isdigit():
            try:
                return self.client.get_experiment(experiment).experiment_id
            except TracemarkError:
                pass
        return self.client.create_experiment(experiment)

    def _run_rows(self, progress: bool | None) -> EvaluationResult:
        if any(s.source_type == AssessmentSource.LLM_JUDGE for s in self.scorers):
            from tracemark.integrations import _cost

            _cost.warm_up()  # the price table loads while the first judge calls are in flight
        root = self.client.start_trace(
            "evaluation",
            span_type=SpanType.EVALUATOR,
            inputs={
                "rows": len(self.rows),
                "scorers": [s.name for s in self.scorers],
                "max_cost_usd": self.max_cost_usd,
            },
            tags={_JUDGES_OF_TAG: self.run_id},
        )
        usage = JudgeUsage(
            max_cost_usd=self.max_cost_usd,
            client=self.client if root.trace_id else None,
            trace_id=root.trace_id,
            parent_id=root.span_id,
        )
        writer = _AssessmentWriter(self.client, self.tracer, self.run_id)
        results: list[RowResult | None] = [None] * len(self.rows)
        bar = _Progress(len(self.rows), progress)
        with using(usage):
            context = contextvars.copy_context()
        try:
            with ThreadPoolExecutor(self.max_workers, thread_name_prefix="tm-eval") as pool:
                futures = {
                    pool.submit(context.copy().run, self._row, row, writer, usage): row.index
                    for row in self.rows
                }
                for future in as_completed(futures):
                    results[futures[future]] = future.result()
                    bar.advance(usage)
        finally:
            bar.close()
            stored, failed = writer.close()
        rows = [r for r in results if r is not None]
        metrics = aggregate(rows)
        not_judged = sum(1 for r in rows if not r.judged)
        metrics.update(
            {
                "evaluation/rows": float(len(rows)),
                "evaluation/rows_not_judged": float(not_judged),
                "evaluation/prediction_errors": float(sum(1 for r in rows if r.error)),
                "evaluation/assessments_stored": float(stored),
                "evaluation/assessments_failed": float(failed),
                "judges/calls": float(usage.calls),
                "judges/failed_calls": float(usage.failed_calls),
                "judges/input_tokens": float(usage.input_tokens),
                "judges/output_tokens": float(usage.output_tokens),
                "judges/cost_usd": usage.cost_usd,
            }
        )
        result = EvaluationResult(self.run_id, metrics, rows)
        if root.trace_id is not None:
            self.client.end_trace(root.trace_id, outputs=metrics)
        # When evaluate returns, every trace it names is stored.
        self.tracer.flush(30.0)
        now = int(time.time() * 1000)
        self.client.log_batch(
            self.run_id, metrics=[Metric(k, float(v), now) for k, v in sorted(metrics.items())]
        )
        self.client.log_table(self.run_id, result.table(), RESULTS_FILE)
        if not_judged:
            logger.warning(
                "tracemark: %d of %d rows were not fully judged: the cost budget of $%g was spent",
                not_judged,
                len(rows),
                self.max_cost_usd,
            )
        if failed:
            logger.warning("tracemark: %d verdicts could not be stored", failed)
        return result

    # -- one row, on a worker thread ------------------------------------------------------

    def _row(self, row: EvalRow, writer: _AssessmentWriter, usage: JudgeUsage) -> RowResult:
        error = None
        if self.predict_fn is not None and not row.has_outputs:
            error = self._predict(row)
        elif row.trace_id is None:
            self._record(row)
        if self.needs_trace and row.trace is None and row.trace_id is not None:
            try:
                row.trace = self.client.get_trace(row.trace_id)
            except TracemarkError as exc:
                logger.warning("tracemark: trace %s could not be read: %s", row.trace_id, exc)
        result = RowResult(
            row.index, row.key, row.trace_id, row.inputs, row.outputs, row.expectations, {}, error
        )
        for scorer in self.scorers:
            for fb in self._score(scorer, row, error, usage):
                result.feedback[fb.name or scorer.name] = fb
                if fb.error != NOT_JUDGED and row.trace_id is not None:
                    writer.put(row.trace_id, scorer, fb)
        return result

    def _predict(self, row: EvalRow) -> str | None:
        span = self.tracer.start_root(
            self.predict_name, SpanType.CHAIN, {}, sample_ratio=1.0, join_otel=False
        )
        error = None
        with span:
            span.set_inputs(row.inputs)
            if span.trace_id is not None:
                self.tracer.update_current_trace(tags={**row.tags, _EVAL_RUN_TAG: self.run_id})
            try:
                row.outputs = self.predict_fn(**row.inputs)  # type: ignore[misc]
                span.set_outputs(row.outputs)
            except Exception as exc:
                span.record_exception(exc)
                error = f"{type(exc).__name__}: {exc}"
        row.trace_id = span.trace_id
        row.has_outputs = error is None
        return error

    def _record(self, row: EvalRow) -> None:
        """Give a row with outputs but no trace one, so its verdicts have a place to live."""
        span = self.tracer.start_root(
            "evaluation_row", SpanType.CHAIN, {}, sample_ratio=1.0, join_otel=False
        )
        with span:
            span.set_inputs(row.inputs)
            span.set_outputs(row.outputs)
            if span.trace_id is not None:
                self.tracer.update_current_trace(tags={**row.tags, _EVAL_RUN_TAG: self.run_id})
        row.trace_id = span.trace_id

    def _score(
        self, scorer: Scorer, row: EvalRow, error: str | None, usage: JudgeUsage
    ) -> list[Feedback]:
        if error is not None:
            return [
                Feedback(name=scorer.name, error=f"not scored: the prediction failed ({error})")
            ]
        is_judge = scorer.source_type == AssessmentSource.LLM_JUDGE
        if is_judge and usage.exhausted:
            return [Feedback(name=scorer.name, error=NOT_JUDGED)]
        try:
            return scorer.run(
                inputs=row.inputs,
                outputs=row.outputs,
                expectations=row.expectations,
                trace=row.trace,
            )
        except BudgetExceeded:
            return [Feedback(name=scorer.name, error=NOT_JUDGED)]


class _AssessmentWriter:
    """One thread storing verdicts as assessments, in order, with a few retries each."""

    _STOP = object()

    def __init__(self, client: Any, tracer: Any, run_id: str) -> None:
        self.client = client
        self.tracer = tracer
        self.run_id = run_id
        self.queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.stored = 0
        self.failed = 0
        self.thread = threading.Thread(target=self._loop, name="tm-eval-writer", daemon=True)
        self.thread.start()

    def put(self, trace_id: str, scorer: Scorer, fb: Feedback) -> None:
        self.queue.put((trace_id, scorer, fb))

    def close(self) -> tuple[int, int]:
        self.queue.put(self._STOP)
        self.thread.join()
        return self.stored, self.failed

    def _loop(self) -> None:
        while True:
            item = self.queue.get()
            if item is self._STOP:
                return
            batch = [item]
            stop = False
            while len(batch) < 500:
                try:
                    more = self.queue.get_nowait()
                except queue.Empty:
                    break
                if more is self._STOP:
                    stop = True
                    break
                batch.append(more)
            # The rows' traces ended before their verdicts: one flush stores them all.
            self.tracer.flush(30.0)
            for trace_id, scorer, fb in batch:
                self._write(trace_id, scorer, fb)
            if stop:
                return

    def _write(self, trace_id: str, scorer: Scorer, fb: Feedback) -> None:
        source = AssessmentSource(scorer.source_type, scorer.name)
        value, error = fb.value, fb.error
        for attempt in range(3):
            try:
                self.client.log_feedback(
                    trace_id=trace_id,
                    name=fb.name or scorer.name,
                    value=value,
                    rationale=fb.rationale,
                    source=source,
                    span_id=fb.span_id,
                    metadata=fb.metadata,
                    error=error,
                    run_id=self.run_id,
                )
                self.stored += 1
                return
            except InvalidInputError as exc:
                if error is not None:
                    break
                # A value the store cannot hold is kept as an error, not lost.
                value, error = None, f"verdict could not be stored: {exc}"
            except Exception as exc:
                if attempt == 2:
                    logger.warning(
                        "tracemark: verdict %s on trace %s not stored: %s",
                        fb.name,
                        trace_id,
                        exc,
                    )
        self.failed += 1


class _Progress:
    """A rich progress bar on stderr (when asked, or when stderr is a terminal)."""

    def __init__(self, total: int, enabled: bool | None) -> None:
        if enabled is None:
            enabled = sys.stderr.isatty()
        self.progress = None
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        self.progress = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            "{task.fields[cost]}",
            console=Console(stderr=True),
            transient=False,
        )
        self.task = self.progress.add_task("evaluating", total=total, cost="")
        self.progress.start()

    def advance(self, usage: JudgeUsage) -> None:
        if self.progress is not None:
            cost = f"judges ${usage.cost_usd:.4f}" if usage.calls else ""
            self.progress.update(self.task, advance=1, cost=cost)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
