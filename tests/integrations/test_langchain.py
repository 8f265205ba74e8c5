"""The LangChain integration: real langchain-core and langchain-openai against the fake server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from genai_prices import Usage, calc_price
from langchain_core.callbacks import CallbackManager
from langchain_core.documents import Document
from langchain_core.language_models.fake import FakeListLLM
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda, RunnablePassthrough
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

import tracemark as tm
from tracemark.integrations import langchain as lc_integration
from tracemark.testing import InMemoryExporter
from tracemark.testing.llm_server import FakeLLMServer, ToolCall

PROMPT = ChatPromptTemplate.from_messages([("system", "Answer briefly."), ("user", "{question}")])


@pytest.fixture
def langchain_autolog() -> Iterator[None]:
    tm.langchain.autolog()
    yield
    tm.langchain.autolog(disable=True)


def _llm(server: FakeLLMServer, http_async_client: Any = None) -> ChatOpenAI:
    return ChatOpenAI(
        model="gpt-4o-mini",
        base_url=server.openai_url,
        api_key="test",
        max_retries=0,
        stream_usage=True,
        http_async_client=http_async_client,
    )


@pytest.fixture
def llm(server: FakeLLMServer) -> ChatOpenAI:
    return _llm(server)


def _price(model: str, **usage: int) -> float:
    return float(calc_price(Usage(**usage), model, provider_id="openai").total_price)


def _shape(span: Any) -> tuple[Any, ...]:
    """A span and its descendants as nested `(name, span_type, [children])`."""
    return (span.name, span.span_type, [_shape(child) for child in span.children])


def _without_ids(value: Any) -> Any:
    """LangChain gives every run's messages a fresh id; compare everything else."""
    if isinstance(value, BaseMessage):
        return value.model_dump(exclude={"id"})
    if isinstance(value, dict):
        return {k: _without_ids(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_without_ids(v) for v in value]
    return value


class KeywordRetriever(BaseRetriever):
    """A small in-memory retriever: the documents sharing a word with the query."""

    documents: list[Document]

    def _get_relevant_documents(self, query: str, *, run_manager: Any) -> list[Document]:
        words = set(query.lower().split())
        return [d for d in self.documents if words & set(d.page_content.lower().split())]


DOCS = [
    Document("refunds are accepted within 30 days", metadata={"source": "refunds.md"}, id="d1"),
    Document("shipping takes 5 days", metadata={"source": "shipping.md"}, id="d2"),
]


# -- chains and chat models ----------------------------------------------------------------


def test_chain_becomes_a_span_tree_with_messages_usage_and_cost(
    langchain_autolog, traces: InMemoryExporter, server: FakeLLMServer, llm: ChatOpenAI
) -> None:
    server.reply(text="Within 30 days.", input_tokens=21, output_tokens=4)
    chain = PROMPT | llm.bind(temperature=0.2) | StrOutputParser()
    assert chain.invoke({"question": "Refund window?"}) == "Within 30 days."

    (trace,) = traces.traces
    root = trace.root
    assert _shape(root) == (
        "RunnableSequence",
        "CHAIN",
        [
            ("ChatPromptTemplate", "CHAIN", []),
            ("ChatOpenAI", "CHAT_MODEL", []),
            ("StrOutputParser", "PARSER", []),
        ],
    )
    assert root.inputs == {"question": "Refund window?"}
    assert root.outputs == "Within 30 days."
    prompt, chat, parser = root.children
    messages = [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "Refund window?"},
    ]
    assert prompt.outputs == {"messages": messages}
    assert chat.inputs == {"messages": messages}
    assert chat.outputs["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Within 30 days."},
            "finish_reason": "stop",
        }
    ]
    assert parser.inputs == {"role": "assistant", "content": "Within 30 days."}
    attrs = chat.attributes
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.request.model"] == "gpt-4o-mini"
    assert attrs["gen_ai.request.temperature"] == 0.2
    assert attrs["gen_ai.response.model"] == "gpt-4o-mini"
    assert attrs["gen_ai.response.id"] == "chatcmpl-fake"
    assert attrs["gen_ai.response.finish_reasons"] == ["stop"]
    assert attrs["gen_ai.usage.input_tokens"] == 21
    assert attrs["gen_ai.usage.output_tokens"] == 4
    cost = _price("gpt-4o-mini", input_tokens=21, output_tokens=4)
    assert attrs["gen_ai.usage.cost"] == pytest.approx(cost)
    info = trace.info
    assert (info.input_tokens, info.output_tokens, info.total_tokens) == (21, 4, 25)
    assert info.cost == pytest.approx(cost)
    assert all(span.status_code == "OK" for span in trace.spans)


