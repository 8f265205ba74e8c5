"""Tracing benchmark: tracemark against MLflow and the raw OpenTelemetry SDK, in one process.

The same workloads run untraced, with tracemark (`@tm.trace`, SQLite store, background
export), with MLflow (`@mlflow.trace`, SQLite tracking store, async trace logging on) and with
the raw OpenTelemetry SDK (a `TracerProvider` with a `BatchSpanProcessor` and an exporter that
does nothing; a small decorator records inputs and outputs as JSON attributes):

  per span     a 3-span trace (agent -> tool, llm) with small payloads, called in a loop;
               per span, the untraced loop subtracted: the calling thread's CPU time (what
               the span costs the code that makes it; the budgets use this) and the elapsed
               time (which adds the background exporter's work competing for the GIL, and
               whatever else the machine is running)
  payloads     one span whose output is 10 KB, 1 MB or 10 MB of retrieved documents:
               caller-visible latency of one call, with the export pipeline idle
  sustained    3-span traces made as fast as the store takes them (the app pauses while more
               than 1,000 traces wait) until N spans are persisted to SQLite (tracemark; MLflow
               for reference, with fewer traces): spans per second from the first call until
               the flush returns, then the spans are counted in the database

Every library's database is read back afterwards: a figure whose spans are not all stored
stops the script. Each timing is repeated and the median reported, and the libraries take
turns (one loop or call each, round after round), since other processes on the machine make
single runs noisy and their load drifts. Budgets of issue 4 are checked at the end.

    python bench/tracing.py            # full size
    python bench/tracing.py --quick    # smoke run
    python bench/tracing.py --json     # also print the figures as JSON (or --json FILE)
    python bench/tracing.py --check    # exit 1 when a budget is missed
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib.metadata
import importlib.util
import json
import logging
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

SPANS_PER_TRACE = 3
PAYLOAD_SIZES = {"10 KB": 10_000, "1 MB": 1_000_000, "10 MB": 10_000_000}
PER_SPAN_VS_MLFLOW = 10.0  # tracemark per span at most 1/10 of MLflow's
PER_SPAN_VS_OTEL = 3.0  # ... and at most 1/3 of the raw OpenTelemetry SDK's
PAYLOAD_BUDGET_MS = {"1 MB": 2.0, "10 MB": 20.0}
SUSTAINED_SPANS_PER_S = 20_000.0
LIBRARIES = ("untraced", "tracemark", "OpenTelemetry", "MLflow")
BACKLOG_LIMIT = 1_000  # traces; two export batches of the default size


@dataclass(frozen=True)
class Sizes:
    """How much work each measurement does."""

    per_span_traces: int  # traces per timed loop (tracemark, OpenTelemetry, untraced)
    mlflow_per_span_traces: int  # MLflow is two orders of magnitude slower
    repeats: int  # timed loops per library, the median is reported
    payload_calls: dict[str, int]  # timed single calls per payload size
    sustained_traces: int  # tracemark's sustained run
    sustained_repeats: int
    mlflow_sustained_traces: int


FULL = Sizes(
    per_span_traces=2_000,
    mlflow_per_span_traces=100,
    repeats=7,
    payload_calls={"10 KB": 50, "1 MB": 20, "10 MB": 7},
    sustained_traces=20_000,
    sustained_repeats=3,
    mlflow_sustained_traces=200,
)
QUICK = Sizes(
    per_span_traces=500,
    mlflow_per_span_traces=30,
    repeats=3,
    payload_calls={"10 KB": 10, "1 MB": 5, "10 MB": 3},
    sustained_traces=3_000,
    sustained_repeats=1,
    mlflow_sustained_traces=30,
)


# -- the workload ----------------------------------------------------------------------------


def tool(order_id: str) -> dict[str, str]:
    return {"order_id": order_id, "status": "shipped", "eta": "tomorrow"}


def llm(prompt: str) -> dict[str, str]:
    return {"role": "assistant", "content": "Your order ships tomorrow."}


def make_agent(
    trace: Callable[[Callable[..., Any], str, str], Callable[..., Any]],
) -> Callable[[str], str]:
    """The 3-span workload, each function wrapped by a library's decorator (or not at all)."""
    traced_tool = trace(tool, "lookup_order", "TOOL")
    traced_llm = trace(llm, "chat", "LLM")

    def agent(question: str) -> str:
        traced_tool("o-1")
        return traced_llm(question)["content"]

    return trace(agent, "agent", "AGENT")


