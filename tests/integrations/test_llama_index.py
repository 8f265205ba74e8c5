"""The LlamaIndex integration: real llama-index-core and its OpenAI classes on the fake server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from genai_prices import Usage, calc_price
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.tools import FunctionTool
from llama_index.embeddings.openai import OpenAIEmbedding
from llama_index.llms.openai import OpenAI

import tracemark as tm
from tracemark.integrations import llama_index as li_integration
from tracemark.testing import InMemoryExporter
from tracemark.testing.llm_server import FakeLLMServer, Reply, Request, ToolCall

DOCS = [
    Document(text="Refunds are accepted within 30 days.", id_="refunds", metadata={"f": "r.md"}),
    Document(text="Shipping takes 5 days.", id_="shipping", metadata={"f": "s.md"}),
]
TEXTS = {"Refunds are accepted within 30 days.", "Shipping takes 5 days."}


@pytest.fixture
def chat(server: FakeLLMServer) -> Iterator[Any]:
    """Script the chat completions only; embeddings get the default reply."""
    queue: list[Reply] = []

    def answer(request: Request) -> Reply | None:
        if request.path == "/v1/chat/completions" and queue:
            return queue.pop(0)
        return None

    server.responder = answer
    yield lambda **fields: queue.append(Reply(**fields))
    server.responder = None


@pytest.fixture
def llama_autolog() -> Iterator[None]:
    tm.llama_index.autolog()
    yield
    tm.llama_index.autolog(disable=True)


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    """The HTTP client of the models, closed after the test (LlamaIndex never closes its own)."""
    with httpx.Client() as client:
        yield client


def _llm(server: FakeLLMServer, http: httpx.Client, ahttp: Any = None, **kwargs: Any) -> OpenAI:
    return OpenAI(
        model="gpt-4o-mini",
        api_base=server.openai_url,
        api_key="test",
        max_retries=0,
        http_client=http,
        async_http_client=ahttp,
        **kwargs,
    )


def _embed(server: FakeLLMServer, http: httpx.Client, ahttp: Any = None) -> OpenAIEmbedding:
    return OpenAIEmbedding(
        model="text-embedding-3-small",
        api_base=server.openai_url,
        api_key="test",
        max_retries=0,
        http_client=http,
        async_http_client=ahttp,
    )


@pytest.fixture
def llm(server: FakeLLMServer, http: httpx.Client) -> OpenAI:
    return _llm(server, http)


@pytest.fixture
def embed(server: FakeLLMServer, http: httpx.Client) -> OpenAIEmbedding:
    return _embed(server, http)


@pytest.fixture
def index(embed: OpenAIEmbedding) -> VectorStoreIndex:
    return VectorStoreIndex.from_documents(DOCS, embed_model=embed)


def _price(model: str, **usage: int) -> float:
    return float(calc_price(Usage(**usage), model, provider_id="openai").total_price)


def _shape(span: Any) -> tuple[Any, ...]:
    return (span.name, span.span_type, [_shape(child) for child in span.children])


QUERY_TREE = (
    "RetrieverQueryEngine.query",
    "CHAIN",
    [
        (
            "VectorIndexRetriever.retrieve",
            "RETRIEVER",
            [("OpenAIEmbedding.get_query_embedding", "EMBEDDING", [])],
        ),
        (
            "CompactAndRefine.synthesize",
            "CHAIN",
            [
                (
                    "CompactAndRefine.get_response",
                    "CHAIN",
                    [
                        (
                            "CompactAndRefine.get_response",
                            "CHAIN",
                            [
                                (
                                    "DefaultRefineProgram.__call__",
                                    "CHAIN",
                                    [
                                        (
                                            "OpenAI.predict",
                                            "CHAIN",
                                            [("OpenAI.chat", "CHAT_MODEL", [])],
                                        )
                                    ],
                                )
                            ],
                        )
                    ],
                )
            ],
        ),
    ],
)


# -- query engines, retrievers, synthesizers -------------------------------------------------


def test_query_is_a_span_tree_with_retrieval_synthesis_and_the_llm_call(
    llama_autolog, traces: InMemoryExporter, chat: Any, llm: OpenAI, index: VectorStoreIndex
) -> None:
    traces.clear()
    chat(text="Within 30 days.", input_tokens=40, output_tokens=5)
    response = index.as_query_engine(llm=llm, similarity_top_k=2).query("Refund window?")
    assert str(response) == "Within 30 days."

    (trace,) = traces.traces
    root = trace.root
    assert _shape(root) == QUERY_TREE
    assert root.inputs == {"str_or_query_bundle": "Refund window?"}
    assert root.outputs["response"] == "Within 30 days."
    retriever = root.children[0]
    docs = retriever.outputs
    assert {d["page_content"] for d in docs} == TEXTS
    assert all(set(d) == {"page_content", "metadata", "id"} for d in docs)
    assert all(isinstance(d["metadata"]["score"], float) for d in docs)
    assert {d["metadata"]["f"] for d in docs} == {"r.md", "s.md"}
    assert [d["id"] for d in root.outputs["source_nodes"]] == [d["id"] for d in docs]
    embedding = retriever.children[0]
    assert embedding.inputs == {"query": "Refund window?"}
    assert embedding.outputs == {"dimensions": 8}
    assert embedding.attributes["gen_ai.request.model"] == "text-embedding-3-small"
    (chat,) = trace.search_spans(span_type="CHAT_MODEL")
    assert chat.inputs["messages"][0]["role"] == "system"
    assert "Refund window?" in chat.inputs["messages"][-1]["content"]
    assert chat.outputs["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Within 30 days."},
            "finish_reason": "stop",
        }
    ]
    attrs = chat.attributes
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.request.model"] == "gpt-4o-mini"
    assert attrs["gen_ai.response.model"] == "gpt-4o-mini"
    assert attrs["gen_ai.usage.input_tokens"] == 40
    assert attrs["gen_ai.usage.output_tokens"] == 5
    cost = _price("gpt-4o-mini", input_tokens=40, output_tokens=5)
    assert attrs["gen_ai.usage.cost"] == pytest.approx(cost)
    assert (trace.info.input_tokens, trace.info.output_tokens) == (40, 5)
    assert trace.info.cost == pytest.approx(cost)
    # Private methods (`_query`, `_retrieve`) and node parsers are not recorded.
    assert not [s for s in trace.spans if "._" in s.name and "__" not in s.name]


def test_building_an_index_records_the_embedding_calls(
    llama_autolog, traces: InMemoryExporter, embed: OpenAIEmbedding
) -> None:
    VectorStoreIndex.from_documents(DOCS, embed_model=embed)
    (trace,) = traces.traces
    (span,) = trace.spans
    assert (span.name, span.span_type) == (
        "OpenAIEmbedding.get_text_embedding_batch",
        "EMBEDDING",
    )
    # What is embedded: each node's text with its metadata, as LlamaIndex sends it.
    assert sorted(span.inputs["texts"]) == [
        "f: r.md\n\nRefunds are accepted within 30 days.",
        "f: s.md\n\nShipping takes 5 days.",
    ]
    assert span.outputs == {"count": 2, "dimensions": 8}
    assert span.attributes["gen_ai.operation.name"] == "embeddings"


def test_query_returns_the_same_response_with_and_without_autolog(
    traces: InMemoryExporter, server: FakeLLMServer, llm: OpenAI, index: VectorStoreIndex
) -> None:
    engine = index.as_query_engine(llm=llm, similarity_top_k=2)

    def run() -> tuple[Any, ...]:
        response = engine.query("Refund window?")
        nodes = [(n.node.node_id, n.score, n.node.get_content()) for n in response.source_nodes]
        return type(response), response.response, nodes, response.metadata

    plain = run()
    tm.llama_index.autolog()
    try:
        traced = run()
    finally:
        tm.llama_index.autolog(disable=True)
    assert traced == plain
    assert len(traces.traces) == 1


def test_streamed_query_span_lasts_until_the_response_is_consumed(
    llama_autolog, traces: InMemoryExporter, chat: Any, llm: OpenAI, index: VectorStoreIndex
) -> None:
    traces.clear()
    chat(text="Refunds take 30 days.", chunk_chars=5)
    engine = index.as_query_engine(llm=llm, similarity_top_k=1, streaming=True)
    response = engine.query("Refund window?")
    assert traces.traces == []
    assert "".join(response.response_gen) == "Refunds take 30 days."

    (trace,) = traces.traces
    root = trace.root
    assert root.outputs["response"] == "Refunds take 30 days."
    synthesize = root.children[1]
    assert synthesize.name == "CompactAndRefine.synthesize"
    assert synthesize.outputs["response"] == "Refunds take 30 days."
    stream = synthesize.children[-1]
    assert _shape(stream) == ("OpenAI.stream", "CHAIN", [("OpenAI.stream_chat", "CHAT_MODEL", [])])
    chat = stream.children[0]
    assert chat.outputs["choices"][0]["message"] == {
        "role": "assistant",
        "content": "Refunds take 30 days.",
    }
    assert chat.end_time_ns >= stream.end_time_ns  # it lasted as long as the stream
    assert tm.get_current_active_span() is None


def test_async_query_and_llm_calls_nest_under_the_callers_span(
    llama_autolog, traces: InMemoryExporter, server: FakeLLMServer, chat: Any, http: httpx.Client
) -> None:
    @tm.trace(span_type="AGENT")
    async def assistant(engine: Any, llm: OpenAI) -> list[str]:
        chat(text="first", input_tokens=20, output_tokens=1)
        first = await engine.aquery("Refund window?")
        chat(text="second", input_tokens=6, output_tokens=2)
        second = await llm.achat([ChatMessage(role="user", content="Hi")])
        chat(text="third")
        stream = await llm.astream_chat([ChatMessage(role="user", content="Hi")])
        third = [r.delta async for r in stream]
        return [str(first), second.message.content, "".join(third)]

    async def main() -> list[str]:
        async with httpx.AsyncClient() as ahttp:
            llm = _llm(server, http, ahttp)
            index = VectorStoreIndex.from_documents(DOCS, embed_model=_embed(server, http, ahttp))
            engine = index.as_query_engine(llm=llm, similarity_top_k=1)
            traces.clear()
            return await assistant(engine, llm)

    assert asyncio.run(main()) == ["first", "second", "third"]
    (trace,) = traces.traces
    root = trace.root
    assert [(c.name, c.span_type) for c in root.children] == [
        ("RetrieverQueryEngine.aquery", "CHAIN"),
        ("OpenAI.achat", "CHAT_MODEL"),
        ("OpenAI.astream_chat", "CHAT_MODEL"),
    ]
    query, achat, astream = root.children
    assert [c.span_type for c in query.children] == ["RETRIEVER", "CHAIN"]
    assert query.children[0].children[0].span_type == "EMBEDDING"
    assert achat.outputs["choices"][0]["message"]["content"] == "second"
    assert astream.outputs["choices"][0]["message"]["content"] == "third"
    assert trace.info.input_tokens == 26
    assert tm.get_current_active_span() is None


def test_llm_calls_directly_chat_stream_and_complete(
    llama_autolog, traces: InMemoryExporter, server: FakeLLMServer, http: httpx.Client
) -> None:
    llm = _llm(server, http, additional_kwargs={"stream_options": {"include_usage": True}})
    server.reply(text="streamed answer", input_tokens=11, output_tokens=3)
    chunks = list(llm.stream_chat([ChatMessage(role="user", content="Hi")]))
    assert chunks[-1].message.content == "streamed answer"
    server.reply(text="completed")
    assert llm.complete("Say something").text == "completed"

    stream_trace, complete_trace = traces.traces
    (stream,) = stream_trace.spans
    assert (stream.name, stream.span_type) == ("OpenAI.stream_chat", "CHAT_MODEL")
    assert stream.attributes["gen_ai.usage.input_tokens"] == 11
    assert stream.attributes["gen_ai.usage.cost"] == pytest.approx(
        _price("gpt-4o-mini", input_tokens=11, output_tokens=3)
    )
    complete = complete_trace.root
    assert (complete.name, complete.span_type) == ("OpenAI.complete", "LLM")
    assert complete.inputs["prompt"] == "Say something"
    assert complete.outputs["choices"][0]["text"] == "completed"


# -- agents and tools ------------------------------------------------------------------------


@tm.trace(span_type="TOOL")
def lookup_weather(city: str) -> str:
    return f"sunny in {city}"


def get_weather(city: str) -> str:
    """Return the weather in a city."""
    return lookup_weather(city)


# Building an agent makes the workflows package read every attribute of the agent
# (`inspect.getmembers`), pydantic's deprecated ones included.
@pytest.mark.filterwarnings("ignore::pydantic.warnings.PydanticDeprecatedSince20")
@pytest.mark.filterwarnings("ignore::pydantic.warnings.PydanticDeprecatedSince211")
def test_function_agent_run_with_a_tool_call(
    llama_autolog, traces: InMemoryExporter, server: FakeLLMServer, http: httpx.Client
) -> None:
    server.reply(text="", tool_calls=[ToolCall("get_weather", {"city": "Paris"}, id="call_3")])
    server.reply(text="It is sunny in Paris.")

    async def main() -> str:
        async with httpx.AsyncClient() as ahttp:
            agent = FunctionAgent(
                tools=[FunctionTool.from_defaults(get_weather)],
                llm=_llm(server, http, ahttp),
                system_prompt="Be brief.",
            )
            return str(await agent.run("Weather in Paris?"))

    assert asyncio.run(main()) == "It is sunny in Paris."
    (trace,) = traces.traces
    root = trace.root
    assert (root.name, root.span_type) == ("FunctionAgent.run", "AGENT")
    assert root.outputs["response"] == {"role": "assistant", "content": "It is sunny in Paris."}
    chats = trace.search_spans(span_type="CHAT_MODEL")
    assert [c.name for c in chats] == ["OpenAI.astream_chat"] * 2
    assert chats[0].outputs["choices"][0]["message"]["tool_calls"] == [
        {
            "id": "call_3",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
        }
    ]
    assert chats[0].attributes["gen_ai.tool.definitions"][0]["function"]["name"] == "get_weather"
    assert chats[1].inputs["messages"][-1] == {
        "role": "tool",
        "content": "sunny in Paris",
        "tool_call_id": "call_3",
    }
    (tool_span,) = [s for s in trace.spans if s.span_type == "TOOL" and s.name == "get_weather"]
    assert tool_span.inputs == {"city": "Paris"}
    assert tool_span.outputs == "sunny in Paris"
    (inner,) = tool_span.children  # the caller's own span inside the tool
    assert inner.name == "lookup_weather"
    assert all(s.status_code == "OK" for s in trace.spans)


# -- with the OpenAI integration, errors, switching on and off --------------------------------


def test_openai_call_inside_an_llm_call_is_recorded_once(
    llama_autolog,
    traces: InMemoryExporter,
    server: FakeLLMServer,
    llm: OpenAI,
    embed: OpenAIEmbedding,
) -> None:
    tm.openai.autolog()
    try:
        server.reply(text="Hi.", input_tokens=9, output_tokens=2)
        llm.chat([ChatMessage(role="user", content="Hello")])
        server.reply(input_tokens=4)
        embed.get_query_embedding("refunds")
    finally:
        tm.openai.autolog(disable=True)
    chat_trace, embed_trace = traces.traces
    (chat,) = chat_trace.spans  # the SDK call inside is not recorded a second time
    assert chat.name == "OpenAI.chat"
    assert chat_trace.info.input_tokens == 9
    # LlamaIndex reports no usage for embeddings: the SDK's span, nested, carries it.
    assert _shape(embed_trace.root) == (
        "OpenAIEmbedding.get_query_embedding",
        "EMBEDDING",
        [("embeddings text-embedding-3-small", "EMBEDDING", [])],
    )
    assert embed_trace.info.input_tokens == 4


def test_http_errors_are_recorded_and_reraised_unchanged(
    traces: InMemoryExporter, chat: Any, llm: OpenAI, index: VectorStoreIndex
) -> None:
    engine = index.as_query_engine(llm=llm)

    def fail() -> BaseException:
        chat(status=500, error_message="boom")
        with pytest.raises(openai.InternalServerError, match="boom") as caught:
            engine.query("Refund window?")
        return caught.value

    plain = fail()
    tm.llama_index.autolog()
    try:
        traced = fail()
    finally:
        tm.llama_index.autolog(disable=True)
    assert type(traced) is type(plain)
    assert str(traced) == str(plain)
    (trace,) = traces.traces
    assert trace.info.status == "ERROR"
    (chat,) = trace.search_spans(span_type="CHAT_MODEL")
    for span in (trace.root, chat):
        assert span.status_code == "ERROR"
        assert span.events[0].attributes["exception.type"] == "openai.InternalServerError"


def test_disable_detaches_the_handlers_and_twice_is_harmless(
    traces: InMemoryExporter, server: FakeLLMServer, llm: OpenAI
) -> None:
    root = get_dispatcher()
    handlers = (len(root.span_handlers), len(root.event_handlers))
    tm.llama_index.autolog()
    tm.llama_index.autolog()
    try:
        assert (len(root.span_handlers), len(root.event_handlers)) == (
            handlers[0] + 1,
            handlers[1] + 1,
        )
        llm.chat([ChatMessage(role="user", content="Hi")])
    finally:
        tm.llama_index.autolog(disable=True)
    assert (len(root.span_handlers), len(root.event_handlers)) == handlers
    assert not li_integration._REGISTRATION.attached
    assert [len(t.spans) for t in traces.traces] == [1]
    llm.chat([ChatMessage(role="user", content="Hi")])
    assert len(traces.traces) == 1


def test_log_traces_false_records_nothing(
    traces: InMemoryExporter, server: FakeLLMServer, llm: OpenAI
) -> None:
    tm.llama_index.autolog(log_traces=False)
    try:
        assert llm.chat([ChatMessage(role="user", content="Hi")]).message.content
    finally:
        tm.llama_index.autolog(disable=True)
    assert traces.traces == []
