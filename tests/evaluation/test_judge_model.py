"""Judge models: URIs, both SDKs against the fake server, retries, timeouts, limits, metering."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import openai
import pytest

import tracemark as tm
from tracemark.evaluation._usage import BudgetExceeded, JudgeUsage, using
from tracemark.evaluation.judges import Correctness, Safety, get_judge_model
from tracemark.evaluation.judges._model import parse_model_uri
from tracemark.evaluation.judges._providers import provider_named
from tracemark.exceptions import InvalidInputError
from tracemark.integrations._cost import cost_usd
from tracemark.testing import capture_traces
from tracemark.testing.llm_server import FakeLLMServer, Reply, Request, ToolCall
from tracemark.tracing.client import TracingClient

YES = Reply(text='{"rationale": "It matches.", "result": "yes"}', input_tokens=120, output_tokens=9)
ROW = {"inputs": "What is 2+2?", "outputs": "4", "expectations": {"expected_response": "4"}}


@pytest.fixture(scope="module")
def server_module() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


@pytest.fixture
def server(server_module: FakeLLMServer) -> Iterator[FakeLLMServer]:
    server_module.clear()
    server_module.responder = None
    server_module.default = YES
    yield server_module
    server_module.responder = None
    server_module.clear()


def openai_model(server: FakeLLMServer, name: str = "gpt-4o-mini", **kwargs):
    kwargs.setdefault("backoff_s", 0.001)
    return get_judge_model(f"openai:/{name}", base_url=server.openai_url, api_key="k", **kwargs)


def anthropic_model(server: FakeLLMServer, name: str = "claude-3-5-haiku-latest", **kwargs):
    kwargs.setdefault("backoff_s", 0.001)
    return get_judge_model(f"anthropic:/{name}", base_url=server.url, api_key="k", **kwargs)


def header(request: Request, name: str) -> str | None:
    return {k.lower(): v for k, v in request.headers.items()}.get(name)


# -- model URIs ----------------------------------------------------------------------------


def test_model_uris_name_a_provider_and_a_model() -> None:
    assert parse_model_uri("openai:/gpt-4o-mini") == ("openai", "gpt-4o-mini")
    assert parse_model_uri("anthropic:/claude-3-5-haiku-latest") == (
        "anthropic",
        "claude-3-5-haiku-latest",
    )
    # Local servers' model names may contain slashes.
    assert parse_model_uri("openai:/meta-llama/Llama-3.1-8B") == (
        "openai",
        "meta-llama/Llama-3.1-8B",
    )


@pytest.mark.parametrize("uri", ["gpt-4o-mini", "openai:gpt-4o", "openai:/", "gemini:/pro", ""])
def test_a_malformed_model_uri_is_rejected_by_name(uri: str) -> None:
    with pytest.raises(InvalidInputError, match=repr(uri)):
        get_judge_model(uri)
    with pytest.raises(InvalidInputError, match=repr(uri)):
        Correctness(model=uri)


def test_the_default_judge_model_comes_from_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRACEMARK_JUDGE_MODEL", raising=False)
    assert get_judge_model().uri == "openai:/gpt-4o-mini"
    monkeypatch.setenv("TRACEMARK_JUDGE_MODEL", "anthropic:/claude-3-5-haiku-latest")
    assert get_judge_model().uri == "anthropic:/claude-3-5-haiku-latest"
    assert Safety().judge_model.uri == "anthropic:/claude-3-5-haiku-latest"


def test_the_sdks_own_environment_variables_are_honoured(
    server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", server.openai_url)
    monkeypatch.setenv("OPENAI_API_KEY", "from-env")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "from-env")
    assert Correctness(model="openai:/gpt-4o-mini").run(**ROW)[0].value == "yes"
    assert header(server.requests[-1], "authorization") == "Bearer from-env"
    assert Safety(model="anthropic:/claude-3-5-haiku-latest").run(outputs="hi")[0].value == "yes"
    assert server.requests[-1].path == "/v1/messages"
    sent = header(server.requests[-1], "x-api-key") or header(server.requests[-1], "authorization")
    assert sent is not None and sent.endswith("from-env")


def test_a_local_endpoint_needs_no_api_key(
    server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    model = get_judge_model("openai:/llama3.1", base_url=server.openai_url)
    assert Correctness(model=model).run(**ROW)[0].value == "yes"
    assert server.requests[-1].body["model"] == "llama3.1"


def test_a_judge_takes_the_endpoint_and_key_itself(server: FakeLLMServer) -> None:
    judge = Correctness(model="openai:/gpt-4o-mini", base_url=server.openai_url, api_key="own")
    assert judge.run(**ROW)[0].value == "yes"
    assert header(server.requests[-1], "authorization") == "Bearer own"
    assert "own" not in json.dumps(judge.to_spec())
    with pytest.raises(InvalidInputError, match="get_judge_model"):
        Correctness(model=openai_model(server), api_key="other")


def test_importing_tracemark_and_the_judges_loads_no_llm_sdk() -> None:
    code = (
        "import sys, tracemark, tracemark.evaluation.judges, tracemark.evaluation.agreement\n"
        "print(sorted(m for m in ('openai', 'anthropic') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- one call through each SDK -------------------------------------------------------------


def test_openai_chat_asks_for_structured_output_and_reads_usage(server: FakeLLMServer) -> None:
    schema = {"type": "object", "properties": {"result": {"type": "string"}}}
    response = openai_model(server).chat(
        [{"role": "user", "content": "Judge this"}], json_schema=schema
    )
    body = server.requests[-1].body
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "judgement", "schema": schema, "strict": True},
    }
    assert response.text == YES.text
    assert (response.input_tokens, response.output_tokens) == (120, 9)
    assert response.model == "gpt-4o-mini"
    expected = cost_usd("openai", "gpt-4o-mini", {"input_tokens": 120, "output_tokens": 9})
    assert expected and response.cost == pytest.approx(expected)


def test_tool_calls_and_results_round_trip_through_both_sdks(server: FakeLLMServer) -> None:
    server.default = Reply(text="", tool_calls=[ToolCall("get_span", {"span_id": "ab"}, id="c1")])
    tools = [
        {
            "name": "get_span",
            "description": "Show a span.",
            "parameters": {"type": "object", "properties": {"span_id": {"type": "string"}}},
        }
    ]
    conversation = [
        {"role": "system", "content": "Be a judge."},
        {"role": "user", "content": "Judge the trace."},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"id": "c0", "name": "get_span", "arguments": {"span_id": "aa"}}],
        },
        {"role": "tool", "tool_call_id": "c0", "content": '{"name": "root"}'},
    ]
    for model in (openai_model(server), anthropic_model(server)):
        response = model.chat(conversation, tools=tools)
        assert [(c.id, c.name, c.arguments) for c in response.tool_calls] == [
            ("c1", "get_span", {"span_id": "ab"})
        ]
    openai_body, anthropic_body = (r.body for r in server.requests[-2:])
    assert openai_body["tools"][0]["function"]["name"] == "get_span"
    assert openai_body["messages"][2]["tool_calls"][0]["function"] == {
        "name": "get_span",
        "arguments": '{"span_id": "aa"}',
    }
    assert openai_body["messages"][3] == conversation[3]
    assert anthropic_body["system"] == "Be a judge."
    assert anthropic_body["tools"][0]["input_schema"] == tools[0]["parameters"]
    assert anthropic_body["messages"][1]["content"] == [
        {"type": "tool_use", "id": "c0", "name": "get_span", "input": {"span_id": "aa"}}
    ]
    assert anthropic_body["messages"][2] == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "c0", "content": '{"name": "root"}'}],
    }


def test_a_server_without_structured_output_gets_plain_json_requests(
    server: FakeLLMServer,
) -> None:
    def responder(request: Request) -> Reply:
        if "response_format" in request.body:
            return Reply(status=400, error_message="response_format json_schema is unsupported")
        return YES

    server.responder = responder
    judge = Correctness(model=openai_model(server, "local-no-schema"))
    assert judge.run(**ROW)[0].value == "yes"
    assert judge.run(**ROW)[0].value == "yes"
    # Refused once; afterwards the model is asked without response_format straight away.
    assert ["response_format" in r.body for r in server.requests] == [True, False, False]


# -- retries, timeouts, limits -------------------------------------------------------------


def test_a_rate_limit_is_retried_then_succeeds(server: FakeLLMServer) -> None:
    # A long back-off that Retry-After: 0 (sent by the fake server) overrides.
    judge = Correctness(model=openai_model(server, backoff_s=30.0))
    judge.run(**ROW)  # SDK imported, price table loaded: not part of the timing
    server.clear()
    server.fail(429)
    server.reply(YES)
    usage = JudgeUsage()
    started = time.monotonic()
    with using(usage):
        feedback = judge.run(**ROW)
    assert time.monotonic() - started < 5
    assert feedback[0].value == "yes"
    assert len(server.requests) == 2
    assert (usage.calls, usage.failed_calls) == (2, 1)


def test_server_errors_beyond_the_retries_become_a_feedback_error(server: FakeLLMServer) -> None:
    server.fail(500, times=5)
    feedback = Correctness(model=openai_model(server, max_retries=2)).run(**ROW)
    assert feedback[0].value is None
    assert "failed after 3 attempts" in feedback[0].error
    assert "500" in feedback[0].error
    assert len(server.requests) == 3


def test_a_client_error_is_not_retried(server: FakeLLMServer) -> None:
    server.fail(400, message="bad request body")
    feedback = Correctness(model=openai_model(server, max_retries=3)).run(**ROW)
    assert "bad request body" in feedback[0].error
    assert len(server.requests) == 1


def test_retry_after_headers_set_the_delay() -> None:
    provider = provider_named("openai")
    request = httpx.Request("POST", "http://127.0.0.1/v1/chat/completions")

    def error(status: int, headers: dict[str, str]) -> openai.APIStatusError:
        response = httpx.Response(status, headers=headers, request=request)
        return openai.APIStatusError("failed", response=response, body=None)

    assert provider.retry_delay(error(429, {"retry-after": "2"})) == 2.0
    assert provider.retry_delay(error(429, {"retry-after-ms": "250"})) == 0.25
    assert provider.retry_delay(error(503, {})) == -1.0  # retry, with our own back-off
    assert provider.retry_delay(error(429, {"retry-after": "86400"})) == -1.0  # too long
    assert provider.retry_delay(error(401, {})) is None  # not retryable


def test_a_timeout_becomes_a_feedback_error_within_the_timeout(server: FakeLLMServer) -> None:
    judge = Correctness(model=openai_model(server, timeout=0.2, max_retries=0))
    judge.run(**ROW)  # SDK imported, price table loaded: not part of the timing
    server.responder = lambda request: Reply(text=YES.text, delay=2.0)
    started = time.monotonic()
    feedback = judge.run(**ROW)
    assert time.monotonic() - started < 1.5
    assert feedback[0].value is None
    assert "timed out" in feedback[0].error.lower()


def test_requests_in_flight_stay_within_the_concurrency_limit(server: FakeLLMServer) -> None:
    lock = threading.Lock()
    in_flight = peak = 0

    def responder(request: Request) -> Reply:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        time.sleep(0.08)
        with lock:
            in_flight -= 1
        return YES

    server.responder = responder
    name = f"limited-{uuid.uuid4().hex[:6]}"  # a semaphore of its own
    # Two judges on one model share its limit.
    judges = [
        Correctness(model=openai_model(server, name, max_concurrency=2)),
        Safety(model=openai_model(server, name, max_concurrency=2)),
    ]
    results: list[str] = []

    def run(i: int) -> None:
        results.append(judges[i % 2].run(**ROW)[0].value)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["yes"] * 8
    assert peak == 2


# -- metering and tracing ------------------------------------------------------------------


def test_tokens_and_cost_are_recorded_on_the_active_meter(server: FakeLLMServer) -> None:
    usage = JudgeUsage()
    with using(usage):
        Correctness(model=openai_model(server)).run(**ROW)
        Safety(model=anthropic_model(server)).run(outputs="4")
    assert (usage.calls, usage.failed_calls) == (2, 0)
    assert (usage.input_tokens, usage.output_tokens) == (240, 18)
    counts = {"input_tokens": 120, "output_tokens": 9}
    expected = cost_usd("openai", "gpt-4o-mini", counts) + cost_usd(
        "anthropic", "claude-3-5-haiku-latest", counts
    )
    assert usage.cost_usd == pytest.approx(expected)


def test_judge_calls_become_spans_of_the_meters_trace(server: FakeLLMServer) -> None:
    server.reply(YES)
    server.fail(400, message="no such model")
    client = TracingClient()
    with capture_traces() as exporter:
        root = client.start_trace("evaluation")
        usage = JudgeUsage(client=client, trace_id=root.trace_id, parent_id=root.span_id)
        judge = Correctness(model=openai_model(server))
        with using(usage):
            assert judge.run(**ROW)[0].value == "yes"
            assert judge.run(**ROW)[0].error
        client.end_trace(root.trace_id)
    (trace,) = exporter.traces
    calls = [s for s in trace.spans if s.span_type == "CHAT_MODEL"]
    assert [(s.name, s.status_code, s.parent_id) for s in calls] == [
        ("correctness", "OK", root.span_id),
        ("correctness", "ERROR", root.span_id),
    ]
    ok = calls[0]
    assert ok.attributes["gen_ai.request.model"] == "gpt-4o-mini"
    assert ok.attributes["gen_ai.usage.input_tokens"] == 120
    assert ok.attributes["gen_ai.usage.cost"] > 0
    assert ok.outputs == {"text": YES.text}
    assert "What is 2+2?" in json.dumps(ok.inputs)


def test_a_spent_budget_stops_the_call_before_it_is_made(server: FakeLLMServer) -> None:
    usage = JudgeUsage(max_cost_usd=0.001, cost_usd=0.001)
    with using(usage), pytest.raises(BudgetExceeded):
        Correctness(model=openai_model(server)).run(**ROW)
    assert server.requests == []


def test_judge_calls_are_not_traced_by_autolog(server: FakeLLMServer) -> None:
    tm.openai.autolog()
    try:
        with capture_traces() as exporter:
            with tm.start_span("application"):
                assert Correctness(model=openai_model(server)).run(**ROW)[0].value == "yes"
            # The application's own calls are still traced.
            with openai.OpenAI(base_url=server.openai_url, api_key="k", max_retries=0) as sdk:
                sdk.chat.completions.create(model="gpt-4o-mini", messages=[])
    finally:
        tm.openai.autolog(disable=True)
    assert [[s.name for s in t.spans] for t in exporter.traces] == [
        ["application"],
        ["chat gpt-4o-mini"],
    ]
