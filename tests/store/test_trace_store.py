"""The trace half of the SQL store, on SQLite and PostgreSQL (fixture `store_uri`)."""

from __future__ import annotations

import gzip
import os

import orjson
import pytest
from sqlalchemy import func, select

from tracemark.entities.trace import (
    Assessment,
    AssessmentSource,
    Span,
    SpanEvent,
    Trace,
    TraceInfo,
)
from tracemark.exceptions import (
    AlreadyExistsError,
    InvalidFilterError,
    InvalidInputError,
    NotFoundError,
)
from tracemark.store.sql import schema
from tracemark.store.sql.store import SqlStore
from tracemark.store.sql.trace_ingest import INLINE_PAYLOAD_LIMIT

T0_MS = 1_700_000_000_000
T0_NS = T0_MS * 1_000_000
MS = 1_000_000
INJECTION = "x'; DROP TABLE trace_info; --"


def tid(n: int) -> str:
    return f"{n:032x}"


def sid(trace: int, n: int) -> str:
    return f"{trace:08x}{n:08x}"


def dumps(value: object) -> str:
    return orjson.dumps(value).decode()


@pytest.fixture
def store(store_uri, tmp_path):
    store = SqlStore(store_uri, artifact_root=str(tmp_path / "artifacts"))
    yield store
    store.close()


def make_trace(
    n: int,
    *,
    experiment_id: str = "0",
    start_ms: int | None = None,
    duration_ms: int = 100,
    status: str = "OK",
    name: str = "agent",
    request: str | None = "where is my order?",
    response: str | None = "it ships tomorrow",
    tags: dict[str, str] | None = None,
    metadata: dict[str, str] | None = None,
    run_id: str | None = None,
    tokens: tuple[int, int] | None = (120, 30),
    cost: float | None = None,
    tool_status: str = "OK",
    extra_span_name: str = "lookup_order",
) -> Trace:
    """A four-span agent trace: agent -> retrieve, agent -> chat -> tool."""
    start_ms = T0_MS + n * 1000 if start_ms is None else start_ms
    t0 = start_ms * MS
    trace_id = tid(n)
    root, retrieve, chat, tool = (sid(n, i) for i in range(1, 5))
    spans = [
        Span(
            trace_id,
            root,
            None,
            name,
            "AGENT",
            t0,
            t0 + duration_ms * MS,
            "ERROR" if status == "ERROR" else "OK",
            "boom" if status == "ERROR" else "",
            dumps({"question": request, "history": [], "n": n}),
            dumps(response),
            {"app.version": "1.2", "nested": {"a": [1, 2.5, True, None]}},
        ),
        Span(
            trace_id,
            retrieve,
            root,
            "retrieve",
            "RETRIEVER",
            t0 + 1 * MS,
            t0 + 10 * MS,
            "OK",
            "",
            dumps("refund policy"),
            dumps([{"page_content": "Refunds within 30 days", "metadata": {"src": "faq"}}]),
            {},
        ),
        Span(
            trace_id,
            chat,
            root,
            "chat",
            "CHAT_MODEL",
            t0 + 11 * MS,
            t0 + 90 * MS,
            "OK",
            "",
            dumps([{"role": "user", "content": "hi"}]),
            dumps({"role": "assistant", "content": "hello", "tool_calls": []}),
            {
                "gen_ai.usage.input_tokens": tokens[0] if tokens else None,
                "gen_ai.usage.output_tokens": tokens[1] if tokens else None,
                "gen_ai.request.model": "gpt-4o-mini",
            },
        ),
        Span(
            trace_id,
            tool,
            chat,
            extra_span_name,
            "TOOL",
            t0 + 20 * MS,
            t0 + 30 * MS,
            tool_status,
            "",
            dumps({"order_id": 42}),
            None,
            {"retries": 0},
            [
                SpanEvent(
                    "exception",
                    t0 + 29 * MS,
                    {
                        "exception.type": "KeyError",
                        "exception.message": "'eta'",
                        "exception.stacktrace": "Traceback ...",
                    },
                )
            ],
        ),
    ]
    info = TraceInfo(
        trace_id=trace_id,
        experiment_id=experiment_id,
        timestamp_ms=start_ms,
        execution_time_ms=duration_ms,
        status=status,
        name=name,
        run_id=run_id,
        request_preview=request,
        response_preview=response,
        tags=dict(tags or {}),
        metadata=dict(metadata or {}),
        input_tokens=tokens[0] if tokens else None,
        output_tokens=tokens[1] if tokens else None,
        total_tokens=sum(tokens) if tokens else None,
        cost=cost,
        span_count=len(spans),
    )
    return Trace(info, spans)


def feedback(trace_id: str, name: str, value: object, **kwargs: object) -> Assessment:
    return Assessment(
        assessment_id=kwargs.pop("assessment_id", ""),
        trace_id=trace_id,
        name=name,
        kind=kwargs.pop("kind", Assessment.FEEDBACK),
        value=value,
        source=kwargs.pop("source", AssessmentSource(AssessmentSource.HUMAN, "ana")),
        created_time_ms=kwargs.pop("created_time_ms", 0),
        last_updated_time_ms=0,
        **kwargs,
    )


def ids(infos: list[TraceInfo]) -> list[str]:
    return [info.trace_id for info in infos]


def count_rows(store: SqlStore, table) -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


# --- round trip ---------------------------------------------------------------------------


def test_logged_trace_comes_back_equal(store):
    original = make_trace(1, tags={"env": "prod"}, metadata={"session_id": "s-1"}, cost=0.25)
    store.log_traces([original])
    got = store.get_trace(tid(1))
    assert got.to_dict() == original.to_dict()
    assert got.root.name == "agent"
    assert [c.name for c in got.root.children] == ["retrieve", "chat"]
    assert [c.name for c in got.search_spans(name="chat")[0].children] == ["lookup_order"]
    tool = got.search_spans(span_type="TOOL")[0]
    assert tool.events == [
        SpanEvent(
            "exception",
            T0_NS + 1000 * MS + 29 * MS,
            {
                "exception.type": "KeyError",
                "exception.message": "'eta'",
                "exception.stacktrace": "Traceback ...",
            },
        )
    ]
    assert tool.outputs_json is None
    assert got.root.attributes["nested"] == {"a": [1, 2.5, True, None]}


