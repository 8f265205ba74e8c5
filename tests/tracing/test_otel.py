from __future__ import annotations

import gzip
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tracemark.testing import InMemoryExporter, span_tree
from tracemark.tracing import Tracer
from tracemark.tracing.otel import OtlpExporter, TracemarkSpanProcessor, map_otel_attributes

otel_sdk = pytest.importorskip("opentelemetry.sdk.trace")


@pytest.fixture
def provider() -> Iterator[object]:
    p = otel_sdk.TracerProvider()
    yield p
    p.shutdown()


def test_tracemark_root_joins_the_active_otel_span(
    tracer: Tracer, exporter: InMemoryExporter, provider: object
) -> None:
    otel_tracer = provider.get_tracer("test")

    @tracer.trace
    def step() -> int:
        return 1

    with otel_tracer.start_as_current_span("http-request") as otel_span:
        step()
    ctx = otel_span.get_span_context()
    [trace] = exporter.traces
    assert trace.trace_id == f"{ctx.trace_id:032x}"
    assert trace.root.parent_id == f"{ctx.span_id:016x}"
    assert trace.root.name == "step"


def test_no_join_without_a_recording_otel_span(tracer: Tracer, exporter: InMemoryExporter) -> None:
    from opentelemetry import trace as otel_trace

    with tracer.start_span("alone") as span:
        pass
    assert otel_trace.get_current_span().get_span_context().is_valid is False
    assert exporter.traces[0].root.parent_id is None
    assert span.trace_id == "00000000000000000000000000000001"


def test_processor_records_otel_spans_with_genai_and_openinference_mapping(
    tracer: Tracer, exporter: InMemoryExporter, provider: object
) -> None:
    provider.add_span_processor(TracemarkSpanProcessor(tracer))
    otel_tracer = provider.get_tracer("instrumentation")

    with otel_tracer.start_as_current_span("agent") as agent:
        agent.set_attribute("openinference.span.kind", "AGENT")
        agent.set_attribute("input.value", '{"question": "hi"}')
        agent.set_attribute("input.mime_type", "application/json")
        agent.set_attribute("session.id", "s-1")
        with otel_tracer.start_as_current_span("chat gpt-4o") as chat:
            chat.set_attributes(
                {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.request.model": "gpt-4o",
                    "gen_ai.usage.input_tokens": 12,
                    "gen_ai.usage.output_tokens": 4,
                    "gen_ai.input.messages": '[{"role": "user", "content": "hi"}]',
                    "gen_ai.output.messages": '[{"role": "assistant", "content": "hello"}]',
                }
            )
        with otel_tracer.start_as_current_span("llm") as llm:
            llm.set_attributes(
                {
                    "openinference.span.kind": "LLM",
                    "llm.model_name": "claude",
                    "llm.token_count.prompt": 3,
                    "llm.token_count.completion": 2,
                    "llm.input_messages.0.message.role": "user",
                    "llm.input_messages.0.message.content": "yo",
                    "llm.output_messages.0.message.role": "assistant",
                    "llm.output_messages.0.message.content": "hey",
                }
            )
        try:
            with otel_tracer.start_as_current_span("tool") as tool:
                tool.set_attribute("gen_ai.operation.name", "execute_tool")
                raise RuntimeError("tool broke")
        except RuntimeError:
            pass
        agent.set_attribute("output.value", "bye")

    [trace] = exporter.traces
    assert span_tree(trace) == {
        "name": "agent",
        "span_type": "AGENT",
        "status": "UNSET",
        "inputs": {"question": "hi"},
        "outputs": "bye",
        "children": [
            {
                "name": "chat gpt-4o",
                "span_type": "CHAT_MODEL",
                "status": "UNSET",
                "inputs": [{"role": "user", "content": "hi"}],
                "outputs": [{"role": "assistant", "content": "hello"}],
            },
            {
                "name": "llm",
                "span_type": "LLM",
                "status": "UNSET",
                "inputs": [{"role": "user", "content": "yo"}],
                "outputs": [{"role": "assistant", "content": "hey"}],
            },
            {
                "name": "tool",
                "span_type": "TOOL",
                "status": "ERROR",
                "inputs": None,
                "outputs": None,
            },
        ],
    }
    info = trace.info
    assert (info.input_tokens, info.output_tokens, info.total_tokens) == (15, 6, 21)
    assert info.metadata == {"session_id": "s-1"}
    assert info.trace_id == f"{agent.get_span_context().trace_id:032x}"
    llm_span = trace.search_spans(name="llm")[0]
    assert llm_span.attributes["gen_ai.request.model"] == "claude"
    assert "llm.input_messages.0.message.role" not in llm_span.attributes
    tool_span = trace.search_spans(name="tool")[0]
    assert tool_span.events[0].attributes["exception.type"] == "RuntimeError"


def test_otel_spans_inside_a_tracemark_span_nest_under_it(
    tracer: Tracer, exporter: InMemoryExporter, provider: object
) -> None:
    provider.add_span_processor(TracemarkSpanProcessor(tracer))
    otel_tracer = provider.get_tracer("openai-instrumentation")

    @tracer.trace(span_type="AGENT")
    def agent() -> str:
        with otel_tracer.start_as_current_span("ChatCompletion") as span:
            span.set_attribute("openinference.span.kind", "LLM")
            span.set_attribute("output.value", "hello")
        return "done"

    agent()
    [trace] = exporter.traces
    tree = span_tree(trace)
    assert tree["name"] == "agent"
    assert [(c["name"], c["span_type"], c["outputs"]) for c in tree["children"]] == [
        ("ChatCompletion", "LLM", "hello")
    ]
    assert {s.trace_id for s in trace.spans} == {trace.trace_id}


