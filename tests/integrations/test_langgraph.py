"""LangGraph graphs through the LangChain integration, with a real ChatOpenAI on the fake server."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from typing import Annotated, Any, TypedDict

import httpx
import pytest
from langchain_core.messages import BaseMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode, tools_condition

import tracemark as tm
from tracemark.testing import InMemoryExporter
from tracemark.testing.llm_server import FakeLLMServer, ToolCall


class State(TypedDict):
    messages: Annotated[list[Any], add_messages]


@tm.trace(span_type="TOOL")
def lookup_weather(city: str) -> str:
    return f"sunny in {city}"


@tool
def get_weather(city: str) -> str:
    """Return the weather in a city."""
    return lookup_weather(city)


@tool
async def aget_weather(city: str) -> str:
    """Return the weather in a city."""
    return lookup_weather(city)


@pytest.fixture
def langchain_autolog() -> Iterator[None]:
    tm.langchain.autolog()
    yield
    tm.langchain.autolog(disable=True)


def _graph(server: FakeLLMServer, *, http_async_client: Any = None) -> Any:
    """prep -> agent -> (tools -> agent)* -> end: two nodes and a tool node.

    With an async HTTP client (closed by the caller, in its event loop) the nodes are async.
    """
    asynchronous = http_async_client is not None
    weather = aget_weather if asynchronous else get_weather
    llm = ChatOpenAI(
        model="gpt-4o-mini",
        base_url=server.openai_url,
        api_key="test",
        max_retries=0,
        http_async_client=http_async_client,
    ).bind_tools([weather])

    def prep(state: State) -> dict[str, Any]:
        return {"messages": [("system", "Answer in one sentence.")]}

    def agent(state: State) -> dict[str, Any]:
        return {"messages": [llm.invoke(state["messages"])]}

    async def aagent(state: State) -> dict[str, Any]:
        return {"messages": [await llm.ainvoke(state["messages"])]}

    graph = StateGraph(State)
    graph.add_node("prep", prep)
    graph.add_node("agent", aagent if asynchronous else agent)
    graph.add_node("tools", ToolNode([weather]))
    graph.add_edge(START, "prep")
    graph.add_edge("prep", "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    return graph.compile()


def _script(server: FakeLLMServer) -> None:
    server.reply(
        text="",
        tool_calls=[ToolCall("get_weather", {"city": "Paris"}, id="call_1")],
        input_tokens=30,
        output_tokens=8,
    )
    server.reply(text="It is sunny in Paris.", input_tokens=45, output_tokens=7)


def _shape(span: Any) -> tuple[Any, ...]:
    return (span.name, span.span_type, [_shape(child) for child in span.children])


EXPECTED_TREE = (
    "LangGraph",
    "CHAIN",
    [
        ("prep", "CHAIN", []),
        ("agent", "CHAIN", [("ChatOpenAI", "CHAT_MODEL", []), ("tools_condition", "CHAIN", [])]),
        (
            "tools",
            "CHAIN",
            [("get_weather", "TOOL", [("lookup_weather", "TOOL", [])])],
        ),
        ("agent", "CHAIN", [("ChatOpenAI", "CHAT_MODEL", []), ("tools_condition", "CHAIN", [])]),
    ],
)


def test_graph_nodes_and_tool_calls_nest_under_the_graph_run(
    langchain_autolog, traces: InMemoryExporter, server: FakeLLMServer
) -> None:
    _script(server)
    result = _graph(server).invoke({"messages": [("user", "Weather in Paris?")]})
    assert result["messages"][-1].content == "It is sunny in Paris."

    (trace,) = traces.traces
    root = trace.root
    assert _shape(root) == EXPECTED_TREE
    assert root.inputs == {"messages": [["user", "Weather in Paris?"]]}
    assert [m["role"] for m in root.outputs["messages"]] == [
        "user",
        "system",
        "assistant",
        "tool",
        "assistant",
    ]
    prep, agent, tools, _ = root.children
    assert (prep.attributes["langgraph.node"], prep.attributes["langgraph.step"]) == ("prep", 1)
    assert tools.attributes["langgraph.node"] == "tools"
    chat = agent.children[0]
    assert chat.inputs["messages"] == [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "system", "content": "Answer in one sentence."},
    ]
    assert chat.outputs["choices"][0]["message"]["tool_calls"][0]["function"] == {
        "name": "get_weather",
        "arguments": '{"city": "Paris"}',
    }
    tool_span = tools.children[0]
    assert tool_span.inputs == {"city": "Paris"}
    assert tool_span.outputs == "sunny in Paris"
    assert tool_span.attributes["gen_ai.tool.call.id"] == "call_1"
    info = trace.info
    assert (info.input_tokens, info.output_tokens) == (75, 15)
    assert info.cost is not None and info.cost > 0


def test_graph_returns_the_same_state_with_and_without_autolog(
    traces: InMemoryExporter, server: FakeLLMServer
) -> None:
    graph = _graph(server)

    def run() -> list[Any]:
        _script(server)
        state = graph.invoke({"messages": [("user", "Weather in Paris?")]})
        return [_plain(m) for m in state["messages"]]

    plain = run()
    tm.langchain.autolog()
    try:
        traced = run()
    finally:
        tm.langchain.autolog(disable=True)
    assert traced == plain
    # Without autolog only the tool's own `@tm.trace` span makes a trace.
    assert [t.root.name for t in traces.traces] == ["lookup_weather", "LangGraph"]


def _plain(message: BaseMessage) -> dict[str, Any]:
    return message.model_dump(exclude={"id"})


def test_streamed_graph_ends_with_the_stream_and_yields_the_same_updates(
    traces: InMemoryExporter, server: FakeLLMServer
) -> None:
    graph = _graph(server)

    def updates(stream: Iterator[dict[str, Any]]) -> list[Any]:
        out = []
        for update in stream:
            ((node, values),) = update.items()
            out.append(
                (node, [_plain(m) for m in values["messages"] if isinstance(m, BaseMessage)])
            )
        return out

    _script(server)
    plain = updates(graph.stream({"messages": [("user", "Weather?")]}, stream_mode="updates"))
    traces.clear()
    tm.langchain.autolog()
    try:
        _script(server)
        stream = graph.stream({"messages": [("user", "Weather?")]}, stream_mode="updates")
        try:
            first = next(stream)
            assert traces.traces == []  # the graph's span lasts as long as the stream
            traced = updates(itertools.chain([first], stream))
        finally:
            stream.close()
    finally:
        tm.langchain.autolog(disable=True)
    assert traced == plain
    (trace,) = traces.traces
    assert _shape(trace.root) == EXPECTED_TREE
    assert tm.get_current_active_span() is None


def test_async_graph_nests_under_the_callers_span(
    langchain_autolog, traces: InMemoryExporter, server: FakeLLMServer
) -> None:
    @tm.trace(span_type="AGENT")
    async def assistant(graph: Any, question: str) -> str:
        state = await graph.ainvoke({"messages": [("user", question)]})
        return state["messages"][-1].content

    async def main() -> str:
        async with httpx.AsyncClient() as http:
            return await assistant(_graph(server, http_async_client=http), "Weather in Paris?")

    server.reply(text="", tool_calls=[ToolCall("aget_weather", {"city": "Paris"})])
    server.reply(text="It is sunny in Paris.")
    assert asyncio.run(main()) == "It is sunny in Paris."

    (trace,) = traces.traces
    root = trace.root
    assert root.name == "assistant"
    (graph_span,) = root.children
    tree = _shape(graph_span)
    assert tree[0] == "LangGraph"
    assert [node[0] for node in tree[2]] == ["prep", "agent", "tools", "agent"]
    tools = graph_span.children[2]
    assert _shape(tools) == (
        "tools",
        "CHAIN",
        [("aget_weather", "TOOL", [("lookup_weather", "TOOL", [])])],
    )
    assert len(trace.search_spans(span_type="CHAT_MODEL")) == 2
    assert tm.get_current_active_span() is None


def test_failing_node_is_recorded_on_node_and_graph_and_reraised(
    langchain_autolog, traces: InMemoryExporter
) -> None:
    def fine(state: State) -> dict[str, Any]:
        return {"messages": [("assistant", "ok")]}

    def broken(state: State) -> dict[str, Any]:
        raise ValueError("node failed")

    graph = StateGraph(State)
    graph.add_node("fine", fine)
    graph.add_node("broken", broken)
    graph.add_edge(START, "fine")
    graph.add_edge("fine", "broken")
    graph.add_edge("broken", END)
    with pytest.raises(ValueError, match="node failed"):
        graph.compile().invoke({"messages": [("user", "hi")]})

    (trace,) = traces.traces
    root = trace.root
    assert (root.name, root.status_code) == ("LangGraph", "ERROR")
    fine_span, broken_span = root.children
    assert fine_span.status_code == "OK"
    assert broken_span.status_code == "ERROR"
    assert broken_span.events[0].attributes["exception.message"] == "node failed"


def test_interrupt_is_not_an_error(langchain_autolog, traces: InMemoryExporter) -> None:
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.types import interrupt

    def ask_human(state: State) -> dict[str, Any]:
        answer = interrupt("approve?")
        return {"messages": [("user", answer)]}

    graph = StateGraph(State)
    graph.add_node("ask_human", ask_human)
    graph.add_edge(START, "ask_human")
    graph.add_edge("ask_human", END)
    app = graph.compile(checkpointer=InMemorySaver())
    result = app.invoke({"messages": [("user", "hi")]}, {"configurable": {"thread_id": "t-1"}})
    assert "__interrupt__" in result

    (trace,) = traces.traces
    assert all(span.status_code == "OK" for span in trace.spans)
    (node,) = trace.root.children
    assert [e.name for e in node.events] == ["langgraph.interrupt"]
    assert trace.root.attributes["langchain.metadata"] == {"thread_id": "t-1"}