@pytest.mark.parametrize(
    "value",
    [
        {"a": 1, "b": [1.5, "x", None, False]},
        [1, 2, 3],
        "plain string",
        42,
        -3.25,
        True,
        None,
        "unicode: héllo 日本 🚀",
        {"nul": "a\x00b", "key with\x00nul": 1},
        {"big": 2**63 - 1, "neg": -(2**63)},
    ],
    ids=repr,
)
def test_inputs_and_outputs_keep_their_types(store, value):
    trace = make_trace(2)
    trace.spans[1].inputs_json = dumps(value)
    trace.spans[1].outputs_json = dumps({"echo": value})
    trace.spans[1].attributes = {"value": value}
    store.log_traces([trace])
    span = store.get_trace(tid(2)).search_spans(name="retrieve")[0]
    assert span.inputs == value
    assert type(span.inputs) is type(value)
    assert span.outputs == {"echo": value}
    assert span.attributes == {"value": value}


def test_missing_inputs_differ_from_json_null(store):
    trace = make_trace(3)
    trace.spans[1].inputs_json = None
    trace.spans[1].outputs_json = "null"
    store.log_traces([trace])
    span = store.get_trace(tid(3)).search_spans(name="retrieve")[0]
    assert span.inputs_json is None
    assert span.outputs_json == "null"


def test_sqlite_stores_the_serialized_text_as_is(store):
    if store.dialect != "sqlite":
        pytest.skip("PostgreSQL stores JSONB, which normalizes the text")
    trace = make_trace(4)
    trace.spans[0].inputs_json = '{"z": 1,   "a": [1,2]}'
    store.log_traces([trace])
    assert store.get_trace(tid(4)).root.inputs_json == '{"z": 1,   "a": [1,2]}'


def test_postgres_json_columns_are_jsonb(store):
    if store.dialect != "postgresql":
        pytest.skip("PostgreSQL only")
    store.log_traces([make_trace(5)])
    with store.engine.connect() as conn:
        model = conn.exec_driver_sql(
            "SELECT attributes->>'gen_ai.request.model' FROM spans WHERE name = 'chat'"
        ).scalar_one()
    assert model == "gpt-4o-mini"


def test_postgres_plans_lookups_and_reads_for_their_parameters(store):
    # A generic plan made while the tables were empty scans them whole: ingest slowed
    # down as traces came in. Lookups and reads stay unprepared; the bulk inserts do not.
    if store.dialect != "postgresql":
        pytest.skip("PostgreSQL only")
    for n in range(8):
        store.log_traces([make_trace(100 + n)])
        store.search_traces(["0"], filter_string="tags.env = 'prod'", max_results=5)
        store.get_trace(tid(100 + n))
    with store.engine.connect() as conn:
        prepared = conn.exec_driver_sql("SELECT statement FROM pg_prepared_statements").scalars()
        statements = [" ".join(text.split()) for text in prepared]
    assert any(text.startswith("INSERT INTO spans") for text in statements)
    growing = ("trace_info", "spans", "trace_tags", "trace_metadata", "assessments")
    reads = [text for text in statements if text.startswith("SELECT")]
    assert not [text for text in reads if any(table in text for table in growing)]


# --- large payloads -----------------------------------------------------------------------


