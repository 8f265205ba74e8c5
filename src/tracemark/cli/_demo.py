"""`tracemark demo`: log the demo experiment and show what was logged."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

import click

from tracemark.cli import _output as out

if TYPE_CHECKING:
    from tracemark.demo import DemoResult

# metric -> how the demo table shows it; fixed decimals keep the table within 80 columns
_METRICS = {
    "accuracy": "{:.3f}",
    "faithfulness": "{:.3f}",
    "latency_p50_ms": "{:.0f}",
    "cost_usd": "{:.4f}",
}


@click.command()
@click.option(
    "--runs",
    type=click.IntRange(min=1),
    metavar="N",
    help="Evaluate only the first N of the 5 configurations.",
)
@click.option("--json", "as_json", is_flag=True, help="Print what was logged as JSON.")
def demo(runs: int | None, as_json: bool) -> None:
    """Log a small prompt/model comparison experiment and show what was logged.

    Each call adds a new sweep to the experiment "demo: support-bot prompt comparison".
    """
    from tracemark.demo import run_demo

    result = run_demo(runs=runs)
    if as_json:
        out.echo_json(result.to_dict())
        return
    _print_demo(result)


def _print_demo(result: DemoResult) -> None:
    console = out.new_console()
    experiment = result.experiment
    console.print(
        f"Logged {len(result.runs)} runs to experiment {experiment.name!r} "
        f"(id {experiment.experiment_id}):"
    )
    # Sized to fit 80 columns; failed runs are shown in red and explained below the table.
    table = out.new_table(
        "run", "model", "prompt", "accuracy", "faithful", "p50 ms", "cost $", title=None
    )
    for run in result.runs:
        table.add_row(
            run.run_name,
            run.params.get("model", ""),
            run.params.get("prompt_template", ""),
            *(_format(run.metrics.get(k), spec) for k, spec in _METRICS.items()),
            style="red" if run.status != "FINISHED" else None,
        )
    console.print(table)
    for run in result.runs:
        if run.status != "FINISHED":
            console.print(f"{run.run_name} {run.status}: {run.tags.get('error', 'no error tag')}")
    best = result.parent_run.tags.get("best_run")
    if best:
        accuracy = _format(result.parent_run.metrics.get("best_accuracy"), _METRICS["accuracy"])
        console.print(f"Best: {best} (accuracy {accuracy}), see run {result.parent_run.run_name}")
    console.print()
    console.print(f"Database:  {result.database or out.safe_uri(result.tracking_uri)}")
    console.print(f"Artifacts: {experiment.artifact_location}")
    prefix = f"tracemark {out.uri_option()}"
    best_id = result.parent_run.tags.get("best_run_id", result.runs[0].run_id)
    console.print("Next:")
    console.print(f"  {prefix}runs list --experiment {shlex.quote(experiment.name)}")
    console.print(f"  {prefix}runs show {best_id}")


def _format(value: float | None, spec: str) -> str:
    return "" if value is None else spec.format(value)