def test_chain_nests_under_the_callers_span_and_tags_and_metadata_are_kept(
    langchain_autolog, traces: InMemoryExporter, server: FakeLLMServer, llm: ChatOpenAI
) -> None:
    chain = PROMPT | llm | StrOutputParser()

    @tm.trace(span_type="AGENT")
    def answer(question: str) -> str:
        return chain.invoke(
            {"question": question}, config={"tags": ["prod"], "metadata": {"user": "ana"}}
        )

    answer("Hi?")
    (trace,) = traces.traces
    assert trace.root.name == "answer"
    (sequence,) = trace.root.children
    assert sequence.name == "RunnableSequence"
    assert sequence.attributes["langchain.tags"] == ["prod"]
    assert sequence.attributes["langchain.metadata"] == {"user": "ana"}
    # Inherited by every run below: recorded once.
    assert all("langchain.tags" not in child.attributes for child in sequence.children)


def test_runs_started_in_the_callers_span_inside_a_run_nest_under_that_span(
    langchain_autolog, traces: InMemoryExporter, server: FakeLLMServer, llm: ChatOpenAI
) -> None:
    @tm.trace
    def draft(question: str) -> str:
        return llm.invoke(question).content

    chain = RunnableLambda(draft, name="answer") | StrOutputParser()
    chain.invoke("Hi?")
    (trace,) = traces.traces
    assert _shape(trace.root) == (
        "RunnableSequence",
        "CHAIN",
        [
            ("answer", "CHAIN", [("draft", "UNKNOWN", [("ChatOpenAI", "CHAT_MODEL", [])])]),
            ("StrOutputParser", "PARSER", []),
        ],
    )


def test_results_are_the_same_with_and_without_autolog(
    traces: InMemoryExporter, server: FakeLLMServer, llm: ChatOpenAI
) -> None:
    chain = PROMPT | llm
    question = {"question": "Hi?"}

    def run() -> tuple[Any, Any, Any]:
        return (
            chain.invoke(question),
            list(chain.stream(question)),
            chain.batch([question, question]),
        )

    plain = run()
    tm.langchain.autolog()
    try:
        traced = run()
    finally:
        tm.langchain.autolog(disable=True)
    assert type(traced[0]) is AIMessage
    assert _without_ids(traced) == _without_ids(plain)
    assert len(traces.traces) == 4  # invoke, stream and each item of the batch


def test_streaming_span_lasts_as_long_as_the_stream(
    langchain_autolog, traces: InMemoryExporter, server: FakeLLMServer, llm: ChatOpenAI
) -> None:
    server.reply(text="It is sunny in Paris.", input_tokens=12, output_tokens=6)
    chain = PROMPT | llm | StrOutputParser()
    stream = chain.stream({"question": "Weather?"})
    first = next(stream)
    assert traces.traces == []
    pieces = [first, *stream]
    assert "".join(pieces) == "It is sunny in Paris."
    (trace,) = traces.traces
    root = trace.root
    assert root.inputs == {"question": "Weather?"}  # reported at the end of a stream
    assert root.outputs == "It is sunny in Paris."
    chat = trace.search_spans(span_type="CHAT_MODEL")[0]
    assert chat.outputs["choices"][0]["message"] == {
        "role": "assistant",
        "content": "It is sunny in Paris.",
    }
    assert chat.attributes["gen_ai.usage.input_tokens"] == 12
    assert chat.attributes["gen_ai.usage.cost"] == pytest.approx(
        _price("gpt-4o-mini", input_tokens=12, output_tokens=6)
    )
    assert tm.get_current_active_span() is None


