from __future__ import annotations

import tracemark.tracing as tracing
from tracemark.testing import IncrementalIdGenerator, TimeGenerator, capture_traces, span_tree
from tracemark.tracing import DEFAULT_TRACER


def test_capture_traces_records_the_module_level_api_and_restores_settings() -> None:
    before = DEFAULT_TRACER._config_snapshot()

    @tracing.trace
    def add(a: int, b: int) -> int:
        with tracing.start_span("inner", inputs={"x": 1}):
            pass
        return a + b

    with capture_traces() as exporter:
        assert add(1, 2) == 3
        assert tracing.get_last_active_trace_id() == "00000000000000000000000000000001"
    assert span_tree(exporter.traces[0]) == {
        "name": "add",
        "span_type": "UNKNOWN",
        "status": "OK",
        "inputs": {"a": 1, "b": 2},
        "outputs": 3,
        "children": [
            {
                "name": "inner",
                "span_type": "UNKNOWN",
                "status": "OK",
                "inputs": {"x": 1},
                "outputs": None,
            }
        ],
    }
    assert DEFAULT_TRACER._config_snapshot() == before


def test_fluent_names_are_the_default_tracers_methods() -> None:
    assert tracing.trace == DEFAULT_TRACER.trace
    assert tracing.start_span == DEFAULT_TRACER.start_span
    assert tracing.flush == DEFAULT_TRACER.flush


def test_generators_are_deterministic() -> None:
    ids = IncrementalIdGenerator()
    assert [ids.trace_id(), ids.span_id(), ids.span_id()] == [
        "0" * 31 + "1",
        "0" * 15 + "1",
        "0" * 15 + "2",
    ]
    clock = TimeGenerator(start_ns=5, step_ns=10)
    assert [clock(), clock(), clock()] == [5, 15, 25]