@pytest.mark.parametrize("size", [300 * 1024, 10 * 1024 * 1024])
def test_large_payload_goes_to_artifact_store_and_comes_back(store, size):
    trace = make_trace(6)
    big_inputs = dumps({"document": "x" * size})
    big_outputs = dumps(["y" * 1000] * (size // 1000))
    trace.spans[1].inputs_json = big_inputs
    trace.spans[1].outputs_json = big_outputs
    store.log_traces([trace])

    with store.engine.connect() as conn:
        row = conn.execute(
            select(
                schema.spans.c.inputs, schema.spans.c.inputs_ref, schema.spans.c.outputs_ref
            ).where(schema.spans.c.span_id == sid(6, 2))
        ).one()
    assert row.inputs is None
    assert row.inputs_ref == f"traces/{tid(6)}/{sid(6, 2)}.inputs.json.gz"
    path = os.path.join(store.artifact_root, row.inputs_ref)
    with open(path, "rb") as fh:
        assert gzip.decompress(fh.read()).decode() == big_inputs
    assert os.path.getsize(path) < len(big_inputs) // 10

    span = store.get_trace(tid(6)).search_spans(name="retrieve")[0]
    assert span.inputs_json == big_inputs
    assert span.outputs_json == big_outputs
    # A trace list never reads the payload.
    infos, _ = store.search_traces(["0"])
    assert ids(infos) == [tid(6)]


def test_payload_limit_counts_utf8_bytes(store):
    trace = make_trace(7)
    # 3 bytes per character: under the limit in characters, over it in bytes.
    over = dumps("€" * (INLINE_PAYLOAD_LIMIT // 3 + 10))
    under = dumps("€" * (INLINE_PAYLOAD_LIMIT // 3 - 10))
    trace.spans[1].inputs_json = over
    trace.spans[1].outputs_json = under
    store.log_traces([trace])
    with store.engine.connect() as conn:
        refs = conn.execute(
            select(schema.spans.c.inputs_ref, schema.spans.c.outputs_ref).where(
                schema.spans.c.span_id == sid(7, 2)
            )
        ).one()
    assert refs.inputs_ref is not None
    assert refs.outputs_ref is None
    span = store.get_trace(tid(7)).search_spans(name="retrieve")[0]
    assert span.inputs_json == over
    assert span.outputs == "€" * (INLINE_PAYLOAD_LIMIT // 3 - 10)


def test_failed_batch_leaves_no_payload_files(store):
    good = make_trace(8)
    good.spans[1].inputs_json = dumps("z" * (INLINE_PAYLOAD_LIMIT + 1))
    bad = make_trace(9, experiment_id="12345")
    with pytest.raises(NotFoundError, match="12345"):
        store.log_traces([good, bad])
    assert not os.path.exists(os.path.join(store.artifact_root, "traces", tid(8)))
    assert count_rows(store, schema.trace_info) == 0


# --- batches, duplicates and merges -------------------------------------------------------


def test_batch_is_one_transaction(store):
    bad = make_trace(11)
    bad.spans[2].span_id = "not-hex"
    with pytest.raises(InvalidInputError, match="span_id"):
        store.log_traces([make_trace(10), bad])
    assert count_rows(store, schema.trace_info) == 0
    assert count_rows(store, schema.spans) == 0


def test_top_span_with_an_upstream_parent_arriving_last_names_the_trace(store):
    full = make_trace(13)
    root, retrieve, chat, tool = full.spans
    root.parent_id = "f" * 16  # its parent lives in a service that sends elsewhere
    children = Trace(
        TraceInfo(tid(13), "0", T0_MS + 13_000 + 11, 79, "ERROR", name="chat"), [chat, tool]
    )
    store.log_traces([children])
    store.log_traces([Trace(full.info, [root, retrieve])])
    got = store.get_trace(tid(13))
    assert (got.info.name, got.info.status, got.info.span_count) == ("agent", "OK", 4)
    assert got.info.request_preview == "where is my order?"


def test_spans_arriving_in_two_batches_merge_into_one_trace(store):
    full = make_trace(12, tags={"env": "prod"}, metadata={"session_id": "s-1"})
    root, retrieve, chat, tool = full.spans
    # First batch: children only, as an OpenTelemetry exporter may send them.
    first = Trace(
        TraceInfo(
            tid(12),
            "0",
            T0_MS + 12_000 + 11,
            79,
            "IN_PROGRESS",
            name="chat",
            metadata={"session_id": "s-1", "user_id": "u-1"},
            input_tokens=120,
            output_tokens=30,
            total_tokens=150,
            cost=0.5,
        ),
        [chat, tool],
    )
    store.log_traces([first])
    assert store.get_trace(tid(12)).info.span_count == 2

    # Second batch: the root arrives with a duplicate of `tool`.
    second = Trace(full.info, [root, retrieve, tool])
    second.info.metadata = {"session_id": "s-2"}
    second.info.input_tokens = second.info.output_tokens = second.info.total_tokens = None
    store.log_traces([second])

    got = store.get_trace(tid(12))
    assert len(got.spans) == 4
    assert got.info.span_count == 4
    assert got.info.name == "agent"
    assert got.info.status == "OK"
    assert got.info.timestamp_ms == T0_MS + 12_000
    assert got.info.execution_time_ms == 100
    assert got.info.request_preview == "where is my order?"
    # Metadata is write-once: the first value stays, new keys are added.
    assert got.info.metadata == {"session_id": "s-1", "user_id": "u-1"}
    assert got.info.tags == {"env": "prod"}
    # Tokens: 150 from the first batch; the second added spans without usage attributes.
    assert (got.info.input_tokens, got.info.output_tokens, got.info.total_tokens) == (
        120,
        30,
        150,
    )
    assert got.info.cost == 0.5
    assert got.root.span_id == root.span_id
    assert [c.name for c in got.root.children] == ["retrieve", "chat"]


def test_relogging_the_same_trace_changes_nothing(store):
    trace = make_trace(13, tags={"env": "prod"})
    store.log_traces([trace])
    store.log_traces([trace])
    store.log_traces([make_trace(13, tags={"env": "prod"}), make_trace(13)])
    got = store.get_trace(tid(13))
    assert got.info.span_count == 4
    assert got.info.total_tokens == 150
    assert got.to_dict() == trace.to_dict()


def test_same_trace_twice_in_one_batch_adds_new_spans_once(store):
    full = make_trace(14)
    part_one = Trace(dataclass_copy(full.info, span_count=2), full.spans[:2])
    part_two = Trace(dataclass_copy(full.info, span_count=3), full.spans[1:])
    part_one.info.input_tokens = part_one.info.output_tokens = None
    part_one.info.total_tokens = None
    store.log_traces([part_one, part_two])
    got = store.get_trace(tid(14))
    assert len(got.spans) == 4
    assert got.info.span_count == 4
    # part_two repeats a span, so its own rollup is not added; its new chat span's usage is.
    assert (got.info.input_tokens, got.info.output_tokens, got.info.total_tokens) == (
        120,
        30,
        150,
    )


def dataclass_copy(info: TraceInfo, **changes: object) -> TraceInfo:
    import dataclasses

    return dataclasses.replace(info, tags=dict(info.tags), metadata=dict(info.metadata), **changes)


def test_duplicate_spans_inside_one_trace_are_stored_once(store):
    trace = make_trace(15)
    trace.spans.append(trace.spans[1])
    store.log_traces([trace])
    assert store.get_trace(tid(15)).info.span_count == 4
    assert count_rows(store, schema.spans) == 4


def test_empty_batch_is_a_no_op(store):
    store.log_traces([])
    assert count_rows(store, schema.trace_info) == 0


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda t: setattr(t.info, "trace_id", "ABC"), "trace_id"),
        (lambda t: setattr(t.info, "status", "DONE"), "status"),
        (lambda t: setattr(t.info, "timestamp_ms", "yesterday"), "timestamp_ms"),
        (lambda t: setattr(t.info, "cost", "cheap"), "cost"),
        (lambda t: setattr(t.info, "request_preview", {"q": 1}), "request_preview"),
        (lambda t: setattr(t.spans[1], "status_message", 5), "status_message"),
        (lambda t: setattr(t.info, "run_id", "nope"), "run_id"),
        (lambda t: setattr(t.info, "experiment_id", "abc"), "experiment_id"),
        (lambda t: setattr(t.info, "tags", {"bad key!": "x"}), "tag"),
        (lambda t: setattr(t.spans[1], "trace_id", tid(999)), "trace_id"),
        (lambda t: setattr(t.spans[1], "parent_id", "xyz"), "parent_id"),
        (lambda t: setattr(t.spans[1], "status_code", "FINE"), "status_code"),
        (lambda t: setattr(t.spans[1], "start_time_ns", 1.5), "start_time_ns"),
        (lambda t: setattr(t.spans[1], "name", None), "name"),
        (lambda t: setattr(t.spans[1], "inputs_json", {"not": "text"}), "inputs_json"),
        (lambda t: setattr(t.spans[1], "attributes", {"obj": object()}), "attributes"),
    ],
)
def test_malformed_traces_are_rejected_naming_the_field(store, mutate, field):
    trace = make_trace(16)
    mutate(trace)
    with pytest.raises(InvalidInputError) as caught:
        store.log_traces([make_trace(17), trace])
    assert caught.value.field == field
    assert count_rows(store, schema.trace_info) == 0


def test_integer_and_float_costs_mix_in_one_batch(store):
    store.log_traces([make_trace(1, cost=1), make_trace(2, cost=0.5), make_trace(3)])
    infos, _ = store.search_traces(["0"], order_by=["cost DESC"])
    assert [info.cost for info in infos] == [1.0, 0.5, None]


def test_unknown_experiment_is_not_found(store):
    with pytest.raises(NotFoundError, match="'424242'"):
        store.log_traces([make_trace(18, experiment_id="424242")])


# --- get_trace ----------------------------------------------------------------------------


def test_get_trace_errors(store):
    with pytest.raises(InvalidInputError, match="32 lowercase hex"):
        store.get_trace("xyz")
    with pytest.raises(InvalidInputError):
        store.get_trace(tid(0xABC).upper())
    with pytest.raises(NotFoundError, match=tid(404)):
        store.get_trace(tid(404))


def test_missing_payload_file_is_a_clear_error(store):
    from tracemark.exceptions import StoreError

    trace = make_trace(19)
    trace.spans[1].inputs_json = dumps("q" * (INLINE_PAYLOAD_LIMIT + 1))
    store.log_traces([trace])
    os.unlink(os.path.join(store.artifact_root, "traces", tid(19), f"{sid(19, 2)}.inputs.json.gz"))
    with pytest.raises(StoreError, match="missing"):
        store.get_trace(tid(19))


# --- spans without payloads, and one span with them -----------------------------------------


def _without_payloads(span: Span) -> dict:
    data = span.to_dict()
    for key in ("inputs", "outputs", "inputs_size", "outputs_size"):
        data.pop(key, None)
    return data


def _size(text: str | None) -> int | None:
    return None if text is None else len(text.encode())


def test_trace_without_payloads_gives_their_sizes_instead(store):
    trace = make_trace(20, metadata={"session_id": "s-1"})
    trace.spans[1].outputs_json = dumps([{"page_content": "Rückgabe in 30 Tagen 🚀"}])
    trace.spans[2].inputs_json = dumps({"document": "x" * (INLINE_PAYLOAD_LIMIT + 1)})
    store.log_traces([trace])
    full = store.get_trace(tid(20))

    light = store.get_trace(tid(20), include_payloads=False)

    assert light.info.to_dict() == full.info.to_dict()
    assert [_without_payloads(s) for s in light.spans] == [_without_payloads(s) for s in full.spans]
    for light_span, full_span in zip(light.spans, full.spans, strict=True):
        assert light_span.inputs_json is None and light_span.outputs_json is None
        assert light_span.inputs_size == _size(full_span.inputs_json)
        assert light_span.outputs_size == _size(full_span.outputs_json)
    tool = light.search_spans(span_type="TOOL")[0]
    assert tool.outputs_size is None  # the span has no outputs
    assert "outputs_size" in tool.to_dict() and "inputs_size" not in full.spans[0].to_dict()
    assert [c.name for c in light.root.children] == ["retrieve", "chat"]


def test_trace_without_payloads_reads_no_payload_file(store, monkeypatch):
    trace = make_trace(21)
    big = dumps({"document": "y" * (INLINE_PAYLOAD_LIMIT + 1)})
    trace.spans[1].outputs_json = big
    store.log_traces([trace])
    monkeypatch.setattr(gzip, "decompress", lambda *_: pytest.fail("a payload was read"))

    light = store.get_trace(tid(21), include_payloads=False)

    assert light.search_spans(name="retrieve")[0].outputs_size == len(big)


@pytest.mark.parametrize(
    "value",
    [
        {"nul": "a\x00b"},
        {"$tracemark.json_text": "looks like the store's own wrapper"},
        "€" * 100,
    ],
    ids=["nul", "wrapper-lookalike", "multibyte"],
)
def test_payload_sizes_match_the_text_get_span_returns(store, value):
    trace = make_trace(22)
    trace.spans[1].inputs_json = dumps(value)
    trace.spans[1].attributes = {"value": value}
    store.log_traces([trace])

    light = store.get_trace(tid(22), include_payloads=False).search_spans(name="retrieve")[0]
    span = store.get_span(tid(22), sid(22, 2))

    assert span.inputs == value
    assert span.attributes == {"value": value}
    assert light.inputs_size == len(span.inputs_json.encode())


def test_get_span_returns_one_span_with_its_payloads(store):
    trace = make_trace(23)
    big_inputs = dumps({"document": "z" * (300 * 1024)})
    trace.spans[1].inputs_json = big_inputs
    store.log_traces([trace, make_trace(24)])
    full = store.get_trace(tid(23))

    for expected in full.spans:
        got = store.get_span(tid(23), expected.span_id)
        assert got.to_dict() == expected.to_dict()
        assert got.children == []
    assert store.get_span(tid(23), sid(23, 2)).inputs_json == big_inputs
    tool = store.get_span(tid(23), sid(23, 4))
    assert tool.events[0].attributes["exception.type"] == "KeyError"
    assert tool.outputs_json is None


def test_get_span_errors(store):
    store.log_traces([make_trace(25), make_trace(26)])
    with pytest.raises(InvalidInputError, match="32 lowercase hex"):
        store.get_span("xyz", sid(25, 1))
    with pytest.raises(InvalidInputError, match="16 lowercase hex"):
        store.get_span(tid(25), "ABC")
    with pytest.raises(NotFoundError, match=sid(25, 9)):
        store.get_span(tid(25), sid(25, 9))
    with pytest.raises(NotFoundError, match=tid(25)):
        store.get_span(tid(25), sid(26, 1))  # a span of another trace
    with pytest.raises(NotFoundError):
        store.get_span(tid(404), sid(25, 1))


def test_missing_payload_file_fails_get_span_and_the_light_trace_alike(store):
    from tracemark.exceptions import StoreError

    trace = make_trace(27)
    trace.spans[1].inputs_json = dumps("q" * (INLINE_PAYLOAD_LIMIT + 1))
    store.log_traces([trace])
    os.unlink(os.path.join(store.artifact_root, "traces", tid(27), f"{sid(27, 2)}.inputs.json.gz"))
    with pytest.raises(StoreError, match="missing"):
        store.get_span(tid(27), sid(27, 2))
    with pytest.raises(StoreError, match="missing"):
        store.get_trace(tid(27), include_payloads=False)
    assert store.get_span(tid(27), sid(27, 1)).name == "agent"


# --- search -------------------------------------------------------------------------------


@pytest.fixture
def corpus(store):
    """Five traces in the default experiment, one in another, with assessments."""
    other = store.create_experiment("other")
    run_id = "a" * 32
    store.log_traces(
        [
            make_trace(
                1,
                duration_ms=50,
                tags={"env": "prod", "team": "support"},
                metadata={"session_id": "s-1", "user_id": "u-7"},
                tokens=(100, 20),
                cost=0.01,
                run_id=run_id,
            ),
            make_trace(
                2,
                duration_ms=500,
                status="ERROR",
                name="planner",
                request="refund for order 17",
                response=None,
                tags={"env": "dev"},
                metadata={"session_id": "s-1"},
                tokens=(1000, 300),
                cost=0.2,
                tool_status="ERROR",
            ),
            make_trace(
                3,
                duration_ms=120,
                request="What is the REFUND policy?",
                response="30 days",
                tags={"env": "prod"},
                metadata={"session_id": "s-2", "user_id": "u-8"},
                tokens=None,
                extra_span_name="search_docs",
            ),
            make_trace(4, duration_ms=80, status="IN_PROGRESS", name="agent", tokens=(5, 5)),
            make_trace(5, duration_ms=300, name="summarize", tokens=(50, 10), run_id=run_id),
            make_trace(6, experiment_id=other, name="elsewhere"),
        ]
    )
    store.create_assessment(feedback(tid(1), "helpful", True))
    store.create_assessment(feedback(tid(1), "score", 0.9))
    store.create_assessment(feedback(tid(2), "helpful", False))
    store.create_assessment(feedback(tid(2), "score", 2))
    store.create_assessment(feedback(tid(3), "helpful", "true"))
    store.create_assessment(feedback(tid(3), "score", "high"))
    store.create_assessment(feedback(tid(4), "labels", {"topic": "billing", "n": 1}))
    wrong = store.create_assessment(feedback(tid(5), "helpful", True))
    store.create_assessment(feedback(tid(5), "helpful", False, overrides=wrong.assessment_id))
    store.create_assessment(feedback(tid(5), "answer", "30 days", kind=Assessment.EXPECTATION))
    return {"other": other, "run_id": run_id}


FILTERS = [
    ("status = 'ERROR'", {2}),
    ("status != 'OK'", {2, 4}),
    ("status IN ('ERROR', 'IN_PROGRESS')", {2, 4}),
    ("status NOT IN ('OK')", {2, 4}),
    ("trace.status = 'OK'", {1, 3, 5}),
    ("attributes.status = 'OK'", {1, 3, 5}),
    ("name = 'planner'", {2}),
    ("name LIKE 'a%'", {1, 3, 4}),
    ("name ILIKE 'SUM%'", {5}),
    ("name NOT LIKE 'a%'", {2, 5}),
    (f"trace_id = '{tid(3)}'", {3}),
    (f"trace_id IN ('{tid(3)}', '{tid(4)}', '{tid(6)}')", {3, 4}),
    (f"run_id = '{'a' * 32}'", {1, 5}),
    ("run_id IS NULL", {2, 3, 4}),
    ("run_id IS NOT NULL", {1, 5}),
    (f"timestamp_ms >= {T0_MS + 3000}", {3, 4, 5}),
    (f"timestamp_ms < {T0_MS + 3000} AND timestamp_ms > {T0_MS + 1000}", {2}),
    ("execution_time_ms > 100", {2, 3, 5}),
    ("execution_time_ms <= 80", {1, 4}),
    ("execution_time_ms IN (50, 80)", {1, 4}),
    ("input_tokens >= 100", {1, 2}),
    ("output_tokens = 5", {4}),
    ("total_tokens < 100", {4, 5}),
    ("total_tokens IS NULL", {3}),
    ("cost > 0.1", {2}),
    ("cost IS NOT NULL", {1, 2}),
    ("span_count = 4", {1, 2, 3, 4, 5}),
    ("span_count > 4", set()),
    ("tags.env = 'prod'", {1, 3}),
    ("tags.env != 'prod'", {2}),
    ("tags.team IS NULL", {2, 3, 4, 5}),
    ("tags.env IN ('dev', 'staging')", {2}),
    ("tag.team LIKE 'sup%'", {1}),
    ("metadata.session_id = 's-1'", {1, 2}),
    ("metadata.user_id = 'u-7'", {1}),
    ("metadata.user_id IS NOT NULL", {1, 3}),
    ("metadata.`session_id` LIKE 's-%' AND metadata.user_id IS NULL", {2}),
    ("request LIKE '%refund%'", {2}),
    ("request ILIKE '%refund%'", {2, 3}),
    ("request = 'where is my order?'", {1, 4, 5}),
    ("response = '30 days'", {3}),
    ("response IS NULL", {2}),
    ("request NOT ILIKE '%refund%'", {1, 4, 5}),
    ("span.name = 'search_docs'", {3}),
    ("span.name IN ('search_docs', 'nothing')", {3}),
    ("span.name LIKE 'lookup%'", {1, 2, 4, 5}),
    ("span.type = 'TOOL'", {1, 2, 3, 4, 5}),
    ("span.type = 'EMBEDDING'", set()),
    ("span.status = 'ERROR'", {2}),
    ("spans.status = 'ERROR' AND span.type = 'TOOL'", {2}),
    # Assessment values: see store/sql/trace_search.py for the rules.
    ("feedback.helpful = 'true'", {1, 3}),
    ("feedback.helpful = true", {1, 3}),
    ("feedback.helpful = false", {2, 5}),
    ("feedback.helpful != 'true'", {2, 5}),
    ("feedback.helpful IS NULL", {4}),
    ("feedback.score > 0.5", {1, 2}),
    ("feedback.score >= 2", {2}),
    ("feedback.score = 0.9", {1}),
    ("feedback.score = 2.0", {2}),
    ("feedback.score = '2'", {2}),
    ("feedback.score IN (0.9, 7)", {1}),
    ("feedback.score = 'high'", {3}),
    ("feedback.score LIKE 'h%'", {3}),
    ("feedback.labels LIKE '%billing%'", {4}),
    ('feedback.labels = \'{"topic":"billing","n":1}\'', {4}),
    ("expectation.answer = '30 days'", {5}),
    ("feedback.answer = '30 days'", set()),
    ("assessment.answer = '30 days'", {5}),
    ("assessments.helpful = false", {2, 5}),
    ("expectation.helpful IS NULL", {1, 2, 3, 4, 5}),
    # Combinations.
    ("status = 'OK' AND (tags.env = 'prod' OR metadata.session_id = 's-1')", {1, 3}),
    ("feedback.helpful = true OR span.status = 'ERROR'", {1, 2, 3}),
]


@pytest.mark.parametrize(("filter_string", "expected"), FILTERS, ids=[f for f, _ in FILTERS])
def test_filters(store, corpus, filter_string, expected):
    infos, token = store.search_traces(["0"], filter_string)
    assert set(ids(infos)) == {tid(n) for n in expected}
    assert token is None


def test_injection_attempt_is_data(store):
    store.log_traces([make_trace(1, tags={"env": INJECTION}), make_trace(2)])
    escaped = INJECTION.replace("'", "''")
    infos, _ = store.search_traces(["0"], f"tags.env = '{escaped}' OR name = '{escaped}'")
    assert ids(infos) == [tid(1)]
    assert count_rows(store, schema.trace_info) == 2


def test_search_spans_experiments_and_run(store, corpus):
    infos, _ = store.search_traces(["0", corpus["other"]])
    assert len(infos) == 6
    infos, _ = store.search_traces([corpus["other"]])
    assert ids(infos) == [tid(6)]
    infos, _ = store.search_traces(["0"], run_id=corpus["run_id"])
    assert ids(infos) == [tid(5), tid(1)]
    infos, _ = store.search_traces(["0"], "status = 'OK'", run_id=corpus["run_id"])
    assert ids(infos) == [tid(5), tid(1)]
    infos, _ = store.search_traces([])
    assert infos == []


def test_search_returns_infos_with_tags_metadata_and_assessments(store, corpus):
    infos, _ = store.search_traces(["0"], f"trace_id = '{tid(5)}'")
    (info,) = infos
    assert info.span_count == 4
    assert info.tags == {}
    assert [(a.name, a.value, a.valid) for a in info.assessments] == [
        ("helpful", True, False),
        ("helpful", False, True),
        ("answer", "30 days", True),
    ]
    infos, _ = store.search_traces(["0"], f"trace_id = '{tid(1)}'")
    assert infos[0].tags == {"env": "prod", "team": "support"}
    assert infos[0].metadata == {"session_id": "s-1", "user_id": "u-7"}
    assert infos[0].run_id == corpus["run_id"]
    assert infos[0].cost == 0.01


def test_default_order_is_newest_first(store, corpus):
    infos, _ = store.search_traces(["0"])
    assert ids(infos) == [tid(n) for n in (5, 4, 3, 2, 1)]


@pytest.mark.parametrize(
    ("order_by", "expected"),
    [
        (["timestamp_ms ASC"], [1, 2, 3, 4, 5]),
        (["execution_time_ms DESC"], [2, 5, 3, 4, 1]),
        (["execution_time_ms"], [1, 4, 3, 5, 2]),
        (["name", "timestamp_ms"], [1, 3, 4, 2, 5]),
        (["status DESC"], [5, 3, 1, 4, 2]),
        (["total_tokens DESC"], [2, 1, 5, 4, 3]),
        (["total_tokens ASC"], [4, 5, 1, 2, 3]),
        (["input_tokens DESC"], [2, 1, 5, 4, 3]),
        (["cost DESC"], [2, 1, 5, 4, 3]),
        (["span_count", "trace_id DESC"], [5, 4, 3, 2, 1]),
        (["trace.name DESC", "attributes.timestamp_ms DESC"], [5, 2, 4, 3, 1]),
        (["tags.env", "timestamp_ms"], [2, 1, 3, 4, 5]),
        (["metadata.user_id DESC"], [3, 1, 5, 4, 2]),
    ],
)
def test_order_by(store, corpus, order_by, expected):
    infos, _ = store.search_traces(["0"], order_by=order_by)
    assert ids(infos) == [tid(n) for n in expected]


def test_paging_walks_every_trace_once(store):
    store.log_traces([make_trace(n, start_ms=T0_MS + (n % 3)) for n in range(1, 8)])
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        infos, token = store.search_traces(["0"], max_results=3, page_token=token)
        seen.extend(ids(infos))
        pages += 1
        if token is None:
            break
    assert pages == 3
    assert len(seen) == len(set(seen)) == 7
    # Same timestamps break ties by trace id.
    assert seen == [tid(n) for n in (2, 5, 1, 4, 7, 3, 6)]


def test_paging_with_filter_and_order(store, corpus):
    first, token = store.search_traces(
        ["0"], "status != 'ERROR'", order_by=["execution_time_ms DESC"], max_results=2
    )
    assert ids(first) == [tid(5), tid(3)]
    second, token = store.search_traces(
        ["0"],
        "status != 'ERROR'",
        order_by=["execution_time_ms DESC"],
        max_results=2,
        page_token=token,
    )
    assert ids(second) == [tid(4), tid(1)]
    assert token is None


@pytest.mark.parametrize(
    ("filter_string", "position", "message"),
    [
        ("status = 'OK' AND", 17, "expected a key"),
        ("colour = 'red'", 0, "unknown attribute 'colour'"),
        ("foo.bar = 'x'", 0, "unknown key prefix 'foo'"),
        ("status = 'OK' AND span.colour = 'red'", 18, "unknown span field 'colour'"),
        ("timestamp_ms LIKE '17%'", 0, "operator 'LIKE'"),
        ("timestamp_ms > 'yesterday'", 15, "must be a number"),
        ("status > 'A'", 0, "operator '>'"),
        ("tags.env > 'a'", 0, "operator '>'"),
        ("span.name IS NULL", 0, "operator 'IS NULL'"),
        ("feedback.score > 'high'", 17, "must be a number"),
        ("request = 5", 10, "quoted string"),
    ],
)
def test_bad_filters_point_at_the_token(store, filter_string, position, message):
    with pytest.raises(InvalidFilterError, match=message) as caught:
        store.search_traces(["0"], filter_string)
    assert caught.value.position == position


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"order_by": ["colour"]}, "order_by"),
        ({"order_by": ["span.name"]}, "order_by"),
        ({"order_by": "timestamp_ms"}, "order_by"),
        ({"max_results": 0}, "max_results"),
        ({"page_token": "garbage"}, "page_token"),
        ({"run_id": "nope"}, "run_id"),
    ],
)
def test_bad_search_arguments(store, kwargs, field):
    with pytest.raises(InvalidInputError) as caught:
        store.search_traces(["0"], **kwargs)
    assert caught.value.field == field


