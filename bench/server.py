"""Server benchmark: trace ingest and search on a tracemark server, against MLflow's server.

Each server runs as its own process on a free loopback port, over a fresh database:

  exporter   the SDK's trace exporter (`StoreExporter` on the REST store) sends batches of
             ready-made traces from CLIENTS threads; each request is one batch
  otlp       the same traces as OTLP/HTTP protobuf, posted to /v1/traces the same way

Both ingest paths run with two request sizes: SMALL_BATCH traces per request (an
application sending a few dozen traces a second: what request latency is judged on) and
LARGE_BATCH (what the exporter sends under a heavy load, when its queue holds more than
that at each wake-up: what throughput is judged on).
  sdk        an application traces N requests with `tm.start_span` (tracemark) and with
             `mlflow.start_span` (MLflow, into `mlflow server` on SQLite) and waits until
             everything is exported: the same workload through each library's own client
  search     the first page of `search_traces` with 100,000 traces stored (seeded directly
             through the SQL store; on PostgreSQL then analyzed, as autovacuum would),
             unfiltered and filtered

Every trace has SPANS_PER_TRACE spans (an agent: LLM calls with token usage, tools, a
retriever). Afterwards the stored traces and spans are counted, so a fast result that lost
data fails loudly. Budgets (issue 5) are checked at the end.

    python bench/server.py              # full size
    python bench/server.py --quick      # smoke run, about a minute
    python bench/server.py --json       # also print the figures as JSON (or --json FILE)
    python bench/server.py --check      # exit 1 when a budget is missed

PostgreSQL runs use a new database on TRACEMARK_BENCH_POSTGRES_URI (else
TRACEMARK_TEST_POSTGRES_URI), dropped afterwards; without either they are skipped.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

SPANS_PER_TRACE = 10
CLIENTS = 2
SMALL_BATCH = 20  # traces per request: 200 spans
LARGE_BATCH = 100  # traces per request: 1,000 spans
MIN_SPANS_PER_S = 10_000  # issue 5: sustained ingest into SQLite and into PostgreSQL
MIN_SPEEDUP = 5.0  # issue 5: at least 5x MLflow's server on the same workload
MAX_P99_MS = 50.0  # issue 5: p99 ingest request
MAX_SEARCH_MS = 50.0  # issue 5: first page of search_traces with 100,000 traces stored
BASE_NS = 1_700_000_000_000_000_000

# -- the workload --------------------------------------------------------------------------


def make_traces(count: int, experiment_id: str, *, spans: int = SPANS_PER_TRACE) -> list[Any]:
    """Finished agent traces: a root, LLM calls with token usage, tools, a retriever."""
    from tracemark.entities.trace import Span, Trace, TraceInfo

    traces = []
    for i in range(count):
        trace_id = uuid.uuid4().hex
        start = BASE_NS + i * 50_000_000
        question = f"How do I get a refund for order {i}?"
        root = Span(
            trace_id,
            os.urandom(8).hex(),
            None,
            "support_agent",
            "AGENT",
            start,
            start + 40_000_000,
            "OK",
            inputs_json=json.dumps({"question": question, "user": f"user-{i % 97}"}),
            outputs_json=json.dumps("Refunds are issued within 30 days of purchase."),
            attributes={"session.id": f"s-{i % 31}"},
        )
        children = []
        for k in range(1, spans):
            kind = ("LLM", "TOOL", "RETRIEVER")[k % 3]
            t0 = start + k * 3_000_000
            attributes: dict[str, Any] = {"step": k}
            if kind == "LLM":
                attributes.update(
                    {
                        "gen_ai.request.model": "gpt-4o-mini",
                        "gen_ai.usage.input_tokens": 120 + k,
                        "gen_ai.usage.output_tokens": 30 + k,
                    }
                )
                inputs = {"messages": [{"role": "user", "content": question}]}
                outputs = {"role": "assistant", "content": f"Step {k}: look up the order."}
            elif kind == "TOOL":
                inputs = {"order_id": i, "fields": ["status", "paid_at"]}
                outputs = {"status": "delivered", "paid_at": "2026-01-02T10:00:00Z"}
            else:
                inputs = {"query": "refund policy", "top_k": 3}
                outputs = [{"page_content": "Refunds within 30 days.", "metadata": {"doc": 7}}]
            children.append(
                Span(
                    trace_id,
                    os.urandom(8).hex(),
                    root.span_id,
                    f"{kind.lower()}_{k}",
                    kind,
                    t0,
                    t0 + 2_500_000,
                    "OK",
                    inputs_json=json.dumps(inputs),
                    outputs_json=json.dumps(outputs),
                    attributes=attributes,
                )
            )
        info = TraceInfo(
            trace_id,
            experiment_id,
            start // 1_000_000,
            40,
            "OK",
            name="support_agent",
            request_preview=question,
            response_preview="Refunds are issued within 30 days of purchase.",
            tags={"env": ("prod", "staging")[i % 2]},
            span_count=spans,
        )
        traces.append(Trace(info, [root, *children]))
    return traces


def to_otlp(traces: list[Any]) -> bytes:
    """Encode traces as one OTLP ExportTraceServiceRequest (protobuf), OpenInference-style."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.trace.v1.trace_pb2 import Span as OtelSpan
    from opentelemetry.proto.trace.v1.trace_pb2 import Status

    def attr(key: str, value: Any) -> KeyValue:
        if isinstance(value, bool):
            return KeyValue(key=key, value=AnyValue(bool_value=value))
        if isinstance(value, int):
            return KeyValue(key=key, value=AnyValue(int_value=value))
        return KeyValue(key=key, value=AnyValue(string_value=str(value)))

    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.append(attr("service.name", "bench"))
    scope = resource_spans.scope_spans.add()
    scope.scope.name = "bench"
    for trace in traces:
        for span in trace.spans:
            otel = scope.spans.add()
            otel.trace_id = bytes.fromhex(span.trace_id)
            otel.span_id = bytes.fromhex(span.span_id)
            if span.parent_id:
                otel.parent_span_id = bytes.fromhex(span.parent_id)
            otel.name = span.name
            otel.kind = OtelSpan.SPAN_KIND_INTERNAL
            otel.start_time_unix_nano = span.start_time_ns
            otel.end_time_unix_nano = span.end_time_ns
            otel.status.code = Status.STATUS_CODE_OK
            values = {
                "openinference.span.kind": span.span_type,
                "input.value": span.inputs_json,
                "input.mime_type": "application/json",
                "output.value": span.outputs_json,
                "output.mime_type": "application/json",
            }
            usage = span.attributes
            if "gen_ai.usage.input_tokens" in usage:
                values["llm.model_name"] = usage["gen_ai.request.model"]
                values["llm.token_count.prompt"] = usage["gen_ai.usage.input_tokens"]
                values["llm.token_count.completion"] = usage["gen_ai.usage.output_tokens"]
            otel.attributes.extend(attr(k, v) for k, v in values.items())
    return request.SerializeToString()


