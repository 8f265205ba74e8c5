from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from tracemark.entities.trace import Assessment, AssessmentSource, Trace, TraceInfo
from tracemark.exceptions import InvalidInputError, NotFoundError
from tracemark.testing import InMemoryExporter, capture_traces, span_tree
from tracemark.tracing import Tracer
from tracemark.tracing.client import PagedList, TracingClient

_UNSET: Any = object()


class FakeStore:
    """The trace part of the Store contract, in memory."""

    def __init__(self) -> None:
        self.traces: dict[str, Trace] = {}
        self.assessments: dict[str, Assessment] = {}
        self.search_calls: list[dict[str, Any]] = []

    def log_traces(self, traces: Sequence[Trace]) -> None:
        for trace in traces:
            self.traces[trace.trace_id] = trace

    def get_trace(self, trace_id: str) -> Trace:
        if trace_id not in self.traces:
            raise NotFoundError(f"trace {trace_id!r} not found")
        return self.traces[trace_id]

    def search_traces(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 100,
        page_token: str | None = None,
        run_id: str | None = None,
    ) -> tuple[list[TraceInfo], str | None]:
        self.search_calls.append(
            {"experiment_ids": list(experiment_ids), "filter_string": filter_string}
        )
        infos = sorted(
            (t.info for t in self.traces.values() if t.info.experiment_id in experiment_ids),
            key=lambda i: i.timestamp_ms,
            reverse=True,
        )
        start = int(page_token or 0)
        page = infos[start : start + max_results]
        more = start + max_results < len(infos)
        return page, str(start + max_results) if more else None

    def delete_traces(
        self,
        experiment_id: str,
        max_timestamp_ms: int | None = None,
        trace_ids: Sequence[str] | None = None,
    ) -> int:
        doomed = [
            t
            for t, tr in self.traces.items()
            if (trace_ids and t in trace_ids)
            or (max_timestamp_ms is not None and tr.info.timestamp_ms <= max_timestamp_ms)
        ]
        for t in doomed:
            del self.traces[t]
        return len(doomed)

    def set_trace_tag(self, trace_id: str, key: str, value: str) -> None:
        self.get_trace(trace_id).info.tags[key] = value

    def delete_trace_tag(self, trace_id: str, key: str) -> None:
        self.get_trace(trace_id).info.tags.pop(key, None)

    def create_assessment(self, a: Assessment) -> Assessment:
        self.get_trace(a.trace_id)
        if a.overrides:
            self.assessments[a.overrides].valid = False
        self.assessments[a.assessment_id] = a
        return a

    def get_assessment(self, trace_id: str, assessment_id: str) -> Assessment:
        a = self.assessments.get(assessment_id)
        if a is None or a.trace_id != trace_id:
            raise NotFoundError(f"assessment {assessment_id!r} not found")
        return a

    def update_assessment(
        self,
        trace_id: str,
        assessment_id: str,
        *,
        name: str | None = None,
        value: Any = _UNSET,
        rationale: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> Assessment:
        a = self.get_assessment(trace_id, assessment_id)
        changes: dict[str, Any] = {}
        if name is not None:
            changes["name"] = name
        if value is not _UNSET:
            changes["value"] = value
        if rationale is not None:
            changes["rationale"] = rationale
        if metadata is not None:
            changes["metadata"] = metadata
        updated = dataclasses.replace(a, **changes)
        self.assessments[assessment_id] = updated
        return updated

    def delete_assessment(self, trace_id: str, assessment_id: str) -> None:
        self.get_assessment(trace_id, assessment_id)
        del self.assessments[assessment_id]


class Client(TracingClient):
    def __init__(self, store: FakeStore) -> None:
        self.store = store


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def client(store: FakeStore) -> Client:
    return Client(store)


@pytest.fixture
def captured(store: FakeStore) -> Iterator[InMemoryExporter]:
    """The default tracer (which the client drives), exporting to memory and the fake store."""
    from tracemark.tracing import DEFAULT_TRACER
    from tracemark.tracing._export import StoreExporter

    with capture_traces() as exporter:
        DEFAULT_TRACER.configure(exporters=[exporter, StoreExporter(store)])
        yield exporter


def test_spans_started_and_ended_on_different_threads(
    client: Client, captured: InMemoryExporter
) -> None:
    root = client.start_trace("agent", span_type="AGENT", inputs={"q": "hi"}, tags={"env": "t"})
    tool = client.start_span(
        "tool", trace_id=root.trace_id, parent_id=root.span_id, span_type="TOOL", inputs=[1]
    )
    llm = client.start_span("llm", trace_id=root.trace_id, parent_id=tool.span_id)

    def finish() -> None:
        client.end_span(root.trace_id, llm.span_id, outputs="text")
        client.end_span(
            root.trace_id, tool.span_id, outputs=2, attributes={"k": "v"}, status="ERROR"
        )

    t = threading.Thread(target=finish)
    t.start()
    t.join()
    assert captured.traces == []
    client.end_trace(root.trace_id, outputs={"a": "done"})

    [trace] = captured.traces
    assert trace.info.tags == {"env": "t"}
    assert span_tree(trace) == {
        "name": "agent",
        "span_type": "AGENT",
        "status": "OK",
        "inputs": {"q": "hi"},
        "outputs": {"a": "done"},
        "children": [
            {
                "name": "tool",
                "span_type": "TOOL",
                "status": "ERROR",
                "inputs": [1],
                "outputs": 2,
                "children": [
                    {
                        "name": "llm",
                        "span_type": "UNKNOWN",
                        "status": "OK",
                        "inputs": None,
                        "outputs": "text",
                    }
                ],
            }
        ],
    }


def test_client_spans_do_not_become_current(client: Client, captured: InMemoryExporter) -> None:
    from tracemark.tracing import get_current_active_span

    root = client.start_trace("r")
    assert get_current_active_span() is None
    client.end_trace(root.trace_id)


def test_start_span_in_an_unknown_trace_raises(client: Client, captured: InMemoryExporter) -> None:
    with pytest.raises(NotFoundError):
        client.start_span("x", trace_id="f" * 32)
    root = client.start_trace("r")
    with pytest.raises(NotFoundError, match="parent span"):
        client.start_span("x", trace_id=root.trace_id, parent_id="0" * 16)
    client.end_trace(root.trace_id)


def test_ending_an_unknown_span_warns(
    client: Client, captured: InMemoryExporter, caplog: pytest.LogCaptureFixture
) -> None:
    client.end_span("f" * 32, "1" * 16)
    client.end_trace("f" * 32)
    assert "not in progress" in caplog.text


def test_get_trace_and_search_traces_read_the_store(
    client: Client, captured: InMemoryExporter, store: FakeStore
) -> None:
    ids = []
    for i in range(3):
        root = client.start_trace(f"t{i}", experiment_id="7")
        client.end_trace(root.trace_id)
        ids.append(root.trace_id)
    assert client.get_trace(ids[0]).root.name == "t0"
    page = client.search_traces(["7"], filter_string="status = 'OK'", max_results=2)
    assert isinstance(page, PagedList)
    assert [i.name for i in page] == ["t2", "t1"]
    rest = client.search_traces(["7"], page_token=page.token, max_results=2)
    assert [i.name for i in rest] == ["t0"] and rest.token is None
    assert store.search_calls[0] == {"experiment_ids": ["7"], "filter_string": "status = 'OK'"}
    with pytest.raises(InvalidInputError):
        client.search_traces(["7"], return_type="csv")


def test_search_traces_as_pandas(client: Client, captured: InMemoryExporter) -> None:
    pd = pytest.importorskip("pandas")
    root = client.start_trace("t", experiment_id="7")
    client.end_trace(root.trace_id)
    frame = client.search_traces(["7"], return_type="pandas")
    assert isinstance(frame, pd.DataFrame)
    assert list(frame["name"]) == ["t"]
    assert frame.attrs["token"] is None


def test_trace_tags_on_running_and_stored_traces(
    client: Client, captured: InMemoryExporter, store: FakeStore
) -> None:
    root = client.start_trace("t")
    client.set_trace_tag(root.trace_id, "stage", "running")
    client.set_trace_tag(root.trace_id, "gone", "x")
    client.delete_trace_tag(root.trace_id, "gone")
    client.end_trace(root.trace_id)
    assert store.traces[root.trace_id].info.tags == {"stage": "running"}
    client.set_trace_tag(root.trace_id, "reviewed", True)
    client.delete_trace_tag(root.trace_id, "stage")
    assert store.traces[root.trace_id].info.tags == {"reviewed": "True"}


def test_delete_traces(client: Client, captured: InMemoryExporter, store: FakeStore) -> None:
    root = client.start_trace("t", experiment_id="7")
    client.end_trace(root.trace_id)
    assert client.delete_traces("7", trace_ids=[root.trace_id]) == 1
    with pytest.raises(InvalidInputError):
        client.delete_traces("7")


def test_feedback_expectation_and_override_keep_history(
    client: Client, captured: InMemoryExporter, store: FakeStore
) -> None:
    root = client.start_trace("t")
    client.end_trace(root.trace_id)
    t = root.trace_id

    fb = client.log_feedback(
        trace_id=t,
        name="helpful",
        value=True,
        rationale="answered",
        source=AssessmentSource(AssessmentSource.LLM_JUDGE, "gpt-judge"),
        span_id=root.span_id,
        metadata={"round": 1},
    )
    assert fb.assessment_id.startswith("a-")
    assert (fb.kind, fb.value, fb.span_id, fb.metadata) == (
        "feedback",
        True,
        root.span_id,
        {"round": "1"},
    )
    exp = client.log_expectation(trace_id=t, name="answer", value={"text": "30 days"})
    assert (exp.kind, exp.source.source_type) == ("expectation", "HUMAN")

    fixed = client.override_feedback(
        trace_id=t, assessment_id=fb.assessment_id, value=False, rationale="wrong policy"
    )
    assert fixed.overrides == fb.assessment_id
    assert (fixed.name, fixed.value, fixed.span_id) == ("helpful", False, root.span_id)
    assert client.get_assessment(t, fb.assessment_id).valid is False

    with pytest.raises(InvalidInputError, match="not a feedback"):
        client.override_feedback(trace_id=t, assessment_id=exp.assessment_id, value=1)

    updated = client.update_assessment(t, exp.assessment_id, value={"text": "14 days"})
    assert updated.value == {"text": "14 days"}
    assert client.update_assessment(t, exp.assessment_id, rationale="r").value == {
        "text": "14 days"
    }
    client.delete_assessment(t, exp.assessment_id)
    with pytest.raises(NotFoundError):
        client.get_assessment(t, exp.assessment_id)


def test_assessment_validation(client: Client, captured: InMemoryExporter) -> None:
    root = client.start_trace("t")
    client.end_trace(root.trace_id)
    with pytest.raises(InvalidInputError, match="value or an error"):
        client.log_feedback(trace_id=root.trace_id, name="x")
    with pytest.raises(InvalidInputError, match="source_type"):
        client.log_feedback(
            trace_id=root.trace_id, name="x", value=1, source=AssessmentSource("ROBOT")
        )
    with pytest.raises(InvalidInputError, match="must be a bool"):
        client.log_feedback(trace_id=root.trace_id, name="x", value=object())
    judged = client.log_feedback(trace_id=root.trace_id, name="x", error="judge timed out")
    assert judged.error == "judge timed out" and judged.value is None


def test_tracing_disabled_makes_client_spans_no_ops(client: Client, tracer: Tracer) -> None:
    from tracemark.tracing import DEFAULT_TRACER

    with capture_traces() as exporter:
        DEFAULT_TRACER.configure(enabled=False)
        root = client.start_trace("t")
        child = client.start_span("c", trace_id=root.trace_id)
        client.end_span(root.trace_id, child.span_id)
        client.end_trace(root.trace_id)
    assert exporter.traces == []