def test_a_stream_closed_early_ends_its_spans_without_error(
    langchain_autolog, traces: InMemoryExporter, server: FakeLLMServer, llm: ChatOpenAI
) -> None:
    server.reply(text="one two three four five six", chunk_chars=4)

    @tm.trace
    def first_words() -> str:
        for piece in (PROMPT | llm | StrOutputParser()).stream({"question": "Count"}):
            if piece:
                return piece
        return ""

    assert first_words() == "one "
    (trace,) = traces.traces
    assert all(span.status_code == "OK" for span in trace.spans)
    chat = trace.search_spans(span_type="CHAT_MODEL")[0]
    assert chat.outputs["choices"][0]["message"]["content"].startswith("one ")
    assert tm.get_current_active_span() is None


def test_async_invoke_and_astream_nest_under_the_callers_async_span(
    langchain_autolog, traces: InMemoryExporter, server: FakeLLMServer
) -> None:
    @tm.trace
    async def ask_twice(chain: Any) -> list[str]:
        server.reply(text="first", input_tokens=7, output_tokens=1)
        server.reply(text="second", input_tokens=8, output_tokens=2)
        first = await chain.ainvoke({"question": "1?"})
        second = "".join([p async for p in chain.astream({"question": "2?"})])
        return [first, second]

    async def main() -> list[str]:
        async with httpx.AsyncClient() as http:
            return await ask_twice(PROMPT | _llm(server, http) | StrOutputParser())

    assert asyncio.run(main()) == ["first", "second"]
    (trace,) = traces.traces
    assert [child.name for child in trace.root.children] == ["RunnableSequence"] * 2
    for sequence in trace.root.children:
        assert [c.span_type for c in sequence.children] == ["CHAIN", "CHAT_MODEL", "PARSER"]
    assert trace.info.input_tokens == 15
    assert trace.info.output_tokens == 3


def test_async_calls_in_parallel_each_get_their_own_branch(
    langchain_autolog, traces: InMemoryExporter, server: FakeLLMServer
) -> None:
    @tm.trace
    async def fan_out(chain: Any) -> list[str]:
        return await asyncio.gather(*(chain.ainvoke({"question": q}) for q in "abc"))

    async def main() -> None:
        async with httpx.AsyncClient() as http:
            await fan_out(PROMPT | _llm(server, http) | StrOutputParser())

    asyncio.run(main())
    (trace,) = traces.traces
    sequences = trace.root.children
    assert len(sequences) == 3
    for sequence in sequences:
        assert [c.name for c in sequence.children] == [
            "ChatPromptTemplate",
            "ChatOpenAI",
            "StrOutputParser",
        ]


def test_text_completion_llm_is_an_llm_span() -> None:
    llm = FakeListLLM(responses=["forty-two"])
    tm.langchain.autolog()
    try:
        from tracemark.testing import capture_traces

        with capture_traces() as exporter:
            assert llm.invoke("The answer?") == "forty-two"
    finally:
        tm.langchain.autolog(disable=True)
    (span,) = exporter.traces[0].spans
    assert span.span_type == "LLM"
    assert span.name == "FakeListLLM"
    assert span.inputs == {"prompt": "The answer?"}
    assert span.outputs["choices"] == [{"index": 0, "text": "forty-two", "finish_reason": None}]
    assert span.attributes["gen_ai.operation.name"] == "text_completion"


# -- tools, retrievers, agents -------------------------------------------------------------


@tool
def get_weather(city: str) -> str:
    """Return the weather in a city."""
    return lookup_weather(city)


@tm.trace(span_type="TOOL")
def lookup_weather(city: str) -> str:
    return f"sunny in {city}"


