"""The SDK end to end through the real SQLite store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tracemark.testing import IncrementalIdGenerator
from tracemark.tracing import StoreExporter, Tracer
from tracemark.tracing.client import TracingClient

sql_store = pytest.importorskip("tracemark.store.sql.store")


@pytest.fixture
def store(tmp_path: Path) -> Any:
    return sql_store.SqlStore(f"sqlite:///{tmp_path / 'tracemark.db'}")


@pytest.fixture
def sql_tracer(store: Any) -> Iterator[Tracer]:
    t = Tracer(
        enabled=True,
        sampling_ratio=1.0,
        async_export=True,
        exporters=[StoreExporter(store)],
        id_generator=IncrementalIdGenerator(),
        experiment_resolver=lambda: ("0", None),
    )
    yield t
    t.shutdown(timeout=30)


class Client(TracingClient):
    def __init__(self, store: Any) -> None:
        self.store = store


def test_traces_are_stored_read_back_and_searchable(sql_tracer: Tracer, store: Any) -> None:
    @sql_tracer.trace(span_type="TOOL")
    def lookup(order_id: str) -> dict[str, str]:
        return {"status": "shipped"}

    @sql_tracer.trace(span_type="AGENT")
    def agent(question: str, session: str) -> str:
        sql_tracer.update_current_trace(tags={"env": "prod"}, session_id=session, user_id="u-7")
        with sql_tracer.start_span("llm", span_type="LLM") as span:
            span.set_attributes({"gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 4})
        return lookup("o-1")["status"]

    for i in range(30):
        agent(f"q{i}", session="s-1" if i % 2 else "s-2")
    assert sql_tracer.flush(timeout=30)
    assert sql_tracer.stats().exported == 30

    trace_id = sql_tracer.get_last_active_trace_id()
    trace = store.get_trace(trace_id)
    assert trace.root.name == "agent"
    assert [c.name for c in trace.root.children] == ["llm", "lookup"]
    assert trace.info.total_tokens == 14
    assert trace.info.metadata["session_id"] == "s-1"

    infos, _ = store.search_traces(["0"], filter_string="metadata.session_id = 's-1'")
    assert len(infos) == 15
    infos, _ = store.search_traces(["0"], filter_string="span.type = 'TOOL' AND tags.env = 'prod'")
    assert len(infos) == 30


def test_feedback_and_override_through_the_store(sql_tracer: Tracer, store: Any) -> None:
    with sql_tracer.start_span("answer") as root:
        root.set_outputs("30 days")
    assert sql_tracer.flush(timeout=30)
    client = Client(store)
    fb = client.log_feedback(trace_id=root.trace_id, name="helpful", value=True)
    fixed = client.override_feedback(
        trace_id=root.trace_id, assessment_id=fb.assessment_id, value=False
    )
    assert client.get_assessment(root.trace_id, fb.assessment_id).valid is False
    assert client.get_assessment(root.trace_id, fixed.assessment_id).value is False
    client.set_trace_tag(root.trace_id, "reviewed", "yes")
    assert store.get_trace(root.trace_id).info.tags == {"reviewed": "yes"}
