from __future__ import annotations

from collections.abc import Iterator

import pytest

from tracemark.testing import IncrementalIdGenerator, InMemoryExporter, TimeGenerator
from tracemark.tracing import Tracer


@pytest.fixture(autouse=True)
def _raise_internal_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    # Internal tracing errors are logged in production; in our tests they must surface.
    monkeypatch.setenv("TRACEMARK_TESTING", "1")


@pytest.fixture
def exporter() -> InMemoryExporter:
    return InMemoryExporter()


@pytest.fixture
def tracer(exporter: InMemoryExporter) -> Iterator[Tracer]:
    """A synchronous, deterministic tracer exporting into `exporter`."""
    t = Tracer(
        enabled=True,
        sampling_ratio=1.0,
        async_export=False,
        exporters=[exporter],
        id_generator=IncrementalIdGenerator(),
        clock=TimeGenerator(),
        experiment_resolver=lambda: ("0", None),
    )
    yield t
    t.shutdown(timeout=10)