def make_documents(size: int) -> list[dict[str, Any]]:
    """Retrieved documents whose JSON form is about `size` bytes (~1 KB each)."""
    text = "Orders ship within two business days; refunds take up to 30 days. " * 13
    docs: list[dict[str, Any]] = []
    total = 2
    while total < size:
        doc = {
            "id": f"doc-{len(docs)}",
            "page_content": text,
            "metadata": {"source": "kb/shipping.md", "chunk": len(docs), "score": 0.83},
        }
        docs.append(doc)
        total += len(json.dumps(doc)) + 1
    return docs


# -- the libraries behind one small interface ------------------------------------------------


class Library:
    """One tracing library: its decorator, how to flush it and how to count what it stored."""

    name = ""
    persists = True  # False: spans go nowhere (raw OpenTelemetry with a no-op exporter)

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.db_path = os.path.join(folder, f"{self.name.lower()}.db")

    def trace(self, fn: Callable[..., Any], name: str, span_type: str) -> Callable[..., Any]:
        raise NotImplementedError

    def backlog(self) -> int:
        """Finished traces waiting for export (0 when the library does not say)."""
        return 0

    def flush(self) -> None:
        """Wait until every finished trace is stored (or handed to the exporter)."""

    def stored_spans(self) -> int:
        with contextlib.closing(sqlite3.connect(self.db_path)) as conn:
            return conn.execute("SELECT count(*) FROM spans").fetchone()[0]

    def close(self) -> None:
        """Stop background threads."""


class Tracemark(Library):
    name = "tracemark"

    def __init__(self, folder: str) -> None:
        super().__init__(folder)
        import tracemark as tm

        self.tm = tm
        tm.set_tracking_uri(f"sqlite:///{self.db_path}")
        tm.set_experiment("bench")
        tm.tracing.configure(
            enabled=True, sampling_ratio=1.0, async_export=True, mask=None, exporters=None
        )

    def trace(self, fn: Callable[..., Any], name: str, span_type: str) -> Callable[..., Any]:
        return self.tm.trace(name=name, span_type=span_type)(fn)

    def backlog(self) -> int:
        return self.tm.tracing.stats().queued

    def flush(self) -> None:
        if not self.tm.flush(timeout=600):
            raise SystemExit("tracemark: flush timed out")
        stats = self.tm.tracing.stats()
        if stats.dropped or stats.errors:
            raise SystemExit(f"tracemark: traces were lost: {stats}")

    def close(self) -> None:
        self.tm.tracing.DEFAULT_TRACER.shutdown(timeout=600)
        from tracemark.store import registry

        registry.reset()


class Mlflow(Library):
    name = "MLflow"

    def __init__(self, folder: str) -> None:
        super().__init__(folder)
        import mlflow

        _silence_mlflow_logs()
        self.mlflow = mlflow
        mlflow.set_tracking_uri(f"sqlite:///{self.db_path}")
        experiment_id = mlflow.create_experiment(
            "bench", artifact_location=os.path.join(folder, "mlflow-artifacts")
        )
        mlflow.set_experiment(experiment_id=experiment_id)

    def trace(self, fn: Callable[..., Any], name: str, span_type: str) -> Callable[..., Any]:
        return self.mlflow.trace(name=name, span_type=span_type)(fn)

    def flush(self) -> None:
        self.mlflow.flush_trace_async_logging()


