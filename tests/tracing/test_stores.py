"""The tracing SDK end to end through the real stores: SQLite, PostgreSQL and a live server.

Every test takes the `tracking` fixture (the `tracemark` module pointed at a fresh store), so
it runs four times: on SQLite, on PostgreSQL, and through a `tracemark server` process over
each. Traces go through the real background exporter into the real store.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

import tracemark as tm
from tracemark.entities.trace import AssessmentSource, Trace
from tracemark.exceptions import NotFoundError
from tracemark.testing import span_tree
from tracemark.tracing import DEFAULT_TRACER, StoreExporter, Tracer, redact_secrets

WAIT_S = 60
T0_MS = 1_700_000_000_000  # start time of the search data's oldest trace
MS = 1_000_000  # nanoseconds


@pytest.fixture
def traced(tracking: Any) -> Iterator[Any]:
    """`tm` on a fresh store, its default tracer in the default (background export) setup."""
    saved = DEFAULT_TRACER._config_snapshot()
    DEFAULT_TRACER.configure(
        enabled=True, sampling_ratio=1.0, async_export=True, mask=None, exporters=None
    )
    yield tracking
    # What is still queued belongs to this test's store, which goes away next.
    assert DEFAULT_TRACER.flush(timeout=WAIT_S)
    DEFAULT_TRACER.configure(**saved)


def stored_traces(api: Any, **kwargs: Any) -> list[Any]:
    """Every stored trace info matching `kwargs` (search_traces arguments), all pages."""
    infos: list[Any] = []
    token = None
    while True:
        page = api.search_traces(max_results=1000, page_token=token, **kwargs)
        infos.extend(page)
        token = page.token
        if token is None:
            return infos


def names(infos: Sequence[Any]) -> list[str]:
    return [info.name for info in infos]


# -- spans made every way, stored and read back --------------------------------------------

DOCS = [{"page_content": "Refunds within 30 days.", "metadata": {"source": "faq.md"}, "id": "d1"}]


@tm.trace(span_type="TOOL")
def lookup(order_id: str) -> dict[str, str]:
    return {"order_id": order_id, "status": "shipped"}


@tm.trace(span_type="EMBEDDING")
async def embed(text: str) -> list[float]:
    await asyncio.sleep(0)
    return [float(len(text)), 1.0]


@tm.trace(span_type="RETRIEVER")
async def retrieve(query: str) -> list[dict[str, Any]]:
    vectors = await asyncio.gather(embed(query), embed(query + "!"))
    with tm.start_span("rerank", span_type="RERANKER", inputs={"n": len(vectors)}) as span:
        span.set_outputs([0, 1])
    return DOCS


@tm.trace(span_type="CHAT_MODEL")
def stream_answer(messages: list[dict[str, str]]) -> Iterator[str]:
    yield "30 "
    yield "days"


@tm.trace(span_type="AGENT")
def agent(question: str) -> str:
    tm.update_current_trace(tags={"env": "prod"}, session_id="s-1", user_id="u-7")
    docs = asyncio.run(retrieve(question))
    with tm.tracing.TracedThreadPoolExecutor(max_workers=1) as pool:
        statuses = [s["status"] for s in pool.map(lookup, ["o-1", "o-2"])]
    worker = threading.Thread(target=tm.tracing.wrap_context(lambda: lookup("o-3")))
    worker.start()
    worker.join()
    messages = [{"role": "user", "content": question}, {"role": "system", "content": str(docs)}]
    answer = "".join(stream_answer(messages))
    return f"{answer} ({len(statuses)} orders)"


def _node(name: str, span_type: str, inputs: Any, outputs: Any, *children: Any) -> dict[str, Any]:
    node = {"name": name, "span_type": span_type, "status": "OK", "inputs": inputs}
    node["outputs"] = outputs
    if children:
        node["children"] = list(children)
    return node


def test_nesting_across_async_generators_and_threads_is_stored(traced: Any) -> None:
    assert agent("refund policy?") == "30 days (2 orders)"
    assert traced.flush(timeout=WAIT_S)

    trace = traced.get_trace(traced.get_last_active_trace_id())
    messages = [
        {"role": "user", "content": "refund policy?"},
        {"role": "system", "content": str(DOCS)},
    ]

    def order(order_id: str) -> dict[str, Any]:
        outputs = {"order_id": order_id, "status": "shipped"}
        return _node("lookup", "TOOL", {"order_id": order_id}, outputs)

    assert span_tree(trace) == _node(
        "agent",
        "AGENT",
        {"question": "refund policy?"},
        "30 days (2 orders)",
        _node(
            "retrieve",
            "RETRIEVER",
            {"query": "refund policy?"},
            DOCS,
            _node("embed", "EMBEDDING", {"text": "refund policy?"}, [14.0, 1.0]),
            _node("embed", "EMBEDDING", {"text": "refund policy?!"}, [15.0, 1.0]),
            _node("rerank", "RERANKER", {"n": 2}, [0, 1]),
        ),
        order("o-1"),
        order("o-2"),
        order("o-3"),
        _node("stream_answer", "CHAT_MODEL", {"messages": messages}, ["30 ", "days"]),
    )
    info = trace.info
    assert (info.name, info.status, info.span_count) == ("agent", "OK", 9)
    assert info.tags == {"env": "prod"}
    assert info.metadata == {"session_id": "s-1", "user_id": "u-7"}
    assert info.request_preview == '{"question":"refund policy?"}'
    assert info.response_preview == '"30 days (2 orders)"'
    assert {span.trace_id for span in trace.spans} == {info.trace_id}
    assert all(span.end_time_ns >= span.start_time_ns for span in trace.spans)
    assert [s.name for s in trace.search_spans(span_type="TOOL")] == ["lookup"] * 3
    assert span_tree(Trace.from_json(trace.to_json())) == span_tree(trace)


def test_exceptions_are_stored_as_error_status_and_exception_events(traced: Any) -> None:
    @traced.trace(span_type="TOOL")
    def flaky(n: int) -> int:
        raise ValueError(f"order {n} not found")

    @traced.trace
    def handler() -> None:
        with pytest.raises(ValueError):
            flaky(1)
        flaky(2)

    with pytest.raises(ValueError, match="order 2 not found"):
        handler()

    trace = traced.get_trace(traced.get_last_active_trace_id())
    assert trace.info.status == "ERROR"
    root = trace.root
    assert (root.name, root.status_code) == ("handler", "ERROR")
    assert root.status_message == "ValueError: order 2 not found"
    assert [c.status_code for c in root.children] == ["ERROR", "ERROR"]
    [event] = root.children[0].events
    assert event.name == "exception"
    assert event.attributes["exception.type"] == "ValueError"
    assert event.attributes["exception.message"] == "order 1 not found"
    assert 'raise ValueError(f"order {n} not found")' in event.attributes["exception.stacktrace"]


def test_mask_is_applied_before_the_trace_is_stored(traced: Any) -> None:
    traced.tracing.configure(mask=redact_secrets)
    key = "sk-proj-" + "a1B2" * 8

    @traced.trace
    def call_llm(prompt: str, api_key: str) -> str:
        traced.get_current_active_span().set_attribute("http.authorization", f"Bearer {key}")
        return "sent to bob@example.com"

    call_llm("mail bob@example.com", api_key=key)

    trace = traced.get_trace(traced.get_last_active_trace_id())
    stored = trace.to_json()
    assert key not in stored and "bob@example.com" not in stored
    root = trace.root
    assert root.inputs == {"prompt": "mail [REDACTED]", "api_key": "[REDACTED]"}
    assert root.outputs == "sent to [REDACTED]"
    assert root.attributes["http.authorization"] == "[REDACTED]"
    assert trace.info.response_preview == '"sent to [REDACTED]"'
    assert stored_traces(traced, filter_string="request LIKE '%bob@%'") == []


def test_sampling_ratio_zero_stores_nothing_but_a_per_function_override_does(
    traced: Any,
) -> None:
    traced.tracing.configure(sampling_ratio=0.0)

    @traced.trace
    def sampled_out(i: int) -> int:
        with traced.start_span("child"):
            return i

    @traced.trace(sample_ratio=1.0)
    def always(i: int) -> int:
        return sampled_out(i)  # a child of a recorded root is recorded

    for i in range(20):
        sampled_out(i)
    for i in range(3):
        always(i)

    infos = stored_traces(traced)
    assert names(infos) == ["always"] * 3
    assert [info.span_count for info in infos] == [3] * 3


def test_opentelemetry_spans_and_tracemark_spans_are_stored_as_one_trace(traced: Any) -> None:
    otel_sdk = pytest.importorskip("opentelemetry.sdk.trace")
    from tracemark.tracing.otel import TracemarkSpanProcessor

    provider = otel_sdk.TracerProvider()
    provider.add_span_processor(TracemarkSpanProcessor())
    otel_tracer = provider.get_tracer("instrumentation")
    try:
        with otel_tracer.start_as_current_span("POST /chat") as request:
            request.set_attributes({"openinference.span.kind": "CHAIN", "session.id": "s-9"})
            lookup("o-1")  # a tracemark span joins the OpenTelemetry trace
            with otel_tracer.start_as_current_span("chat gpt-4o") as chat:
                chat.set_attributes(
                    {
                        "gen_ai.operation.name": "chat",
                        "gen_ai.usage.input_tokens": 12,
                        "gen_ai.usage.output_tokens": 4,
                        "gen_ai.output.messages": '[{"role": "assistant", "content": "hi"}]',
                    }
                )
    finally:
        provider.shutdown()

    context = request.get_span_context()
    trace = traced.get_trace(f"{context.trace_id:032x}")
    assert [(depth, s.name, s.span_type) for depth, s in trace.walk()] == [
        (0, "POST /chat", "CHAIN"),
        (1, "lookup", "TOOL"),
        (1, "chat gpt-4o", "CHAT_MODEL"),
    ]
    assert trace.root.span_id == f"{context.span_id:016x}"
    assert trace.search_spans(name="chat gpt-4o")[0].outputs == [
        {"role": "assistant", "content": "hi"}
    ]
    info = trace.info
    assert (info.input_tokens, info.output_tokens, info.metadata) == (12, 4, {"session_id": "s-9"})


def test_a_trace_started_inside_a_run_is_linked_to_it(traced: Any) -> None:
    experiment_id = traced.set_experiment("linked").experiment_id
    with traced.start_run() as run:
        lookup("o-1")
    in_run = traced.get_last_active_trace_id()
    lookup("o-2")
    outside = traced.get_last_active_trace_id()

    info = traced.get_trace(in_run).info
    assert (info.run_id, info.experiment_id) == (run.run_id, experiment_id)
    assert traced.get_trace(outside).info.run_id is None
    linked = stored_traces(traced, run_id=run.run_id)
    assert [i.trace_id for i in linked] == [in_run]
    assert len(stored_traces(traced, experiment_ids=[experiment_id])) == 2


# -- searching, paging, ordering, deleting -------------------------------------------------


def _store_trace(
    client: Any,
    name: str,
    start_ms: int,
    *,
    inputs: Any,
    outputs: Any,
    duration_ms: int = 10,
    status: str = "OK",
    tags: dict[str, str] | None = None,
    metadata: dict[str, str] | None = None,
    child: tuple[str, str, str] = ("step", "CHAIN", "OK"),
    tokens: tuple[int, int] | None = None,
) -> str:
    """Record a trace with given times: a root and one child span (name, type, status)."""
    start = (T0_MS + start_ms) * MS
    root = client.start_trace(
        name, inputs=inputs, tags=tags, metadata=metadata, start_time_ns=start
    )
    usage = {}
    if tokens is not None:
        usage = {"gen_ai.usage.input_tokens": tokens[0], "gen_ai.usage.output_tokens": tokens[1]}
    child_name, child_type, child_status = child
    span = client.start_span(
        child_name, trace_id=root.trace_id, span_type=child_type, start_time_ns=start + MS
    )
    client.end_span(
        root.trace_id, span.span_id, attributes=usage, status=child_status, end_time_ns=start + MS
    )
    client.end_trace(
        root.trace_id, outputs=outputs, status=status, end_time_ns=start + duration_ms * MS
    )
    return root.trace_id


@pytest.fixture
def searchable(traced: Any, client: Any) -> dict[str, str]:
    """Five stored traces one second apart, oldest first, with feedback; name -> trace id."""
    prod, dev = {"env": "prod"}, {"env": "dev"}
    ids = {
        "refund": _store_trace(
            client,
            "refund",
            0,
            inputs={"question": "how do refunds work?"},
            outputs="Refunds within 30 days.",
            tags=prod,
            metadata={"session_id": "s-1", "user_id": "u-1"},
            child=("retrieve", "RETRIEVER", "OK"),
            tokens=(10, 5),
        ),
        "shipping": _store_trace(
            client,
            "shipping",
            1000,
            inputs={"question": "where is my order?"},
            outputs="It ships tomorrow.",
            tags=prod,
            metadata={"session_id": "s-1", "user_id": "u-2"},
            child=("lookup", "TOOL", "ERROR"),
            tokens=(100, 20),
        ),
        "slow": _store_trace(
            client,
            "slow",
            2000,
            inputs={"question": "summarize my orders"},
            outputs="You have 3 orders.",
            duration_ms=1500,
            tags=dev,
            metadata={"session_id": "s-2", "user_id": "u-1"},
        ),
        "failed": _store_trace(
            client,
            "failed",
            3000,
            inputs={"question": "cancel my refund"},
            outputs=None,
            status="ERROR",
            tags=dev,
            metadata={"session_id": "s-2", "user_id": "u-2"},
            child=("lookup", "TOOL", "OK"),
        ),
        "plain": _store_trace(client, "plain", 4000, inputs="hi", outputs="hello"),
    }
    assert traced.flush(timeout=WAIT_S)
    traced.log_feedback(trace_id=ids["refund"], name="helpful", value=True)
    wrong = traced.log_feedback(trace_id=ids["shipping"], name="helpful", value=True)
    traced.override_feedback(
        trace_id=ids["shipping"], assessment_id=wrong.assessment_id, value=False
    )
    traced.log_feedback(trace_id=ids["slow"], name="helpful", value=False)
    traced.log_expectation(trace_id=ids["plain"], name="helpful", value=True)
    return ids


NEWEST_FIRST = ["plain", "failed", "slow", "shipping", "refund"]
FILTERS = [
    ("status = 'ERROR'", ["failed"]),
    ("status = 'OK'", ["plain", "slow", "shipping", "refund"]),
    ("name = 'slow'", ["slow"]),
    (f"timestamp_ms >= {T0_MS + 2000}", ["plain", "failed", "slow"]),
    (f"timestamp_ms < {T0_MS + 1000}", ["refund"]),
    ("execution_time_ms > 1000", ["slow"]),
    ("execution_time_ms <= 10", ["plain", "failed", "shipping", "refund"]),
    ("tags.env = 'prod'", ["shipping", "refund"]),
    ("tags.env != 'prod'", ["failed", "slow"]),
    ("metadata.session_id = 's-1'", ["shipping", "refund"]),
    ("metadata.user_id = 'u-2'", ["failed", "shipping"]),
    ("request LIKE '%refund%'", ["failed", "refund"]),
    ("response LIKE '%30 days%'", ["refund"]),
    ("span.name = 'lookup'", ["failed", "shipping"]),
    ("span.type = 'RETRIEVER'", ["refund"]),
    ("span.status = 'ERROR'", ["failed", "shipping"]),
    ("total_tokens > 20", ["shipping"]),
    ("input_tokens = 10", ["refund"]),
    ("output_tokens >= 5", ["shipping", "refund"]),
    ("feedback.helpful = 'true'", ["refund"]),  # not the overridden one, not the expectation
    ("feedback.helpful = 'false'", ["slow", "shipping"]),
    ("tags.env = 'prod' AND metadata.user_id = 'u-1'", ["refund"]),
    ("span.type = 'TOOL' AND status = 'OK' AND feedback.helpful = 'false'", ["shipping"]),
]


def test_search_traces_filters_on_every_field(traced: Any, searchable: dict[str, str]) -> None:
    assert names(stored_traces(traced)) == NEWEST_FIRST
    wrong = {}
    for filter_string, expected in FILTERS:
        found = names(stored_traces(traced, filter_string=filter_string))
        if found != expected:
            wrong[filter_string] = found
    assert wrong == {}


def test_search_traces_pages_by_token(traced: Any, searchable: dict[str, str]) -> None:
    pages = []
    token = None
    while True:
        page = traced.search_traces(max_results=2, page_token=token)
        pages.append(names(page))
        token = page.token
        if token is None:
            break
    assert pages == [["plain", "failed"], ["slow", "shipping"], ["refund"]]
    page = traced.search_traces(filter_string="status = 'OK'", max_results=3)
    assert names(page) == ["plain", "slow", "shipping"]
    assert names(traced.search_traces(filter_string="status = 'OK'", page_token=page.token)) == [
        "refund"
    ]


@pytest.mark.parametrize(
    ("order_by", "expected"),
    [
        (["timestamp_ms ASC"], ["refund", "shipping", "slow", "failed", "plain"]),
        (["execution_time_ms DESC"], ["slow", *[n for n in NEWEST_FIRST if n != "slow"]]),
        (["name"], ["failed", "plain", "refund", "shipping", "slow"]),
        (["total_tokens DESC"], ["shipping", "refund", "plain", "failed", "slow"]),
    ],
)
def test_search_traces_orders_by(
    traced: Any, searchable: dict[str, str], order_by: list[str], expected: list[str]
) -> None:
    assert names(stored_traces(traced, order_by=order_by)) == expected


def test_search_traces_returns_a_dataframe(traced: Any, searchable: dict[str, str]) -> None:
    frame = traced.search_traces(filter_string="tags.env = 'prod'", return_type="pandas")
    assert list(frame["name"]) == ["shipping", "refund"]
    assert list(frame["trace_id"]) == [searchable["shipping"], searchable["refund"]]
    assert list(frame["total_tokens"]) == [120, 15]
    assert list(frame["tags"]) == [{"env": "prod"}, {"env": "prod"}]
    assert frame.attrs["token"] is None
    page = traced.search_traces(max_results=2, return_type="pandas")
    assert list(page["name"]) == ["plain", "failed"]
    assert page.attrs["token"] is not None


def test_delete_traces_by_id_and_by_age(traced: Any, searchable: dict[str, str]) -> None:
    experiment_id = traced.get_trace(searchable["plain"]).info.experiment_id
    assert traced.delete_traces(experiment_id, trace_ids=[searchable["plain"]]) == 1
    assert traced.delete_traces(experiment_id, max_timestamp_ms=T0_MS + 1000) == 2
    assert names(stored_traces(traced)) == ["failed", "slow"]
    for name in ("plain", "refund", "shipping"):
        with pytest.raises(NotFoundError):
            traced.get_trace(searchable[name])
    assert traced.delete_traces(experiment_id, trace_ids=[searchable["plain"]]) == 0


def test_trace_tags_are_set_and_deleted_on_stored_and_running_traces(traced: Any) -> None:
    with traced.start_span("handle") as span:
        traced.set_trace_tag(span.trace_id, "channel", "chat")  # still running
    trace_id = span.trace_id
    assert traced.get_trace(trace_id).info.tags == {"channel": "chat"}

    traced.set_trace_tag(trace_id, "reviewed", "yes")
    traced.set_trace_tag(trace_id, "channel", "email")
    assert traced.get_trace(trace_id).info.tags == {"channel": "email", "reviewed": "yes"}
    assert names(stored_traces(traced, filter_string="tags.reviewed = 'yes'")) == ["handle"]

    traced.delete_trace_tag(trace_id, "reviewed")
    assert traced.get_trace(trace_id).info.tags == {"channel": "email"}
    assert stored_traces(traced, filter_string="tags.reviewed = 'yes'") == []
    with pytest.raises(NotFoundError):
        traced.delete_trace_tag(trace_id, "reviewed")


# -- assessments -----------------------------------------------------------------------------


def test_assessments_and_overrides_keep_their_history(traced: Any) -> None:
    with traced.start_span("answer", inputs={"q": "refunds?"}) as root:
        with traced.start_span("retrieve", span_type="RETRIEVER") as child:
            child.set_outputs(DOCS)
        root.set_outputs("30 days")
    trace_id = root.trace_id
    assert traced.flush(timeout=WAIT_S)

    ana, bob = AssessmentSource("HUMAN", "ana"), AssessmentSource("HUMAN", "bob")
    judge = AssessmentSource("LLM_JUDGE", "gpt-4o-mini")
    helpful = traced.log_feedback(
        trace_id=trace_id,
        name="helpful",
        value=True,
        rationale="cites the policy",
        source=ana,
        metadata={"queue": "support"},
    )
    relevance = traced.log_feedback(
        trace_id=trace_id, span_id=child.span_id, name="relevance", value=0.75, source=judge
    )
    tone = traced.log_feedback(trace_id=trace_id, name="tone", value="friendly")
    facts = traced.log_expectation(
        trace_id=trace_id, name="expected_facts", value={"facts": ["30 days"]}
    )
    fixed = traced.override_feedback(
        trace_id=trace_id,
        assessment_id=helpful.assessment_id,
        value=False,
        rationale="misses the exceptions",
        source=bob,
    )

    stored = {a.assessment_id: a for a in traced.get_trace(trace_id).info.assessments}
    assert len(stored) == 5
    original, correction = stored[helpful.assessment_id], stored[fixed.assessment_id]
    assert (original.value, original.valid, original.source) == (True, False, ana)
    assert (original.rationale, original.metadata) == ("cites the policy", {"queue": "support"})
    assert (correction.value, correction.valid, correction.source) == (False, True, bob)
    assert correction.overrides == helpful.assessment_id
    assert (correction.name, correction.kind) == ("helpful", "feedback")
    span_level = stored[relevance.assessment_id]
    assert (span_level.value, span_level.span_id, span_level.source) == (0.75, child.span_id, judge)
    assert stored[tone.assessment_id].value == "friendly"
    assert (stored[facts.assessment_id].kind, stored[facts.assessment_id].value) == (
        "expectation",
        {"facts": ["30 days"]},
    )

    assert stored_traces(traced, filter_string="feedback.helpful = 'true'") == []
    assert len(stored_traces(traced, filter_string="feedback.helpful = 'false'")) == 1
    assert len(stored_traces(traced, filter_string="feedback.relevance >= 0.5")) == 1

    traced.update_assessment(trace_id, tone.assessment_id, value="formal")
    assert traced.get_assessment(trace_id, tone.assessment_id).value == "formal"
    traced.delete_assessment(trace_id, relevance.assessment_id)
    with pytest.raises(NotFoundError):
        traced.get_assessment(trace_id, relevance.assessment_id)
    assert stored_traces(traced, filter_string="feedback.relevance >= 0.5") == []
    assert len(traced.get_trace(trace_id).info.assessments) == 4


# -- drain at exit and back-pressure -------------------------------------------------------


def test_process_exit_stores_every_queued_trace(traced: Any, tracking_uri: str, tmp_path) -> None:
    n = 2000
    script = textwrap.dedent(
        f"""
        import tracemark as tm

        @tm.trace
        def step(i):
            return i

        @tm.trace
        def handle(i):
            return step(i)

        for i in range({n}):
            handle(i)
        print(tm.tracing.stats().queued)  # exits without flushing
        """
    )
    env = {
        **os.environ,
        "TRACEMARK_TRACKING_URI": tracking_uri,
        "TRACEMARK_ARTIFACT_ROOT": str(tmp_path / "artifacts"),
    }
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) > 0  # the exit really had a queue to drain
    infos = stored_traces(traced)
    assert len(infos) == n
    assert {info.span_count for info in infos} == {2}


class SlowStoreExporter(StoreExporter):
    """The real store exporter, held in its first export until released, then `delay_s` slow."""

    def __init__(self, delay_s: float, *, gated: bool) -> None:
        super().__init__()
        self.delay_s = delay_s
        self.entered = threading.Event()
        self.release = threading.Event()
        if not gated:
            self.release.set()

    def export(self, traces: Sequence[Trace]) -> None:
        self.entered.set()
        assert self.release.wait(WAIT_S)
        time.sleep(self.delay_s)
        super().export(traces)


@pytest.fixture
def slow_tracer(traced: Any) -> Iterator[Any]:
    """Make a tracer of our own (exact stats) exporting to the test's store through `exporter`."""
    tracers: list[Tracer] = []

    def make(exporter: SlowStoreExporter, *, queue_size: int, batch_size: int) -> Tracer:
        tracer = Tracer(
            async_export=True, queue_size=queue_size, batch_size=batch_size, exporters=[exporter]
        )
        tracers.append(tracer)
        return tracer

    yield make
    for tracer in tracers:
        tracer.shutdown(timeout=WAIT_S)


