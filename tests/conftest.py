"""Shared fixtures: a fresh real database per test, on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import shutil
import tempfile
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


_SCRATCH_ARTIFACTS = os.path.join(tempfile.mkdtemp(prefix="tracemark-test-"), "artifacts")


def _truncate_postgres(uri: str) -> None:
    from sqlalchemy import text

    from tracemark.store.sql.schema import metadata

    # The default experiment is re-created here: keep its artifacts out of the working tree.
    store = registry.get_store(uri, _SCRATCH_ARTIFACTS)
    tables = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with store.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    store._ensure_default_experiment()


def _fresh_sqlite(tmp_path, template: str) -> str:
    path = tmp_path / "tracemark.db"
    shutil.copyfile(template, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_uri(request: pytest.FixtureRequest, tmp_path, sqlite_template: str) -> Iterator[str]:
    """A database URI of an empty, migrated database: SQLite, then PostgreSQL."""
    if request.param == "sqlite":
        uri = _fresh_sqlite(tmp_path, sqlite_template)
    else:
        uri = request.getfixturevalue("postgres_database")
        _truncate_postgres(uri)
    yield uri
    if request.param == "sqlite":
        registry.reset()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """A real `tracemark server` process on a loopback port, over one database."""

    def __init__(self, db_uri: str, artifacts: str, *, token: str | None = None) -> None:
        import subprocess
        import sys
        import time

        import httpx

        self.db_uri = db_uri
        self.artifacts = artifacts
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [
            sys.executable,
            "-m",
            "tracemark.cli",
            "server",
            "--port",
            str(self.port),
            "--backend-store-uri",
            db_uri,
            "--artifacts-destination",
            artifacts,
        ]
        if token:
            args += ["--auth-token", token]
        # Webhook tests deliver to receivers on 127.0.0.1, which servers refuse by default.
        env = {**os.environ, "TRACEMARK_WEBHOOK_ALLOW_PRIVATE_URLS": "true"}
        self.process = subprocess.Popen(args, env=env)
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("server did not start within 60 s")
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop the server process."""
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except Exception:
            self.process.kill()
            self.process.wait()


def _clear_database(uri: str) -> None:
    """Empty every table of a database another process is serving."""
    if uri.startswith("postgres"):
        _truncate_postgres(uri)
        return
    from sqlalchemy import delete

    from tracemark.store.sql.schema import metadata

    store = registry.get_store(uri, _SCRATCH_ARTIFACTS)
    with store._write() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(delete(table))
    store._ensure_default_experiment()


@pytest.fixture(scope="session")
def sqlite_server(tmp_path_factory: pytest.TempPathFactory, sqlite_template: str):
    """A live server over a SQLite file, for the whole session."""
    folder = tmp_path_factory.mktemp("server-sqlite")
    server = LiveServer(_fresh_sqlite(folder, sqlite_template), str(folder / "artifacts"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory, postgres_database: str):
    """A live server over the session's PostgreSQL database."""
    folder = tmp_path_factory.mktemp("server-postgres")
    server = LiveServer(postgres_database, str(folder / "artifacts"))
    yield server
    server.stop()


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.postgres),
        pytest.param("server-sqlite", marks=pytest.mark.server),
        pytest.param("server-postgresql", marks=[pytest.mark.server, pytest.mark.postgres]),
    ]
)
def tracking_uri(request: pytest.FixtureRequest, tmp_path, sqlite_template: str) -> Iterator[str]:
    """A tracking URI of an empty store: SQLite, PostgreSQL, or a live server over either."""
    if request.param == "sqlite":
        yield _fresh_sqlite(tmp_path, sqlite_template)
    elif request.param == "postgresql":
        uri = request.getfixturevalue("postgres_database")
        _truncate_postgres(uri)
        yield uri
    else:
        name = "sqlite_server" if request.param == "server-sqlite" else "postgres_server"
        server = request.getfixturevalue(name)
        _clear_database(server.db_uri)
        yield server.url
    registry.reset()


@pytest.fixture
def tracking(tracking_uri: str, tmp_path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """The `tracemark` module pointed at a fresh store, with no active run left behind."""
    monkeypatch.setenv("TRACEMARK_ARTIFACT_ROOT", str(tmp_path / "artifacts"))
    registry.reset()
    tm.set_tracking_uri(tracking_uri)
    yield tm
    from tracemark.tracking.fluent import DEFAULT_TRACKER

    tm.flush()  # traces still queued belong to this test's store, not the next one's
    while DEFAULT_TRACKER.active_run() is not None:
        DEFAULT_TRACKER.end_run()
    DEFAULT_TRACKER._global_stack.clear()
    DEFAULT_TRACKER._stack.set(None)
    registry.reset()


@pytest.fixture
def client(tracking: object):
    """A TracemarkClient on the same fresh store."""
    return tm.TracemarkClient()


@pytest.fixture
def clear_database():
    """A function that empties a database a live server is using."""
    return _clear_database


@pytest.fixture
def start_server(tmp_path, sqlite_template: str):
    """Start extra live servers (over fresh SQLite files unless given); all stopped afterwards."""
    servers: list[LiveServer] = []

    def start(*, token: str | None = None, db_uri: str | None = None) -> LiveServer:
        folder = tmp_path / f"server-{len(servers)}"
        folder.mkdir()
        server = LiveServer(
            db_uri or _fresh_sqlite(folder, sqlite_template),
            str(folder / "artifacts"),
            token=token,
        )
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the browser tests last: Playwright keeps an event loop running in this thread."""
    items.sort(key=lambda item: "tests/e2e/" in item.nodeid.replace("\\", "/"))