class OpenTelemetry(Library):
    name = "OpenTelemetry"
    persists = False

    def __init__(self, folder: str) -> None:
        super().__init__(folder)
        import orjson
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            SpanExporter,
            SpanExportResult,
        )

        class NoOpExporter(SpanExporter):
            def __init__(self) -> None:
                self.spans = 0

            def export(self, spans: Any) -> SpanExportResult:
                self.spans += len(spans)
                return SpanExportResult.SUCCESS

        self.exporter = NoOpExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(BatchSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer("bench")
        self.dumps = orjson.dumps

    def trace(self, fn: Callable[..., Any], name: str, span_type: str) -> Callable[..., Any]:
        # What an instrumentation does by hand: a span per call with its type, its inputs and
        # outputs as JSON attributes (orjson, as tracemark uses, so only the spans differ).
        start_span, dumps = self.tracer.start_as_current_span, self.dumps
        attributes = {"span.type": span_type}

        def wrapper(*args: Any) -> Any:
            with start_span(name, attributes=attributes) as span:
                span.set_attribute("input.value", dumps(args).decode())
                result = fn(*args)
                span.set_attribute("output.value", dumps(result).decode())
                return result

        return wrapper

    def flush(self) -> None:
        self.provider.force_flush()

    def stored_spans(self) -> int:
        return self.exporter.spans

    def close(self) -> None:
        self.provider.shutdown()


class Untraced(Library):
    name = "untraced"
    persists = False

    def trace(self, fn: Callable[..., Any], name: str, span_type: str) -> Callable[..., Any]:
        return fn


def quiet_mlflow() -> bool:
    """Configure MLflow for the benchmark (it is imported later); False when not installed."""
    # Async trace logging is MLflow's default outside Databricks notebooks; set it anyway, and
    # let its queue hold every trace so nothing is dropped that the count would then miss.
    os.environ["MLFLOW_ENABLE_ASYNC_TRACE_LOGGING"] = "true"
    os.environ.setdefault("MLFLOW_ASYNC_TRACE_LOGGING_MAX_QUEUE_SIZE", "1000000")
    # Telemetry would add network calls and a background thread to the timed sections.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    warnings.filterwarnings("ignore", module="mlflow")
    return importlib.util.find_spec("mlflow") is not None


def _silence_mlflow_logs() -> None:
    # After the import: MLflow configures its own loggers when imported.
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.ERROR)


# -- measurements ----------------------------------------------------------------------------


def _check_stored(library: Library, expected: int) -> None:
    stored = library.stored_spans()
    if stored != expected:
        raise SystemExit(f"{library.name}: {stored} spans stored, expected {expected}: data lost")


class Timer:
    """Times one library's workloads; `run` calls them in rounds, one library after another."""

    def __init__(self, library: Library, docs: dict[str, list[dict[str, Any]]]) -> None:
        self.library = library
        self.agent = make_agent(library.trace)
        self.docs = docs

        def retrieve(query: str) -> list[dict[str, Any]]:
            return self.current_docs

        self.current_docs: list[dict[str, Any]] = []
        self.retrieve = library.trace(retrieve, "retrieve", "RETRIEVER")
        self.expected_spans = 0
        self.agent("warm-up")
        self.retrieve("warm-up")
        library.flush()
        if library.persists:
            self.expected_spans = library.stored_spans()

    def loop_us(self, traces: int) -> tuple[float, float]:
        """µs per trace of the 3-span agent over one loop: elapsed, and the caller's CPU time."""
        agent = self.agent
        start, start_cpu = time.perf_counter(), time.thread_time()
        for _ in range(traces):
            agent("Where is my order?")
        elapsed, cpu = time.perf_counter() - start, time.thread_time() - start_cpu
        self.library.flush()  # untimed: each loop starts with an idle exporter
        self.expected_spans += traces * SPANS_PER_TRACE
        return elapsed / traces * 1e6, cpu / traces * 1e6

    def payload_ms(self, label: str) -> float:
        """Caller-visible ms of one call of a span returning the documents of `label`."""
        self.current_docs = self.docs[label]
        gc.collect()  # a collection started by earlier garbage is not this call's cost
        start = time.perf_counter()
        self.retrieve("shipping policy")
        elapsed = time.perf_counter() - start
        self.library.flush()
        self.expected_spans += 1
        return elapsed * 1000

    def check_stored(self) -> None:
        """Stop the script unless every span timed so far was stored."""
        if self.library.persists:
            _check_stored(self.library, self.expected_spans)


