"""The `tracemark` command line: the demo, experiments, runs and database upgrades.

Tables by default, `--json` for scripts. Every `TracemarkError` becomes one `Error: ...`
message on stderr and exit status 1. The store, SQLAlchemy and rich are imported inside the
commands, so `tracemark --version` and `--help` stay fast.
"""

from __future__ import annotations

from typing import Any

import click

from tracemark import config
from tracemark._version import __version__
from tracemark.cli._db import db
from tracemark.cli._demo import demo
from tracemark.cli._experiments import experiments
from tracemark.cli._runs import runs
from tracemark.cli._score import score
from tracemark.cli._serve import serve
from tracemark.cli._server import server
from tracemark.exceptions import TracemarkError

__all__ = ["main"]


class _Group(click.Group):
    """The root group: turns a TracemarkError into `Error: <message>` and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except TracemarkError as exc:
            raise click.ClickException(exc.message) from exc


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="tracemark")
@click.option(
    "--tracking-uri",
    envvar=config.TRACKING_URI.env,
    show_envvar=True,
    metavar="URI",
    help=f"Where to read and write: sqlite:///path.db, postgresql://..., or a file path. "
    f"[default: {config.TRACKING_URI.default}]",
)
def main(tracking_uri: str | None) -> None:
    """Trace, track, evaluate and version LLM applications and agents."""
    if tracking_uri:
        from tracemark.tracking.fluent import set_tracking_uri

        set_tracking_uri(tracking_uri)


for _command in (demo, experiments, runs, db, server, serve, score):
    main.add_command(_command)
