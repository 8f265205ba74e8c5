"""The DSPy integration, with real DSPy programs whose LM calls go to the fake server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import dspy
import numpy as np
import pytest
from dspy.dsp.utils import dotdict
from dspy.dsp.utils.settings import Settings
from genai_prices import Usage, calc_price

import tracemark as tm
from tracemark.integrations import dspy as dspy_integration
from tracemark.testing import InMemoryExporter
from tracemark.testing.llm_server import FakeLLMServer

QUESTION = "What is the capital of France?"


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    # DSPy refreshes its model metadata from the internet unless told to use its own copy.
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@pytest.fixture
def autolog() -> Iterator[None]:
    tm.dspy.autolog()
    yield
    tm.dspy.autolog(disable=True)


@pytest.fixture
def lm(server: FakeLLMServer) -> Iterator[dspy.LM]:
    model = dspy.LM(
        "openai/gpt-4o-mini",
        api_base=server.openai_url,
        api_key="test",
        cache=False,
        num_retries=0,
        temperature=0.3,
    )
    with dspy.context(lm=model):
        yield model


def _fields(**fields: str) -> str:
    """An answer in the format of DSPy's ChatAdapter."""
    parts = [f"[[ ## {name} ## ]]\n{value}" for name, value in fields.items()]
    return "\n\n".join([*parts, "[[ ## completed ## ]]"])


def _outline(trace) -> list[tuple[int, str, str]]:
    return [(depth, span.name, span.span_type) for depth, span in trace.walk()]


def _price(**usage: int) -> float:
    return float(calc_price(Usage(**usage), "gpt-4o-mini", provider_id="openai").total_price)


def test_chain_of_thought_is_a_module_tree_with_the_lm_call_and_its_cost(
    autolog, traces: InMemoryExporter, lm: dspy.LM, server: FakeLLMServer
) -> None:
    server.reply(
        text=_fields(reasoning="It is Paris.", answer="Paris"), input_tokens=30, output_tokens=7
    )
    cot = dspy.ChainOfThought("question -> answer")
    assert cot(question=QUESTION).answer == "Paris"
    (trace,) = traces.traces
    assert _outline(trace) == [
        (0, "ChainOfThought", "CHAIN"),
        (1, "Predict", "CHAIN"),
        (2, "ChatAdapter.format", "PARSER"),
        (2, "chat gpt-4o-mini", "CHAT_MODEL"),
        (2, "ChatAdapter.parse", "PARSER"),
    ]
    root = trace.root
    assert root.inputs == {"question": QUESTION}
    assert root.outputs == {"reasoning": "It is Paris.", "answer": "Paris"}
    predict = root.children[0]
    assert predict.attributes["dspy.signature"] == "question -> reasoning, answer"
    fmt, call, parse = predict.children
    assert fmt.outputs == call.inputs["messages"]
    assert call.inputs["messages"][-1]["role"] == "user"
    assert QUESTION in call.inputs["messages"][-1]["content"]
    assert call.inputs["model"] == "gpt-4o-mini"
    assert call.inputs["temperature"] == 0.3
    assert "api_key" not in call.inputs and "api_base" not in call.inputs
    assert call.outputs == [
        {"role": "assistant", "content": _fields(reasoning="It is Paris.", answer="Paris")}
    ]
    attrs = call.attributes
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.request.model"] == "gpt-4o-mini"
    assert attrs["gen_ai.response.model"] == "gpt-4o-mini"
    assert attrs["gen_ai.request.temperature"] == 0.3
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (30, 7)
    assert attrs["gen_ai.usage.cost"] == pytest.approx(_price(input_tokens=30, output_tokens=7))
    assert parse.outputs == {"reasoning": "It is Paris.", "answer": "Paris"}
    assert (trace.info.input_tokens, trace.info.output_tokens) == (30, 7)
    assert trace.info.cost == pytest.approx(_price(input_tokens=30, output_tokens=7))


def get_weather(city: str) -> str:
    """Return the weather in a city."""
    return f"Sunny in {city}"


