"""OTLP/HTTP ingest at /v1/traces, end to end: real OpenTelemetry SDKs into a real server."""

from __future__ import annotations

import base64
import gzip
import zlib
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

import tracemark as tm
from tracemark.entities.trace import Trace
from tracemark.exceptions import StoreError
from tracemark.testing import span_tree
from tracemark.testing.llm_server import FakeLLMServer

pytestmark = pytest.mark.server

PROTOBUF = {"content-type": "application/x-protobuf"}
JSON = {"content-type": "application/json"}


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    # tm.TracemarkClient(url) opens a cached REST store; close it with the test.
    yield
    from tracemark.store import registry

    registry.reset()


@pytest.fixture(
    params=[
        pytest.param("sqlite_server", id="sqlite"),
        pytest.param("postgres_server", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def server(request: pytest.FixtureRequest, clear_database):
    """A live server (SQLite, then PostgreSQL) over an emptied database."""
    live = request.getfixturevalue(request.param)
    clear_database(live.db_uri)
    return live


@pytest.fixture
def sqlite_only(sqlite_server, clear_database):
    clear_database(sqlite_server.db_uri)
    return sqlite_server


@pytest.fixture
def http(sqlite_only) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sqlite_only.url, timeout=30) as client:
        yield client


@pytest.fixture
def providers() -> Iterator[list[TracerProvider]]:
    made: list[TracerProvider] = []
    yield made
    for provider in made:
        provider.shutdown()


@pytest.fixture
def make_provider(providers):
    """Build an OpenTelemetry SDK TracerProvider exporting over OTLP/HTTP protobuf."""

    def make(
        url: str,
        *,
        batch: bool = True,
        headers: dict[str, str] | None = None,
        compression: Compression | None = None,
        resource: dict[str, Any] | None = None,
    ) -> TracerProvider:
        exporter = OTLPSpanExporter(
            endpoint=f"{url}/v1/traces", headers=headers, compression=compression, timeout=10
        )
        provider = TracerProvider(
            resource=Resource.create({"service.name": "otlp-tests", **(resource or {})})
        )
        processor = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
        provider.add_span_processor(processor)
        providers.append(provider)
        return provider

    return make


def _hex(span: Any) -> str:
    """The trace id of an OpenTelemetry span, as tracemark writes it."""
    return f"{span.get_span_context().trace_id:032x}"


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error_code"] == code
    assert body["message"]
    return body


def _agent_run(provider: TracerProvider) -> str:
    """One agent turn with GenAI, OpenInference and failing-tool spans; return its trace id."""
    tracer = provider.get_tracer("my-agent", "1.2.3")
    with tracer.start_as_current_span("agent") as agent:
        agent.set_attributes(
            {
                "openinference.span.kind": "AGENT",
                "input.value": '{"question": "weather in Paris?"}',
                "input.mime_type": "application/json",
                "session.id": "s-42",
                "user.id": "u-7",
            }
        )
        with tracer.start_as_current_span("chat gpt-4o-mini") as chat:
            chat.set_attributes(
                {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": "gpt-4o-mini",
                    "gen_ai.usage.input_tokens": 12,
                    "gen_ai.usage.output_tokens": 5,
                    "gen_ai.input.messages": orjson.dumps(
                        [{"role": "user", "parts": [{"type": "text", "content": "weather?"}]}]
                    ).decode(),
                    "gen_ai.output.messages": orjson.dumps(
                        [
                            {
                                "role": "assistant",
                                "parts": [
                                    {
                                        "type": "tool_call",
                                        "id": "call-1",
                                        "name": "get_weather",
                                        "arguments": {"city": "Paris"},
                                    }
                                ],
                                "finish_reason": "tool_call",
                            }
                        ]
                    ).decode(),
                }
            )
        try:
            with tracer.start_as_current_span("get_weather") as tool:
                tool.set_attribute("gen_ai.operation.name", "execute_tool")
                tool.set_attribute("gen_ai.tool.name", "get_weather")
                raise TimeoutError("weather service timed out")
        except TimeoutError:
            pass
        agent.set_attribute("output.value", "I could not reach the weather service.")
        agent.set_status(Status(StatusCode.OK))
    return _hex(agent)


def _check_agent_trace(trace: Trace) -> None:
    assert span_tree(trace) == {
        "name": "agent",
        "span_type": "AGENT",
        "status": "OK",
        "inputs": {"question": "weather in Paris?"},
        "outputs": "I could not reach the weather service.",
        "children": [
            {
                "name": "chat gpt-4o-mini",
                "span_type": "CHAT_MODEL",
                "status": "UNSET",
                "inputs": [{"role": "user", "content": "weather?"}],
                "outputs": [
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": "call-1",
                                "type": "function",
                                "function": {
                                    "name": "get_weather",
                                    "arguments": '{"city":"Paris"}',
                                },
                            }
                        ],
                        "finish_reason": "tool_call",
                    }
                ],
            },
            {
                "name": "get_weather",
                "span_type": "TOOL",
                "status": "ERROR",
                "inputs": None,
                "outputs": None,
            },
        ],
    }
    info = trace.info
    assert (info.name, info.status, info.span_count) == ("agent", "OK", 3)
    assert (info.input_tokens, info.output_tokens, info.total_tokens) == (12, 5, 17)
    assert info.request_preview == '{"question":"weather in Paris?"}'
    assert info.response_preview == '"I could not reach the weather service."'
    assert info.metadata == {"session_id": "s-42", "user_id": "u-7", "service.name": "otlp-tests"}
    root = trace.root
    assert info.timestamp_ms == root.start_time_ns // 1_000_000
    assert info.execution_time_ms == (root.end_time_ns - root.start_time_ns) // 1_000_000
    chat = trace.search_spans(name="chat gpt-4o-mini")[0]
    assert chat.attributes["gen_ai.request.model"] == "gpt-4o-mini"
    assert chat.attributes["gen_ai.provider.name"] == "openai"
    # Priced from the genai-prices table, as autolog prices its spans.
    assert chat.attributes["gen_ai.usage.cost"] > 0
    assert info.cost == pytest.approx(chat.attributes["gen_ai.usage.cost"])
    assert chat.attributes["otel.scope.name"] == "my-agent"
    assert chat.attributes["otel.scope.version"] == "1.2.3"
    assert "gen_ai.input.messages" not in chat.attributes
    tool = trace.search_spans(name="get_weather")[0]
    assert tool.status_message == "TimeoutError: weather service timed out"
    [event] = tool.events
    assert event.name == "exception"
    assert event.attributes["exception.type"] == "TimeoutError"
    assert event.attributes["exception.message"] == "weather service timed out"
    assert "Traceback" in event.attributes["exception.stacktrace"]
    assert event.timestamp_ns >= tool.start_time_ns


