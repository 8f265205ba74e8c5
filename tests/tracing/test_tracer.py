from __future__ import annotations

import logging
import subprocess
import sys
from dataclasses import dataclass

import pytest

from tracemark.exceptions import InvalidInputError
from tracemark.testing import InMemoryExporter
from tracemark.tracing import Tracer
from tracemark.tracing._tracer import TrackerExperiment


@dataclass
class FakeRun:
    run_id: str
    experiment_id: str


class FakeTracker:
    def __init__(self) -> None:
        self.run: FakeRun | None = None
        self.experiment_id = "3"

    def active_run(self) -> FakeRun | None:
        return self.run

    def current_experiment_id(self) -> str:
        return self.experiment_id


def test_a_trace_started_in_a_run_is_linked_to_the_run_and_its_experiment(
    tracer: Tracer, exporter: InMemoryExporter
) -> None:
    tracker = FakeTracker()
    resolver = TrackerExperiment()
    resolver._tracker = tracker
    tracer.configure(experiment_resolver=resolver)

    with tracer.start_span("outside"):
        pass
    tracker.run = FakeRun("r" * 32, "9")
    with tracer.start_span("inside"):
        pass
    outside, inside = (t.info for t in exporter.traces)
    assert (outside.experiment_id, outside.run_id) == ("3", None)
    assert (inside.experiment_id, inside.run_id) == ("9", "r" * 32)


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACEMARK_TRACING_ENABLED", "false")
    monkeypatch.setenv("TRACEMARK_TRACE_SAMPLING_RATIO", "0.25")
    monkeypatch.setenv("TRACEMARK_TRACE_QUEUE_SIZE", "7")
    monkeypatch.setenv("TRACEMARK_TRACE_BATCH_SIZE", "3")
    monkeypatch.setenv("TRACEMARK_ASYNC_EXPORT", "false")
    t = Tracer()
    assert (t.enabled, t.sampling_ratio) == (False, 0.25)
    p = t.pipeline
    assert (p.queue_size, p.batch_size, p.async_export) == (7, 3, False)
    t = Tracer(enabled=True, sampling_ratio=1.0)
    assert (t.enabled, t.sampling_ratio) == (True, 1.0)


def test_a_bad_environment_value_warns_and_uses_the_default(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("TRACEMARK_TRACE_SAMPLING_RATIO", "2")
    with caplog.at_level(logging.WARNING, "tracemark"):
        t = Tracer()
    assert t.sampling_ratio == 1.0
    assert "TRACEMARK_TRACE_SAMPLING_RATIO" in caplog.text


def test_configure_rejects_out_of_range_values(tracer: Tracer) -> None:
    with pytest.raises(InvalidInputError, match="sampling_ratio"):
        tracer.configure(sampling_ratio=1.5)
    with pytest.raises(InvalidInputError, match="queue_size"):
        tracer.configure(queue_size=0)
    for bad in (0, -1.0, float("nan")):
        with pytest.raises(InvalidInputError, match="retry_timeout must be positive"):
            tracer.configure(retry_timeout=bad)


def test_sampling_ratio_keeps_about_that_fraction(
    tracer: Tracer, exporter: InMemoryExporter
) -> None:
    tracer.configure(sampling_ratio=0.5)
    for _ in range(400):
        with tracer.start_span("s"):
            pass
    assert 120 < len(exporter.traces) < 280  # binomial(400, 0.5): far outside 10 sigma


def test_importing_tracing_loads_nothing_heavy() -> None:
    code = (
        "import sys, tracemark.tracing, tracemark.tracing.otel, tracemark.tracing.client, "
        "tracemark.testing\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in "
        "('sqlalchemy', 'pandas', 'opentelemetry', 'numpy', 'pydantic')]\n"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_experiment_lookup_failure_falls_back_to_default_and_waits_before_retrying():
    from tracemark.exceptions import StoreError
    from tracemark.tracing._tracer import TrackerExperiment

    class DownTracker:
        calls = 0

        def active_run(self):
            return None

        def current_experiment_id(self):
            DownTracker.calls += 1
            raise StoreError("cannot reach the tracemark server")

    resolve = TrackerExperiment()
    resolve._tracker = DownTracker()
    assert [resolve() for _ in range(5)] == [("0", None)] * 5
    assert DownTracker.calls == 1
