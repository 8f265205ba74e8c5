"""`tracemark experiments ...`: list, create, delete and restore experiments."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from tracemark.cli import _output as out
from tracemark.exceptions import NotFoundError

if TYPE_CHECKING:
    from tracemark.client import TracemarkClient
    from tracemark.entities import Experiment

VIEWS = {"active": "active_only", "deleted": "deleted_only", "all": "all"}


@click.group()
def experiments() -> None:
    """List, create, delete and restore experiments."""


@experiments.command("list")
@click.option(
    "--view",
    type=click.Choice(sorted(VIEWS)),
    default="active",
    show_default=True,
    help="Which experiments to show.",
)
@click.option("--filter", "filter_string", metavar="STR", help="For example: \"name LIKE 'qa%'\"")
@click.option(
    "--max-results", type=click.IntRange(min=1), default=1000, show_default=True, metavar="N"
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def experiments_list(view: str, filter_string: str | None, max_results: int, as_json: bool) -> None:
    """List experiments."""
    found = out.client().search_experiments(VIEWS[view], max_results, filter_string)
    if as_json:
        out.echo_json({"experiments": [e.to_dict() for e in found]})
        return
    columns = ["id", "name", "created (UTC)", "tags"]
    if view != "active":
        columns.insert(2, "stage")
    table = out.new_table(*columns)
    for e in found:
        cells = [e.experiment_id, e.name, out.format_time(e.creation_time), out.format_tags(e.tags)]
        if view != "active":
            cells.insert(2, e.lifecycle_stage)
        table.add_row(*cells)
    out.new_console().print(table if found else "No experiments.")


def _parse_tags(
    _ctx: click.Context, _param: click.Parameter, values: Sequence[str]
) -> dict[str, str]:
    tags = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}")
        tags[key] = value
    return tags


@experiments.command("create")
@click.argument("name")
@click.option(
    "--tag", "tags", multiple=True, metavar="KEY=VALUE", callback=_parse_tags, help="Repeatable."
)
@click.option("--json", "as_json", is_flag=True, help="Print the experiment as JSON.")
def experiments_create(name: str, tags: dict[str, str], as_json: bool) -> None:
    """Create an experiment called NAME."""
    client = out.client()
    experiment = client.get_experiment(client.create_experiment(name, tags=tags))
    if as_json:
        out.echo_json(experiment.to_dict())
        return
    out.new_console().print(
        f"Created experiment {experiment.name!r} with id {experiment.experiment_id}."
    )


@experiments.command("delete")
@click.argument("experiment", metavar="ID_OR_NAME")
def experiments_delete(experiment: str) -> None:
    """Delete an experiment and its runs (restorable with `experiments restore`)."""
    client = out.client()
    found = resolve_experiment(client, experiment)
    client.delete_experiment(found.experiment_id)
    out.new_console().print(
        f"Deleted experiment {found.name!r} (id {found.experiment_id}) and its runs; "
        f"undo with: tracemark {out.uri_option()}experiments restore {found.experiment_id}"
    )


@experiments.command("restore")
@click.argument("experiment", metavar="ID_OR_NAME")
def experiments_restore(experiment: str) -> None:
    """Restore a deleted experiment and its runs."""
    client = out.client()
    found = resolve_experiment(client, experiment)
    client.restore_experiment(found.experiment_id)
    out.new_console().print(f"Restored experiment {found.name!r} (id {found.experiment_id}).")


def resolve_experiment(client: TracemarkClient, ref: str) -> Experiment:
    """Find an experiment by id when `ref` is a number that is one, else by name."""
    if ref.isdigit():
        try:
            return client.get_experiment(ref)
        except NotFoundError:
            pass
    experiment = client.get_experiment_by_name(ref)
    if experiment is None:
        raise NotFoundError(f"no experiment has the id or name {ref!r}")
    return experiment
