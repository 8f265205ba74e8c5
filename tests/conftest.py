"""Shared fixtures: a fresh real database per test, on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator

import pytest

import tracemark as tm
from tracemark.store import registry

POSTGRES_ENV = "TRACEMARK_TEST_POSTGRES_URI"

os.environ.setdefault("TRACEMARK_TESTING", "1")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated SQLite file that each test copies instead of migrating again."""
    from tracemark.store.sql.store import SqlStore

    path = tmp_path_factory.mktemp("template") / "template.db"
    SqlStore(f"sqlite:///{path}").close()
    return str(path)


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A database of our own on the PostgreSQL server, dropped at the end of the session."""
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"{POSTGRES_ENV} is not set")
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from tracemark.store.sql.engine import normalize_url

    admin_url = normalize_url(base)
    name = f"tracemark_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(str(admin_url.render_as_string(hide_password=False))).set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        registry.reset()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _truncate_postgres(uri: str) -> None:
    from sqlalchemy import text

    from tracemark.store.sql.schema import metadata

    store = registry.get_store(uri)
    tables = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with store.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    store._ensure_default_experiment()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_uri(request: pytest.FixtureRequest, tmp_path, sqlite_template: str) -> Iterator[str]:
    """A tracking URI of an empty, migrated database: SQLite, then PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "tracemark.db"
        shutil.copyfile(sqlite_template, path)
        uri = f"sqlite:///{path}"
    else:
        uri = request.getfixturevalue("postgres_database")
        _truncate_postgres(uri)
    yield uri
    if request.param == "sqlite":
        registry.reset()


@pytest.fixture
def tracking(store_uri: str, tmp_path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """The `tracemark` module pointed at a fresh store, with no active run left behind."""
    monkeypatch.setenv("TRACEMARK_ARTIFACT_ROOT", str(tmp_path / "artifacts"))
    registry.reset()
    tm.set_tracking_uri(store_uri)
    yield tm
    from tracemark.tracking.fluent import DEFAULT_TRACKER

    while DEFAULT_TRACKER.active_run() is not None:
        DEFAULT_TRACKER.end_run()
    DEFAULT_TRACKER._global_stack.clear()
    DEFAULT_TRACKER._stack.set(None)
    registry.reset()


@pytest.fixture
def client(tracking: object):
    """A TracemarkClient on the same fresh store."""
    return tm.TracemarkClient()