def test_react_agent_with_a_tool_round_trip(
    autolog, traces: InMemoryExporter, lm: dspy.LM, server: FakeLLMServer
) -> None:
    server.reply(
        text=_fields(
            next_thought="Look it up.",
            next_tool_name="get_weather",
            next_tool_args='{"city": "Paris"}',
        ),
        input_tokens=40,
        output_tokens=10,
    )
    server.reply(
        text=_fields(next_thought="Done.", next_tool_name="finish", next_tool_args="{}"),
        input_tokens=50,
        output_tokens=8,
    )
    server.reply(text=_fields(reasoning="Sunny.", answer="Sunny"), input_tokens=60, output_tokens=4)
    react = dspy.ReAct("question -> answer", tools=[get_weather], max_iters=3)

    @tm.trace(span_type="AGENT")
    def ask(question: str) -> str:
        return react(question=question).answer

    assert ask("Weather in Paris?") == "Sunny"
    (trace,) = traces.traces
    assert trace.root.name == "ask"
    (agent,) = trace.root.children
    assert (agent.name, agent.span_type) == ("ReAct", "AGENT")
    assert [(c.name, c.span_type) for c in agent.children] == [
        ("Predict", "CHAIN"),
        ("get_weather", "TOOL"),
        ("Predict", "CHAIN"),
        ("finish", "TOOL"),
        ("ChainOfThought", "CHAIN"),
    ]
    tool = agent.children[1]
    assert tool.inputs == {"city": "Paris"}
    assert tool.outputs == "Sunny in Paris"
    assert tool.attributes["gen_ai.tool.description"] == "Return the weather in a city."
    assert len(trace.search_spans(span_type="CHAT_MODEL")) == 3
    assert (trace.info.input_tokens, trace.info.output_tokens) == (150, 22)


def test_async_programs_nest_the_same_way(
    autolog, traces: InMemoryExporter, lm: dspy.LM, server: FakeLLMServer
) -> None:
    server.reply(text=_fields(answer="Paris"), input_tokens=30, output_tokens=7)
    predict = dspy.Predict("question -> answer")

    @tm.trace
    async def ask(question: str) -> str:
        with dspy.context(lm=lm):
            return (await predict.acall(question=question)).answer

    assert asyncio.run(ask(QUESTION)) == "Paris"
    (trace,) = traces.traces
    assert _outline(trace) == [
        (0, "ask", "UNKNOWN"),
        (1, "Predict", "CHAIN"),
        (2, "ChatAdapter.format", "PARSER"),
        (2, "chat gpt-4o-mini", "CHAT_MODEL"),
        (2, "ChatAdapter.parse", "PARSER"),
    ]
    assert trace.info.input_tokens == 30


def test_streamed_program_is_one_trace(
    autolog, traces: InMemoryExporter, lm: dspy.LM, server: FakeLLMServer
) -> None:
    server.reply(text=_fields(answer="Paris is the capital."), input_tokens=30, output_tokens=7)
    listener = dspy.streaming.StreamListener(signature_field_name="answer")
    stream = dspy.streamify(dspy.Predict("question -> answer"), stream_listeners=[listener])

    async def consume() -> list[object]:
        with dspy.context(lm=lm):
            return [chunk async for chunk in stream(question=QUESTION)]

    chunks = asyncio.run(consume())
    assert isinstance(chunks[-1], dspy.Prediction)
    assert "".join(c.chunk for c in chunks[:-1]).strip() == "Paris is the capital."
    (trace,) = traces.traces
    assert trace.root.name == "Predict"
    assert trace.root.outputs == {"answer": "Paris is the capital."}
    assert trace.info.input_tokens == 30


