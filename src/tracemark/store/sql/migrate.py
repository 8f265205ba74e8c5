"""Schema versioning: create new databases, upgrade old ones, refuse newer ones.

Opening a store only reads `alembic_version` and compares it with `HEAD_REVISION`;
Alembic itself is imported when there is migrating to do.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text

from tracemark.exceptions import SchemaVersionError
from tracemark.store.sql.schema import HEAD_REVISION

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine import Connection, Engine

_MIGRATIONS = Path(__file__).with_name("migrations")


def _config(connection: Connection) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def current_revision(connection: Connection) -> str | None:
    """Return the database's schema revision, or None for a database tracemark never touched."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def known_revisions() -> list[str]:
    """Return every revision this code ships, oldest first."""
    from alembic.script import ScriptDirectory

    cfg = _config(None)  # type: ignore[arg-type]
    script = ScriptDirectory.from_config(cfg)
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Bring the database to the newest schema; return (revision before, revision after)."""
    from alembic import command

    with engine.begin() as connection:
        before = current_revision(connection)
        if before is not None and before not in known_revisions():
            raise _newer_error(engine, before)
        command.upgrade(_config(connection), "head")
    return before, HEAD_REVISION


def ensure_schema(engine: Engine) -> None:
    """Create the schema of a new database; raise SchemaVersionError for an old or newer one."""
    with engine.connect() as connection:
        revision = current_revision(connection)
    if revision == HEAD_REVISION:
        return
    if revision is None:
        upgrade(engine)
        return
    if revision in known_revisions():
        raise SchemaVersionError(
            f"The database {_safe_url(engine)} has schema revision {revision!r}, older than this "
            f"tracemark ({HEAD_REVISION!r}). Back it up, then run: "
            f"tracemark db upgrade {_safe_url(engine)}"
        )
    raise _newer_error(engine, revision)


def _newer_error(engine: Engine, revision: str) -> SchemaVersionError:
    return SchemaVersionError(
        f"The database {_safe_url(engine)} has schema revision {revision!r}, which this version "
        f"of tracemark does not know: it was written by a newer tracemark. Upgrade tracemark."
    )


def _safe_url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)