def sustained(library: Library, traces: int) -> tuple[float, float]:
    """Spans per second from the first call until all `traces` traces are stored.

    Also returns spans per second of the process's CPU time (all its threads), which other
    processes on the machine disturb far less than the elapsed time.

    The application keeps up a steady state rather than a burst: every 100 traces it checks
    the export backlog and, while more than `BACKLOG_LIMIT` traces wait, sleeps a
    millisecond. The sleeps count in the elapsed time, so the figure is the rate the store
    takes spans at, with nothing dropped and the queue far from full.
    """
    agent = make_agent(library.trace)
    agent("warm-up")
    library.flush()
    before = library.stored_spans()
    backlog = library.backlog
    start, start_cpu = time.perf_counter(), time.process_time()
    for i in range(traces):
        agent("Where is my order?")
        if i % 100 == 0:
            while backlog() > BACKLOG_LIMIT:
                time.sleep(0.001)
    library.flush()
    elapsed, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    _check_stored(library, before + traces * SPANS_PER_TRACE)
    spans = traces * SPANS_PER_TRACE
    return spans / elapsed, spans / cpu


@contextlib.contextmanager
def _scratch() -> Iterator[str]:
    """A temporary folder that is also the working directory, removed afterwards."""
    folder = tempfile.mkdtemp(prefix="bench-tracing-")
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        yield folder
    finally:
        os.chdir(cwd)
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Results:
    """Everything measured, as printed and dumped to JSON."""

    per_trace_cpu_us: dict[str, float] = field(default_factory=dict)  # median per library
    per_trace_cpu_runs_us: dict[str, list[float]] = field(default_factory=dict)
    per_trace_us: dict[str, float] = field(default_factory=dict)  # elapsed, median
    per_trace_runs_us: dict[str, list[float]] = field(default_factory=dict)
    payload_ms: dict[str, dict[str, float]] = field(default_factory=dict)  # size -> lib -> ms
    payload_runs_ms: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    sustained_spans_per_s: dict[str, float] = field(default_factory=dict)
    sustained_runs: dict[str, list[float]] = field(default_factory=dict)
    sustained_spans: dict[str, int] = field(default_factory=dict)
    sustained_per_cpu_s: dict[str, float] = field(default_factory=dict)
    load_average: list[float] = field(default_factory=list)  # 1-minute, before and after

    def per_span_us(self, library: str, *, elapsed: bool = False) -> float | None:
        """Median extra µs per span over the untraced loop: caller CPU time, or elapsed."""
        per_trace = self.per_trace_us if elapsed else self.per_trace_cpu_us
        if library not in per_trace:
            return None
        return (per_trace[library] - per_trace["untraced"]) / SPANS_PER_TRACE


def _measure_sustained(library: Library, sizes: Sizes, results: Results) -> None:
    mlflow = isinstance(library, Mlflow)
    n = sizes.mlflow_sustained_traces if mlflow else sizes.sustained_traces
    repeats = 1 if mlflow else sizes.sustained_repeats
    figures = [sustained(library, n) for _ in range(repeats)]
    rates = [wall for wall, _ in figures]
    results.sustained_spans_per_s[library.name] = statistics.median(rates)
    results.sustained_runs[library.name] = rates
    results.sustained_per_cpu_s[library.name] = statistics.median(per_cpu for _, per_cpu in figures)
    results.sustained_spans[library.name] = n * SPANS_PER_TRACE
    print(f"  {library.name} sustained: done", file=sys.stderr)


