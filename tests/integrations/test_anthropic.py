"""The Anthropic integration, with the real `anthropic` SDK against the fake server."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator

import anthropic
import pytest
from anthropic.resources.messages import AsyncMessages, Messages
from genai_prices import Usage, calc_price

import tracemark as tm
from tracemark.testing import InMemoryExporter
from tracemark.testing.llm_server import FakeLLMServer, ToolCall

MODEL = "claude-sonnet-4-6"  # conditional prices: exercises the slow cost path
MESSAGES = [{"role": "user", "content": "What is the weather in Paris?"}]
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


@pytest.fixture
def client(server: FakeLLMServer) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=server.url, api_key="test", max_retries=0) as c:
        yield c


def _async_client(server: FakeLLMServer) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=server.url, api_key="test", max_retries=0)


def _price(**usage: int) -> float:
    return float(calc_price(Usage(**usage), MODEL, provider_id="anthropic").total_price)


def _only_span(traces: InMemoryExporter):
    assert len(traces.traces) == 1
    (span,) = traces.traces[0].spans
    return span


def test_messages_create_nested_under_the_callers_span(
    autolog, traces: InMemoryExporter, client: anthropic.Anthropic, server: FakeLLMServer
) -> None:
    server.reply(text="Sunny.", input_tokens=25, output_tokens=3)

    @tm.trace(span_type="AGENT")
    def agent() -> str:
        message = client.messages.create(
            model=MODEL,
            max_tokens=100,
            messages=MESSAGES,
            system="Be brief",
            stop_sequences=["END"],
        )
        return message.content[0].text

    assert agent() == "Sunny."
    (trace,) = traces.traces
    (span,) = trace.root.children
    assert span.name == f"chat {MODEL}"
    assert span.span_type == "CHAT_MODEL"
    assert span.inputs == {
        "model": MODEL,
        "max_tokens": 100,
        "messages": MESSAGES,
        "system": "Be brief",
        "stop_sequences": ["END"],
    }
    assert span.outputs["content"] == [{"type": "text", "text": "Sunny."}]
    attrs = span.attributes
    assert attrs["gen_ai.provider.name"] == "anthropic"
    assert attrs["gen_ai.request.max_tokens"] == 100
    assert attrs["gen_ai.request.stop_sequences"] == ["END"]
    assert attrs["gen_ai.response.finish_reasons"] == ["end_turn"]
    assert attrs["gen_ai.usage.input_tokens"] == 25
    assert attrs["gen_ai.usage.output_tokens"] == 3
    assert attrs["gen_ai.usage.cost"] == pytest.approx(_price(input_tokens=25, output_tokens=3))
    assert trace.info.cost == pytest.approx(attrs["gen_ai.usage.cost"])
    assert trace.info.total_tokens == 28


def test_cached_input_tokens_count_as_input_and_cost_less(
    autolog, traces: InMemoryExporter, client: anthropic.Anthropic, server: FakeLLMServer
) -> None:
    server.reply(input_tokens=1000, cached_tokens=800, output_tokens=10)
    message = client.messages.create(model=MODEL, max_tokens=100, messages=MESSAGES)
    assert message.usage.input_tokens == 200  # Anthropic reports uncached input only
    attrs = _only_span(traces).attributes
    assert attrs["gen_ai.usage.input_tokens"] == 1000
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 800
    expected = _price(input_tokens=1000, cache_read_tokens=800, output_tokens=10)
    assert attrs["gen_ai.usage.cost"] == pytest.approx(expected)
    assert expected < _price(input_tokens=1000, output_tokens=10)


def test_create_returns_what_the_library_returns_without_autolog(
    traces: InMemoryExporter, client: anthropic.Anthropic
) -> None:
    plain = client.messages.create(model=MODEL, max_tokens=10, messages=MESSAGES)
    tm.anthropic.autolog()
    try:
        traced = client.messages.create(model=MODEL, max_tokens=10, messages=MESSAGES)
    finally:
        tm.anthropic.autolog(disable=True)
    assert type(traced) is type(plain)
    assert traced.model_dump() == plain.model_dump()


def test_tool_use(
    autolog, traces: InMemoryExporter, client: anthropic.Anthropic, server: FakeLLMServer
) -> None:
    server.reply(text="Let me check.", tool_calls=[ToolCall("get_weather", {"city": "Paris"})])
    message = client.messages.create(
        model=MODEL, max_tokens=100, messages=MESSAGES, tools=[WEATHER_TOOL]
    )
    assert message.stop_reason == "tool_use"
    span = _only_span(traces)
    assert span.inputs["tools"] == [WEATHER_TOOL]
    assert span.outputs["content"][1] == {
        "type": "tool_use",
        "id": "call_1",
        "name": "get_weather",
        "input": {"city": "Paris"},
    }
    assert span.attributes["gen_ai.response.finish_reasons"] == ["tool_use"]


def test_create_stream_keeps_events_and_records_the_assembled_message(
    traces: InMemoryExporter, client: anthropic.Anthropic, server: FakeLLMServer
) -> None:
    reply = dict(text="Sunny and warm.", tool_calls=[ToolCall("get_weather", {"city": "Nice"})])
    server.reply(**reply)
    kwargs = dict(model=MODEL, max_tokens=100, messages=MESSAGES, stream=True)
    plain = [e.model_dump() for e in client.messages.create(**kwargs)]
    tm.anthropic.autolog()
    try:
        server.reply(**reply, input_tokens=40, output_tokens=12)
        stream = client.messages.create(**kwargs)
        assert type(stream) is anthropic.Stream
        events = list(stream)
    finally:
        tm.anthropic.autolog(disable=True)
    assert len(events) == len(plain)
    assert [e.type for e in events] == [e["type"] for e in plain]
    span = _only_span(traces)
    assert span.outputs["content"] == [
        {"type": "text", "text": "Sunny and warm."},
        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Nice"}},
    ]
    assert span.outputs["stop_reason"] == "tool_use"
    assert span.attributes["gen_ai.usage.input_tokens"] == 40
    assert span.attributes["gen_ai.usage.output_tokens"] == 12
    assert span.attributes["gen_ai.usage.cost"] == pytest.approx(
        _price(input_tokens=40, output_tokens=12)
    )


def test_messages_stream_helper(
    autolog, traces: InMemoryExporter, client: anthropic.Anthropic, server: FakeLLMServer
) -> None:
    server.reply(text="Streaming helper text.", input_tokens=15, output_tokens=5)

    @tm.trace
    def run() -> str:
        with client.messages.stream(model=MODEL, max_tokens=100, messages=MESSAGES) as stream:
            text = "".join(stream.text_stream)
            assert stream.get_final_message().content[0].text == text
        return text

    assert run() == "Streaming helper text."
    (trace,) = traces.traces
    (span,) = trace.root.children
    assert span.inputs["messages"] == MESSAGES
    assert span.outputs["content"] == [{"type": "text", "text": "Streaming helper text."}]
    assert span.attributes["gen_ai.usage.output_tokens"] == 5
    assert trace.info.cost == pytest.approx(_price(input_tokens=15, output_tokens=5))


def test_async_create_stream_and_stream_helper(
    autolog, traces: InMemoryExporter, server: FakeLLMServer
) -> None:
    async def main() -> list[str]:
        async with _async_client(server) as client:
            server.reply(text="one")
            first = await client.messages.create(model=MODEL, max_tokens=10, messages=MESSAGES)
            server.reply(text="two")
            stream = await client.messages.create(
                model=MODEL, max_tokens=10, messages=MESSAGES, stream=True
            )
            assert type(stream) is anthropic.AsyncStream
            events = [e async for e in stream]
            server.reply(text="three")
            async with client.messages.stream(
                model=MODEL, max_tokens=10, messages=MESSAGES
            ) as helper:
                third = await helper.get_final_message()
            return [first.content[0].text, events[-1].type, third.content[0].text]

    assert asyncio.run(main()) == ["one", "message_stop", "three"]
    texts = [t.spans[0].outputs["content"][0]["text"] for t in traces.traces]
    assert texts == ["one", "two", "three"]
    assert all(t.info.cost for t in traces.traces)


def test_errors_are_recorded_and_reraised(
    autolog, traces: InMemoryExporter, client: anthropic.Anthropic, server: FakeLLMServer
) -> None:
    server.fail(529, "overloaded")
    with pytest.raises(anthropic.APIStatusError) as caught:
        client.messages.create(model=MODEL, max_tokens=10, messages=MESSAGES)
    assert caught.value.status_code == 529
    span = _only_span(traces)
    assert span.status_code == "ERROR"
    assert "overloaded" in span.events[0].attributes["exception.message"]

    server.fail(429)
    with (
        pytest.raises(anthropic.RateLimitError),
        client.messages.stream(model=MODEL, max_tokens=10, messages=MESSAGES),
    ):
        pass
    assert traces.traces[-1].spans[0].status_code == "ERROR"


def test_inline_images_are_kept_as_attachments_not_inlined(
    autolog, traces: InMemoryExporter, client: anthropic.Anthropic, server: FakeLLMServer
) -> None:
    data = base64.b64encode(b"\xff\xd8\xff" + b"jpeg" * 5000).decode()
    messages = [
        {
            "role": "user",
            "content": [
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/jpeg", "data": data},
                },
                {"type": "text", "text": "Describe it."},
            ],
        }
    ]
    client.messages.create(model=MODEL, max_tokens=10, messages=messages)
    assert server.requests[-1].body["messages"][0]["content"][0]["source"]["data"] == data
    source = _only_span(traces).inputs["messages"][0]["content"][0]["source"]
    assert source["data"].startswith("tracemark-attachment:sha256:")
    assert source["data"].endswith("?type=image/jpeg&size=20003")
    (attachment,) = traces.traces[0].attachments
    assert attachment.data == base64.b64decode(data)
    assert source["media_type"] == "image/jpeg"


def test_disable_restores_the_original_methods(
    traces: InMemoryExporter, client: anthropic.Anthropic
) -> None:
    names = ("create", "stream", "parse")
    originals = [Messages.__dict__[n] for n in names] + [AsyncMessages.__dict__[n] for n in names]
    tm.anthropic.autolog()
    tm.anthropic.autolog()
    assert Messages.__dict__["stream"] is not originals[1]
    tm.anthropic.autolog(disable=True)
    restored = [Messages.__dict__[n] for n in names] + [AsyncMessages.__dict__[n] for n in names]
    assert restored == originals
    client.messages.create(model=MODEL, max_tokens=10, messages=MESSAGES)
    assert traces.traces == []