def test_tracemark_spans_inside_processed_otel_spans_share_one_trace(
    tracer: Tracer, exporter: InMemoryExporter, provider: object
) -> None:
    provider.add_span_processor(TracemarkSpanProcessor(tracer))
    otel_tracer = provider.get_tracer("web")

    @tracer.trace
    def handler() -> int:
        return 1

    with otel_tracer.start_as_current_span("GET /chat"):
        handler()
        handler()
    [trace] = exporter.traces
    tree = span_tree(trace)
    assert tree["name"] == "GET /chat"
    assert [c["name"] for c in tree["children"]] == ["handler", "handler"]


def test_map_otel_attributes_handles_openllmetry_prompts_and_aliases() -> None:
    mapped = map_otel_attributes(
        {
            "llm.request.type": "chat",
            "gen_ai.system": "openai",
            "gen_ai.prompt.0.role": "user",
            "gen_ai.prompt.0.content": "hi",
            "gen_ai.completion.0.role": "assistant",
            "gen_ai.completion.0.content": "hello",
            "gen_ai.usage.prompt_tokens": 5,
            "gen_ai.usage.completion_tokens": 1,
            "tags": ("a", "b"),
        }
    )
    assert mapped.span_type == "CHAT_MODEL"
    assert mapped.inputs == [{"role": "user", "content": "hi"}]
    assert mapped.outputs == [{"role": "assistant", "content": "hello"}]
    assert mapped.attributes["gen_ai.usage.input_tokens"] == 5
    assert mapped.attributes["gen_ai.usage.output_tokens"] == 1
    assert mapped.attributes["gen_ai.provider.name"] == "openai"
    assert mapped.attributes["tags"] == ["a", "b"]
    assert not any(k.startswith("gen_ai.prompt.") for k in mapped.attributes)


def test_map_otel_attributes_without_hints() -> None:
    mapped = map_otel_attributes({"http.method": "GET"})
    assert (mapped.span_type, mapped.has_inputs, mapped.has_outputs) == (None, False, False)
    assert mapped.attributes == {"http.method": "GET"}


class _OtlpSink:
    """A loopback HTTP server collecting OTLP/HTTP protobuf trace requests."""

    def __init__(self) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        sink = self
        self.requests: list[ExportTraceServiceRequest] = []
        self.paths: list[str] = []
        self.received = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                encoding = self.headers.get("Content-Encoding", "")
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                sink.requests.append(request)
                sink.paths.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()
                sink.received.set()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/v1/traces"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sink() -> Iterator[_OtlpSink]:
    s = _OtlpSink()
    yield s
    s.close()


def test_otlp_exporter_sends_tracemark_spans(tracer: Tracer, sink: _OtlpSink) -> None:
    tracer.configure(exporters=[OtlpExporter(sink.url)])

    @tracer.trace(span_type="TOOL")
    def lookup(order_id: str) -> dict[str, str]:
        return {"status": "shipped"}

    @tracer.trace(span_type="AGENT")
    def agent(q: str) -> str:
        tracer.update_current_trace(tags={"env": "prod"}, session_id="s-1")
        span = tracer.get_current_active_span()
        span.set_attributes({"gen_ai.usage.input_tokens": 3, "nested": {"a": 1}})
        return lookup("o-1")["status"]

    agent("where?")
    assert sink.received.wait(10)
    assert sink.paths == ["/v1/traces"]
    [request] = sink.requests
    [resource_spans] = request.resource_spans
    spans = [s for scope in resource_spans.scope_spans for s in scope.spans]
    by_name = {s.name: s for s in spans}
    assert set(by_name) == {"agent", "lookup"}
    root, child = by_name["agent"], by_name["lookup"]
    assert child.parent_span_id == root.span_id
    assert root.trace_id.hex() == "00000000000000000000000000000001"
    attrs = {kv.key: kv.value for kv in root.attributes}
    assert attrs["tracemark.span.type"].string_value == "AGENT"
    assert attrs["input.value"].string_value == '{"q":"where?"}'
    assert attrs["gen_ai.usage.input_tokens"].int_value == 3
    assert attrs["nested"].string_value == '{"a":1}'
    assert attrs["tracemark.trace.tag.env"].string_value == "prod"
    assert attrs["session.id"].string_value == "s-1"
    assert root.start_time_unix_nano == 1_000_000_000
    service = {kv.key: kv.value.string_value for kv in resource_spans.resource.attributes}
    assert service["service.name"] == "tracemark"


def test_otlp_endpoint_env_adds_the_otlp_exporter_to_the_defaults(
    monkeypatch: pytest.MonkeyPatch, sink: _OtlpSink
) -> None:
    from tracemark.tracing._export import StoreExporter, default_exporters

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", sink.url)
    exporters = default_exporters()
    assert [type(e) for e in exporters] == [StoreExporter, OtlpExporter]
    for e in exporters:
        getattr(e, "shutdown", lambda: None)()
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    assert [type(e) for e in default_exporters()] == [StoreExporter]


def test_roundtrip_through_otlp_conversion_and_mapping(tracer: Tracer) -> None:
    from tracemark.tracing.otel import to_readable_spans

    captured: InMemoryExporter = InMemoryExporter()
    tracer.configure(exporters=[captured])
    with tracer.start_span("r", span_type="RETRIEVER", inputs={"q": "x"}) as s:
        s.set_outputs([{"page_content": "d"}])
    [readable] = to_readable_spans(captured.traces)
    mapped = map_otel_attributes(readable.attributes)
    assert (mapped.span_type, mapped.inputs, mapped.outputs) == (
        "RETRIEVER",
        {"q": "x"},
        [{"page_content": "d"}],
    )
