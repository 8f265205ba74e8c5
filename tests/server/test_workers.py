"""Several workers and processes on one PostgreSQL database; the remote client when they fail.

The server keeps no state of its own on the ingest path, so `--workers 2`, or two server
processes on one database, take writes side by side and each reads everything. The client
side: a server that is down, or answers 429/503, never blocks or breaks the traced app.
"""

from __future__ import annotations

import http.server
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import orjson
import pytest

import tracemark as tm
from tracemark.entities import Metric
from tracemark.entities.trace import Trace
from tracemark.exceptions import AlreadyExistsError, InvalidInputError, StoreError
from tracemark.store import registry
from tracemark.store.rest import RestStore
from tracemark.tracing import DEFAULT_TRACER

pytestmark = pytest.mark.server

CLIENTS = 4
REQUESTS_PER_CLIENT = 15
TRACES_PER_REQUEST = 4
SPANS_PER_TRACE = 3
METRICS_PER_REQUEST = 20


# -- several workers, several processes ----------------------------------------------------


def worker_pids(server) -> list[int]:
    """The uvicorn worker processes a `--workers N` server runs."""
    out = subprocess.run(
        ["ps", "-ww", "--ppid", str(server.process.pid), "-o", "pid=,args="],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [int(line.split()[0]) for line in out.splitlines() if "spawn_main" in line]


@pytest.fixture(params=["workers", "processes"])
def stores(request, new_postgres_database, server_process) -> Iterator[list[RestStore]]:
    """REST stores of two servers over one new PostgreSQL database: one server with two
    workers, or two servers started at the same moment (both migrate the empty database)."""
    if request.param == "workers":
        server = server_process(new_postgres_database, workers=2)
        assert len(worker_pids(server)) == 2
        urls = [server.url, server.url]
    else:
        pair = [server_process(new_postgres_database, wait=False) for _ in range(2)]
        urls = [s.wait_ready().url for s in pair]
    opened = [RestStore(url) for url in urls]
    yield opened
    for store in opened:
        store.close()


@pytest.mark.postgres
@pytest.mark.slow
def test_concurrent_clients_through_two_servers_lose_nothing(stores, trace_factory):
    experiment_id = stores[0].create_experiment("shared")
    sent: dict[str, int] = {}
    runs: dict[str, int] = {}
    lock = threading.Lock()

    def client(c: int) -> None:
        run_id = stores[c % 2].create_run(experiment_id, f"client-{c}", 0).run_id
        for r in range(REQUESTS_PER_CLIENT):
            store = stores[(c + r) % 2]  # alternate servers request by request
            batch = [
                trace_factory(r, spans=SPANS_PER_TRACE, experiment_id=experiment_id)
                for _ in range(TRACES_PER_REQUEST)
            ]
            store.log_traces(batch)
            metrics = [
                Metric("loss", float(step), step, step)
                for step in range(r * METRICS_PER_REQUEST, (r + 1) * METRICS_PER_REQUEST)
            ]
            store.log_batch(run_id, metrics=metrics)
            with lock:
                sent.update((t.trace_id, len(t.spans)) for t in batch)
        with lock:
            runs[run_id] = REQUESTS_PER_CLIENT * METRICS_PER_REQUEST

    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(client, range(CLIENTS)))

    assert len(sent) == CLIENTS * REQUESTS_PER_CLIENT * TRACES_PER_REQUEST
    for store in stores:  # each server reads what went through the other
        infos, token = store.search_traces([experiment_id], max_results=50_000)
        assert token is None
        assert {i.trace_id: i.span_count for i in infos} == sent
        for run_id, count in runs.items():
            history = store.get_metric_history(run_id, "loss")
            assert sorted(m.step for m in history) == list(range(count))
            assert store.get_run(run_id).metrics == {"loss": float(count - 1)}
    some = next(iter(sent))
    assert len(stores[1].get_trace(some).spans) == SPANS_PER_TRACE