# -- the OpenTelemetry SDK's OTLP/HTTP exporter -----------------------------------------


def test_sdk_protobuf_export_is_stored_as_one_native_trace(server, make_provider):
    provider = make_provider(server.url)
    trace_id = _agent_run(provider)
    assert provider.force_flush(10)

    client = tm.TracemarkClient(server.url)
    trace = client.get_trace(trace_id)
    _check_agent_trace(trace)
    found = client.search_traces(["0"], filter_string="status = 'OK'")
    assert [i.trace_id for i in found] == [trace_id]
    assert [i.trace_id for i in client.search_traces(["0"], filter_string="span.type = 'TOOL'")]


def test_spans_exported_one_request_each_assemble_into_one_trace(server, make_provider):
    # SimpleSpanProcessor sends every span in its own request as it ends: children first.
    provider = make_provider(server.url, batch=False)
    trace_id = _agent_run(provider)
    trace = tm.TracemarkClient(server.url).get_trace(trace_id)
    _check_agent_trace(trace)


def _split_request(trace_id: str, spans: list[dict[str, Any]]) -> dict[str, Any]:
    for span in spans:
        span["traceId"] = trace_id
    return {"resourceSpans": [{"resource": {}, "scopeSpans": [{"spans": spans}]}]}


def _json_span(
    span_id: str, parent: str, name: str, start_s: int, end_s: int, **extra: Any
) -> dict[str, Any]:
    base = 1_700_000_000
    return {
        "spanId": span_id,
        "parentSpanId": parent,
        "name": name,
        "startTimeUnixNano": str((base + start_s) * 10**9),
        "endTimeUnixNano": str((base + end_s) * 10**9),
        **extra,
    }


def _int(key: str, value: int) -> dict[str, Any]:
    return {"key": key, "value": {"intValue": str(value)}}


def _str(key: str, value: str) -> dict[str, Any]:
    return {"key": key, "value": {"stringValue": value}}


