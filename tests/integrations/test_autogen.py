"""The AutoGen integration: real AgentChat teams and agents, OpenAI client on the fake server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from autogen_agentchat.agents import AssistantAgent, BaseChatAgent
from autogen_agentchat.conditions import MaxMessageTermination
from autogen_agentchat.messages import TextMessage
from autogen_agentchat.teams import BaseGroupChat, RoundRobinGroupChat
from autogen_core import CancellationToken
from autogen_core.tools import BaseTool
from autogen_ext.models.openai import BaseOpenAIChatCompletionClient, OpenAIChatCompletionClient
from genai_prices import Usage, calc_price

import tracemark as tm
from tracemark.testing import InMemoryExporter
from tracemark.testing.llm_server import FakeLLMServer, ToolCall

# AutoGen warns when the API reports another model than the one it resolves "gpt-4o-mini" to.
RESOLVED = "gpt-4o-mini-2024-07-18"


@pytest.fixture
def autolog() -> Iterator[None]:
    tm.autogen.autolog()
    yield
    tm.autogen.autolog(disable=True)


def _reply(server: FakeLLMServer, **fields: Any) -> None:
    server.reply(model=RESOLVED, **fields)


class _Clients:
    """Makes model clients on the fake server and closes them all at the end."""

    def __init__(self, server: FakeLLMServer) -> None:
        self.server = server
        self.made: list[OpenAIChatCompletionClient] = []

    def __call__(self, **options: Any) -> OpenAIChatCompletionClient:
        client = OpenAIChatCompletionClient(
            model="gpt-4o-mini",
            base_url=self.server.openai_url,
            api_key="test",
            max_retries=0,
            **options,
        )
        self.made.append(client)
        return client

    async def __aenter__(self) -> _Clients:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for client in self.made:
            await client.close()


async def get_weather(city: str) -> str:
    """Return the weather in a city."""
    return f"Sunny in {city}"


def _team(clients: _Clients) -> RoundRobinGroupChat:
    client = clients()
    writer = AssistantAgent(
        "writer", model_client=client, tools=[get_weather], system_message="Look it up."
    )
    critic = AssistantAgent("critic", model_client=client, system_message="Review it.")
    return RoundRobinGroupChat([writer, critic], termination_condition=MaxMessageTermination(3))


def _run_team(server: FakeLLMServer) -> Any:
    async def main() -> Any:
        async with _Clients(server) as clients:
            return await _team(clients).run(task="Weather in Paris?")

    return asyncio.run(main())


def _script_team(server: FakeLLMServer) -> None:
    _reply(
        server,
        text="",
        tool_calls=[ToolCall("get_weather", {"city": "Paris"}, id="call_1")],
        input_tokens=20,
        output_tokens=5,
    )
    _reply(server, text="Looks right.", input_tokens=30, output_tokens=4)


def _outline(trace) -> list[tuple[int, str, str]]:
    return [(depth, span.name, span.span_type) for depth, span in trace.walk()]


def _price(**usage: int) -> float:
    return float(calc_price(Usage(**usage), "gpt-4o-mini", provider_id="openai").total_price)


def test_team_run_is_the_root_with_agent_turns_model_calls_and_tools(
    autolog, traces: InMemoryExporter, server: FakeLLMServer
) -> None:
    _script_team(server)
    result = _run_team(server)
    assert [m.source for m in result.messages] == ["user", "writer", "writer", "writer", "critic"]
    (trace,) = traces.traces
    assert _outline(trace) == [
        (0, "RoundRobinGroupChat", "CHAIN"),
        (1, "writer", "AGENT"),
        (2, "chat gpt-4o-mini", "CHAT_MODEL"),
        (2, "get_weather", "TOOL"),
        (1, "critic", "AGENT"),
        (2, "chat gpt-4o-mini", "CHAT_MODEL"),
    ]
    team = trace.root
    assert team.inputs == {"task": "Weather in Paris?"}
    assert team.outputs["stop_reason"].startswith("Maximum number of messages 3 reached")
    assert [m["name"] for m in team.outputs["messages"]] == [m.source for m in result.messages]
    writer, critic = team.children
    assert writer.inputs == {
        "messages": [
            {"role": "user", "name": "user", "type": "TextMessage", "content": "Weather in Paris?"}
        ]
    }
    assert writer.outputs["message"]["content"] == "Sunny in Paris"
    call, tool = writer.children
    assert call.inputs["messages"] == [
        {"role": "system", "content": "Look it up."},
        {"role": "user", "name": "user", "content": "Weather in Paris?"},
    ]
    assert call.inputs["tools"][0]["function"]["name"] == "get_weather"
    assert call.outputs["message"]["tool_calls"] == [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
        }
    ]
    assert call.outputs["finish_reason"] == "function_calls"
    assert tool.inputs == {"city": "Paris"}
    assert tool.outputs == "Sunny in Paris"
    assert tool.attributes["gen_ai.tool.call.id"] == "call_1"
    (review,) = critic.children
    assert review.outputs["message"] == {"role": "assistant", "content": "Looks right."}
    attrs = review.attributes
    assert attrs["gen_ai.request.model"] == "gpt-4o-mini"
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (30, 4)
    assert attrs["gen_ai.usage.cost"] == pytest.approx(_price(input_tokens=30, output_tokens=4))
    assert (trace.info.input_tokens, trace.info.output_tokens) == (50, 9)
    assert trace.info.cost == pytest.approx(_price(input_tokens=50, output_tokens=9))


def test_run_stream_yields_what_it_yields_without_autolog(
    traces: InMemoryExporter, server: FakeLLMServer
) -> None:
    async def collect() -> list[Any]:
        async with _Clients(server) as clients:
            stream = _team(clients).run_stream(task="Weather in Paris?")
            return [item async for item in stream]

    def summary(items: list[Any]) -> list[tuple[str, Any]]:
        return [
            (type(i).__name__, getattr(i, "content", None) or getattr(i, "stop_reason", None))
            for i in items
        ]

    _script_team(server)
    plain = asyncio.run(collect())
    tm.autogen.autolog()
    try:
        _script_team(server)
        traced = asyncio.run(collect())
    finally:
        tm.autogen.autolog(disable=True)
    assert summary(traced) == summary(plain)
    (trace,) = traces.traces
    assert trace.root.name == "RoundRobinGroupChat"
    assert len(trace.search_spans(span_type="AGENT")) == 2


def test_one_agent_turn_is_one_span_nested_under_the_callers(
    autolog, traces: InMemoryExporter, server: FakeLLMServer
) -> None:
    _reply(server, text="Hello!", input_tokens=5, output_tokens=2)

    @tm.trace(span_type="CHAIN")
    async def greet() -> str:
        async with _Clients(server) as clients:
            agent = AssistantAgent("greeter", model_client=clients())
            response = await agent.on_messages(
                [TextMessage(content="Hi", source="user")], CancellationToken()
            )
        return response.chat_message.content

    assert asyncio.run(greet()) == "Hello!"
    (trace,) = traces.traces
    assert _outline(trace) == [
        (0, "greet", "CHAIN"),
        (1, "greeter", "AGENT"),
        (2, "chat gpt-4o-mini", "CHAT_MODEL"),
    ]


def test_streamed_model_calls_record_the_final_result(
    autolog, traces: InMemoryExporter, server: FakeLLMServer
) -> None:
    _reply(server, text="A streamed answer.", input_tokens=7, output_tokens=3)

    async def run() -> list[Any]:
        async with _Clients(server) as clients:
            client = clients(stream_options={"include_usage": True})
            agent = AssistantAgent("streamer", model_client=client, model_client_stream=True)
            return [item async for item in agent.run_stream(task="Go")]

    items = asyncio.run(run())
    chunks = [i.content for i in items if type(i).__name__ == "ModelClientStreamingChunkEvent"]
    assert "".join(chunks) == "A streamed answer."
    (trace,) = traces.traces
    assert _outline(trace) == [(0, "streamer", "AGENT"), (1, "chat gpt-4o-mini", "CHAT_MODEL")]
    call = trace.root.children[0]
    assert call.outputs["message"] == {"role": "assistant", "content": "A streamed answer."}
    assert (trace.info.input_tokens, trace.info.output_tokens) == (7, 3)


def test_a_model_error_is_recorded_and_raised_unchanged(
    traces: InMemoryExporter, server: FakeLLMServer
) -> None:
    async def ask() -> Any:
        async with _Clients(server) as clients:
            agent = AssistantAgent("asker", model_client=clients())
            return await agent.run(task="Hi")

    server.fail(500, "model down")
    with pytest.raises(openai.InternalServerError) as plain:
        asyncio.run(ask())
    tm.autogen.autolog()
    try:
        server.fail(500, "model down")
        with pytest.raises(openai.InternalServerError) as traced:
            asyncio.run(ask())
    finally:
        tm.autogen.autolog(disable=True)
    assert str(traced.value) == str(plain.value)
    (trace,) = traces.traces
    assert trace.info.status == "ERROR"
    (call,) = trace.search_spans(span_type="CHAT_MODEL")
    assert call.status_code == "ERROR"
    (event,) = call.events
    assert event.attributes["exception.type"] == "openai.InternalServerError"
    assert "model down" in event.attributes["exception.message"]


def test_with_openai_autolog_too_each_model_call_is_recorded_once(
    autolog, traces: InMemoryExporter, server: FakeLLMServer
) -> None:
    tm.openai.autolog()
    try:
        _script_team(server)
        _run_team(server)
    finally:
        tm.openai.autolog(disable=True)
    (trace,) = traces.traces
    assert len(trace.search_spans(span_type="CHAT_MODEL")) == 2
    assert (trace.info.input_tokens, trace.info.output_tokens) == (50, 9)


def test_log_traces_false_records_nothing(traces: InMemoryExporter, server: FakeLLMServer) -> None:
    tm.autogen.autolog(log_traces=False)
    try:
        _script_team(server)
        _run_team(server)
    finally:
        tm.autogen.autolog(disable=True)
    assert traces.traces == []


def test_disable_restores_every_method_and_enabling_twice_is_harmless() -> None:
    targets = [
        (BaseGroupChat, "run_stream"),
        (BaseChatAgent, "__init__"),
        (BaseChatAgent, "on_messages_stream"),
        (AssistantAgent, "on_messages"),
        (AssistantAgent, "on_messages_stream"),
        (BaseTool, "run_json"),
        (BaseOpenAIChatCompletionClient, "create"),
        (BaseOpenAIChatCompletionClient, "create_stream"),
    ]
    before = [owner.__dict__[name] for owner, name in targets]
    tm.autogen.autolog()
    tm.autogen.autolog()
    try:
        patched = [owner.__dict__[name] for owner, name in targets]
        assert all(p is not b for p, b in zip(patched, before, strict=True))
        assert all(p.__wrapped__ is b for p, b in zip(patched, before, strict=True))
    finally:
        tm.autogen.autolog(disable=True)
    assert [owner.__dict__[name] for owner, name in targets] == before
