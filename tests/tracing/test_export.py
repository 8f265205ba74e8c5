from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from tracemark.entities.trace import Trace
from tracemark.exceptions import StoreUnavailableError
from tracemark.testing import InMemoryExporter
from tracemark.tracing import ExportStats, Tracer

WAIT_S = 10


class BlockingExporter:
    """Blocks in its first export until released, recording every batch it receives."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.batches: list[list[str]] = []

    def export(self, traces: Sequence[Trace]) -> None:
        self.entered.set()
        assert self.release.wait(WAIT_S)
        self.batches.append([t.root.name for t in traces])


class FailingExporter:
    def __init__(self) -> None:
        self.calls = 0

    def export(self, traces: Sequence[Trace]) -> None:
        self.calls += 1
        raise ConnectionError("store is down")


class UnavailableExporter:
    """Raises StoreUnavailableError (server down, 429, 5xx) `failures` times, then exports."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0
        self.batches: list[list[str]] = []

    def export(self, traces: Sequence[Trace]) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise StoreUnavailableError("cannot reach the tracemark server")
        self.batches.append([t.root.name for t in traces])


def make_traces(tracer: Tracer, names: Sequence[str]) -> None:
    for name in names:
        with tracer.start_span(name):
            pass


def test_async_export_delivers_after_flush(tracer: Tracer, exporter: InMemoryExporter) -> None:
    tracer.configure(async_export=True)
    make_traces(tracer, [f"t{i}" for i in range(50)])
    assert tracer.flush(timeout=WAIT_S)
    assert sorted(t.root.name for t in exporter.traces) == sorted(f"t{i}" for i in range(50))
    assert tracer.stats() == ExportStats(exported=50, dropped=0, queued=0, errors=0)


def test_batches_hold_at_most_batch_size_traces(tracer: Tracer) -> None:
    blocking = BlockingExporter()
    tracer.configure(async_export=True, batch_size=3, exporters=[blocking])
    make_traces(tracer, ["first"])
    assert blocking.entered.wait(WAIT_S)
    make_traces(tracer, [f"t{i}" for i in range(7)])
    blocking.release.set()
    assert tracer.flush(timeout=WAIT_S)
    assert blocking.batches == [["first"], ["t0", "t1", "t2"], ["t3", "t4", "t5"], ["t6"]]


def test_full_queue_drops_whole_traces_counts_them_and_warns_once_per_burst(
    tracer: Tracer, caplog: pytest.LogCaptureFixture
) -> None:
    blocking = BlockingExporter()
    tracer.configure(async_export=True, queue_size=5, exporters=[blocking])
    with caplog.at_level(logging.WARNING, "tracemark"):
        make_traces(tracer, ["first"])
        assert blocking.entered.wait(WAIT_S)  # the worker holds "first"; the queue is empty
        make_traces(tracer, [f"t{i}" for i in range(20)])  # never blocks the caller
        stats = tracer.stats()
        assert (stats.queued, stats.dropped) == (1 + 5, 15)  # the batch being exported too
        blocking.release.set()
        assert tracer.flush(timeout=WAIT_S)
    assert tracer.stats() == ExportStats(exported=6, dropped=15, queued=0, errors=0)
    assert [n for b in blocking.batches for n in b] == ["first", "t0", "t1", "t2", "t3", "t4"]
    full_warnings = [r for r in caplog.records if "queue is full" in r.getMessage()]
    assert len(full_warnings) == 1


def test_failing_exporter_never_raises_into_the_app(
    tracer: Tracer, exporter: InMemoryExporter, caplog: pytest.LogCaptureFixture
) -> None:
    failing = FailingExporter()
    tracer.configure(exporters=[failing, exporter])

    @tracer.trace
    def f() -> int:
        return 1

    with caplog.at_level(logging.DEBUG, "tracemark"):
        assert [f(), f(), f()] == [1, 1, 1]
    assert failing.calls == 3
    assert len(exporter.traces) == 3  # the other exporter still gets every trace
    assert tracer.stats().errors == 3
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "FailingExporter failed to export" in errors[0].getMessage()


def test_failing_exporter_in_async_mode_is_counted(tracer: Tracer) -> None:
    tracer.configure(async_export=True, exporters=[FailingExporter()])
    make_traces(tracer, ["a", "b"])
    assert tracer.flush(timeout=WAIT_S)
    assert tracer.stats() == ExportStats(exported=0, dropped=0, queued=0, errors=2)


def test_sync_mode_exports_before_the_root_returns(
    tracer: Tracer, exporter: InMemoryExporter
) -> None:
    seen: list[int] = []

    @tracer.trace
    def f() -> None:
        pass

    f()
    seen.append(len(exporter.traces))
    assert seen == [1]


