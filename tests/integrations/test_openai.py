"""The OpenAI integration, with the real `openai` SDK against the fake server."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import Iterator

import openai
import pytest
from genai_prices import Usage, calc_price
from openai.resources.chat.completions import AsyncCompletions, Completions
from pydantic import BaseModel

import tracemark as tm
from tracemark.testing import InMemoryExporter
from tracemark.testing.llm_server import FakeLLMServer, ToolCall

MESSAGES = [{"role": "user", "content": "What is the weather in Paris?"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


@pytest.fixture
def client(server: FakeLLMServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.openai_url, api_key="test", max_retries=0) as c:
        yield c


def _async_client(server: FakeLLMServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.openai_url, api_key="test", max_retries=0)


def _price(model: str, **usage: int) -> float:
    return float(calc_price(Usage(**usage), model, provider_id="openai").total_price)


def _only_span(traces: InMemoryExporter):
    assert len(traces.traces) == 1
    (span,) = traces.traces[0].spans
    return span


# -- chat completions ----------------------------------------------------------------------


def test_chat_completion_is_a_chat_span_nested_under_the_callers_span(
    autolog, traces: InMemoryExporter, client: openai.OpenAI, server: FakeLLMServer
) -> None:
    server.reply(text="Sunny.", input_tokens=30, output_tokens=4)

    @tm.trace(span_type="AGENT")
    def agent(question: str) -> str:
        response = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": question}],
            temperature=0.2,
            tools=[WEATHER_TOOL],
        )
        return response.choices[0].message.content

    assert agent("Weather?") == "Sunny."
    (trace,) = traces.traces
    root = trace.root
    assert root.name == "agent"
    (chat,) = root.children
    assert chat.name == "chat gpt-4o-mini"
    assert chat.span_type == "CHAT_MODEL"
    assert chat.status_code == "OK"
    assert chat.inputs == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Weather?"}],
        "temperature": 0.2,
        "tools": [WEATHER_TOOL],
    }
    assert chat.outputs["choices"][0]["message"] == {"role": "assistant", "content": "Sunny."}
    attrs = chat.attributes
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.request.model"] == "gpt-4o-mini"
    assert attrs["gen_ai.response.model"] == "gpt-4o-mini"
    assert attrs["gen_ai.request.temperature"] == 0.2
    assert attrs["gen_ai.response.finish_reasons"] == ["stop"]
    assert attrs["gen_ai.usage.input_tokens"] == 30
    assert attrs["gen_ai.usage.output_tokens"] == 4
    assert attrs["server.address"] == "127.0.0.1"
    cost = _price("gpt-4o-mini", input_tokens=30, output_tokens=4)
    assert attrs["gen_ai.usage.cost"] == pytest.approx(cost)
    assert 0 < cost < 1e-4
    info = trace.info
    assert (info.input_tokens, info.output_tokens, info.total_tokens) == (30, 4, 34)
    assert info.cost == pytest.approx(cost)


def test_chat_completion_returns_what_the_library_returns_without_autolog(
    traces: InMemoryExporter, client: openai.OpenAI, server: FakeLLMServer
) -> None:
    plain = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    tm.openai.autolog()
    try:
        traced = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    finally:
        tm.openai.autolog(disable=True)
    assert type(traced) is type(plain)
    assert traced.model_dump() == plain.model_dump()
    assert len(traces.traces) == 1
    assert _only_span(traces).outputs == traced.model_dump(exclude_unset=True)


def test_tool_calls_are_recorded(
    autolog, traces: InMemoryExporter, client: openai.OpenAI, server: FakeLLMServer
) -> None:
    server.reply(text="", tool_calls=[ToolCall("get_weather", {"city": "Paris"}, id="call_7")])
    response = client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, tools=[WEATHER_TOOL]
    )
    assert response.choices[0].message.tool_calls[0].function.name == "get_weather"
    span = _only_span(traces)
    assert span.outputs["choices"][0]["message"]["tool_calls"] == [
        {
            "id": "call_7",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
        }
    ]
    assert span.attributes["gen_ai.response.finish_reasons"] == ["tool_calls"]


def _chunks(stream) -> list[dict]:
    return [chunk.model_dump() for chunk in stream]


def test_streaming_yields_the_same_stream_and_chunks_and_records_the_assembled_message(
    traces: InMemoryExporter, client: openai.OpenAI, server: FakeLLMServer
) -> None:
    kwargs = dict(
        model="gpt-4o-mini",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    server.reply(text="It is sunny in Paris.", input_tokens=12, output_tokens=6)
    plain = _chunks(client.chat.completions.create(**kwargs))
    tm.openai.autolog()
    try:
        server.reply(text="It is sunny in Paris.", input_tokens=12, output_tokens=6)
        stream = client.chat.completions.create(**kwargs)
        assert type(stream) is openai.Stream
        assert traces.traces == []  # the span lasts as long as the stream
        seen = []
        for chunk in stream:
            seen.append(chunk)
    finally:
        tm.openai.autolog(disable=True)
    assert [c.model_dump() for c in seen] == plain
    span = _only_span(traces)
    assert span.outputs["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "It is sunny in Paris."},
            "finish_reason": "stop",
        }
    ]
    assert span.outputs["usage"]["prompt_tokens"] == 12
    assert span.attributes["gen_ai.usage.input_tokens"] == 12
    assert span.attributes["gen_ai.usage.output_tokens"] == 6
    assert span.attributes["gen_ai.usage.cost"] == pytest.approx(
        _price("gpt-4o-mini", input_tokens=12, output_tokens=6)
    )
    assert span.inputs["stream"] is True


def test_streamed_tool_calls_are_reassembled(
    autolog, traces: InMemoryExporter, client: openai.OpenAI, server: FakeLLMServer
) -> None:
    server.reply(
        text="",
        tool_calls=[
            ToolCall("get_weather", {"city": "Paris"}, id="call_1"),
            ToolCall("get_weather", {"city": "Rome"}, id="call_2"),
        ],
    )
    for _ in client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, tools=[WEATHER_TOOL], stream=True
    ):
        pass
    message = _only_span(traces).outputs["choices"][0]["message"]
    assert [(c["id"], json.loads(c["function"]["arguments"])) for c in message["tool_calls"]] == [
        ("call_1", {"city": "Paris"}),
        ("call_2", {"city": "Rome"}),
    ]


def test_stream_closed_early_ends_the_span_with_what_was_received(
    autolog, traces: InMemoryExporter, client: openai.OpenAI, server: FakeLLMServer
) -> None:
    server.reply(text="one two three four five six", chunk_chars=4)
    with client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True) as s:
        for chunk in s:
            if chunk.choices and chunk.choices[0].delta.content:
                break
    span = _only_span(traces)
    assert span.status_code == "OK"
    assert span.outputs["choices"][0]["message"]["content"] == "one "


def test_stream_helper_with_tool_call_is_one_span(
    autolog, traces: InMemoryExporter, client: openai.OpenAI, server: FakeLLMServer
) -> None:
    server.reply(text="", tool_calls=[ToolCall("get_weather", {"city": "Oslo"})])
    with client.chat.completions.stream(
        model="gpt-4o-mini", messages=MESSAGES, tools=[WEATHER_TOOL]
    ) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    assert final.choices[0].message.tool_calls[0].function.arguments == '{"city": "Oslo"}'
    span = _only_span(traces)
    assert span.name == "chat gpt-4o-mini"
    assert span.outputs["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == (
        "get_weather"
    )


class Weather(BaseModel):
    city: str
    celsius: float


def test_structured_output_with_parse(
    autolog, traces: InMemoryExporter, client: openai.OpenAI, server: FakeLLMServer
) -> None:
    server.reply(text='{"city": "Paris", "celsius": 21.5}')
    completion = client.chat.completions.parse(
        model="gpt-4o-mini", messages=MESSAGES, response_format=Weather
    )
    assert completion.choices[0].message.parsed == Weather(city="Paris", celsius=21.5)
    span = _only_span(traces)
    assert span.inputs["response_format"]["name"] == "Weather"
    assert span.inputs["response_format"]["schema"]["properties"]["celsius"]["type"] == "number"
    assert span.outputs["choices"][0]["message"]["parsed"] == {"city": "Paris", "celsius": 21.5}
    assert span.attributes["gen_ai.usage.input_tokens"] == 10


def test_async_chat_and_async_streaming(
    autolog, traces: InMemoryExporter, server: FakeLLMServer
) -> None:
    async def main() -> tuple[str, list[str]]:
        async with _async_client(server) as client:
            server.reply(text="async answer", input_tokens=7, output_tokens=2)
            response = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
            server.reply(text="streamed async", input_tokens=8, output_tokens=3)
            stream = await client.chat.completions.create(
                model="gpt-4o",
                messages=MESSAGES,
                stream=True,
                stream_options={"include_usage": True},
            )
            assert type(stream) is openai.AsyncStream
            parts = [c.choices[0].delta.content async for c in stream if c.choices]
            return response.choices[0].message.content, parts

    content, parts = asyncio.run(main())
    assert content == "async answer"
    assert "".join(p for p in parts if p) == "streamed async"
    first, second = (t.spans[0] for t in traces.traces)
    assert first.outputs["choices"][0]["message"]["content"] == "async answer"
    assert first.attributes["gen_ai.usage.cost"] == pytest.approx(
        _price("gpt-4o", input_tokens=7, output_tokens=2)
    )
    assert second.outputs["choices"][0]["message"]["content"] == "streamed async"
    assert second.attributes["gen_ai.usage.output_tokens"] == 3


def test_async_calls_nest_under_the_callers_async_span(
    autolog, traces: InMemoryExporter, server: FakeLLMServer
) -> None:
    @tm.trace
    async def ask_twice() -> None:
        async with _async_client(server) as client:
            await asyncio.gather(
                client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES),
                client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES),
            )

    asyncio.run(ask_twice())
    (trace,) = traces.traces
    assert [c.name for c in trace.root.children] == ["chat gpt-4o-mini", "chat gpt-4o-mini"]
    assert trace.info.input_tokens == 20
    assert trace.info.cost == pytest.approx(
        2 * _price("gpt-4o-mini", input_tokens=10, output_tokens=5)
    )


# -- Responses API and embeddings ----------------------------------------------------------


def test_responses_create_and_stream(
    autolog, traces: InMemoryExporter, client: openai.OpenAI, server: FakeLLMServer
) -> None:
    server.reply(text="plain response", input_tokens=9, output_tokens=3)
    response = client.responses.create(model="gpt-4o-mini", input="Hi", instructions="Be brief")
    assert response.output_text == "plain response"
    server.reply(text="streamed response", input_tokens=11, output_tokens=4)
    events = list(client.responses.create(model="gpt-4o-mini", input="Hi", stream=True))
    assert events[-1].type == "response.completed"
    plain, streamed = (t.spans[0] for t in traces.traces)
    assert plain.span_type == "CHAT_MODEL"
    assert plain.inputs == {"model": "gpt-4o-mini", "input": "Hi", "instructions": "Be brief"}
    assert plain.outputs["output"][0]["content"][0]["text"] == "plain response"
    assert plain.attributes["gen_ai.usage.input_tokens"] == 9
    assert streamed.outputs["output"][0]["content"][0]["text"] == "streamed response"
    assert streamed.attributes["gen_ai.usage.output_tokens"] == 4
    assert streamed.attributes["gen_ai.usage.cost"] == pytest.approx(
        _price("gpt-4o-mini", input_tokens=11, output_tokens=4)
    )


def test_responses_stream_helper_and_async(
    autolog, traces: InMemoryExporter, client: openai.OpenAI, server: FakeLLMServer
) -> None:
    server.reply(text="helper text")
    with client.responses.stream(model="gpt-4o-mini", input="Hi") as stream:
        for _ in stream:
            pass
        assert stream.get_final_response().output_text == "helper text"

    async def main() -> str:
        async with _async_client(server) as aclient:
            server.reply(text="async response")
            return (await aclient.responses.create(model="gpt-4o-mini", input="Hi")).output_text

    assert asyncio.run(main()) == "async response"
    helper, async_span = (t.spans[0] for t in traces.traces)
    assert helper.outputs["output"][0]["content"][0]["text"] == "helper text"
    assert async_span.outputs["output"][0]["content"][0]["text"] == "async response"


def test_embeddings(
    autolog, traces: InMemoryExporter, client: openai.OpenAI, server: FakeLLMServer
) -> None:
    server.reply(input_tokens=6)
    result = client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    assert len(result.data) == 2

    async def main() -> int:
        async with _async_client(server) as aclient:
            out = await aclient.embeddings.create(model="text-embedding-3-small", input="c")
            return len(out.data)

    assert asyncio.run(main()) == 1
    sync_span, async_span = (t.spans[0] for t in traces.traces)
    assert sync_span.span_type == "EMBEDDING"
    assert sync_span.name == "embeddings text-embedding-3-small"
    assert sync_span.inputs == {"model": "text-embedding-3-small", "input": ["a", "b"]}
    assert len(sync_span.outputs["data"]) == 2
    assert sync_span.attributes["gen_ai.usage.input_tokens"] == 6
    assert sync_span.attributes["gen_ai.usage.cost"] == pytest.approx(
        _price("text-embedding-3-small", input_tokens=6)
    )
    assert async_span.span_type == "EMBEDDING"


# -- errors, media, unknown models ---------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_type"),
    [(500, openai.InternalServerError), (429, openai.RateLimitError)],
)
def test_http_errors_are_recorded_and_reraised_unchanged(
    autolog,
    traces: InMemoryExporter,
    client: openai.OpenAI,
    server: FakeLLMServer,
    status: int,
    error_type: type[Exception],
) -> None:
    server.fail(status, "boom")
    with pytest.raises(error_type) as caught:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert caught.value.status_code == status
    span = _only_span(traces)
    assert span.status_code == "ERROR"
    (event,) = span.events
    assert event.name == "exception"
    assert event.attributes["exception.type"] == f"openai.{error_type.__name__}"
    assert "boom" in event.attributes["exception.message"]
    assert traces.traces[0].info.status == "ERROR"


def test_timeouts_are_recorded_and_reraised(
    autolog, traces: InMemoryExporter, server: FakeLLMServer
) -> None:
    server.reply(delay=1.0)
    with (
        openai.OpenAI(
            base_url=server.openai_url, api_key="test", max_retries=0, timeout=0.1
        ) as client,
        pytest.raises(openai.APITimeoutError),
    ):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    span = _only_span(traces)
    assert span.status_code == "ERROR"
    assert span.events[0].attributes["exception.type"] == "openai.APITimeoutError"


def test_retries_inside_one_call_make_one_span(
    autolog, traces: InMemoryExporter, server: FakeLLMServer
) -> None:
    server.fail(429)
    with openai.OpenAI(base_url=server.openai_url, api_key="test", max_retries=1) as client:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    span = _only_span(traces)
    assert span.status_code == "OK"
    assert len(server.requests) == 2


def test_inline_images_are_kept_as_attachments_not_inlined(
    autolog, traces: InMemoryExporter, client: openai.OpenAI, server: FakeLLMServer
) -> None:
    image = b"\x89PNG" + bytes(range(256)) * 400
    url = "data:image/png;base64," + base64.b64encode(image).decode()
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in this image?"},
                {"type": "image_url", "image_url": {"url": url}},
            ],
        }
    ]
    client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    assert server.requests[-1].body["messages"][0]["content"][1]["image_url"]["url"] == url
    assert messages[0]["content"][1]["image_url"]["url"] == url  # the caller's list untouched
    span = _only_span(traces)
    reference = span.inputs["messages"][0]["content"][1]["image_url"]["url"]
    digest = hashlib.sha256(image).hexdigest()
    assert reference == f"tracemark-attachment:sha256:{digest}?type=image/png&size={len(image)}"
    assert len(span.inputs_json) < 1000
    (attachment,) = traces.traces[0].attachments
    assert (attachment.sha256, attachment.media_type, attachment.data) == (
        digest,
        "image/png",
        image,
    )


def test_unknown_models_get_tokens_but_no_cost(
    autolog, traces: InMemoryExporter, client: openai.OpenAI, server: FakeLLMServer
) -> None:
    client.chat.completions.create(model="llama3.2:1b", messages=MESSAGES)
    span = _only_span(traces)
    assert span.attributes["gen_ai.usage.input_tokens"] == 10
    assert "gen_ai.usage.cost" not in span.attributes
    assert traces.traces[0].info.cost is None
    assert traces.traces[0].info.input_tokens == 10


# -- switching on and off ------------------------------------------------------------------


def test_disable_restores_the_original_methods(
    traces: InMemoryExporter, client: openai.OpenAI
) -> None:
    originals = (Completions.__dict__["create"], AsyncCompletions.__dict__["create"])
    tm.openai.autolog()
    assert Completions.__dict__["create"] is not originals[0]
    tm.openai.autolog(disable=True)
    assert (Completions.__dict__["create"], AsyncCompletions.__dict__["create"]) == originals
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert traces.traces == []


def test_enabling_twice_records_each_call_once(
    traces: InMemoryExporter, client: openai.OpenAI
) -> None:
    tm.openai.autolog()
    tm.openai.autolog()
    try:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    finally:
        tm.openai.autolog(disable=True)
    assert len(traces.traces) == 1
    assert len(traces.traces[0].spans) == 1


def test_log_traces_false_records_nothing(traces: InMemoryExporter, client: openai.OpenAI) -> None:
    tm.openai.autolog(log_traces=False)
    try:
        response = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    finally:
        tm.openai.autolog(disable=True)
    assert response.choices[0].message.content
    assert traces.traces == []


def test_disabled_tracing_passes_calls_straight_through(
    autolog, traces: InMemoryExporter, client: openai.OpenAI
) -> None:
    tm.tracing.configure(enabled=False)
    response = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert response.choices[0].message.content
    assert traces.traces == []