def test_tool_calls_and_tool_runs(
    langchain_autolog, traces: InMemoryExporter, server: FakeLLMServer, llm: ChatOpenAI
) -> None:
    server.reply(text="", tool_calls=[ToolCall("get_weather", {"city": "Paris"}, id="call_7")])
    message = llm.bind_tools([get_weather]).invoke("Weather in Paris?")
    result = get_weather.invoke(message.tool_calls[0])
    assert result.content == "sunny in Paris"

    chat_trace, tool_trace = traces.traces
    chat = chat_trace.root
    assert chat.inputs["tools"][0]["function"]["name"] == "get_weather"
    assert chat.attributes["gen_ai.tool.definitions"] == chat.inputs["tools"]
    assert chat.outputs["choices"][0]["message"]["tool_calls"] == [
        {
            "type": "function",
            "id": "call_7",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
        }
    ]
    assert chat.outputs["choices"][0]["finish_reason"] == "tool_calls"
    tool_span = tool_trace.root
    assert (tool_span.name, tool_span.span_type) == ("get_weather", "TOOL")
    assert tool_span.inputs == {"city": "Paris"}
    assert tool_span.outputs == "sunny in Paris"
    assert tool_span.attributes["gen_ai.tool.call.id"] == "call_7"
    assert tool_span.attributes["gen_ai.tool.description"] == "Return the weather in a city."
    # The caller's own span inside the tool nests under the tool's span.
    (inner,) = tool_span.children
    assert inner.name == "lookup_weather"


def test_tool_errors_are_recorded_and_reraised(langchain_autolog, traces: InMemoryExporter) -> None:
    @tool
    def broken(x: int) -> int:
        """Always fails."""
        raise KeyError("no such thing")

    with pytest.raises(KeyError, match="no such thing"):
        broken.invoke({"x": 1})
    span = traces.traces[0].root
    assert (span.span_type, span.status_code) == ("TOOL", "ERROR")
    assert span.events[0].attributes["exception.type"] == "KeyError"


def test_retriever_in_a_chain_records_documents(
    langchain_autolog, traces: InMemoryExporter, server: FakeLLMServer, llm: ChatOpenAI
) -> None:
    retriever = KeywordRetriever(documents=DOCS)

    def context(docs: list[Document]) -> str:
        return "\n".join(d.page_content for d in docs)

    prompt = ChatPromptTemplate.from_messages(
        [("system", "Context:\n{context}"), ("user", "{question}")]
    )
    chain = (
        {"context": retriever | RunnableLambda(context), "question": RunnablePassthrough()}
        | prompt
        | llm
        | StrOutputParser()
    )
    server.reply(text="30 days.")
    assert chain.invoke("how many days for refunds") == "30 days."

    (trace,) = traces.traces
    (retriever_span,) = trace.search_spans(span_type="RETRIEVER")
    assert retriever_span.name == "KeywordRetriever"
    assert retriever_span.inputs == {"query": "how many days for refunds"}
    assert retriever_span.outputs == [
        {
            "page_content": "refunds are accepted within 30 days",
            "metadata": {"source": "refunds.md"},
            "id": "d1",
        },
        {
            "page_content": "shipping takes 5 days",
            "metadata": {"source": "shipping.md"},
            "id": "d2",
        },
    ]
    parallel = retriever_span
    names = []
    while parallel is not None:
        names.append(parallel.name)
        parallel = next((s for s in trace.spans if s.span_id == parallel.parent_id), None)
    assert names[-1] == "RunnableSequence"
    chat = trace.search_spans(span_type="CHAT_MODEL")[0]
    assert "refunds are accepted" in chat.inputs["messages"][0]["content"]


def test_agent_actions_make_the_run_an_agent_span(
    langchain_autolog, traces: InMemoryExporter
) -> None:
    from langchain_core.agents import AgentAction, AgentFinish

    # What an agent executor reports through the callback API.
    manager = CallbackManager.configure()
    run = manager.on_chain_start({"name": "AgentExecutor"}, {"input": "Weather?"})
    run.on_agent_action(AgentAction("get_weather", {"city": "Paris"}, "I should look it up"))
    run.on_agent_finish(AgentFinish({"output": "Sunny."}, "Done"))
    run.on_chain_end({"output": "Sunny."})

    span = traces.traces[0].root
    assert (span.name, span.span_type) == ("AgentExecutor", "AGENT")
    assert [e.name for e in span.events] == ["agent_action", "agent_finish"]
    assert span.events[0].attributes["tool_input"] == {"city": "Paris"}
    assert span.outputs == {"output": "Sunny."}


