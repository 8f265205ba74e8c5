"""`tracemark db ...`: database schema maintenance."""

from __future__ import annotations

import os

import click

from tracemark.cli import _output as out
from tracemark.exceptions import StoreError


@click.group()
def db() -> None:
    """Manage database schemas."""


@db.command("upgrade")
@click.argument("uri")
def db_upgrade(uri: str) -> None:
    """Migrate the database at URI to the newest schema (back it up first).

    URI is a database URI (sqlite:///path.db, postgresql://...) or a SQLite file path.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from tracemark.store.sql.engine import build_engine, stop_checkpointer
    from tracemark.store.sql.migrate import upgrade

    if "://" not in uri:
        uri = f"sqlite:///{os.path.abspath(uri)}"
    engine = build_engine(uri)
    shown = engine.url.render_as_string(hide_password=True)
    try:
        before, after = upgrade(engine)
    except SQLAlchemyError as exc:
        reason = " ".join(str(getattr(exc, "orig", None) or exc).split())  # drivers wrap lines
        raise StoreError(f"cannot upgrade {shown}: {reason}") from exc
    finally:
        stop_checkpointer(engine)
        engine.dispose()
    console = out.new_console()
    if before == after:
        console.print(f"{shown} is already up to date (schema revision {after}).")
    else:
        console.print(f"Upgraded {shown} from schema revision {before or 'none'} to {after}.")
