"""`tracemark runs ...`: list runs and show one in full."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import click

from tracemark.cli import _output as out
from tracemark.cli._experiments import resolve_experiment

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from tracemark.client import TracemarkClient
    from tracemark.entities import Experiment, FileInfo, Run

# Shown as run attributes in `runs show`, so left out of its tag table.
_ATTRIBUTE_TAGS = ("tracemark.note.content", "tracemark.parentRunId")
_KEY_IN_QUERY = re.compile(
    r"\b(metrics|params)\.(?:`([^`]+)`|\"([^\"]+)\"|([\w\-/:]+(?:\.[\w\-/:]+)*))"
)


@click.group()
def runs() -> None:
    """List and inspect runs."""


@runs.command("list")
@click.option(
    "--experiment",
    "-e",
    "experiment_refs",
    multiple=True,
    metavar="ID_OR_NAME",
    help="Repeatable. Default: every active experiment.",
)
@click.option(
    "--filter", "filter_string", metavar="STR", help='For example: "metrics.accuracy > 0.9"'
)
@click.option(
    "--order-by", multiple=True, metavar="STR", help="Repeatable, e.g. 'metrics.accuracy DESC'."
)
@click.option(
    "--max-results", type=click.IntRange(min=1), default=100, show_default=True, metavar="N"
)
@click.option("--page-token", metavar="TOKEN", help="Read the page after a previous call.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def runs_list(
    experiment_refs: Sequence[str],
    filter_string: str | None,
    order_by: Sequence[str],
    max_results: int,
    page_token: str | None,
    as_json: bool,
) -> None:
    """List runs, newest first unless --order-by says otherwise."""
    client = out.client()
    if experiment_refs:
        scope = [resolve_experiment(client, ref) for ref in experiment_refs]
    else:
        scope = client.search_experiments(max_results=50_000)
    found, next_token = client.search_runs(
        [e.experiment_id for e in scope],
        filter_string,
        max_results=max_results,
        order_by=list(order_by) or None,
        page_token=page_token,
    )
    if as_json:
        out.echo_json({"runs": [r.to_dict() for r in found], "next_page_token": next_token})
        return
    console = out.new_console()
    if not found:
        console.print("No runs.")
        return
    spans_experiments = len({r.experiment_id for r in found}) > 1
    names = {e.experiment_id: e.name for e in scope} if spans_experiments else None
    wanted = _keys_in_query([filter_string or "", *order_by])
    console.print(_runs_table(found, names, wanted))
    if next_token:
        console.print(f"More runs match; next page: --page-token {next_token}")


def _runs_table(
    found: Sequence[Run], experiment_names: dict[str, str] | None, wanted: dict[str, list[str]]
) -> Table:
    from rich.text import Text

    params = _pick_keys([r.params for r in found], wanted["params"], 4, by_variety=True)
    metrics = _pick_keys([r.metrics for r in found], wanted["metrics"], 4, by_variety=False)
    columns = ["run id", "name", "status", "start (UTC)", "duration", *params, *metrics]
    if experiment_names is not None:
        columns.insert(2, "experiment")
    table = out.new_table(*columns)
    for run in found:
        cells = [
            Text(run.run_id, no_wrap=True),
            run.run_name,
            out.status_text(run.status),
            out.format_time(run.start_time),
            out.format_duration(run),
            *(run.params.get(k, "") for k in params),
            *(out.format_number(run.metrics.get(k)) for k in metrics),
        ]
        if experiment_names is not None:
            cells.insert(2, experiment_names.get(run.experiment_id, run.experiment_id))
        table.add_row(*cells)
    return table


def _keys_in_query(texts: Iterable[str]) -> dict[str, list[str]]:
    """Return the metric and param keys a filter or order_by names, to show them first."""
    keys: dict[str, list[str]] = {"metrics": [], "params": []}
    for text in texts:
        for match in _KEY_IN_QUERY.finditer(text):
            key = next(g for g in match.groups()[1:] if g)
            if key not in keys[match.group(1)]:
                keys[match.group(1)].append(key)
    return keys


def _pick_keys(
    values: Sequence[dict[str, Any]], first: Sequence[str], limit: int, *, by_variety: bool
) -> list[str]:
    """Choose the columns worth showing: keys the query names, then the most telling ones.

    Params that differ between runs say most about a comparison, so with `by_variety` keys
    with more distinct values come first; otherwise the keys most runs have.
    """
    present = {k for v in values for k in v}
    chosen = [k for k in first if k in present]

    def rank(key: str) -> tuple[int, int, str]:
        have = [v[key] for v in values if key in v]
        variety = len(set(have)) if by_variety else 0
        return (-variety, -len(have), key)

    rest = sorted(present.difference(chosen), key=rank)
    return [*chosen, *rest][: max(limit, len(chosen))]


@runs.command("show")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
def runs_show(run_id: str, as_json: bool) -> None:
    """Show a run: info, params, latest metrics, tags and artifacts."""
    client = out.client()
    run = client.get_run(run_id)
    experiment = client.get_experiment(run.experiment_id)
    metrics = []
    for key in sorted(run.metrics):
        history = client.get_metric_history(run.run_id, key)
        last = history[-1]
        metrics.append(
            {
                "key": key,
                "value": run.metrics[key],
                "step": last.step,
                "timestamp": last.timestamp,
                "history_length": len(history),
            }
        )
    artifacts = sorted(_walk_artifacts(client, run.run_id), key=lambda a: a.path)
    if as_json:
        out.echo_json(
            {
                "run": run.to_dict(),
                "experiment": {"experiment_id": experiment.experiment_id, "name": experiment.name},
                "metrics": metrics,
                "artifacts": [{"path": a.path, "file_size": a.file_size} for a in artifacts],
            }
        )
        return
    _print_run(run, experiment, metrics, artifacts)


def _walk_artifacts(
    client: TracemarkClient, run_id: str, path: str | None = None
) -> Iterator[FileInfo]:
    for info in client.list_artifacts(run_id, path):
        if info.is_dir:
            yield from _walk_artifacts(client, run_id, info.path)
        else:
            yield info


def _print_run(
    run: Run, experiment: Experiment, metrics: list[dict[str, Any]], artifacts: list[FileInfo]
) -> None:
    from rich.table import Table

    console = out.new_console()
    info = Table.grid(padding=(0, 2))
    info.add_column(style="bold")
    info.add_column()
    for label, value in (
        ("run id", run.run_id),
        ("name", run.run_name),
        ("experiment", f"{experiment.name} (id {experiment.experiment_id})"),
        ("status", out.status_text(run.status)),
        ("start (UTC)", out.format_time(run.start_time)),
        ("end (UTC)", out.format_time(run.end_time)),
        ("duration", out.format_duration(run)),
        ("parent run", run.parent_run_id or "-"),
        ("description", run.description or "-"),
        ("artifact uri", run.artifact_uri),
    ):
        info.add_row(label, value)
    if run.lifecycle_stage != "active":
        info.add_row("lifecycle", run.lifecycle_stage)
    console.print(info)
    _print_section(console, "Params", ("key", "value"), sorted(run.params.items()))
    _print_section(
        console,
        "Metrics (latest)",
        ("key", "value", "step", "values logged"),
        [
            (m["key"], out.format_number(m["value"]), str(m["step"]), str(m["history_length"]))
            for m in metrics
        ],
    )
    tags = sorted((k, v) for k, v in run.tags.items() if k not in _ATTRIBUTE_TAGS)
    _print_section(console, "Tags", ("key", "value"), tags)
    _print_section(
        console,
        "Artifacts",
        ("path", "size"),
        [(a.path, out.format_size(a.file_size)) for a in artifacts],
    )


def _print_section(
    console: Console, title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    console.print()
    if not rows:
        console.print(f"{title}: none")
        return
    table = out.new_table(*columns, title=title)
    for row in rows:
        table.add_row(*row)
    console.print(table)
