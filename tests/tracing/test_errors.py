from __future__ import annotations

import logging

import pytest

from tracemark.testing import InMemoryExporter
from tracemark.tracing import Tracer


class BrokenIds:
    def trace_id(self) -> str:
        raise RuntimeError("id generator bug")

    def span_id(self) -> str:
        raise RuntimeError("id generator bug")


def test_internal_errors_are_logged_and_the_program_carries_on(
    tracer: Tracer,
    exporter: InMemoryExporter,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.delenv("TRACEMARK_TESTING")
    tracer.configure(id_generator=BrokenIds())

    @tracer.trace
    def f(x: int) -> int:
        return x + 1

    with caplog.at_level(logging.WARNING, "tracemark"):
        assert f(1) == 2
        with tracer.start_span("manual") as span:
            span.set_outputs("ignored")
    assert exporter.traces == []
    assert "internal tracing error" in caplog.text


def test_internal_errors_are_raised_under_tests(tracer: Tracer) -> None:
    tracer.configure(id_generator=BrokenIds())

    @tracer.trace
    def f() -> None:
        pass

    with pytest.raises(RuntimeError, match="id generator bug"):
        f()


def test_user_exceptions_are_never_swallowed(
    tracer: Tracer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRACEMARK_TESTING")

    @tracer.trace
    def f() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        f()
