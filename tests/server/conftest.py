"""Server processes the reliability tests start, kill and restart themselves."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from tracemark.entities.trace import Span, Trace, TraceInfo


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """`tracemark server` on a loopback port over a database, in its own process group.

    Unlike the session-wide `LiveServer`, it can run several workers, be killed with
    SIGKILL (the whole group, workers included) and be started again on the same port.
    """

    def __init__(
        self, db_uri: str, artifacts: str, *, workers: int = 1, port: int | None = None
    ) -> None:
        self.db_uri = db_uri
        self.artifacts = artifacts
        self.workers = workers
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> ServerProcess:
        """Start the process and wait until /health answers."""
        return self.launch().wait_ready(timeout)

    def launch(self) -> ServerProcess:
        """Start the process without waiting for it to serve."""
        args = [
            sys.executable,
            "-m",
            "tracemark.cli",
            "server",
            "--port",
            str(self.port),
            "--backend-store-uri",
            self.db_uri,
            "--artifacts-destination",
            self.artifacts,
            "--workers",
            str(self.workers),
        ]
        self.process = subprocess.Popen(args, start_new_session=True)
        return self

    def wait_ready(self, timeout: float = 60) -> ServerProcess:
        """Wait until /health answers."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"server did not start within {timeout} s")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL the server and its workers: no shutdown code runs."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.process = None

    def stop(self) -> None:
        """Stop the server gracefully, killing it if it does not stop in 15 s."""
        if self.process is None:
            return
        self.process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=15)
        self.kill()


@pytest.fixture
def unused_port() -> int:
    """A loopback port nothing listens on: a server that is down."""
    return free_port()


@pytest.fixture
def server_process(tmp_path) -> Iterator[object]:
    """A function starting `ServerProcess`es over a database; all are stopped afterwards."""
    started: list[ServerProcess] = []

    def start(
        db_uri: str, *, workers: int = 1, port: int | None = None, wait: bool = True
    ) -> ServerProcess:
        artifacts = tmp_path / "artifacts"
        server = ServerProcess(db_uri, str(artifacts), workers=workers, port=port)
        started.append(server)
        server.launch()
        return server.wait_ready() if wait else server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def new_postgres_database() -> Iterator[str]:
    """The URI of a new, empty PostgreSQL database (never migrated), dropped afterwards."""
    base = os.environ.get("TRACEMARK_TEST_POSTGRES_URI")
    if not base:
        pytest.skip("TRACEMARK_TEST_POSTGRES_URI is not set")
    import uuid

    from sqlalchemy import create_engine, text

    from tracemark.store.sql.engine import normalize_url

    admin_url = normalize_url(base)
    name = f"tracemark_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        from tracemark.store import registry

        registry.reset()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def make_trace(i: int, *, spans: int = 3, experiment_id: str = "0") -> Trace:
    """A finished trace of a root span and `spans - 1` children, with inputs and outputs."""
    import uuid

    trace_id = uuid.uuid4().hex
    start = time.time_ns()
    root = Span(
        trace_id,
        os.urandom(8).hex(),
        None,
        f"request-{i}",
        "CHAIN",
        start,
        start + 3_000_000,
        "OK",
        inputs_json=f'{{"i": {i}}}',
        outputs_json=f'"answer {i}"',
        attributes={"i": i},
    )
    children = [
        Span(trace_id, os.urandom(8).hex(), root.span_id, f"step-{k}", "LLM", start + k, start + 9)
        for k in range(1, spans)
    ]
    info = TraceInfo(trace_id, experiment_id, start // 1_000_000, 3, "OK", name=f"request-{i}")
    return Trace(info, [root, *children])


@pytest.fixture
def trace_factory():
    """`make_trace(i, spans=3, experiment_id="0")`: a finished trace to ingest."""
    return make_trace