def test_retrievers_record_their_documents(autolog, traces: InMemoryExporter) -> None:
    def rm(query: str, k: int) -> list[dotdict]:
        return [dotdict(long_text=f"passage {i} about {query}") for i in range(k)]

    with dspy.context(rm=rm):
        assert dspy.Retrieve(k=2)("tracing").passages == [
            "passage 0 about tracing",
            "passage 1 about tracing",
        ]

    def embed(texts: list[str]) -> np.ndarray:
        return np.array([[t.count("a"), t.count("e"), 1.0] for t in texts])

    search = dspy.retrievers.Embeddings(corpus=["aaa", "eee", "ae"], embedder=embed, k=2)
    assert search("aa").passages == ["aaa", "ae"]
    legacy, embeddings = traces.traces
    assert (legacy.root.name, legacy.root.span_type) == ("Retrieve", "RETRIEVER")
    assert legacy.root.outputs == [
        {"page_content": "passage 0 about tracing", "metadata": {}},
        {"page_content": "passage 1 about tracing", "metadata": {}},
    ]
    assert (embeddings.root.name, embeddings.root.span_type) == ("Embeddings", "RETRIEVER")
    assert embeddings.root.inputs == {"query": "aa"}
    assert embeddings.root.outputs == [
        {"page_content": "aaa", "metadata": {}, "id": "0"},
        {"page_content": "ae", "metadata": {}, "id": "2"},
    ]


def test_an_lm_error_is_recorded_and_raised_unchanged(
    traces: InMemoryExporter, lm: dspy.LM, server: FakeLLMServer
) -> None:
    predict = dspy.Predict("question -> answer")
    server.fail(500, "model down")
    with pytest.raises(Exception) as plain:
        predict(question=QUESTION)
    tm.dspy.autolog()
    try:
        server.fail(500, "model down")
        with pytest.raises(Exception) as traced:
            predict(question=QUESTION)
    finally:
        tm.dspy.autolog(disable=True)
    assert type(traced.value) is type(plain.value)
    assert str(traced.value) == str(plain.value)
    (trace,) = traces.traces
    assert trace.info.status == "ERROR"
    (call,) = trace.search_spans(span_type="CHAT_MODEL")
    assert call.status_code == "ERROR"
    (event,) = call.events
    assert event.attributes["exception.type"].endswith(type(plain.value).__name__)
    assert "model down" in event.attributes["exception.message"]


def test_a_program_returns_what_it_returns_without_autolog(
    traces: InMemoryExporter, lm: dspy.LM, server: FakeLLMServer
) -> None:
    cot = dspy.ChainOfThought("question -> answer")
    server.reply(text=_fields(reasoning="r", answer="Paris"))
    plain = cot(question=QUESTION)
    tm.dspy.autolog()
    try:
        server.reply(text=_fields(reasoning="r", answer="Paris"))
        traced = cot(question=QUESTION)
    finally:
        tm.dspy.autolog(disable=True)
    assert type(traced) is type(plain)
    assert traced.toDict() == plain.toDict()
    assert len(traces.traces) == 1


def test_log_traces_false_records_nothing(
    traces: InMemoryExporter, lm: dspy.LM, server: FakeLLMServer
) -> None:
    tm.dspy.autolog(log_traces=False)
    try:
        server.reply(text=_fields(answer="Paris"))
        assert dspy.Predict("question -> answer")(question=QUESTION).answer == "Paris"
    finally:
        tm.dspy.autolog(disable=True)
    assert traces.traces == []


def test_callback_is_added_once_whatever_the_settings_and_removed_on_disable() -> None:
    from dspy.retrievers.embeddings import Embeddings

    def ours() -> int:
        callbacks = dspy.settings.get("callbacks", [])
        return sum(1 for c in callbacks if c is dspy_integration._callback)

    get, search = Settings.__dict__["get"], Embeddings.__dict__["__call__"]
    tm.dspy.autolog()
    tm.dspy.autolog()
    try:
        assert ours() == 1
        with dspy.context(callbacks=[]):
            assert ours() == 1
        assert dspy.settings.callbacks == []  # the user's own settings are left alone
    finally:
        tm.dspy.autolog(disable=True)
    assert ours() == 0
    assert Settings.__dict__["get"] is get
    assert Embeddings.__dict__["__call__"] is search
