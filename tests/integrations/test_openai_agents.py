"""The OpenAI Agents SDK integration, with the real `agents` SDK against the fake server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import agents
import httpx
import openai
import pytest
from agents import (
    Agent,
    GuardrailFunctionOutput,
    ModelSettings,
    Runner,
    function_tool,
    input_guardrail,
)
from agents.tracing import get_trace_provider
from genai_prices import Usage, calc_price

import tracemark as tm
from tracemark.integrations import openai_agents
from tracemark.testing import InMemoryExporter
from tracemark.testing.llm_server import FakeLLMServer, ToolCall


@pytest.fixture(autouse=True)
def sdk(server: FakeLLMServer) -> Iterator[None]:
    """The SDK with no processor of its own (no upload to OpenAI) and tracemark's added."""
    agents.set_trace_processors([])
    agents.set_default_openai_api("chat_completions")
    tm.openai_agents.autolog()
    yield
    tm.openai_agents.autolog(disable=True)
    agents.set_default_openai_api("responses")
    agents.set_trace_processors([])


def _run(agent: Agent, task: str, server: FakeLLMServer, *, streamed: bool = False) -> Any:
    async def main() -> Any:
        client = openai.AsyncOpenAI(base_url=server.openai_url, api_key="test", max_retries=0)
        async with client:
            agents.set_default_openai_client(client, use_for_tracing=False)
            if not streamed:
                return await Runner.run(agent, task)
            result = Runner.run_streamed(agent, task)
            async for _ in result.stream_events():
                pass
            return result

    return asyncio.run(main())


def _outline(trace) -> list[tuple[int, str, str]]:
    return [(depth, span.name, span.span_type) for depth, span in trace.walk()]


def _price(model: str, **usage: int) -> float:
    return float(calc_price(Usage(**usage), model, provider_id="openai").total_price)


@function_tool
def get_weather(city: str) -> str:
    """Return the weather in a city."""
    return f"Sunny in {city}"


def _weather_agent() -> Agent:
    return Agent(
        name="weather",
        instructions="Answer briefly.",
        tools=[get_weather],
        model="gpt-4o-mini",
    )


def _script_tool_round_trip(server: FakeLLMServer) -> None:
    server.reply(
        text="",
        tool_calls=[ToolCall("get_weather", {"city": "Paris"}, id="call_1")],
        input_tokens=20,
        output_tokens=5,
    )
    server.reply(text="It is sunny in Paris.", input_tokens=30, output_tokens=4)


def test_run_with_a_tool_call_nests_under_the_callers_span(
    traces: InMemoryExporter, server: FakeLLMServer
) -> None:
    _script_tool_round_trip(server)

    @tm.trace(span_type="AGENT")
    def handle(question: str) -> str:
        return _run(_weather_agent(), question, server).final_output

    assert handle("Weather in Paris?") == "It is sunny in Paris."
    (trace,) = traces.traces
    assert _outline(trace) == [
        (0, "handle", "AGENT"),
        (1, "Agent workflow", "CHAIN"),
        (2, "task", "CHAIN"),
        (3, "weather", "AGENT"),
        (4, "turn 1", "CHAIN"),
        (5, "chat gpt-4o-mini", "CHAT_MODEL"),
        (5, "get_weather", "TOOL"),
        (4, "turn 2", "CHAIN"),
        (5, "chat gpt-4o-mini", "CHAT_MODEL"),
    ]
    workflow = trace.root.children[0]
    user = [{"role": "user", "content": "Weather in Paris?"}]
    assert workflow.inputs == user
    assert workflow.outputs == "It is sunny in Paris."
    agent = workflow.children[0].children[0]
    assert agent.attributes["agents.tools"] == ["get_weather"]
    first, tool = agent.children[0].children
    assert first.inputs["model"] == "gpt-4o-mini"
    assert first.inputs["messages"] == [
        {"content": "Answer briefly.", "role": "system"},
        *user,
    ]
    assert first.outputs[0]["tool_calls"] == [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
        }
    ]
    assert tool.inputs == {"city": "Paris"}
    assert tool.outputs == "Sunny in Paris"
    second = agent.children[1].children[0]
    assert second.inputs["messages"][-1] == {
        "role": "tool",
        "tool_call_id": "call_1",
        "content": "Sunny in Paris",
    }
    assert second.outputs[0]["content"] == "It is sunny in Paris."
    attrs = second.attributes
    assert attrs["gen_ai.request.model"] == "gpt-4o-mini"
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (30, 4)
    assert attrs["gen_ai.usage.cost"] == pytest.approx(
        _price("gpt-4o-mini", input_tokens=30, output_tokens=4)
    )
    info = trace.info
    assert (info.input_tokens, info.output_tokens) == (50, 9)
    assert info.cost == pytest.approx(_price("gpt-4o-mini", input_tokens=50, output_tokens=9))