# -- server processes ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """A server started as a process group on a free loopback port, stopped by its pid."""

    def __init__(self, name: str, args: list[str], port: int, log: str) -> None:
        self.name = name
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._log = open(log, "wb")  # noqa: SIM115 - closed in stop()
        env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
        self.process = subprocess.Popen(
            args, stdout=self._log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        self._wait_ready(log)

    def _wait_ready(self, log: str, timeout: float = 120) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                with open(log, encoding="utf-8", errors="replace") as fh:
                    tail = fh.read()[-3000:]
                raise SystemExit(f"{self.name} exited with {self.process.returncode}:\n{tail}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            time.sleep(0.1)
        self.stop()
        raise SystemExit(f"{self.name} did not answer /health within {timeout:.0f} s")

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()


def tracemark_server(db_uri: str, folder: str) -> ServerProcess:
    port = free_port()
    args = [sys.executable, "-m", "tracemark.cli", "server", "--port", str(port)]
    args += ["--backend-store-uri", db_uri, "--artifacts-destination", f"{folder}/artifacts"]
    return ServerProcess("tracemark server", args, port, f"{folder}/server.log")


def mlflow_server(folder: str) -> ServerProcess:
    port = free_port()
    args = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port)]
    args += ["--backend-store-uri", f"sqlite:///{folder}/mlflow.db"]
    args += ["--artifacts-destination", f"{folder}/artifacts", "--workers", "1"]
    return ServerProcess("mlflow server", args, port, f"{folder}/server.log")


@contextlib.contextmanager
def postgres_database(base_uri: str) -> Iterator[str]:
    """A new PostgreSQL database on the server of `base_uri`, dropped afterwards."""
    from sqlalchemy import create_engine, text

    from tracemark.store.sql.engine import normalize_url

    admin_url = normalize_url(base_uri)
    name = f"tracemark_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# -- measuring -----------------------------------------------------------------------------


