"""How the CLI prints: rich tables for people, JSON for scripts, and value formatting."""

from __future__ import annotations

import json
import math
import os
import shlex
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from tracemark.client import TracemarkClient
    from tracemark.entities import Run


def client() -> TracemarkClient:
    """Return a client for the tracking URI in effect (option, then env, then default)."""
    from tracemark.client import TracemarkClient

    return TracemarkClient()


def new_console() -> Console:
    """Return a console on stdout that prints user text literally."""
    from rich.console import Console

    # User text (names, tags) is printed as is: no markup, emoji codes or highlighting.
    console = Console(markup=False, emoji=False, highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        # Piped or captured output keeps whole lines instead of folding at 80 columns.
        console.width = 1000
    return console


def new_table(*columns: str, title: str | None = None) -> Table:
    """Return a table with these column headers, in the CLI's one style."""
    from rich import box
    from rich.table import Table

    result = Table(
        box=box.SIMPLE_HEAD,
        title=title,
        title_justify="left",
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
    )
    for column in columns:
        result.add_column(column, overflow="fold")
    return result


def echo_json(document: Any) -> None:
    """Print one JSON document; NaN and infinities, which JSON lacks, become null."""
    click.echo(json.dumps(json_safe(document), indent=2, allow_nan=False))


def json_safe(value: Any) -> Any:
    """Return `value` with every non-finite float replaced by None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def uri_option() -> str:
    """Return `--tracking-uri URI ` when it was given on the command line, for hints."""
    ctx = click.get_current_context().find_root()
    if ctx.get_parameter_source("tracking_uri") != click.core.ParameterSource.COMMANDLINE:
        return ""
    return f"--tracking-uri {shlex.quote(safe_uri(ctx.params['tracking_uri']))} "


def safe_uri(uri: str) -> str:
    """Return a URI fit to print: its password masked."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(uri).render_as_string(hide_password=True)
    except ArgumentError:
        return uri


def status_text(status: str) -> Text:
    """Return a run status coloured by outcome."""
    from rich.text import Text

    style = {"FINISHED": "green", "FAILED": "red", "KILLED": "yellow", "RUNNING": "cyan"}
    return Text(status, style=style.get(status, ""))


def format_time(ms: int | None) -> str:
    """Format epoch milliseconds as UTC date and time."""
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def format_duration(run: Run) -> str:
    """Format how long a run took, or that it still runs."""
    if run.end_time is None:
        return "running" if run.status == "RUNNING" else "-"
    elapsed_ms = max(0, run.end_time - run.start_time)
    if elapsed_ms < 1000:
        return f"{elapsed_ms}ms"
    seconds = elapsed_ms / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def format_number(value: float | None) -> str:
    """Format a metric value with five significant digits."""
    return "" if value is None else f"{value:.5g}"


def format_size(size: int | None) -> str:
    """Format a file size in B, KB, MB or GB."""
    if size is None:
        return ""
    value = float(size)
    for unit in ("B", "KB", "MB"):
        if value < 1024:
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def format_tags(tags: dict[str, str]) -> str:
    """Format tags as sorted key=value pairs."""
    return ", ".join(f"{k}={v}" for k, v in sorted(tags.items()))