def test_bad_experiment_ids(store):
    with pytest.raises(InvalidInputError, match="experiment_ids"):
        store.search_traces("0")
    with pytest.raises(InvalidInputError, match="experiment_ids"):
        store.search_traces(["zero"])


# --- delete_traces ------------------------------------------------------------------------


def test_delete_traces_by_age(store):
    other = store.create_experiment("other")
    store.log_traces([make_trace(n) for n in range(1, 6)] + [make_trace(9, experiment_id=other)])
    store.create_assessment(feedback(tid(1), "helpful", True))
    store.set_trace_tag(tid(2), "k", "v")
    assert store.delete_traces("0", max_timestamp_ms=T0_MS + 3000) == 3
    infos, _ = store.search_traces(["0", other])
    assert set(ids(infos)) == {tid(4), tid(5), tid(9)}
    # Children went with their traces.
    assert count_rows(store, schema.spans) == 12
    assert count_rows(store, schema.assessments) == 0
    assert count_rows(store, schema.trace_tags) == 0


def test_delete_traces_by_ids_stays_in_the_experiment(store):
    other = store.create_experiment("other")
    store.log_traces([make_trace(1), make_trace(2), make_trace(3, experiment_id=other)])
    assert store.delete_traces("0", trace_ids=[tid(1), tid(3), tid(404)]) == 1
    infos, _ = store.search_traces(["0", other])
    assert set(ids(infos)) == {tid(2), tid(3)}
    assert store.delete_traces("0", trace_ids=[]) == 0