def run(sizes: Sizes, with_mlflow: bool) -> Results:
    """Measure every library; the timed loops run in rounds so load changes hit all alike.

    tracemark's sustained run comes first, before MLflow is imported: MLflow's ~130,000
    objects would make every full garbage collection in the process, ours included, about
    three times slower, which a tracemark application does not pay.
    """
    classes: list[type[Library]] = [Untraced, Tracemark, OpenTelemetry]
    docs = {label: make_documents(size) for label, size in PAYLOAD_SIZES.items()}
    results = Results()
    with _scratch() as root, contextlib.ExitStack() as stack:
        timers = []

        def add(cls: type[Library]) -> Library:
            folder = os.path.join(root, cls.name.lower())
            os.mkdir(folder)
            library = cls(folder)
            stack.callback(library.close)
            if isinstance(library, Tracemark):
                _measure_sustained(library, sizes, results)
            timers.append(Timer(library, docs))
            return library

        for cls in classes:
            add(cls)
        mlflow_library = add(Mlflow) if with_mlflow else None

        loops: dict[str, list[tuple[float, float]]] = {t.library.name: [] for t in timers}
        for _ in range(sizes.repeats):
            for timer in timers:
                mlflow = isinstance(timer.library, Mlflow)
                traces = sizes.mlflow_per_span_traces if mlflow else sizes.per_span_traces
                loops[timer.library.name].append(timer.loop_us(traces))
        for name, runs in loops.items():
            results.per_trace_us[name] = statistics.median(wall for wall, _ in runs)
            results.per_trace_runs_us[name] = [wall for wall, _ in runs]
            results.per_trace_cpu_us[name] = statistics.median(cpu for _, cpu in runs)
            results.per_trace_cpu_runs_us[name] = [cpu for _, cpu in runs]
        print("  per span: done", file=sys.stderr)

        for label in PAYLOAD_SIZES:
            calls: dict[str, list[float]] = {t.library.name: [] for t in timers}
            for _ in range(sizes.payload_calls[label]):
                for timer in timers:
                    calls[timer.library.name].append(timer.payload_ms(label))
            results.payload_ms[label] = {n: statistics.median(c) for n, c in calls.items()}
            results.payload_runs_ms[label] = calls
            print(f"  {label} payload: done", file=sys.stderr)
        for timer in timers:
            timer.check_stored()
        if mlflow_library is not None:
            _measure_sustained(mlflow_library, sizes, results)
    return results