def test_flush_without_traces_returns_at_once(tracer: Tracer) -> None:
    tracer.configure(async_export=True)
    assert tracer.flush(timeout=WAIT_S)


def test_shutdown_ends_unfinished_spans_of_a_finished_root(
    tracer: Tracer, exporter: InMemoryExporter
) -> None:
    @tracer.trace
    def stream():
        yield 1
        yield 2

    @tracer.trace
    def handler():
        gen = stream()
        next(gen)
        return gen

    gen = handler()
    assert exporter.traces == []  # the generator span keeps the trace open
    tracer.shutdown(timeout=WAIT_S)
    [trace] = exporter.traces
    child = trace.root.children[0]
    assert child.attributes["tracemark.span.unfinished"] is True
    assert child.status_code == "UNSET"
    assert list(gen) == [2]  # the generator itself keeps working


def test_process_exit_drains_the_queue(tmp_path: Path) -> None:
    out = tmp_path / "traces.txt"
    script = textwrap.dedent(
        f"""
        import time
        from tracemark.tracing import Tracer

        class SlowFileExporter:
            def export(self, traces):
                time.sleep(0.01)
                with open({str(out)!r}, "a") as f:
                    for t in traces:
                        f.write(t.root.name + "\\n")

        tracer = Tracer(async_export=True, batch_size=7, exporters=[SlowFileExporter()],
                        experiment_resolver=lambda: ("0", None))

        @tracer.trace
        def work(i):
            return i

        for i in range(300):
            work(i)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert len(out.read_text().splitlines()) == 300


@pytest.fixture
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    from tracemark.tracing import _export

    monkeypatch.setattr(_export, "RETRY_FIRST_S", 0.01)
    monkeypatch.setattr(_export, "RETRY_MAX_S", 0.05)


def test_a_batch_is_held_while_the_store_is_unavailable_and_sent_when_it_is_back(
    tracer: Tracer, quick_retries: None, caplog: pytest.LogCaptureFixture
) -> None:
    unavailable = UnavailableExporter(failures=4)
    tracer.configure(async_export=True, exporters=[unavailable])
    with caplog.at_level(logging.WARNING, "tracemark"):
        make_traces(tracer, ["a", "b"])
        assert tracer.flush(timeout=WAIT_S)
    assert unavailable.calls == 5 and unavailable.batches == [["a", "b"]]
    assert tracer.stats() == ExportStats(exported=2, dropped=0, queued=0, errors=0)
    messages = [r.getMessage() for r in caplog.records]
    assert sum("store is unavailable; holding 2 traces" in m for m in messages) == 1
    assert sum("available again" in m for m in messages) == 1


def test_a_held_batch_fails_once_the_retry_timeout_runs_out(
    tracer: Tracer, quick_retries: None
) -> None:
    unavailable = UnavailableExporter(failures=10**9)
    tracer.configure(async_export=True, retry_timeout=0.3, exporters=[unavailable])
    make_traces(tracer, ["a"])
    assert tracer.flush(timeout=WAIT_S)
    held_calls = unavailable.calls
    assert held_calls > 1  # retried within the window
    # The outage is not over: the next batch is tried once and fails, not held again.
    make_traces(tracer, ["b"])
    assert tracer.flush(timeout=WAIT_S)
    assert unavailable.calls == held_calls + 1
    assert tracer.stats() == ExportStats(exported=0, dropped=0, queued=0, errors=2)


def test_sync_export_never_holds_the_callers_thread(tracer: Tracer, quick_retries: None) -> None:
    unavailable = UnavailableExporter(failures=1)
    tracer.configure(async_export=False, exporters=[unavailable])
    make_traces(tracer, ["a"])
    assert unavailable.calls == 1
    assert tracer.stats().errors == 1


def test_shutdown_ends_the_hold_and_counts_the_batch(
    tracer: Tracer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tracemark.tracing import _export

    monkeypatch.setattr(_export, "RETRY_FIRST_S", 3600.0)  # would wait an hour
    unavailable = UnavailableExporter(failures=10**9)
    tracer.configure(async_export=True, exporters=[unavailable])
    make_traces(tracer, ["a"])
    for _ in range(WAIT_S * 100):  # until the worker holds the batch
        if unavailable.calls == 1 and tracer.stats().queued == 1:
            break
        threading.Event().wait(0.01)
    assert (unavailable.calls, tracer.stats().queued) == (1, 1)
    tracer.shutdown(timeout=WAIT_S)
    assert tracer.pipeline._thread is None
    assert tracer.stats() == ExportStats(exported=0, dropped=0, queued=0, errors=1)