@dataclass
class Ingest:
    """One ingest run: throughput and request latencies."""

    path: str
    backend: str
    batch: int
    traces: int
    spans: int
    seconds: float
    latencies_ms: list[float] = field(default_factory=list, repr=False)

    @property
    def spans_per_s(self) -> float:
        return self.spans / self.seconds

    def percentile(self, q: float) -> float | None:
        return percentile(self.latencies_ms, q)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def concurrent_requests(
    batches: list[Any], send: Callable[[Any, Any], None], connect: Callable[[], Any]
) -> tuple[float, list[float]]:
    """Send batches from CLIENTS threads, each with its own connection; (seconds, latencies)."""
    latencies: list[float] = []
    lock = threading.Lock()
    shares = [batches[i::CLIENTS] for i in range(CLIENTS)]
    errors: list[BaseException] = []

    def client(share: list[Any]) -> None:
        conn = connect()
        mine = []
        try:
            for batch in share:
                t0 = time.perf_counter()
                send(conn, batch)
                mine.append((time.perf_counter() - t0) * 1000)
        except BaseException as exc:
            errors.append(exc)
        finally:
            with contextlib.suppress(Exception):
                conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(share,)) for share in shares]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    if errors:
        raise errors[0]
    return seconds, latencies


def bench_exporter(url: str, backend: str, traces: int, batch: int) -> Ingest:
    from tracemark.store.rest import RestStore
    from tracemark.tracing import StoreExporter

    setup = RestStore(url)
    eid = setup.create_experiment(f"exporter-{uuid.uuid4().hex[:6]}")
    setup.log_traces(make_traces(batch, eid))  # warm-up: connections, caches, statements
    data = make_traces(traces, eid)
    batches = [data[i : i + batch] for i in range(0, traces, batch)]

    class Client:
        def __init__(self) -> None:
            self.store = RestStore(url)
            self.exporter = StoreExporter(self.store)

        def close(self) -> None:
            self.store.close()

    seconds, latencies = concurrent_requests(batches, lambda c, b: c.exporter.export(b), Client)
    expect_stored(setup, backend, eid, traces + batch, SPANS_PER_TRACE)
    setup.close()
    spans = traces * SPANS_PER_TRACE
    return Ingest("exporter", backend, batch, traces, spans, seconds, latencies)


def bench_otlp(url: str, backend: str, traces: int, batch: int) -> Ingest:
    import httpx

    from tracemark.store.rest import RestStore

    setup = RestStore(url)
    eid = setup.create_experiment(f"otlp-{uuid.uuid4().hex[:6]}")
    headers = {"content-type": "application/x-protobuf", "x-tracemark-experiment-id": eid}
    with httpx.Client(base_url=url) as http:
        warm = http.post("/v1/traces", content=to_otlp(make_traces(batch, eid)), headers=headers)
        warm.raise_for_status()
    data = make_traces(traces, eid)
    bodies = [to_otlp(data[i : i + batch]) for i in range(0, traces, batch)]

    def send(http: Any, body: bytes) -> None:
        http.post("/v1/traces", content=body, headers=headers).raise_for_status()

    seconds, latencies = concurrent_requests(
        bodies, send, lambda: httpx.Client(base_url=url, timeout=60)
    )
    expect_stored(setup, backend, eid, traces + batch, SPANS_PER_TRACE)
    setup.close()
    return Ingest("otlp", backend, batch, traces, traces * SPANS_PER_TRACE, seconds, latencies)


def expect_stored(store: Any, backend: str, eid: str, traces: int, spans: int) -> None:
    """Stop unless the server holds every trace with every span."""
    infos, _ = store.search_traces([eid], max_results=50_000)
    counts = {info.span_count for info in infos}
    if len(infos) != traces or counts != {spans}:
        raise SystemExit(
            f"{backend}: {len(infos)} traces stored with span counts {sorted(counts)}, "
            f"expected {traces} with {spans}: data was lost"
        )


# -- the same workload through each library's SDK -----------------------------------------


def sdk_workload(start_span: Callable[..., Any], requests: int) -> None:
    """An application handling `requests` questions, each traced as SPANS_PER_TRACE spans."""
    for i in range(requests):
        question = f"How do I get a refund for order {i}?"
        with start_span("support_agent", "AGENT") as root:
            root.set_inputs({"question": question, "user": f"user-{i % 97}"})
            for k in range(1, SPANS_PER_TRACE):
                kind = ("LLM", "TOOL", "RETRIEVER")[k % 3]
                with start_span(f"{kind.lower()}_{k}", kind) as span:
                    span.set_inputs({"query": question, "step": k})
                    span.set_attributes({"step": k, "gen_ai.request.model": "gpt-4o-mini"})
                    span.set_outputs({"content": f"Step {k}: look up the order."})
            root.set_outputs("Refunds are issued within 30 days of purchase.")