def budgets(results: Results) -> list[tuple[str, bool | None, str]]:
    """Return (budget, passed or None when not measurable, detail)."""
    out: list[tuple[str, bool | None, str]] = []
    ours = results.per_span_us("tracemark")
    assert ours is not None
    for peer, factor in (("MLflow", PER_SPAN_VS_MLFLOW), ("OpenTelemetry", PER_SPAN_VS_OTEL)):
        name = f"per span <= 1/{factor:g} of {peer}'s"
        theirs = results.per_span_us(peer)
        if theirs is None:
            out.append((name, None, f"{peer} not measured"))
            continue
        detail = f"{ours:.1f} µs vs {theirs:.1f} µs of caller CPU: 1/{theirs / ours:.1f}"
        out.append((name, ours * factor <= theirs, detail))
    for label, budget in PAYLOAD_BUDGET_MS.items():
        ms = results.payload_ms[label]["tracemark"]
        out.append((f"{label} span <= {budget:g} ms", ms <= budget, f"{ms:.2f} ms"))
    rate = results.sustained_spans_per_s["tracemark"]
    out.append(
        (
            f"sustained >= {SUSTAINED_SPANS_PER_S:,.0f} spans/s into SQLite",
            rate >= SUSTAINED_SPANS_PER_S,
            f"{rate:,.0f} spans/s",
        )
    )
    return out


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def render(cells: tuple[str, ...]) -> str:
        rest = (c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([cells[0].ljust(widths[0]), *rest])

    print(render(header))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(render(row))


def print_tables(results: Results, sizes: Sizes) -> None:
    ours = results.per_span_us("tracemark")
    ours_elapsed = results.per_span_us("tracemark", elapsed=True)
    assert ours is not None and ours_elapsed is not None
    rows = []
    for name in LIBRARIES:
        if name not in results.per_trace_us:
            continue
        cpu = results.per_span_us(name)
        elapsed = results.per_span_us(name, elapsed=True)
        assert cpu is not None and elapsed is not None
        traces = sizes.mlflow_per_span_traces if name == "MLflow" else sizes.per_span_traces
        peer = name not in ("untraced", "tracemark")
        rows.append(
            (
                name,
                f"{traces:,} x {sizes.repeats}",
                "-" if name == "untraced" else f"{cpu:,.1f} µs",
                f"{cpu / ours:,.1f}x" if peer else "-",
                "-" if name == "untraced" else f"{elapsed:,.1f} µs",
                f"{elapsed / ours_elapsed:,.1f}x" if peer else "-",
            )
        )
    print("Per span: 3-span trace, small payloads (median of loops, untraced loop subtracted)")
    _table(
        (
            "library",
            "traces",
            "caller CPU/span",
            "vs tracemark",
            "elapsed/span",
            "vs tracemark",
        ),
        rows,
    )

    print()
    print("One span carrying a payload: caller-visible latency (median of calls)")
    names = [n for n in LIBRARIES if n in results.payload_ms["10 KB"]]
    rows = []
    for label in PAYLOAD_SIZES:
        figures = results.payload_ms[label]
        ours_ms = figures["tracemark"]
        cells = [label, f"{sizes.payload_calls[label]}"]
        for name in names:
            ms = figures[name]
            ratio = "" if name in ("untraced", "tracemark") else f" ({ms / ours_ms:.1f}x)"
            cells.append(f"{ms:,.2f} ms{ratio}")
        rows.append(tuple(cells))
    _table(("payload", "calls", *names), rows)

    print()
    print("Sustained: 3-span traces persisted to SQLite, all spans counted in the database")
    rows = []
    for name, rate in results.sustained_spans_per_s.items():
        runs = ", ".join(f"{r:,.0f}" for r in results.sustained_runs[name])
        per_cpu = f"{results.sustained_per_cpu_s[name]:,.0f}"
        rows.append((name, f"{results.sustained_spans[name]:,}", f"{rate:,.0f}", runs, per_cpu))
    _table(("library", "spans per run", "spans/s (median)", "runs", "spans per CPU-s"), rows)
    before, after = results.load_average
    print(f"Load average (1 min) of the machine: {before:.1f} before, {after:.1f} after.")


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
    parser.add_argument("--no-mlflow", action="store_true", help="leave MLflow out")
    args = parser.parse_args(argv)

    sizes = QUICK if args.quick else FULL
    with_mlflow = not args.no_mlflow and quiet_mlflow()
    if not args.no_mlflow and not with_mlflow:
        print("MLflow is not installed (pip install 'tracemark[bench]'): it is left out.")
    # OpenTelemetry is imported before anything is timed, so tracemark runs as it does in
    # an application that has it (then every new trace checks for an active OTel span).
    import opentelemetry.sdk.trace  # noqa: F401

    import tracemark

    versions = {"tracemark": tracemark.__version__, "python": platform.python_version()}
    if with_mlflow:
        versions["mlflow"] = importlib.metadata.version("mlflow")
    versions["opentelemetry-sdk"] = importlib.metadata.version("opentelemetry-sdk")
    print(
        "tracing benchmark: " + ", ".join(f"{k} {v}" for k, v in versions.items()),
        f"SQLite files in {tempfile.gettempdir()}",
        sep=", ",
    )
    load_before = os.getloadavg()[0]
    results = run(sizes, with_mlflow)
    results.load_average = [load_before, os.getloadavg()[0]]
    print()
    print_tables(results, sizes)
    print()
    checked = budgets(results)
    for name, passed, detail in checked:
        verdict = {True: "PASS", False: "FAIL", None: "SKIP"}[passed]
        print(f"{verdict}  {name}: {detail}")

    if args.json:
        payload = {
            "versions": versions,
            "sizes": asdict(sizes),
            "per_span_cpu_us": {name: results.per_span_us(name) for name in results.per_trace_us},
            "per_span_elapsed_us": {
                name: results.per_span_us(name, elapsed=True) for name in results.per_trace_us
            },
            **asdict(results),
            "budgets": [{"budget": b, "passed": p, "detail": d} for b, p, d in checked],
        }
        text = json.dumps(payload, indent=2)
        if args.json == "-":
            print(text)
        else:
            with open(args.json, "w", encoding="utf-8") as fh:
                fh.write(text + "\n")
    missed = any(passed is False for _, passed, _ in checked)
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