def test_a_blocked_store_never_blocks_the_app_and_drops_are_counted_exactly(
    traced: Any, slow_tracer: Any
) -> None:
    n, queue_size = 1000, 50
    exporter = SlowStoreExporter(0.0, gated=True)
    tracer = slow_tracer(exporter, queue_size=queue_size, batch_size=10)

    @tracer.trace
    def handle(i: int) -> int:
        return i

    handle(-1)
    assert exporter.entered.wait(WAIT_S)  # the exporter thread is stuck on the first trace
    done = [handle(i) for i in range(n)]
    assert len(done) == n and not exporter.release.is_set()  # all calls ran with the store stuck
    stats = tracer.stats()
    # Waiting: a full queue, and the trace the exporter is stuck on.
    assert (stats.queued, stats.dropped) == (queue_size + 1, n - queue_size)

    exporter.release.set()
    assert tracer.flush(timeout=WAIT_S)
    stats = tracer.stats()
    stored = stored_traces(traced)
    assert len(stored) == stats.exported == queue_size + 1
    assert stats.dropped + len(stored) == n + 1
    assert stats.errors == 0


def test_a_slow_store_never_slows_the_app_and_drops_are_counted_exactly(
    traced: Any, slow_tracer: Any
) -> None:
    n, batch_size, delay_s = 3000, 10, 0.02
    exporter = SlowStoreExporter(delay_s, gated=False)
    tracer = slow_tracer(exporter, queue_size=100, batch_size=batch_size)

    @tracer.trace
    def handle(i: int) -> int:
        with tracer.start_span("step"):
            return i

    start = time.perf_counter()
    done = [handle(i) for i in range(n)]
    elapsed = time.perf_counter() - start
    # Waiting for the store would take n / batch_size * delay_s = 6 s at the very least.
    assert len(done) == n and elapsed < n / batch_size * delay_s / 2, f"{elapsed:.2f} s"

    assert tracer.flush(timeout=WAIT_S)
    stats = tracer.stats()
    stored = len(stored_traces(traced))
    assert stats.dropped > 0 and stored > 0
    assert stats.dropped + stored == n
    assert (stats.exported, stats.errors, stats.queued) == (stored, 0, 0)