def test_rollups_are_right_after_the_request_with_the_root(server):
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    root, llm1, llm2 = "00f067aa0ba902b7", "00f067aa0ba902b8", "00f067aa0ba902b9"
    first = _split_request(
        trace_id,
        [
            _json_span(
                llm1,
                root,
                "llm-1",
                1,
                3,
                attributes=[
                    _str("openinference.span.kind", "LLM"),
                    _str("input.value", "first question"),
                    _int("llm.token_count.prompt", 10),
                    _int("llm.token_count.completion", 2),
                ],
                status={"code": 2, "message": "rate limited"},
            ),
        ],
    )
    second = _split_request(
        trace_id,
        [
            _json_span(
                llm2,
                root,
                "llm-2",
                4,
                6,
                attributes=[
                    _int("llm.token_count.prompt", 7),
                    _int("llm.token_count.completion", 3),
                ],
            ),
            _json_span(
                root,
                "",
                "pipeline",
                0,
                8,
                attributes=[_str("input.value", "question"), _str("output.value", "answer")],
                status={"code": 1},
            ),
        ],
    )
    client = tm.TracemarkClient(server.url)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.post("/v1/traces", json=first).json() == {}
        partial = client.get_trace(trace_id).info
        assert (partial.name, partial.status, partial.span_count) == ("llm-1", "ERROR", 1)
        assert http.post("/v1/traces", json=second).json() == {}
        info = client.get_trace(trace_id).info
        assert http.post("/v1/traces", json=second).status_code == 200  # a retried request
        assert client.get_trace(trace_id).info.to_dict() == info.to_dict()
    assert (info.name, info.status, info.span_count) == ("pipeline", "OK", 3)
    assert (info.timestamp_ms, info.execution_time_ms) == (1_700_000_000_000, 8_000)
    assert (info.request_preview, info.response_preview) == ('"question"', '"answer"')
    assert (info.input_tokens, info.output_tokens, info.total_tokens) == (17, 5, 22)
    trace = client.get_trace(trace_id)
    assert [c["name"] for c in span_tree(trace)["children"]] == ["llm-1", "llm-2"]


def test_gzip_and_deflate_exports(sqlite_only, make_provider):
    client = tm.TracemarkClient(sqlite_only.url)
    for compression in (Compression.Gzip, Compression.Deflate):
        provider = make_provider(sqlite_only.url, compression=compression)
        with provider.get_tracer("t").start_as_current_span(f"{compression.value}-root") as span:
            span.set_attribute("input.value", "x" * 10_000)
        assert provider.force_flush(10)
        trace = client.get_trace(_hex(span))
        assert trace.info.name == f"{compression.value}-root"
        assert trace.root.inputs == "x" * 10_000


# -- OTLP JSON ---------------------------------------------------------------------------


