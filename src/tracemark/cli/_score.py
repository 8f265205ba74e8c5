"""`tracemark score`: run the registered scorers on new traces, once or until stopped."""

from __future__ import annotations

import signal
import threading
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import click

from tracemark.cli import _output as out
from tracemark.exceptions import NotFoundError

if TYPE_CHECKING:
    from tracemark.client import TracemarkClient
    from tracemark.evaluation.worker import ScoringResult


@click.command()
@click.option(
    "--experiment",
    "experiments",
    multiple=True,
    metavar="NAME|ID",
    help="Only this experiment's scorers (repeatable) [default: every experiment].",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0),
    metavar="S",
    envvar="TRACEMARK_SCORE_INTERVAL_S",
    show_envvar=True,
    help="Seconds between passes [default: 5].",
)
@click.option(
    "--rate-limit",
    type=click.FloatRange(min=0, min_open=True),
    envvar="TRACEMARK_SCORE_RATE_LIMIT",
    show_envvar=True,
    metavar="N",
    help="Scorer runs (judge calls) per second at most, over all scorers [default: no limit].",
)
@click.option(
    "--settle",
    type=click.FloatRange(min=0),
    envvar="TRACEMARK_SCORE_SETTLE_S",
    show_envvar=True,
    metavar="S",
    help="Score traces once they started S seconds ago; keep it above your longest "
    "traces' duration [default: 60].",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 10_000),
    default=100,
    show_default=True,
    metavar="N",
    help="Traces per commit (and cursor move).",
)
@click.option(
    "--threads",
    type=click.IntRange(1, 64),
    default=4,
    show_default=True,
    metavar="N",
    help="Traces scored at once.",
)
@click.option("--once", is_flag=True, help="Score what is waiting, then exit.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def score(
    experiments: Sequence[str],
    interval: float | None,
    rate_limit: float | None,
    settle: float | None,
    batch_size: int,
    threads: int,
    once: bool,
    as_json: bool,
) -> None:
    """Run the registered scorers on new traces and store their verdicts.

    Each trace is scored at most once per scorer, even with several workers at a time.
    Ctrl-C stops after the traces being scored (their batch is scored again next time).
    """
    from tracemark.evaluation.worker import ScoringWorker

    client = out.client()
    worker = ScoringWorker(
        client=client,
        experiment_ids=_experiment_ids(client, experiments) if experiments else None,
        interval=interval,
        rate_limit=rate_limit,
        settle_s=settle,
        batch_size=batch_size,
        threads=threads,
    )
    if once:
        try:
            result = worker.run_once()
        finally:
            worker.close()
        _summary(result, as_json)
        return
    active = worker.active_scorers()
    if not as_json:
        click.echo(
            f"Scoring with {len(active)} active scorer{'s' if len(active) != 1 else ''} every "
            f"{worker.interval:g} s (traces older than {worker.settle_s:g} s); Ctrl-C stops.",
            err=True,
        )
    stop = threading.Event()
    restore = _stop_on_signals(stop)
    try:
        totals = worker.run_forever(stop, on_pass=None if as_json else _progress)
    finally:
        restore()
    _summary(totals, as_json)


def _experiment_ids(client: TracemarkClient, values: Sequence[str]) -> list[str]:
    ids = []
    for value in values:
        found = client.get_experiment_by_name(value)
        if found is None and value.isdigit():
            try:
                found = client.get_experiment(value)
            except NotFoundError:
                found = None
        if found is None:
            raise NotFoundError(f"no experiment with name or id {value!r}")
        ids.append(found.experiment_id)
    return ids


def _stop_on_signals(stop: threading.Event) -> Any:
    """Set `stop` on the first Ctrl-C or SIGTERM; a second Ctrl-C quits at once."""

    def handle(signum: int, _frame: Any) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()
        click.echo("Stopping after the traces being scored (Ctrl-C again quits now)...", err=True)

    previous = {s: signal.signal(s, handle) for s in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore


def _progress(result: ScoringResult) -> None:
    if not (result.considered or result.unloadable):
        return
    now = datetime.now(timezone.utc).strftime("%H:%M:%S")
    line = (
        f"{now}  considered {result.considered}  sampled {result.sampled}  "
        f"scored {result.scored}  errors {result.errors}"
    )
    if result.judge_calls:
        line += f"  judge calls {result.judge_calls}  ${result.cost_usd:.4f}"
    if result.unloadable:
        line += f"  unloadable scorers {result.unloadable}"
    click.echo(line)


def _summary(result: ScoringResult, as_json: bool) -> None:
    if as_json:
        out.echo_json(result.to_dict())
        return
    click.echo(
        f"Scored {result.scored} trace{'s' if result.scored != 1 else ''} "
        f"({result.assessments} assessments, {result.errors} with an error); "
        f"considered {result.considered}, sampled {result.sampled}."
    )
    if result.judge_calls:
        click.echo(
            f"Judges: {result.judge_calls} calls, {result.input_tokens} input and "
            f"{result.output_tokens} output tokens, ${result.cost_usd:.4f}."
        )
    if result.unloadable:
        click.echo(
            "Some scorers could not be loaded: tm.get_scorer(name).last_error says why.",
            err=True,
        )