# -- with the OpenAI integration, errors, switching on and off --------------------------------


def test_openai_call_inside_a_chat_model_is_recorded_once(
    langchain_autolog, traces: InMemoryExporter, server: FakeLLMServer, llm: ChatOpenAI
) -> None:
    tm.openai.autolog()
    try:
        server.reply(text="Hi.", input_tokens=9, output_tokens=2)
        llm.invoke("Hello")
        with openai.OpenAI(base_url=server.openai_url, api_key="test") as client:
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello"}]
            )
    finally:
        tm.openai.autolog(disable=True)
    langchain_trace, openai_trace = traces.traces
    # The LangChain span is the call: the SDK call inside it is not recorded a second time.
    (chat,) = langchain_trace.spans
    assert chat.name == "ChatOpenAI"
    assert langchain_trace.info.input_tokens == 9
    assert langchain_trace.info.cost == pytest.approx(
        _price("gpt-4o-mini", input_tokens=9, output_tokens=2)
    )
    # Outside LangChain the OpenAI integration records as usual.
    assert openai_trace.spans[0].name == "chat gpt-4o-mini"


def test_http_errors_are_recorded_on_the_spans_and_reraised_unchanged(
    traces: InMemoryExporter, server: FakeLLMServer, llm: ChatOpenAI
) -> None:
    chain = PROMPT | llm

    def fail() -> BaseException:
        server.fail(500, "boom")
        with pytest.raises(openai.InternalServerError, match="boom") as caught:
            chain.invoke({"question": "Hi?"})
        return caught.value

    plain = fail()
    tm.langchain.autolog()
    try:
        traced = fail()
    finally:
        tm.langchain.autolog(disable=True)
    assert type(traced) is type(plain)
    assert (traced.status_code, str(traced)) == (plain.status_code, str(plain))
    (trace,) = traces.traces
    assert trace.info.status == "ERROR"
    chat = trace.search_spans(span_type="CHAT_MODEL")[0]
    error_type = f"{type(traced).__module__}.{type(traced).__qualname__}"
    for span in (trace.root, chat):
        assert span.status_code == "ERROR"
        assert span.events[0].attributes["exception.type"] == error_type
        assert "boom" in span.events[0].attributes["exception.message"]


def test_disable_unregisters_the_handler_and_twice_is_harmless(
    traces: InMemoryExporter, server: FakeLLMServer, llm: ChatOpenAI
) -> None:
    from langchain_core.tracers.context import _configure_hooks

    hooks = len(_configure_hooks)
    tm.langchain.autolog()
    tm.langchain.autolog()
    try:
        assert len(_configure_hooks) == hooks + 1
        llm.invoke("Hi")
    finally:
        tm.langchain.autolog(disable=True)
    assert len(_configure_hooks) == hooks
    assert not lc_integration._REGISTRATION.registered
    assert len(traces.traces) == 1
    assert len(traces.traces[0].spans) == 1
    llm.invoke("Hi")
    assert len(traces.traces) == 1


def test_log_traces_false_records_nothing(
    traces: InMemoryExporter, server: FakeLLMServer, llm: ChatOpenAI
) -> None:
    tm.langchain.autolog(log_traces=False)
    try:
        assert llm.invoke("Hi").content
    finally:
        tm.langchain.autolog(disable=True)
    assert traces.traces == []


def test_autolog_registers_when_langchain_is_imported_later() -> None:
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(
        """
        import sys
        import tracemark as tm
        tm.langchain.autolog()
        assert "langchain_core" not in sys.modules
        from langchain_core.tracers.context import _configure_hooks
        from tracemark.integrations import langchain
        assert langchain._REGISTRATION.registered
        tm.langchain.autolog(disable=True)
        assert not langchain._REGISTRATION.registered
        print("ok")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