def bench_tracemark_sdk(url: str, requests: int) -> Ingest:
    import tracemark as tm
    from tracemark.store.rest import RestStore

    tm.set_tracking_uri(url)
    eid = tm.set_experiment(f"sdk-{uuid.uuid4().hex[:6]}").experiment_id

    def start_span(name: str, kind: str) -> Any:
        return tm.start_span(name, span_type=kind)

    sdk_workload(start_span, 5)  # warm-up
    tm.flush()
    start = time.perf_counter()
    sdk_workload(start_span, requests)
    tm.flush()
    seconds = time.perf_counter() - start
    stats = tm.tracing.stats()
    if stats.dropped or stats.errors:
        raise SystemExit(f"tracemark SDK: {stats}: data was lost")
    with contextlib.closing(RestStore(url)) as store:
        expect_stored(store, "tracemark SDK", eid, requests + 5, SPANS_PER_TRACE)
    backend = "tracemark server (SQLite)"
    return Ingest("sdk", backend, 0, requests, requests * SPANS_PER_TRACE, seconds)


def bench_mlflow_sdk(url: str, requests: int) -> Ingest:
    import mlflow

    mlflow.set_tracking_uri(url)
    eid = mlflow.set_experiment(f"sdk-{uuid.uuid4().hex[:6]}").experiment_id

    def start_span(name: str, kind: str) -> Any:
        return mlflow.start_span(name, span_type=kind)

    sdk_workload(start_span, 5)
    mlflow.flush_trace_async_logging()
    start = time.perf_counter()
    sdk_workload(start_span, requests)
    mlflow.flush_trace_async_logging()
    seconds = time.perf_counter() - start
    client = mlflow.MlflowClient(url)
    stored, token = 0, None
    while True:
        page = client.search_traces([eid], max_results=500, page_token=token)
        stored += len(page)
        token = page.token
        if not token:
            break
    if stored != requests + 5:
        raise SystemExit(f"MLflow: {stored} traces stored, expected {requests + 5}")
    return Ingest("sdk", "MLflow server (SQLite)", 0, requests, requests * SPANS_PER_TRACE, seconds)