def test_delete_traces_with_both_criteria(store):
    store.log_traces([make_trace(n) for n in range(1, 4)])
    deleted = store.delete_traces("0", max_timestamp_ms=T0_MS + 2000, trace_ids=[tid(2), tid(3)])
    assert deleted == 1
    infos, _ = store.search_traces(["0"])
    assert set(ids(infos)) == {tid(1), tid(3)}


def test_delete_traces_removes_payload_files(store):
    trace = make_trace(1)
    trace.spans[1].outputs_json = dumps("o" * (INLINE_PAYLOAD_LIMIT + 1))
    store.log_traces([trace, make_trace(2)])
    folder = os.path.join(store.artifact_root, "traces", tid(1))
    assert os.listdir(folder) == [f"{sid(1, 2)}.outputs.json.gz"]
    assert store.delete_traces("0", trace_ids=[tid(1)]) == 1
    assert not os.path.exists(folder)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({}, "max_timestamp_ms"),
        ({"max_timestamp_ms": "soon"}, "max_timestamp_ms"),
        ({"trace_ids": tid(1)}, "trace_ids"),
        ({"trace_ids": ["bad"]}, "trace_id"),
    ],
)
def test_delete_traces_needs_a_valid_criterion(store, kwargs, field):
    store.log_traces([make_trace(1)])
    with pytest.raises(InvalidInputError) as caught:
        store.delete_traces("0", **kwargs)
    assert caught.value.field == field
    assert count_rows(store, schema.trace_info) == 1


