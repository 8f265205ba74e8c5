"""End-to-end fixtures: a real `tracemark server` over seeded data, driven by Debian's Chromium.

The browser is the system one (`/usr/bin/chromium`, from `apt-get install chromium`); nothing
downloads a browser. Without it or without the built UI these tests skip, unless
`TRACEMARK_E2E_REQUIRED=1` (set by `make test`) turns that into a failure.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BIG_TRACE_SPANS = 10_000
STATIC_INDEX = Path(__file__).parents[2] / "src/tracemark/server/static/index.html"
IMAGES = Path(__file__).parents[2] / "docs/images"


def _missing(reason: str) -> None:
    if os.environ.get("TRACEMARK_E2E_REQUIRED") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def big_trace(experiment_id: str, spans: int = BIG_TRACE_SPANS):
    """A trace of `spans` spans: an agent running 100 steps of 99 tool/LLM calls each."""
    from tracemark.entities.trace import Span, Trace, TraceInfo

    trace_id = "b" * 32
    start = time.time_ns() - 60 * 1_000_000_000
    root = Span(trace_id, "0" * 15 + "1", None, "big_agent", "AGENT", start, start + 50_000_000_000)
    root.status_code = "OK"
    made = [root]
    steps = (spans - 1) // 100
    n = 2
    for step in range(steps):
        step_start = start + step * 490_000_000
        parent = Span(
            trace_id,
            f"{n:016x}",
            root.span_id,
            f"step_{step}",
            "CHAIN",
            step_start,
            step_start + 480_000_000,
            status_code="OK",
        )
        n += 1
        made.append(parent)
        for call in range(99):
            t0 = step_start + call * 4_800_000
            kind = "TOOL" if call % 3 else "CHAT_MODEL"
            made.append(
                Span(
                    trace_id,
                    f"{n:016x}",
                    parent.span_id,
                    f"{'tool' if kind == 'TOOL' else 'llm'}_{step}_{call}",
                    kind,
                    t0,
                    t0 + 4_000_000,
                    status_code="OK",
                    inputs_json=f'{{"query": "step {step} call {call}"}}',
                    outputs_json='{"result": "ok"}',
                )
            )
            n += 1
    tail = start + 49_000_000_000  # the leftover spans close the run, after every step
    while len(made) < spans:
        made.append(Span(trace_id, f"{n:016x}", root.span_id, f"tail_{n}", "UNKNOWN", tail, tail))
        n += 1
    info = TraceInfo(
        trace_id=trace_id,
        experiment_id=experiment_id,
        timestamp_ms=start // 1_000_000,
        execution_time_ms=50_000,
        status="OK",
        name="big_agent",
        request_preview='{"task": "a very long agent run"}',
        response_preview='{"done": true}',
        span_count=len(made),
    )
    return Trace(info, made)


class Seeded:
    """A `tracemark server` process over the seeded database, and the ids tests visit."""

    def __init__(self, db_uri: str, artifacts: str, experiment_id: str) -> None:
        import socket
        import subprocess
        import sys

        import httpx

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.experiment_id = experiment_id
        self.big_trace_id = "b" * 32
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tracemark.cli", "server", "--port", str(port)]
            + ["--backend-store-uri", db_uri, "--artifacts-destination", artifacts]
        )
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("server did not start within 60 s")
            time.sleep(0.1)

    def api(self, method: str, path: str, **kwargs):
        """Call the REST API and return the decoded JSON."""
        import httpx

        response = httpx.request(method, f"{self.url}/api/v1{path}", timeout=30, **kwargs)
        response.raise_for_status()
        return response.json()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except Exception:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="session")
def seeded(tmp_path_factory: pytest.TempPathFactory, sqlite_template: str) -> Iterator[Seeded]:
    """A live server over a database holding the demo (runs, agent traces) and a big trace."""
    if not STATIC_INDEX.is_file():
        _missing("the UI is not built: run `make ui` (npm ci && npm run build in ui/)")
    import tracemark as tm
    from tracemark.demo import run_demo
    from tracemark.store import registry

    folder = tmp_path_factory.mktemp("e2e")
    shutil.copyfile(sqlite_template, folder / "tracemark.db")
    uri = f"sqlite:///{folder / 'tracemark.db'}"
    artifacts = str(folder / "artifacts")
    previous = os.environ.get("TRACEMARK_ARTIFACT_ROOT")
    os.environ["TRACEMARK_ARTIFACT_ROOT"] = artifacts
    try:
        result = run_demo(uri)
        experiment_id = result.experiment.experiment_id
        store = registry.get_store(uri)
        store.log_traces([big_trace(experiment_id)])
    finally:
        tm.flush()
        registry.reset()
        if previous is None:
            os.environ.pop("TRACEMARK_ARTIFACT_ROOT", None)
        else:
            os.environ["TRACEMARK_ARTIFACT_ROOT"] = previous
    server = Seeded(uri, artifacts, experiment_id)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium, headless, driven by Playwright."""
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        _missing(f"{CHROMIUM} is missing: apt-get install -y chromium (make e2e-deps)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed: pip install -e '.[dev]'")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class ConsoleLog:
    """Browser console errors and uncaught page errors seen during one test."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.allowed: list[str] = []

    def allow(self, fragment: str) -> None:
        """Accept console errors containing `fragment` (an error the test provokes)."""
        self.allowed.append(fragment)

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(a in e for a in self.allowed)]


@pytest.fixture
def console() -> ConsoleLog:
    return ConsoleLog()


@pytest.fixture
def page(browser, seeded: Seeded, console: ConsoleLog):
    """A fresh browser page on the seeded server; fails the test on console errors."""
    context = browser.new_context(viewport={"width": 1440, "height": 900}, base_url=seeded.url)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.on("console", lambda m: console.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: console.errors.append(f"page error: {e}"))
    yield page
    context.close()
    assert console.unexpected() == [], "browser console errors"


@pytest.fixture
def screenshot(page):
    """Save a screenshot of the current page into docs/images (embedded by docs/ui.md)."""
    IMAGES.mkdir(parents=True, exist_ok=True)

    def take(name: str) -> None:
        page.wait_for_timeout(300)  # let charts and fonts settle
        page.screenshot(path=str(IMAGES / f"{name}.png"))

    return take
