"""Test helpers for code that uses tracemark: capture traces in memory, deterministically.

Example:
    >>> import tracemark as tm
    >>> from tracemark.testing import capture_traces
    >>> with capture_traces() as exporter:
    ...     @tm.trace
    ...     def add(a, b):
    ...         return a + b
    ...     _ = add(1, 2)
    >>> exporter.traces[0].root.outputs
    3

With `capture_traces` the ids count up (`00..01`, `00..02`, ...) and the clock advances one
second per reading, so a whole span tree can be compared in one assertion.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from tracemark.entities.trace import Trace
from tracemark.tracing._tracer import DEFAULT_TRACER, Tracer

__all__ = [
    "InMemoryExporter",
    "IncrementalIdGenerator",
    "TimeGenerator",
    "capture_traces",
    "span_tree",
]


class InMemoryExporter:
    """An exporter that keeps every exported trace in `traces`, in export order."""

    def __init__(self) -> None:
        self.traces: list[Trace] = []
        self._lock = threading.Lock()

    def export(self, traces: Sequence[Trace]) -> None:
        """Keep a batch of traces."""
        with self._lock:
            self.traces.extend(traces)

    def clear(self) -> None:
        """Forget the traces kept so far."""
        with self._lock:
            self.traces.clear()

    def get_trace(self, trace_id: str) -> Trace:
        """Return the exported trace with this id; raise KeyError when there is none."""
        for trace in self.traces:
            if trace.trace_id == trace_id:
                return trace
        raise KeyError(trace_id)

    def traces_as_dicts(self) -> list[dict[str, Any]]:
        """Return every trace as `Trace.to_dict()`: info and spans, payloads decoded."""
        return [trace.to_dict() for trace in self.traces]


class IncrementalIdGenerator:
    """Ids that count up from 1: trace `000...001`, span `0000000000000001`, and so on."""

    def __init__(self) -> None:
        self._trace = 0
        self._span = 0
        self._lock = threading.Lock()

    def trace_id(self) -> str:
        """Return the next trace id."""
        with self._lock:
            self._trace += 1
            return f"{self._trace:032x}"

    def span_id(self) -> str:
        """Return the next span id."""
        with self._lock:
            self._span += 1
            return f"{self._span:016x}"


class TimeGenerator:
    """A clock in nanoseconds that advances by `step_ns` (one second) per reading.

    Args:
        start_ns: The first reading.
        step_ns: How far each reading advances.
    """

    def __init__(self, start_ns: int = 1_000_000_000, step_ns: int = 1_000_000_000) -> None:
        self._next = start_ns
        self._step = step_ns
        self._lock = threading.Lock()

    def __call__(self) -> int:
        """Return the current reading and advance."""
        with self._lock:
            now = self._next
            self._next += self._step
            return now


def span_tree(trace: Trace) -> dict[str, Any]:
    """Return the trace's spans as one nested dict (name, type, status, io, children).

    Args:
        trace: A finished trace.
    """

    def node(span: Any) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": span.name,
            "span_type": span.span_type,
            "status": span.status_code,
            "inputs": span.inputs,
            "outputs": span.outputs,
        }
        if span.children:
            out["children"] = [node(child) for child in span.children]
        return out

    root = trace.root
    return {} if root is None else node(root)


@contextmanager
def capture_traces(
    tracer: Tracer | None = None,
    *,
    deterministic: bool = True,
    experiment_id: str = "0",
) -> Iterator[InMemoryExporter]:
    """Send the traces made inside the block to an in-memory exporter, synchronously.

    The tracer's settings are restored when the block exits.

    Args:
        tracer: The tracer to capture; the default (behind `tm.trace`) when omitted.
        deterministic: Use `IncrementalIdGenerator` and `TimeGenerator`.
        experiment_id: The experiment traces are attributed to.
    """
    tracer = tracer or DEFAULT_TRACER
    tracer.flush()
    saved = tracer._config_snapshot()
    exporter = InMemoryExporter()
    tracer.configure(
        enabled=True,
        sampling_ratio=1.0,
        async_export=False,
        exporters=[exporter],
        experiment_resolver=lambda: (experiment_id, None),
    )
    if deterministic:
        tracer.configure(id_generator=IncrementalIdGenerator(), clock=TimeGenerator())
    try:
        yield exporter
    finally:
        tracer.configure(**saved)