# --- trace tags ---------------------------------------------------------------------------


def test_trace_tags(store):
    store.log_traces([make_trace(1, tags={"env": "dev"})])
    store.set_trace_tag(tid(1), "env", "prod")
    store.set_trace_tag(tid(1), "reviewed.by", "ana")
    assert store.get_trace(tid(1)).info.tags == {"env": "prod", "reviewed.by": "ana"}
    store.delete_trace_tag(tid(1), "env")
    assert store.get_trace(tid(1)).info.tags == {"reviewed.by": "ana"}
    infos, _ = store.search_traces(["0"], "tags.`reviewed.by` = 'ana'")
    assert ids(infos) == [tid(1)]


def test_trace_tag_errors(store):
    store.log_traces([make_trace(1)])
    with pytest.raises(NotFoundError, match=tid(2)):
        store.set_trace_tag(tid(2), "env", "prod")
    with pytest.raises(NotFoundError, match="no tag 'env'"):
        store.delete_trace_tag(tid(1), "env")
    with pytest.raises(NotFoundError, match=tid(2)):
        store.delete_trace_tag(tid(2), "env")
    with pytest.raises(InvalidInputError):
        store.set_trace_tag(tid(1), "", "x")
    with pytest.raises(InvalidInputError):
        store.set_trace_tag("nope", "env", "x")