@pytest.mark.postgres
@pytest.mark.slow
def test_spans_of_one_trace_sent_to_both_servers_at_once_assemble(stores, trace_factory):
    traces = [trace_factory(i, spans=6) for i in range(20)]

    def send_half(k: int) -> None:
        for trace in traces:
            part = [s for j, s in enumerate(trace.spans) if j % 2 == k]
            stores[k].log_traces([Trace(trace.info, part)])

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(send_half, range(2)))
    for trace in traces:
        got = stores[0].get_trace(trace.trace_id)
        assert {s.span_id for s in got.spans} == {s.span_id for s in trace.spans}
        assert got.info.span_count == 6


@pytest.mark.postgres
@pytest.mark.slow
def test_one_experiment_name_created_through_both_servers_at_once(stores):
    def create(k: int) -> str:
        try:
            return stores[k % 2].create_experiment("race")
        except AlreadyExistsError:
            return "exists"

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(create, range(8)))
    created = [r for r in results if r != "exists"]
    assert len(created) == 1
    assert stores[1].get_experiment_by_name("race").experiment_id == created[0]


# -- the remote client when the server fails ------------------------------------------------


class FlakyServer(http.server.ThreadingHTTPServer):
    """A fake tracemark server on 127.0.0.1: answers its first `failures` requests with
    `status`, then forwards every request to a real server at `upstream`."""

    daemon_threads = True

    def __init__(self, upstream: str, *, failures: int, status: int = 503, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _FlakyHandler)
        self.upstream = httpx.Client(base_url=upstream, timeout=30)
        self.failures = failures
        self.status = status
        self.answers: list[int] = []
        self.lock = threading.Lock()
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        self.upstream.close()


class _FlakyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FlakyServer

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length)
        with self.server.lock:
            fail = len(self.server.answers) < self.server.failures
        if fail:
            status = self.server.status
            content = orjson.dumps({"error_code": "TEMPORARILY_UNAVAILABLE", "message": "busy"})
            if status < 500 and status != 429:
                content = orjson.dumps({"error_code": "INVALID_PARAMETER_VALUE", "message": "no"})
            content_type = "application/json"
        else:
            headers = {
                k: v
                for k, v in self.headers.items()
                if k.lower() in ("content-type", "content-encoding", "authorization", "accept")
            }
            response = self.server.upstream.request(
                self.command, self.path, content=body, headers=headers
            )
            status, content = response.status_code, response.content
            content_type = response.headers.get("content-type", "application/json")
        with self.server.lock:
            self.server.answers.append(status)
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def upstream(sqlite_server, clear_database) -> str:
    clear_database(sqlite_server.db_uri)
    return sqlite_server.url


@pytest.fixture
def remote_tracing() -> Iterator[object]:
    """Point the SDK at a URL; restore the tracer's settings and the tracking URI after."""
    from tracemark.tracking.fluent import DEFAULT_TRACKER

    saved = DEFAULT_TRACER._config_snapshot()
    previous_uri = DEFAULT_TRACKER._tracking_uri

    def point(url: str, **settings: object) -> None:
        registry.reset()
        tm.set_tracking_uri(url)
        DEFAULT_TRACER.configure(**settings)

    yield point
    DEFAULT_TRACER.flush(timeout=60)
    DEFAULT_TRACER.configure(**saved)
    registry.reset()
    DEFAULT_TRACKER._tracking_uri = previous_uri
    DEFAULT_TRACKER._client = None


@tm.trace
def answer(question: str) -> str:
    return f"answer to {question}"


def come_back(upstream: str, port: int) -> FlakyServer:
    """Answer on `port` again (in front of `upstream`) until the exporter has drained."""
    back = FlakyServer(upstream, failures=0, port=port)
    try:
        assert tm.tracing.flush(timeout=90)
    finally:
        back.close()
    return back


def stored_trace_count(url: str) -> int:
    body = {"experiment_ids": ["0"], "max_results": 50_000}
    return len(httpx.post(f"{url}/api/v1/traces/search", json=body).json()["traces"])


