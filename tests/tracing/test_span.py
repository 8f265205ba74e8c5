from __future__ import annotations

import logging

import pytest

from tracemark.entities.trace import SpanType
from tracemark.testing import InMemoryExporter, span_tree
from tracemark.tracing import Tracer


def test_start_span_yields_a_live_span_with_all_setters(
    tracer: Tracer, exporter: InMemoryExporter
) -> None:
    with tracer.start_span(
        "chat", span_type=SpanType.CHAT_MODEL, inputs={"messages": []}, attributes={"a": 1}
    ) as span:
        span.set_inputs({"messages": [{"role": "user", "content": "hi"}]})
        span.set_attribute("gen_ai.request.model", "gpt-4o-mini")
        span.set_attributes({"temperature": 0.2, "stop": ("\n",)})
        span.set_chat_tools([{"type": "function", "function": {"name": "lookup"}}])
        span.add_event("retry", {"attempt": 1})
        span.set_outputs({"role": "assistant", "content": "hello"})
        span.set_status("OK")

    [trace] = exporter.traces
    root = trace.root
    assert root.span_type == "CHAT_MODEL"
    assert root.inputs == {"messages": [{"role": "user", "content": "hi"}]}
    assert root.outputs == {"role": "assistant", "content": "hello"}
    assert root.attributes == {
        "a": 1,
        "gen_ai.request.model": "gpt-4o-mini",
        "temperature": 0.2,
        "stop": ["\n"],
        "gen_ai.tool.definitions": [{"type": "function", "function": {"name": "lookup"}}],
    }
    [event] = root.events
    assert (event.name, event.attributes) == ("retry", {"attempt": 1})
    assert root.status_code == "OK"


def test_attribute_values_are_snapshotted_when_set(
    tracer: Tracer, exporter: InMemoryExporter
) -> None:
    messages = [{"role": "user"}]
    with tracer.start_span("s") as span:
        span.set_attribute("messages", messages)
        messages.append({"role": "assistant"})
    assert exporter.traces[0].root.attributes["messages"] == [{"role": "user"}]


def test_exception_in_block_is_recorded_and_propagates(
    tracer: Tracer, exporter: InMemoryExporter
) -> None:
    with pytest.raises(KeyError), tracer.start_span("s"):
        raise KeyError("k")
    root = exporter.traces[0].root
    assert root.status_code == "ERROR"
    assert root.events[0].attributes["exception.type"] == "KeyError"


def test_record_exception_and_explicit_status(tracer: Tracer, exporter: InMemoryExporter) -> None:
    with tracer.start_span("outer"):
        with tracer.start_span("handled") as span:
            try:
                raise TimeoutError("slow")
            except TimeoutError as exc:
                span.record_exception(exc)
        with tracer.start_span("explicit") as span:
            span.set_status("error", "judged bad")
    handled, explicit = exporter.traces[0].root.children
    assert handled.status_code == "ERROR"
    assert handled.events[0].attributes["exception.message"] == "slow"
    assert (explicit.status_code, explicit.status_message) == ("ERROR", "judged bad")
    assert exporter.traces[0].info.status == "OK"


def test_unknown_status_is_a_programming_error(tracer: Tracer) -> None:
    with tracer.start_span("s") as span, pytest.raises(ValueError, match="unknown span status"):
        span.set_status("MAYBE")


def test_current_span_and_last_trace_id(tracer: Tracer, exporter: InMemoryExporter) -> None:
    assert tracer.get_current_active_span() is None
    with tracer.start_span("outer") as outer:
        assert tracer.get_current_active_span() is outer
        with tracer.start_span("inner") as inner:
            assert tracer.get_current_active_span() is inner
            assert inner.parent_id == outer.span_id
        assert tracer.get_current_active_span() is outer
    assert tracer.get_current_active_span() is None
    assert tracer.get_last_active_trace_id() == outer.trace_id == exporter.traces[0].trace_id


def test_update_current_trace_sets_tags_metadata_and_previews(
    tracer: Tracer, exporter: InMemoryExporter
) -> None:
    @tracer.trace
    def inner() -> None:
        tracer.update_current_trace(
            tags={"env": "prod"},
            metadata={"app_version": 3},
            session_id="s-1",
            user_id="u-7",
            response_preview="custom answer",
        )

    @tracer.trace
    def handle(question: str) -> str:
        inner()
        return "a" * 5000

    handle("q")
    info = exporter.traces[0].info
    assert info.tags == {"env": "prod"}
    assert info.metadata == {"app_version": "3", "session_id": "s-1", "user_id": "u-7"}
    assert info.request_preview == '{"question":"q"}'
    assert info.response_preview == "custom answer"


def test_update_current_trace_outside_a_span_warns(
    tracer: Tracer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "tracemark"):
        tracer.update_current_trace(tags={"a": "b"})
    assert "outside any span" in caplog.text


def test_ending_a_span_twice_warns_and_keeps_the_first_end(
    tracer: Tracer, exporter: InMemoryExporter, caplog: pytest.LogCaptureFixture
) -> None:
    with tracer.start_span("s") as span:
        pass
    end = span.end_time_ns
    with caplog.at_level(logging.WARNING, "tracemark"):
        span.end()
    assert "already ended" in caplog.text
    assert span.end_time_ns == end
    assert len(exporter.traces) == 1


def test_whole_tree_compares_in_one_assertion(tracer: Tracer, exporter: InMemoryExporter) -> None:
    with tracer.start_span("root", inputs={"q": 1}) as root:
        with tracer.start_span("retrieve", span_type="RETRIEVER") as r:
            r.set_outputs([{"page_content": "doc", "metadata": {"src": "kb"}, "id": "d1"}])
        root.set_outputs("done")
    assert exporter.traces_as_dicts() == [
        {
            "info": {
                "trace_id": "00000000000000000000000000000001",
                "experiment_id": "0",
                "timestamp_ms": 1000,
                "execution_time_ms": 3000,
                "status": "OK",
                "name": "root",
                "run_id": None,
                "request_preview": '{"q":1}',
                "response_preview": '"done"',
                "tags": {},
                "metadata": {},
                "input_tokens": None,
                "output_tokens": None,
                "total_tokens": None,
                "cost": None,
                "span_count": 2,
                "assessments": [],
            },
            "spans": [
                {
                    "trace_id": "00000000000000000000000000000001",
                    "span_id": "0000000000000001",
                    "parent_id": None,
                    "name": "root",
                    "span_type": "UNKNOWN",
                    "start_time_ns": 1_000_000_000,
                    "end_time_ns": 4_000_000_000,
                    "status_code": "OK",
                    "status_message": "",
                    "inputs": {"q": 1},
                    "outputs": "done",
                    "attributes": {},
                    "events": [],
                },
                {
                    "trace_id": "00000000000000000000000000000001",
                    "span_id": "0000000000000002",
                    "parent_id": "0000000000000001",
                    "name": "retrieve",
                    "span_type": "RETRIEVER",
                    "start_time_ns": 2_000_000_000,
                    "end_time_ns": 3_000_000_000,
                    "status_code": "OK",
                    "status_message": "",
                    "inputs": None,
                    "outputs": [{"page_content": "doc", "metadata": {"src": "kb"}, "id": "d1"}],
                    "attributes": {},
                    "events": [],
                },
            ],
        }
    ]
    assert span_tree(exporter.traces[0])["children"][0]["name"] == "retrieve"