# --- assessments --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [True, False, 0, 7, 0.25, -1e300, "yes", "", None, {"a": [1, {"b": None}]}, [1, "two", 3.0]],
    ids=repr,
)
def test_assessment_values_round_trip_with_their_types(store, value):
    store.log_traces([make_trace(1)])
    created = store.create_assessment(feedback(tid(1), "verdict", value))
    got = store.get_assessment(tid(1), created.assessment_id)
    assert got.value == value
    assert type(got.value) is type(value)
    assert got == created
    (listed,) = store.get_trace(tid(1)).info.assessments
    assert listed == created


def test_assessment_fields_round_trip(store):
    store.log_traces([make_trace(1)])
    created = store.create_assessment(
        Assessment(
            assessment_id="a-custom",
            trace_id=tid(1),
            name="correct",
            kind=Assessment.EXPECTATION,
            value={"answer": "30 days"},
            source=AssessmentSource(AssessmentSource.LLM_JUDGE, "gpt-4o"),
            created_time_ms=T0_MS,
            last_updated_time_ms=T0_MS,
            span_id=sid(1, 3),
            rationale="policy says so",
            error=None,
            metadata={"judge_version": "2", "nul": "a\x00b"},
            run_id="b" * 32,
        )
    )
    assert created.assessment_id == "a-custom"
    assert store.get_assessment(tid(1), "a-custom") == created
    assert created.to_dict()["source"] == {"source_type": "LLM_JUDGE", "source_id": "gpt-4o"}


def test_assessment_defaults_are_filled(store):
    store.log_traces([make_trace(1)])
    created = store.create_assessment(feedback(tid(1), "helpful", True))
    assert created.assessment_id.startswith("a-")
    assert created.created_time_ms > T0_MS
    assert created.last_updated_time_ms == created.created_time_ms
    assert created.valid is True