def test_responses_api_calls_record_the_response_with_usage_and_cost(
    traces: InMemoryExporter, server: FakeLLMServer
) -> None:
    agents.set_default_openai_api("responses")
    _script_tool_round_trip(server)
    result = _run(_weather_agent(), "Weather in Paris?", server)
    assert result.final_output == "It is sunny in Paris."
    (trace,) = traces.traces
    calls = trace.search_spans(span_type="CHAT_MODEL")
    assert [c.name for c in calls] == ["chat gpt-4o-mini", "chat gpt-4o-mini"]
    first, second = calls
    assert first.inputs == {
        "model": "gpt-4o-mini",
        "input": [{"content": "Weather in Paris?", "role": "user"}],
    }
    assert first.outputs["output"][0]["type"] == "function_call"
    assert second.outputs["output"][0]["content"][0]["text"] == "It is sunny in Paris."
    assert second.attributes["gen_ai.response.id"] == "resp_fake"
    assert trace.search_spans(span_type="TOOL")[0].outputs == "Sunny in Paris"
    assert (trace.info.input_tokens, trace.info.output_tokens) == (50, 9)
    assert trace.root.outputs == "It is sunny in Paris."


def test_streamed_run_is_traced_like_a_plain_one(
    traces: InMemoryExporter, server: FakeLLMServer
) -> None:
    _script_tool_round_trip(server)
    agent = _weather_agent().clone(model_settings=ModelSettings(include_usage=True))
    result = _run(agent, "Weather in Paris?", server, streamed=True)
    assert result.final_output == "It is sunny in Paris."
    (trace,) = traces.traces
    assert [name for _, name, _ in _outline(trace)] == [
        "Agent workflow",
        "task",
        "weather",
        "turn 1",
        "chat gpt-4o-mini",
        "get_weather",
        "turn 2",
        "chat gpt-4o-mini",
    ]
    assert (trace.info.input_tokens, trace.info.output_tokens) == (50, 9)
    assert trace.root.outputs == "It is sunny in Paris."


def test_stream_without_usage_has_no_tokens_rather_than_a_zero_cost(
    traces: InMemoryExporter, server: FakeLLMServer
) -> None:
    server.reply(text="Hi.")
    _run(Agent(name="plain", model="gpt-4o-mini"), "Hello", server, streamed=True)
    (call,) = traces.traces[0].search_spans(span_type="CHAT_MODEL")
    assert "gen_ai.usage.input_tokens" not in call.attributes
    assert traces.traces[0].info.cost is None


def test_run_sync_is_traced_the_same(traces: InMemoryExporter, server: FakeLLMServer) -> None:
    # No kept-alive connection: `run_sync`'s event loop is gone when the test ends.
    http = openai.DefaultAsyncHttpxClient(limits=httpx.Limits(max_keepalive_connections=0))
    client = openai.AsyncOpenAI(
        base_url=server.openai_url, api_key="test", max_retries=0, http_client=http
    )
    agents.set_default_openai_client(client, use_for_tracing=False)
    server.reply(text="Hi.", input_tokens=8, output_tokens=2)
    # `run_sync` runs on the thread's default loop and leaves it open: one the test closes.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        result = Runner.run_sync(Agent(name="greeter", model="gpt-4o-mini"), "Hello")
    finally:
        asyncio.set_event_loop(None)
        loop.close()
    assert result.final_output == "Hi."
    (trace,) = traces.traces
    assert [name for _, name, _ in _outline(trace)] == [
        "Agent workflow",
        "task",
        "greeter",
        "turn 1",
        "chat gpt-4o-mini",
    ]
    assert trace.info.input_tokens == 8


def test_a_conversation_group_becomes_the_session_of_the_trace(
    traces: InMemoryExporter, server: FakeLLMServer
) -> None:
    server.reply(text="Hi.")

    async def main() -> None:
        client = openai.AsyncOpenAI(base_url=server.openai_url, api_key="test", max_retries=0)
        async with client:
            agents.set_default_openai_client(client, use_for_tracing=False)
            config = agents.RunConfig(group_id="thread-7", workflow_name="support")
            await Runner.run(Agent(name="plain", model="gpt-4o-mini"), "Hello", run_config=config)

    asyncio.run(main())
    (trace,) = traces.traces
    assert trace.root.name == "support"
    assert trace.info.metadata["session_id"] == "thread-7"
    assert trace.root.attributes["agents.group_id"] == "thread-7"