@pytest.mark.slow
def test_server_down_never_blocks_the_app_and_counts_what_is_lost(remote_tracing, unused_port):
    remote_tracing(
        f"http://127.0.0.1:{unused_port}", queue_size=10, batch_size=1000, retry_timeout=1.0
    )
    before = tm.tracing.stats()
    started = time.perf_counter()
    for i in range(30):
        assert answer(str(i)) == f"answer to {i}"
    # Each export attempt retries for seconds; the traced calls never wait for it.
    assert time.perf_counter() - started < 1.0
    assert tm.tracing.flush(timeout=60)
    after = tm.tracing.stats()
    dropped, failed = after.dropped - before.dropped, after.errors - before.errors
    assert after.exported == before.exported and after.queued == 0
    assert dropped > 0  # the queue (10) filled while the exporter was retrying
    assert failed > 0  # what was held failed once the retry window (1 s) ran out
    assert dropped + failed == 30


@pytest.mark.slow
def test_a_server_restart_longer_than_the_client_retries_loses_nothing(
    remote_tracing, upstream, unused_port
):
    # The REST store gives up on a request after about 6 s of retries; the exporter then
    # holds the batch, and the traces made meanwhile wait in the queue (bound: 8).
    remote_tracing(f"http://127.0.0.1:{unused_port}", queue_size=8, batch_size=3)
    before = tm.tracing.stats()
    for i in range(3):
        answer(f"first {i}")
    time.sleep(12.0)  # past the REST store's own retries (3 to 9 s): the batch is held
    for i in range(12):
        answer(f"during {i}")
    stats = tm.tracing.stats()
    assert stats.errors == before.errors
    assert stats.queued == 3 + 8  # the held batch and a full queue
    assert stats.dropped - before.dropped == 4  # beyond the bound: counted
    come_back(upstream, unused_port)
    after = tm.tracing.stats()
    assert after.exported - before.exported == 11
    assert after.errors == before.errors and after.queued == 0
    assert stored_trace_count(upstream) == 11


@pytest.mark.slow
def test_traces_sent_while_the_server_is_down_arrive_when_it_comes_back(
    remote_tracing, upstream, unused_port
):
    remote_tracing(f"http://127.0.0.1:{unused_port}")
    before = tm.tracing.stats()
    for i in range(5):
        answer(str(i))
    time.sleep(1.0)  # the exporter's first attempts were refused; it retries for >= 3 s
    assert tm.tracing.stats().exported == before.exported
    back = come_back(upstream, unused_port)
    after = tm.tracing.stats()
    assert (after.exported - before.exported, after.errors - before.errors) == (5, 0)
    assert back.answers == [200]
    assert stored_trace_count(upstream) == 5


@pytest.mark.parametrize("status", [429, 503])
def test_429_and_503_answers_are_retried(remote_tracing, upstream, status):
    flaky = FlakyServer(upstream, failures=2, status=status)
    try:
        remote_tracing(flaky.url)
        before = tm.tracing.stats()
        answer("q")
        assert tm.tracing.flush(timeout=60)
    finally:
        flaky.close()
    assert flaky.answers == [status, status, 200]
    assert tm.tracing.stats().exported == before.exported + 1
    assert stored_trace_count(upstream) == 1


def test_client_errors_are_not_retried_and_retries_are_bounded(upstream, trace_factory):
    refusing = FlakyServer(upstream, failures=1, status=400)
    busy = FlakyServer(upstream, failures=100, status=503)
    stores = [RestStore(refusing.url), RestStore(busy.url, max_retries=2)]
    try:
        with pytest.raises(InvalidInputError):
            stores[0].log_traces([trace_factory(0)])
        assert refusing.answers == [400]
        with pytest.raises(StoreError, match="503"):
            stores[1].log_traces([trace_factory(1)])
        assert busy.answers == [503, 503, 503]
    finally:
        for closable in (*stores, refusing, busy):
            closable.close()
    assert stored_trace_count(upstream) == 0


def test_tracking_token_from_the_environment_authenticates_the_exporter(
    start_server, remote_tracing, monkeypatch
):
    server = start_server(token="s3cret")
    monkeypatch.setenv("TRACEMARK_TRACKING_TOKEN", "s3cret")
    remote_tracing(server.url)
    before = tm.tracing.stats()
    answer("q")
    assert tm.tracing.flush(timeout=60)
    assert tm.tracing.stats().exported == before.exported + 1
    found = tm.TracemarkClient(server.url).search_traces(["0"])
    assert len(found) == 1