def quiet_mlflow() -> bool:
    """Turn off MLflow's telemetry and chatter; return False when MLflow is not installed."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    warnings.filterwarnings("ignore", module="mlflow")
    try:
        import mlflow  # noqa: F401
    except ImportError:
        return False
    for name in ("mlflow", "alembic", "opentelemetry"):
        logging.getLogger(name).setLevel(logging.ERROR)
    return True


# -- search with many traces stored --------------------------------------------------------


@dataclass
class Search:
    """First-page search latencies on a server holding `stored` traces."""

    backend: str
    stored: int
    query: str
    p50_ms: float
    p99_ms: float


SEARCHES = {
    "first page, newest first": {},
    "filter tags.env = 'prod'": {"filter": "tags.env = 'prod'"},
    "filter status + order by execution time": {
        "filter": "status = 'OK' AND execution_time_ms > 100",
        "order_by": ["execution_time_ms DESC"],
    },
}


def seed_traces(db_uri: str, folder: str, count: int) -> str:
    """Write `count` two-span traces straight through the SQL store; return the experiment."""
    from tracemark.store.sql.store import SqlStore

    store = SqlStore(db_uri, artifact_root=f"{folder}/artifacts")
    eid = store.create_experiment("search")
    chunk = 2_000
    for start in range(0, count, chunk):
        batch = make_traces(min(chunk, count - start), eid, spans=2)
        for j, trace in enumerate(batch):
            n = start + j
            trace.info.timestamp_ms += n  # distinct times, as in a real stream
            trace.info.execution_time_ms = 20 + n % 400
        store.log_traces(batch)
    if db_uri.startswith("postgres"):
        # Autovacuum analyzes a table within a minute of a bulk load like this one; the
        # planner needs those statistics, so gather them now instead of waiting.
        from sqlalchemy import text

        with store.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
    store.close()
    return eid


def bench_search(url: str, backend: str, eid: str, stored: int, repeat: int) -> list[Search]:
    import httpx

    results = []
    with httpx.Client(base_url=url, timeout=60) as http:
        for label, extra in SEARCHES.items():
            body = {"experiment_ids": [eid], "max_results": 100, **extra}
            times = []
            for i in range(repeat + 3):
                t0 = time.perf_counter()
                response = http.post("/api/v1/traces/search", json=body)
                elapsed = (time.perf_counter() - t0) * 1000
                response.raise_for_status()
                if len(response.json()["traces"]) != 100:
                    raise SystemExit(f"{backend}: search {label!r} did not return a full page")
                if i >= 3:  # the first ones warm the caches
                    times.append(elapsed)
            results.append(
                Search(backend, stored, label, percentile(times, 50), percentile(times, 99))
            )
    return results


# -- running and reporting -----------------------------------------------------------------


@contextlib.contextmanager
def scratch(prefix: str) -> Iterator[str]:
    folder = tempfile.mkdtemp(prefix=prefix)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def database(kind: str, folder: str, postgres_uri: str | None) -> Iterator[str]:
    if kind == "SQLite":
        yield f"sqlite:///{folder}/tracemark.db"
    else:
        assert postgres_uri
        with postgres_database(postgres_uri) as uri:
            yield uri


def run(args: argparse.Namespace, postgres_uri: str | None, with_mlflow: bool) -> dict:
    traces = 1_000 if args.quick else 10_000
    sdk_requests = 50 if args.quick else 200
    stored = 10_000 if args.quick else 100_000
    repeat = 20 if args.quick else 50
    ingests: list[Ingest] = []
    searches: list[Search] = []
    kinds = ["SQLite"] + (["PostgreSQL"] if postgres_uri else [])
    for kind in kinds:
        with scratch(f"bench-server-{kind.lower()}-") as folder:
            with database(kind, folder, postgres_uri) as uri:
                server = tracemark_server(uri, folder)
                try:
                    backend = f"tracemark server ({kind})"
                    for batch in (SMALL_BATCH, LARGE_BATCH):
                        ingests.append(bench_exporter(server.url, backend, traces, batch))
                        ingests.append(bench_otlp(server.url, backend, traces, batch))
                    print(f"  {backend}: exporter and OTLP done", file=sys.stderr)
                    if kind == "SQLite" and with_mlflow:
                        ingests.append(bench_tracemark_sdk(server.url, sdk_requests))
                        print(f"  {backend}: SDK done", file=sys.stderr)
                finally:
                    server.stop()
            with database(kind, folder, postgres_uri) as uri:
                eid = seed_traces(uri, folder, stored)
                print(f"  {kind}: {stored:,} traces seeded", file=sys.stderr)
                server = tracemark_server(uri, folder)
                try:
                    searches += bench_search(
                        server.url, f"tracemark server ({kind})", eid, stored, repeat
                    )
                finally:
                    server.stop()
    if with_mlflow:
        with scratch("bench-server-mlflow-") as folder:
            server = mlflow_server(folder)
            try:
                ingests.append(bench_mlflow_sdk(server.url, sdk_requests))
                print("  MLflow server: SDK done", file=sys.stderr)
            finally:
                server.stop()
    return {"ingests": ingests, "searches": searches, "stored": stored}


def budgets(ingests: list[Ingest], searches: list[Search]) -> list[tuple[str, bool | None, str]]:
    """Return (budget, passed or None when not measured, detail)."""
    results: list[tuple[str, bool | None, str]] = []
    for kind in ("SQLite", "PostgreSQL"):
        rows = [i for i in ingests if i.backend.endswith(f"({kind})") and i.path != "sdk"]
        name = f"ingest >= {MIN_SPANS_PER_S:,} spans/s into {kind}"
        if not rows:
            results.append((name, None, "not measured"))
            continue
        for row in rows:
            if row.batch == LARGE_BATCH:
                results.append(
                    (
                        f"{name} ({row.path}, {row.batch} traces/request)",
                        row.spans_per_s >= MIN_SPANS_PER_S,
                        f"{row.spans_per_s:,.0f}",
                    )
                )
        for row in rows:
            if row.batch == SMALL_BATCH:
                p99 = row.percentile(99) or 0.0
                results.append(
                    (
                        f"p99 ingest request < {MAX_P99_MS:g} ms, {kind} "
                        f"({row.path}, {row.batch} traces/request)",
                        p99 < MAX_P99_MS,
                        f"{p99:.1f} ms",
                    )
                )
    ours = next((i for i in ingests if i.path == "sdk" and i.backend.startswith("tracemark")), None)
    theirs = next((i for i in ingests if i.path == "sdk" and i.backend.startswith("MLflow")), None)
    name = f"SDK ingest >= {MIN_SPEEDUP:g}x MLflow's server (SQLite)"
    if ours is None or theirs is None:
        results.append((name, None, "MLflow not measured"))
    else:
        ratio = ours.spans_per_s / theirs.spans_per_s
        results.append((name, ratio >= MIN_SPEEDUP, f"{ratio:.1f}x"))
    for search in searches:
        if search.query == next(iter(SEARCHES)):
            results.append(
                (
                    f"search_traces first page < {MAX_SEARCH_MS:g} ms, {search.stored:,} traces, "
                    f"{search.backend.split('(')[1].rstrip(')')}",
                    search.p50_ms < MAX_SEARCH_MS,
                    f"median {search.p50_ms:.1f} ms, p99 {search.p99_ms:.1f} ms",
                )
            )
    return results


def table(header: tuple[str, ...], lines: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in [header, *lines]) for i in range(len(header))]

    def render(cells: tuple[str, ...]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([first, *rest])

    print(render(header))
    print("  ".join("-" * w for w in widths))
    for line in lines:
        print(render(line))


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument(
        "--json",
        nargs="?",
        const="-",
        metavar="FILE",
        help="write the figures as JSON to FILE (stdout when no FILE is given)",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when a budget is missed")
    parser.add_argument("--no-mlflow", action="store_true", help="time tracemark only")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args(argv)

    postgres_uri = None
    if not args.no_postgres:
        postgres_uri = os.environ.get("TRACEMARK_BENCH_POSTGRES_URI") or os.environ.get(
            "TRACEMARK_TEST_POSTGRES_URI"
        )
        if not postgres_uri:
            print("No TRACEMARK_BENCH_POSTGRES_URI: PostgreSQL is skipped.")
    with_mlflow = not args.no_mlflow and quiet_mlflow()
    if not args.no_mlflow and not with_mlflow:
        print("MLflow is not installed (pip install 'tracemark[bench]'): tracemark only.")

    import tracemark

    mlflow_version = None
    if with_mlflow:
        import mlflow

        mlflow_version = mlflow.__version__
    print(
        f"server benchmark: tracemark {tracemark.__version__}"
        + (f", MLflow {mlflow_version}" if mlflow_version else "")
        + f", Python {platform.python_version()}, {SPANS_PER_TRACE} spans per trace, "
        + f"{CLIENTS} client threads"
    )
    figures = run(args, postgres_uri, with_mlflow)
    ingests, searches = figures["ingests"], figures["searches"]
    print()
    table(
        ("ingest", "server", "traces", "per request", "spans/s", "p50 request", "p99 request"),
        [
            (
                i.path,
                i.backend,
                f"{i.traces:,}",
                str(i.batch) if i.batch else "-",
                f"{i.spans_per_s:,.0f}",
                _ms(i.percentile(50)),
                _ms(i.percentile(99)),
            )
            for i in ingests
        ],
    )
    print()
    table(
        ("search_traces, 100 per page", "server", "stored", "median", "p99"),
        [(s.query, s.backend, f"{s.stored:,}", _ms(s.p50_ms), _ms(s.p99_ms)) for s in searches],
    )
    print()
    results = budgets(ingests, searches)
    for name, passed, detail in results:
        verdict = {True: "PASS", False: "FAIL", None: "SKIP"}[passed]
        print(f"{verdict}  {name}: {detail}")

    if args.json:
        payload = {
            "tracemark": tracemark.__version__,
            "mlflow": mlflow_version,
            "python": platform.python_version(),
            "spans_per_trace": SPANS_PER_TRACE,
            "clients": CLIENTS,
            "ingest": [
                {
                    **{k: v for k, v in asdict(i).items() if k != "latencies_ms"},
                    "spans_per_s": i.spans_per_s,
                    "p50_ms": i.percentile(50),
                    "p99_ms": i.percentile(99),
                }
                for i in ingests
            ],
            "search": [asdict(s) for s in searches],
            "budgets": [{"budget": b, "passed": p, "detail": d} for b, p, d in results],
        }
        text = json.dumps(payload, indent=2)
        if args.json == "-":
            print(text)
        else:
            with open(args.json, "w", encoding="utf-8") as fh:
                fh.write(text + "\n")
    missed = any(passed is False for _, passed, _ in results)
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