def test_update_assessment(store):
    store.log_traces([make_trace(1)])
    created = store.create_assessment(
        feedback(tid(1), "helpful", True, created_time_ms=T0_MS, metadata={"a": "1"})
    )
    updated = store.update_assessment(
        tid(1), created.assessment_id, value=False, rationale="changed my mind"
    )
    assert updated.value is False
    assert updated.rationale == "changed my mind"
    assert updated.last_updated_time_ms > created.last_updated_time_ms
    assert updated.created_time_ms == T0_MS
    updated = store.update_assessment(
        tid(1), created.assessment_id, name="useful", metadata={"b": "2"}
    )
    assert (updated.name, updated.value, updated.metadata) == (
        "useful",
        False,
        {"a": "1", "b": "2"},
    )
    updated = store.update_assessment(tid(1), created.assessment_id, value=None)
    assert updated.value is None
    assert store.get_assessment(tid(1), created.assessment_id) == updated
    infos, _ = store.search_traces(["0"], "feedback.useful IS NOT NULL")
    assert ids(infos) == [tid(1)]
    infos, _ = store.search_traces(["0"], "feedback.useful = 'true'")
    assert infos == []


def test_override_keeps_history_and_delete_restores(store):
    store.log_traces([make_trace(1)])
    original = store.create_assessment(feedback(tid(1), "helpful", True))
    infos, _ = store.search_traces(["0"], "feedback.helpful = true")
    assert ids(infos) == [tid(1)]

    correction = store.create_assessment(
        feedback(tid(1), "helpful", False, overrides=original.assessment_id)
    )
    assert store.get_assessment(tid(1), original.assessment_id).valid is False
    assert correction.valid is True
    history = store.get_trace(tid(1)).info.assessments
    assert {(a.assessment_id, a.valid) for a in history} == {
        (original.assessment_id, False),
        (correction.assessment_id, True),
    }
    assert store.search_traces(["0"], "feedback.helpful = true")[0] == []
    assert ids(store.search_traces(["0"], "feedback.helpful = false")[0]) == [tid(1)]

    store.delete_assessment(tid(1), correction.assessment_id)
    assert store.get_assessment(tid(1), original.assessment_id).valid is True
    assert ids(store.search_traces(["0"], "feedback.helpful = true")[0]) == [tid(1)]


def test_override_must_name_an_assessment_of_the_same_trace(store):
    store.log_traces([make_trace(1), make_trace(2)])
    elsewhere = store.create_assessment(feedback(tid(2), "helpful", True))
    with pytest.raises(NotFoundError, match=elsewhere.assessment_id):
        store.create_assessment(
            feedback(tid(1), "helpful", False, overrides=elsewhere.assessment_id)
        )
    assert store.get_trace(tid(1)).info.assessments == []
    assert store.get_assessment(tid(2), elsewhere.assessment_id).valid is True


def test_assessment_errors(store):
    store.log_traces([make_trace(1)])
    created = store.create_assessment(feedback(tid(1), "helpful", True, assessment_id="a-1"))
    with pytest.raises(NotFoundError, match=tid(2)):
        store.create_assessment(feedback(tid(2), "helpful", True))
    with pytest.raises(AlreadyExistsError, match="a-1"):
        store.create_assessment(feedback(tid(1), "helpful", True, assessment_id="a-1"))
    with pytest.raises(NotFoundError, match="a-2"):
        store.get_assessment(tid(1), "a-2")
    with pytest.raises(NotFoundError, match="a-1"):
        store.get_assessment(tid(2), "a-1")
    with pytest.raises(NotFoundError):
        store.update_assessment(tid(1), "a-2", value=1)
    with pytest.raises(NotFoundError):
        store.delete_assessment(tid(1), "a-2")
    store.delete_assessment(tid(1), created.assessment_id)
    with pytest.raises(NotFoundError):
        store.get_assessment(tid(1), created.assessment_id)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"kind": "opinion"}, "kind"),
        ({"name": ""}, "name"),
        ({"value": float("nan")}, "value"),
        ({"value": {"x": [float("inf")]}}, "value"),
        ({"value": object()}, "value"),
        ({"source": "HUMAN"}, "source"),
        ({"source": AssessmentSource("ROBOT")}, "source"),
        ({"span_id": "xyz"}, "span_id"),
        ({"run_id": "xyz"}, "run_id"),
        ({"trace_id": "xyz"}, "trace_id"),
        ({"metadata": {1: "x"}}, "metadata"),
        ({"rationale": 5}, "rationale"),
    ],
)
def test_malformed_assessments_are_rejected(store, changes, field):
    import dataclasses

    store.log_traces([make_trace(1)])
    assessment = dataclasses.replace(feedback(tid(1), "helpful", True), **changes)
    with pytest.raises(InvalidInputError) as caught:
        store.create_assessment(assessment)
    assert caught.value.field == field
    assert count_rows(store, schema.assessments) == 0


def test_update_assessment_rejects_bad_values(store):
    store.log_traces([make_trace(1)])
    created = store.create_assessment(feedback(tid(1), "helpful", True))
    with pytest.raises(InvalidInputError):
        store.update_assessment(tid(1), created.assessment_id, value=float("nan"))
    with pytest.raises(InvalidInputError):
        store.update_assessment(tid(1), created.assessment_id, name="")
    assert store.get_assessment(tid(1), created.assessment_id) == created


def test_concurrent_batches_from_several_threads_all_land(store):
    from concurrent.futures import ThreadPoolExecutor

    def log(worker: int) -> None:
        for batch in range(5):
            store.log_traces([make_trace(worker * 1000 + batch * 100 + i) for i in range(1, 21)])

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(log, range(1, 5)))
    assert count_rows(store, schema.trace_info) == 4 * 5 * 20
    assert count_rows(store, schema.spans) == 4 * 5 * 20 * 4


def test_concurrent_merges_of_the_same_traces_neither_fail_nor_lose_counts(store):
    import threading

    errors: list[BaseException] = []

    def log(half: int) -> None:
        try:
            for _ in range(5):
                batch = []
                for n in range(1, 31):
                    full = make_trace(n)
                    batch.append(Trace(full.info, full.spans[:2] if half else full.spans[1:]))
                store.log_traces(batch)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=log, args=(half,)) for half in (0, 1, 0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    infos, _ = store.search_traces(["0"])
    assert len(infos) == 30
    assert {info.span_count for info in infos} == {4}
    assert count_rows(store, schema.spans) == 30 * 4