def test_handoffs_and_guardrails_are_spans(traces: InMemoryExporter, server: FakeLLMServer) -> None:
    @input_guardrail
    async def polite(ctx: Any, agent: Agent, text: Any) -> GuardrailFunctionOutput:
        return GuardrailFunctionOutput(output_info=None, tripwire_triggered=False)

    french = Agent(name="french", instructions="Answer in French.", model="gpt-4o-mini")
    triage = Agent(
        name="triage",
        instructions="Route.",
        handoffs=[french],
        input_guardrails=[polite],
        model="gpt-4o-mini",
    )
    server.reply(text="", tool_calls=[ToolCall("transfer_to_french", {}, id="call_h")])
    server.reply(text="Bonjour !")
    assert _run(triage, "Hello", server).final_output == "Bonjour !"
    (trace,) = traces.traces
    (handoff,) = trace.search_spans(name="handoff to french")
    assert handoff.inputs == {"from_agent": "triage", "to_agent": "french"}
    (guardrail,) = trace.search_spans(span_type="GUARDRAIL")
    assert (guardrail.name, guardrail.outputs) == ("polite", {"triggered": False})
    assert [s.name for s in trace.search_spans(span_type="AGENT")] == ["triage", "french"]


def test_a_model_error_fails_the_spans_and_the_run_raises_it_unchanged(
    traces: InMemoryExporter, server: FakeLLMServer
) -> None:
    server.fail(500, "model down")
    with pytest.raises(openai.InternalServerError) as traced:
        _run(_weather_agent(), "Weather?", server)
    tm.openai_agents.autolog(disable=True)
    server.fail(500, "model down")
    with pytest.raises(openai.InternalServerError) as plain:
        _run(_weather_agent(), "Weather?", server)
    assert str(traced.value) == str(plain.value)
    (trace,) = traces.traces
    assert trace.info.status == "ERROR"
    (call,) = trace.search_spans(span_type="CHAT_MODEL")
    assert call.status_code == "ERROR"
    assert "model down" in call.status_message
    assert trace.search_spans(span_type="AGENT")[0].status_code == "ERROR"


def test_the_run_returns_what_it_returns_without_autolog(
    traces: InMemoryExporter, server: FakeLLMServer
) -> None:
    _script_tool_round_trip(server)
    traced = _run(_weather_agent(), "Weather in Paris?", server)
    tm.openai_agents.autolog(disable=True)
    _script_tool_round_trip(server)
    plain = _run(_weather_agent(), "Weather in Paris?", server)
    assert traced.final_output == plain.final_output
    assert [type(i).__name__ for i in traced.new_items] == [
        type(i).__name__ for i in plain.new_items
    ]
    assert traced.to_input_list() == plain.to_input_list()
    assert len(traces.traces) == 1


def test_user_spans_inside_a_tool_nest_under_the_tool(
    traces: InMemoryExporter, server: FakeLLMServer
) -> None:
    @tm.trace(span_type="RETRIEVER")
    def lookup(city: str) -> str:
        return f"Rainy in {city}"

    @function_tool
    def forecast(city: str) -> str:
        """Return the forecast for a city."""
        return lookup(city)

    agent = Agent(name="forecaster", tools=[forecast], model="gpt-4o-mini")
    server.reply(text="", tool_calls=[ToolCall("forecast", {"city": "Oslo"})])
    server.reply(text="Rainy.")
    _run(agent, "Forecast for Oslo?", server)
    (tool,) = traces.traces[0].search_spans(span_type="TOOL")
    assert [(c.name, c.outputs) for c in tool.children] == [("lookup", "Rainy in Oslo")]


def test_with_openai_autolog_too_each_model_call_is_recorded_once(
    traces: InMemoryExporter, server: FakeLLMServer
) -> None:
    tm.openai.autolog()
    try:
        _script_tool_round_trip(server)
        _run(_weather_agent(), "Weather in Paris?", server)
    finally:
        tm.openai.autolog(disable=True)
    (trace,) = traces.traces
    assert len(trace.search_spans(span_type="CHAT_MODEL")) == 2
    assert (trace.info.input_tokens, trace.info.output_tokens) == (50, 9)


def test_log_traces_false_records_nothing(traces: InMemoryExporter, server: FakeLLMServer) -> None:
    tm.openai_agents.autolog(log_traces=False)
    _script_tool_round_trip(server)
    assert _run(_weather_agent(), "Weather?", server).final_output == "It is sunny in Paris."
    assert traces.traces == []


def test_disable_removes_the_processor_and_enabling_twice_adds_it_once() -> None:
    def ours() -> list[Any]:
        processors = get_trace_provider()._multi_processor._processors
        return [p for p in processors if p is openai_agents._processor]

    tm.openai_agents.autolog()
    tm.openai_agents.autolog()
    assert len(ours()) == 1
    tm.openai_agents.autolog(disable=True)
    assert ours() == []