def _otlp_json(spans: list[Any]) -> dict[str, Any]:
    """The OTLP/JSON body for SDK spans: protobuf's JSON mapping with hex ids, as the spec says."""
    data = json_format.MessageToDict(encode_spans(spans))
    for resource_spans in data["resourceSpans"]:
        for scope_spans in resource_spans["scopeSpans"]:
            for span in scope_spans["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex().upper()
    return data


def test_otlp_json_from_sdk_spans(server):
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "otlp-tests"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    trace_id = _agent_run(provider)
    body = _otlp_json(memory.get_finished_spans())
    provider.shutdown()
    assert isinstance(
        body["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["startTimeUnixNano"], str
    )

    response = httpx.post(f"{server.url}/v1/traces", json=body, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {}
    _check_agent_trace(tm.TracemarkClient(server.url).get_trace(trace_id))


def test_otlp_json_as_written_by_hand_snake_case_and_gzip(http):
    body = {
        "resource_spans": [
            {
                "resource": {"attributes": [_str("service.name", "curl")]},
                "scope_spans": [
                    {
                        "scope": {"name": "handmade"},
                        "spans": [
                            {
                                "trace_id": "5b8efff798038103d269b633813fc60c",
                                "span_id": "eee19b7ec3c1b174",
                                "parent_span_id": "",
                                "name": "retrieve",
                                "kind": 3,
                                "start_time_unix_nano": 1_700_000_000_000_000_000,
                                "end_time_unix_nano": "1700000000250000000",
                                "attributes": [
                                    _str("openinference.span.kind", "RETRIEVER"),
                                    _str("input.value", "refund policy"),
                                    _str("retrieval.documents.0.document.id", "doc-1"),
                                    _str("retrieval.documents.0.document.content", "30 days"),
                                    {
                                        "key": "retrieval.documents.0.document.score",
                                        "value": {"doubleValue": 0.9},
                                    },
                                    {
                                        "key": "tags",
                                        "value": {
                                            "arrayValue": {
                                                "values": [
                                                    {"stringValue": "a"},
                                                    {"boolValue": True},
                                                ]
                                            }
                                        },
                                    },
                                    {
                                        "key": "config",
                                        "value": {
                                            "kvlistValue": {
                                                "values": [
                                                    {"key": "k", "value": {"intValue": "3"}},
                                                    {"key": "raw", "value": {"bytesValue": "AAE="}},
                                                ]
                                            }
                                        },
                                    },
                                ],
                                "links": [
                                    {
                                        "traceId": "0af7651916cd43dd8448eb211c80319c",
                                        "spanId": "b7ad6b7169203331",
                                    }
                                ],
                                "unknownField": "ignored",
                            }
                        ],
                    }
                ],
            }
        ]
    }
    response = http.post(
        "/v1/traces",
        content=gzip.compress(orjson.dumps(body)),
        headers={**JSON, "content-encoding": "gzip"},
    )
    assert response.status_code == 200, response.text
    trace = tm.TracemarkClient(str(http.base_url)).get_trace("5b8efff798038103d269b633813fc60c")
    span = trace.root
    assert (span.name, span.span_type, span.duration_ns) == ("retrieve", "RETRIEVER", 250_000_000)
    assert span.inputs == "refund policy"
    assert span.outputs == [{"page_content": "30 days", "metadata": {"score": 0.9}, "id": "doc-1"}]
    assert span.attributes["tags"] == ["a", True]
    assert span.attributes["config"] == {"k": 3, "raw": "AAE="}
    assert span.attributes["otel.span.kind"] == "CLIENT"
    assert span.attributes["otel.links"] == [
        {
            "trace_id": "0af7651916cd43dd8448eb211c80319c",
            "span_id": "b7ad6b7169203331",
            "attributes": {},
        }
    ]
    assert trace.info.metadata == {"service.name": "curl"}


def test_openllmetry_attributes_are_mapped(http):
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    body = _split_request(
        trace_id,
        [
            _json_span(
                "b7ad6b7169203331",
                "",
                "support.workflow",
                0,
                4,
                attributes=[
                    _str("traceloop.span.kind", "workflow"),
                    _str("traceloop.entity.input", '{"ticket": 7}'),
                    _str("traceloop.entity.output", '"closed"'),
                ],
            ),
            _json_span(
                "b7ad6b7169203332",
                "b7ad6b7169203331",
                "openai.chat",
                1,
                3,
                attributes=[
                    _str("llm.request.type", "chat"),
                    _str("gen_ai.system", "OpenAI"),
                    _str("gen_ai.request.model", "gpt-4o"),
                    _str("gen_ai.prompt.0.role", "user"),
                    _str("gen_ai.prompt.0.content", "close ticket 7"),
                    _str("gen_ai.completion.0.role", "assistant"),
                    _str("gen_ai.completion.0.content", "done"),
                    _int("gen_ai.usage.prompt_tokens", 9),
                    _int("gen_ai.usage.completion_tokens", 1),
                    _int("llm.usage.total_tokens", 10),
                ],
            ),
        ],
    )
    assert http.post("/v1/traces", json=body).status_code == 200
    trace = tm.TracemarkClient(str(http.base_url)).get_trace(trace_id)
    assert span_tree(trace) == {
        "name": "support.workflow",
        "span_type": "CHAIN",
        "status": "UNSET",
        "inputs": {"ticket": 7},
        "outputs": "closed",
        "children": [
            {
                "name": "openai.chat",
                "span_type": "CHAT_MODEL",
                "status": "UNSET",
                "inputs": [{"role": "user", "content": "close ticket 7"}],
                "outputs": [{"role": "assistant", "content": "done"}],
            }
        ],
    }
    chat = trace.search_spans(name="openai.chat")[0]
    assert chat.attributes["gen_ai.provider.name"] == "OpenAI"
    info = trace.info
    assert (info.input_tokens, info.output_tokens, info.total_tokens) == (9, 1, 10)
    assert info.cost is not None and info.cost > 0


def test_tracemark_otlp_exporter_round_trips_types_tags_and_metadata(http):
    from tracemark.tracing import Tracer
    from tracemark.tracing.otel import OtlpExporter

    url = f"{http.base_url}/v1/traces"
    tracer = Tracer(enabled=True, async_export=False, exporters=[OtlpExporter(url)])
    try:
        with tracer.start_span("answer", span_type="AGENT", inputs={"q": "hi"}) as root:
            tracer.update_current_trace(tags={"env": "prod"}, metadata={"app_version": "1.4"})
            with tracer.start_span("search", span_type="RETRIEVER") as child:
                child.set_outputs([{"page_content": "doc", "metadata": {}, "id": "1"}])
            root.set_outputs("hello")
    finally:
        tracer.shutdown(timeout=10)
    trace = tm.TracemarkClient(str(http.base_url)).get_trace(root.trace_id)
    assert trace.info.tags == {"env": "prod"}
    assert trace.info.metadata == {"app_version": "1.4", "service.name": "tracemark"}
    assert span_tree(trace) == {
        "name": "answer",
        "span_type": "AGENT",
        "status": "OK",
        "inputs": {"q": "hi"},
        "outputs": "hello",
        "children": [
            {
                "name": "search",
                "span_type": "RETRIEVER",
                "status": "OK",
                "inputs": None,
                "outputs": [{"page_content": "doc", "metadata": {}, "id": "1"}],
            }
        ],
    }
    assert not any(k.startswith("tracemark.trace.") for k in trace.root.attributes)


# -- choosing the experiment -------------------------------------------------------------


def test_experiment_from_headers_and_resource_attributes(sqlite_only, make_provider):
    url = sqlite_only.url
    client = tm.TracemarkClient(url)
    existing = client.create_experiment("existing")

    def send(name: str, **kwargs: Any) -> str:
        provider = make_provider(url, **kwargs)
        with provider.get_tracer("t").start_as_current_span(name) as span:
            pass
        assert provider.force_flush(10)
        return _hex(span)

    by_name = send("by-name", headers={"x-tracemark-experiment-name": "otel-app"})
    created = client.get_experiment_by_name("otel-app")
    assert created is not None
    assert client.get_trace(by_name).info.experiment_id == created.experiment_id
    by_id = send("by-id", headers={"x-tracemark-experiment-id": existing})
    assert client.get_trace(by_id).info.experiment_id == existing
    again = send("again", headers={"x-tracemark-experiment-name": "otel-app"})
    assert client.get_trace(again).info.experiment_id == created.experiment_id
    from_resource = send("resource", resource={"tracemark.experiment_name": "from-resource"})
    resource_experiment = client.get_experiment_by_name("from-resource")
    assert client.get_trace(from_resource).info.experiment_id == resource_experiment.experiment_id
    resource_id = send("resource-id", resource={"tracemark.experiment_id": existing})
    assert client.get_trace(resource_id).info.experiment_id == existing
    header_wins = send(
        "header-wins",
        headers={"x-tracemark-experiment-id": existing},
        resource={"tracemark.experiment_name": "ignored"},
    )
    assert client.get_trace(header_wins).info.experiment_id == existing
    assert client.get_experiment_by_name("ignored") is None
    default = send("default")
    assert client.get_trace(default).info.experiment_id == "0"
    names = {i.name for i in client.search_traces([created.experiment_id])}
    assert names == {"by-name", "again"}


def test_experiment_name_header_may_be_utf8(http):
    body = _split_request(
        "5b8efff798038103d269b633813fc60c", [_json_span("eee19b7ec3c1b174", "", "x", 0, 1)]
    )
    headers = {"x-tracemark-experiment-name": "café-bot".encode()}
    assert http.post("/v1/traces", json=body, headers=headers).status_code == 200
    client = tm.TracemarkClient(str(http.base_url))
    experiment = client.get_experiment_by_name("café-bot")
    assert experiment is not None
    assert client.get_trace("5b8efff798038103d269b633813fc60c").info.experiment_id == (
        experiment.experiment_id
    )


def test_bearer_token_is_required_when_configured(start_server, make_provider):
    server = start_server(token="s3cret")
    refused = make_provider(server.url, batch=False)
    with refused.get_tracer("t").start_as_current_span("refused") as lost:
        pass
    accepted = make_provider(server.url, batch=False, headers={"authorization": "Bearer s3cret"})
    with accepted.get_tracer("t").start_as_current_span("accepted") as kept:
        pass
    from tracemark.store.registry import get_store

    store = get_store(server.db_uri)
    assert store.get_trace(_hex(kept)).info.name == "accepted"
    with pytest.raises(tm.exceptions.NotFoundError):
        store.get_trace(_hex(lost))
    response = httpx.post(f"{server.url}/v1/traces", content=b"", headers=PROTOBUF)
    _error(response, 401, "UNAUTHENTICATED")


def test_unusable_experiment_headers_are_refused(http):
    body = _split_request(
        "5b8efff798038103d269b633813fc60c", [_json_span("eee19b7ec3c1b174", "", "x", 0, 1)]
    )
    response = http.post("/v1/traces", json=body, headers={"x-tracemark-experiment-id": "424242"})
    assert "424242" in _error(response, 404, "RESOURCE_DOES_NOT_EXIST")["message"]
    response = http.post("/v1/traces", json=body, headers={"x-tracemark-experiment-id": "abc"})
    assert _error(response, 400, "INVALID_PARAMETER_VALUE")["field"] == "x-tracemark-experiment-id"
    client = tm.TracemarkClient(str(http.base_url))
    gone = client.create_experiment("gone")
    client.delete_experiment(gone)
    response = http.post("/v1/traces", json=body, headers={"x-tracemark-experiment-name": "gone"})
    assert "deleted" in _error(response, 400, "INVALID_PARAMETER_VALUE")["message"]
    assert client.search_traces(["0", gone]) == []


def test_partial_success_names_the_rejected_spans(http):
    good, bad = "5b8efff798038103d269b633813fc60c", "0af7651916cd43dd8448eb211c80319c"
    body = {
        "resourceSpans": [
            {
                "resource": {"attributes": [_str("tracemark.experiment_id", "987654")]},
                "scopeSpans": [
                    {
                        "spans": [
                            {**_json_span("eee19b7ec3c1b174", "", "lost", 0, 1), "traceId": bad}
                        ]
                    }
                ],
            },
            {
                "resource": {},
                "scopeSpans": [
                    {
                        "spans": [
                            {**_json_span("eee19b7ec3c1b175", "", "kept", 0, 1), "traceId": good},
                            {"traceId": good, "spanId": "eee19b7ec3c1b176", "name": "no start"},
                        ]
                    }
                ],
            },
        ]
    }
    nul_name = {
        "resource": {"attributes": [_str("tracemark.experiment_name", "bad\u0000name")]},
        "scopeSpans": [
            {"spans": [{**_json_span("eee19b7ec3c1b178", "", "nul", 0, 1), "traceId": bad}]}
        ],
    }
    body["resourceSpans"].append(nul_name)
    response = http.post("/v1/traces", json=body)
    assert response.status_code == 200, response.text
    partial = response.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "3"
    assert "NUL" in partial["errorMessage"]
    assert "987654" in partial["errorMessage"]
    assert (
        "eee19b7ec3c1b176" in partial["errorMessage"] and "no start time" in partial["errorMessage"]
    )
    client = tm.TracemarkClient(str(http.base_url))
    assert client.get_trace(good).info.span_count == 1
    with pytest.raises(tm.exceptions.NotFoundError):
        client.get_trace(bad)

    # The same answer in protobuf.
    request = _protobuf_request(bad, "eee19b7ec3c1b177", experiment_id="987654")
    response = http.post("/v1/traces", content=request.SerializeToString(), headers=PROTOBUF)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-protobuf"
    answer = ExportTraceServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_spans == 1
    assert "987654" in answer.partial_success.error_message


def _protobuf_request(
    trace_id: str,
    span_id: str,
    *,
    experiment_id: str | None = None,
    trace_bytes: bytes | None = None,
) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    if experiment_id is not None:
        kv = resource_spans.resource.attributes.add()
        kv.key, kv.value.string_value = "tracemark.experiment_id", experiment_id
    span = resource_spans.scope_spans.add().spans.add()
    span.trace_id = trace_bytes if trace_bytes is not None else bytes.fromhex(trace_id)
    span.span_id = bytes.fromhex(span_id)
    span.name = "pb"
    span.start_time_unix_nano = 1_700_000_000_000_000_000
    span.end_time_unix_nano = 1_700_000_001_000_000_000
    return request


def test_protobuf_response_is_an_export_trace_service_response(http):
    request = _protobuf_request("5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174")
    response = http.post("/v1/traces", content=request.SerializeToString(), headers=PROTOBUF)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-protobuf"
    assert not ExportTraceServiceResponse.FromString(response.content).HasField("partial_success")
    empty = http.post("/v1/traces", content=b"", headers=PROTOBUF)
    assert empty.status_code == 200  # an empty request is a valid one
    assert http.post("/v1/traces", json={}).json() == {}


# -- bad input ---------------------------------------------------------------------------


def test_bad_bodies_get_a_json_error_naming_the_problem(http):
    body = _error(
        http.post("/v1/traces", content=b"garbage", headers=PROTOBUF),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert "protobuf" in body["message"] and body["field"] == "body"
    body = _error(
        http.post("/v1/traces", content=b'{"resourceSpans": [', headers=JSON),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert "not valid JSON" in body["message"]
    body = _error(
        http.post("/v1/traces", content=b"[1, 2]", headers=JSON), 400, "INVALID_PARAMETER_VALUE"
    )
    assert "JSON object" in body["message"]
    body = _error(
        http.post("/v1/traces", json={"resourceSpans": {"a": 1}}), 400, "INVALID_PARAMETER_VALUE"
    )
    assert body["field"] == "resourceSpans"
    span = _json_span("eee19b7ec3c1b174", "", "x", 0, 1)
    span["startTimeUnixNano"] = "yesterday"
    body = _error(
        http.post("/v1/traces", json=_split_request("5b8efff798038103d269b633813fc60c", [span])),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert "startTimeUnixNano" in body["message"]
    response = http.post("/v1/traces", content=b"garbage", headers={"content-type": "text/plain"})
    assert "text/plain" in _error(response, 415, "UNSUPPORTED_MEDIA_TYPE")["message"]
    _error(http.post("/v1/traces", content=b"garbage"), 415, "UNSUPPORTED_MEDIA_TYPE")
    response = http.post("/v1/traces", content=b"{}", headers={**JSON, "content-encoding": "br"})
    assert "br" in _error(response, 415, "UNSUPPORTED_MEDIA_TYPE")["message"]
    response = http.post(
        "/v1/traces", content=b"{}", headers={**JSON, "content-encoding": "deflate"}
    )
    _error(response, 400, "INVALID_PARAMETER_VALUE")
    bomb = zlib.compress(b" " * (65 * 1024 * 1024))
    response = http.post(
        "/v1/traces", content=bomb, headers={**JSON, "content-encoding": "deflate"}
    )
    _error(response, 413, "REQUEST_TOO_LARGE")
    response = http.post(
        "/v1/traces", content=b"not gzip", headers={**JSON, "content-encoding": "gzip"}
    )
    _error(response, 400, "INVALID_PARAMETER_VALUE")


@pytest.mark.parametrize(
    ("trace_id", "span_id", "parent", "field", "words"),
    [
        ("5b8efff798038103d269b633813fc6", "eee19b7ec3c1b174", "", "traceId", "16 bytes"),
        ("5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b1", "", "spanId", "8 bytes"),
        ("5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174", "eee1", "parentSpanId", "8 bytes"),
        ("0" * 32, "eee19b7ec3c1b174", "", "traceId", "all zeros"),
        ("", "eee19b7ec3c1b174", "", "traceId", "16 bytes"),
        ("5b8efff798038103d269b633813fc60g", "eee19b7ec3c1b174", "", "traceId", "hex"),
        ("AAECAwQFBgcICQoLDA0ODw==", "eee19b7ec3c1b174", "", "traceId", "hex"),
    ],
)
def test_bad_ids_in_json_refuse_the_whole_request(http, trace_id, span_id, parent, field, words):
    good = _json_span("eee19b7ec3c1b170", "", "fine", 0, 1)
    bad = _json_span(span_id, parent, "broken", 0, 1)
    body = {
        "resourceSpans": [
            {
                "scopeSpans": [
                    {
                        "spans": [
                            {**good, "traceId": "0af7651916cd43dd8448eb211c80319c"},
                            {**bad, "traceId": trace_id},
                        ]
                    }
                ]
            }
        ]
    }
    body = _error(http.post("/v1/traces", json=body), 400, "INVALID_PARAMETER_VALUE")
    assert body["field"] == f"resourceSpans[0].scopeSpans[0].spans[1].{field}"
    assert words in body["message"]
    # Nothing of a refused request is written.
    with pytest.raises(tm.exceptions.NotFoundError):
        tm.TracemarkClient(str(http.base_url)).get_trace("0af7651916cd43dd8448eb211c80319c")


def test_bad_ids_in_protobuf_refuse_the_whole_request(http):
    request = _protobuf_request("", "eee19b7ec3c1b174", trace_bytes=b"\x01\x02\x03\x04\x05")
    response = http.post("/v1/traces", content=request.SerializeToString(), headers=PROTOBUF)
    body = _error(response, 400, "INVALID_PARAMETER_VALUE")
    assert body["field"] == "resourceSpans[0].scopeSpans[0].spans[0].traceId"
    assert "got 5 bytes" in body["message"]


def test_odd_attribute_shapes_never_fail_the_request(server):
    span = _json_span(
        "eee19b7ec3c1b174",
        "",
        "odd",
        0,
        1,
        attributes=[
            _str("llm.input_messages.0", "flat"),
            _str("llm.input_messages.0.message.role", "deeper"),
            _str("llm.output_messages.0.message.x", "a"),
            _str("llm.output_messages.0.message.1", "b"),
            {"key": "gen_ai.usage.input_tokens", "value": {"doubleValue": "Infinity"}},
            {"key": "gen_ai.usage.output_tokens", "value": {"intValue": "9223372036854775807"}},
            _str("tracemark.trace.tag.bad key!", "v"),
            _str("tracemark.trace.tag.long", "x" * 70_000),
            _str("tracemark.trace.tag.fine", "yes"),
            {"key": "empty", "value": {}},
            _str("text", "nul \u0000 inside"),
        ],
        events=[{"name": "e", "timeUnixNano": "18446744073709551615"}],
        status={"code": 9},
    )
    parts = _json_span(
        "eee19b7ec3c1b175",
        "eee19b7ec3c1b174",
        "parts",
        0,
        1,
        attributes=[
            _str("gen_ai.input.messages", '[{"role": "user", "parts": [7, {"type": "x"}]}]'),
            _str("gen_ai.system_instructions", "not a list"),
        ],
    )
    trace_id = "5b8efff798038103d269b633813fc60c"
    response = httpx.post(
        f"{server.url}/v1/traces", json=_split_request(trace_id, [span, parts]), timeout=30
    )
    assert response.status_code == 200, response.text
    trace = tm.TracemarkClient(server.url).get_trace(trace_id)
    assert trace.root.inputs == ["flat"]
    assert trace.root.outputs == [{"x": "a", "1": "b"}]
    [parts] = trace.root.children
    assert parts.inputs == [
        {"role": "system", "content": "not a list"},
        {"role": "user", "content": [7, {"type": "x"}]},
    ]
    assert trace.root.attributes["tracemark.trace.tag.bad key!"] == "v"
    assert len(trace.root.attributes["tracemark.trace.tag.long"]) == 70_000
    assert trace.info.tags == {"fine": "yes"}
    assert trace.root.attributes["empty"] is None
    assert trace.root.attributes["text"] == "nul \u0000 inside"
    assert trace.info.input_tokens is None


class _BrokenStore:
    """A real SQLite store whose trace writes fail, as when the database is down."""

    def __init__(self, store: Any, error: Exception) -> None:
        self._store = store
        self._error = error

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def log_traces(self, traces: Any) -> None:
        raise self._error


@pytest.mark.parametrize(
    "error", [StoreError("database is down"), RuntimeError("disk I/O error")], ids=repr
)
def test_a_failing_store_answers_503_so_exporters_retry(tmp_path, error):
    from starlette.testclient import TestClient

    from tracemark.server.app import create_app
    from tracemark.server.settings import ServerSettings
    from tracemark.store.sql.store import SqlStore

    store = SqlStore(f"sqlite:///{tmp_path / 'db.sqlite'}", artifact_root=str(tmp_path / "a"))
    settings = ServerSettings(allowed_hosts=("testserver",))
    app = create_app(settings, store=_BrokenStore(store, error))
    body = _split_request(
        "5b8efff798038103d269b633813fc60c", [_json_span("eee19b7ec3c1b174", "", "x", 0, 1)]
    )
    try:
        with TestClient(app) as client:
            response = client.post("/v1/traces", json=body)
    finally:
        store.close()
    _error(response, 503, "TEMPORARILY_UNAVAILABLE")
    assert response.headers["retry-after"] == "1"


def test_otlp_endpoint_is_in_the_openapi_spec(http):
    spec = http.get("/openapi.json").json()
    operation = spec["paths"]["/v1/traces"]["post"]
    assert set(operation["requestBody"]["content"]) == {
        "application/x-protobuf",
        "application/json",
    }


# -- a real OpenInference instrumentation of the real openai client ----------------------


@pytest.fixture
def openai_instrumented(server, make_provider) -> Iterator[TracerProvider]:
    from openinference.instrumentation.openai import OpenAIInstrumentor

    provider = make_provider(server.url, headers={"x-tracemark-experiment-name": "openai-app"})
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    yield provider
    instrumentor.uninstrument()


def test_openinference_openai_chat_is_a_native_llm_trace(server, openai_instrumented):
    import openai

    messages = [
        {"role": "system", "content": "Answer in one sentence."},
        {"role": "user", "content": "What is the capital of France?"},
    ]
    tracer = openai_instrumented.get_tracer("support-bot")
    answer = "Paris is the capital of France."
    with (
        FakeLLMServer() as fake,
        openai.OpenAI(base_url=fake.openai_url, api_key="sk-test", max_retries=0) as llm,
    ):
        fake.reply(text=answer, input_tokens=24, output_tokens=7)
        fake.reply(text=answer, input_tokens=9, output_tokens=7)
        with tracer.start_as_current_span("answer") as root:
            root.set_attribute("openinference.span.kind", "CHAIN")
            root.set_attribute("input.value", "What is the capital of France?")
            reply = llm.chat.completions.create(model="gpt-4o-mini", messages=messages)
            root.set_attribute("output.value", reply.choices[0].message.content)
        with tracer.start_as_current_span("stream") as streamed:
            stream = llm.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": "Say hi"}],
                stream=True,
                stream_options={"include_usage": True},
            )
            text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert fake.requests[0].body["messages"] == messages
    assert text == answer
    assert openai_instrumented.force_flush(10)

    client = tm.TracemarkClient(server.url)
    experiment = client.get_experiment_by_name("openai-app")
    trace = client.get_trace(_hex(root))
    assert trace.info.experiment_id == experiment.experiment_id
    [call] = trace.root.children
    assert call.span_type in ("LLM", "CHAT_MODEL")
    assert call.inputs["messages"] == messages
    assert call.inputs["model"] == "gpt-4o-mini"
    assert call.outputs["choices"][0]["message"]["content"] == answer
    assert call.outputs["choices"][0]["message"]["role"] == "assistant"
    assert call.attributes["gen_ai.request.model"] == "gpt-4o-mini"
    assert call.attributes["gen_ai.provider.name"] == "openai"
    assert call.attributes["otel.scope.name"] == "openinference.instrumentation.openai"
    info = trace.info
    assert (info.input_tokens, info.output_tokens, info.total_tokens) == (24, 7, 31)
    assert info.cost is not None and info.cost > 0
    assert info.name == "answer"
    assert info.request_preview == '"What is the capital of France?"'
    assert info.response_preview == f'"{answer}"'

    streamed_trace = client.get_trace(_hex(streamed))
    [chunked] = streamed_trace.root.children
    assert chunked.inputs["messages"] == [{"role": "user", "content": "Say hi"}]
    assert chunked.outputs["choices"][0]["message"]["content"] == answer
    assert (streamed_trace.info.input_tokens, streamed_trace.info.output_tokens) == (9, 7)
