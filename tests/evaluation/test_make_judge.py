"""make_judge: template variables, value types, and trace judges that read traces with tools."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Literal

import pytest

from tracemark.entities.trace import Trace
from tracemark.evaluation import scorers
from tracemark.evaluation.judges import CustomJudge, get_judge_model, make_judge
from tracemark.evaluation.judges._trace_tools import TraceTools
from tracemark.exceptions import InvalidInputError
from tracemark.testing import capture_traces
from tracemark.testing.llm_server import FakeLLMServer, Reply, Request, ToolCall
from tracemark.tracing.client import TracingClient

SECRET = "The vault code is 7781-ZETA"
FILLER = "filler text number"


@pytest.fixture(scope="module")
def server_module() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


@pytest.fixture
def server(server_module: FakeLLMServer) -> Iterator[FakeLLMServer]:
    server_module.clear()
    server_module.responder = None
    yield server_module
    server_module.responder = None
    server_module.clear()


@pytest.fixture(params=["openai", "anthropic"])
def model(request: pytest.FixtureRequest, server: FakeLLMServer):
    if request.param == "openai":
        return get_judge_model("openai:/gpt-4o-mini", base_url=server.openai_url, api_key="k")
    return get_judge_model("anthropic:/claude-3-5-haiku-latest", base_url=server.url, api_key="k")


@pytest.fixture
def openai_model(server: FakeLLMServer):
    return get_judge_model("openai:/gpt-4o-mini", base_url=server.openai_url, api_key="k")


def answer(result: Any, rationale: str = "Because.") -> Reply:
    return Reply(text=json.dumps({"rationale": rationale, "result": result}))


def user_text(request: Request) -> str:
    return [m for m in request.body["messages"] if m["role"] == "user"][0]["content"]


def tool_results(request: Request) -> list[str]:
    """The tool results a request sends back, in either API's format."""
    found = []
    for message in request.body["messages"]:
        if message["role"] == "tool":
            found.append(message["content"])
        elif isinstance(message.get("content"), list):
            found += [b["content"] for b in message["content"] if b.get("type") == "tool_result"]
    return found


# -- template variables --------------------------------------------------------------------


def test_parameters_are_exactly_the_variables_used() -> None:
    judge = make_judge(name="fit", instructions="Does {{outputs}} answer {{ inputs }}?")
    assert judge.parameters == ("inputs", "outputs")
    assert judge.instructions == "Does {{outputs}} answer {{ inputs }}?"
    assert not judge.needs_trace
    agent = make_judge(name="agent", instructions="Did the agent in {{ trace }} finish?")
    assert agent.parameters == ("trace",)
    assert agent.needs_trace
    assert agent.source_type == "LLM_JUDGE"


def test_unknown_variables_are_rejected_by_name() -> None:
    with pytest.raises(InvalidInputError, match=r"\['answer', 'question'\]") as caught:
        make_judge(name="x", instructions="Is {{ answer }} right for {{ question }}? {{ outputs }}")
    assert caught.value.field == "instructions"
    assert "{{ inputs }}" in str(caught.value)


@pytest.mark.parametrize("instructions", ["Is it good?", "Is {it} good?", "  "])
def test_instructions_without_a_variable_are_rejected(instructions: str) -> None:
    with pytest.raises(InvalidInputError, match="instructions"):
        make_judge(name="x", instructions=instructions)


def test_a_name_and_a_supported_value_type_are_required() -> None:
    with pytest.raises(InvalidInputError, match="name"):
        make_judge(name="", instructions="{{ outputs }}")
    with pytest.raises(InvalidInputError, match="feedback_value_type"):
        make_judge(name="x", instructions="{{ outputs }}", feedback_value_type=dict)
    with pytest.raises(InvalidInputError, match="not a model URI"):
        make_judge(name="x", instructions="{{ outputs }}", model="gpt-4o")


# -- pasted values and value types ---------------------------------------------------------


def test_values_are_pasted_into_the_instructions_as_json(openai_model, server) -> None:
    server.responder = lambda request: answer("fine")
    judge = make_judge(
        name="fit",
        instructions="Question: {{ inputs }}\nAnswer: {{ outputs }}\nIs the answer fine?",
        model=openai_model,
    )
    (feedback,) = judge.run(inputs={"question": "Q?"}, outputs="Yes.", expectations="unused")
    assert (feedback.value, feedback.rationale, feedback.name) == ("fine", "Because.", "fit")
    text = user_text(server.requests[-1])
    assert 'Question: {\n  "question": "Q?"\n}\nAnswer: "Yes."\nIs the answer fine?' in text
    assert "unused" not in text


def test_a_missing_value_is_a_feedback_error(openai_model, server) -> None:
    judge = make_judge(name="x", instructions="{{ outputs }} vs {{ expectations }}")
    (feedback,) = judge.run(outputs="a")
    assert feedback.error == "x needs expectations; none given"
    assert server.requests == []


@pytest.mark.parametrize(
    ("value_type", "result", "value", "error"),
    [
        (bool, True, True, None),
        (bool, "yes", True, None),
        (bool, "maybe", None, "expected true or false"),
        (int, 4, 4, None),
        (int, "4", 4, None),
        (int, 4.5, None, "expected an integer"),
        (float, 0.75, 0.75, None),
        (float, "high", None, "expected a number"),
        (str, "great", "great", None),
        (str, {"a": 1}, None, "expected a string"),
        (Literal["polite", "neutral", "rude"], "Polite", "polite", None),
        (Literal["polite", "neutral", "rude"], "angry", None, 'one of "polite", "neutral"'),
        (Literal[1, 2, 3], 2, 2, None),
        (Literal[1, 2, 3], 5, None, "one of 1, 2, 3"),
    ],
)
def test_the_answer_is_validated_against_the_value_type(
    openai_model, server, value_type: Any, result: Any, value: Any, error: str | None
) -> None:
    server.responder = lambda request: answer(result)
    judge = make_judge(
        name="t",
        instructions="Rate {{ outputs }}",
        model=openai_model,
        feedback_value_type=value_type,
    )
    (feedback,) = judge.run(outputs="hello")
    assert feedback.value == value and type(feedback.value) is type(value)
    assert (feedback.error is None) if error is None else (error in feedback.error)


def test_categories_are_asked_for_with_a_json_schema(openai_model, server) -> None:
    server.responder = lambda request: answer("rude")
    judge = make_judge(
        name="tone",
        instructions="Tone of {{ outputs }}?",
        model=openai_model,
        feedback_value_type=Literal["polite", "rude"],
    )
    assert judge.run(outputs="Go away.")[0].value == "rude"
    body = server.requests[-1].body
    schema = body["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["result"] == {"type": "string", "enum": ["polite", "rude"]}
    assert '"polite" or "rude"' in body["messages"][0]["content"]


def test_a_custom_judge_rebuilds_from_its_spec(openai_model, server) -> None:
    judge = make_judge(
        name="tone",
        instructions="Tone of {{ outputs }} for {{ trace }}?",
        model=openai_model,
        feedback_value_type=Literal["polite", "rude", 3],
        max_iterations=7,
    )
    spec = json.loads(json.dumps(judge.to_spec()))
    assert spec["path"] == "tracemark.evaluation.judges.custom:CustomJudge"
    assert spec["config"]["feedback_value_type"] == {"categories": ["polite", "rude", 3]}
    rebuilt = scorers.from_spec(spec)
    assert isinstance(rebuilt, CustomJudge)
    assert rebuilt.parameters == ("outputs", "trace")
    assert (rebuilt.instructions, rebuilt.max_iterations) == (judge.instructions, 7)
    assert rebuilt.value_type == judge.value_type
    assert rebuilt.to_spec() == spec


# -- trace judges --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def deep_trace() -> Trace:
    """500 spans; the one fact that matters is in a span 25 levels down."""
    client = TracingClient()
    with capture_traces() as exporter:
        root = client.start_trace("agent", span_type="AGENT", inputs={"task": "open the vault"})
        chain = [root]
        for depth in range(1, 26):
            chain.append(
                client.start_span(
                    f"step {depth}",
                    trace_id=root.trace_id,
                    parent_id=chain[-1].span_id,
                    inputs={"depth": depth},
                )
            )
        for i in range(474):
            filler = client.start_span(
                f"lookup_{i}",
                trace_id=root.trace_id,
                parent_id=chain[i % 25].span_id,
                span_type="TOOL",
                inputs={"i": i},
            )
            client.end_span(root.trace_id, filler.span_id, outputs=f"{FILLER} {i}. " * 4)
        for depth, span in reversed(list(enumerate(chain[1:], 1))):
            outputs = {"note": SECRET} if depth == 25 else {"done": depth}
            client.end_span(root.trace_id, span.span_id, outputs=outputs)
        client.end_trace(root.trace_id, outputs="The vault is open.")
    (trace,) = exporter.traces
    assert len(trace.spans) == 500
    return trace


def test_a_trace_judge_finds_a_deep_fact_with_tools_without_the_trace_in_a_prompt(
    model, server: FakeLLMServer, deep_trace: Trace
) -> None:
    def responder(request: Request) -> Reply:
        results = tool_results(request)
        if not results:
            return Reply(text="", tool_calls=[ToolCall("search_spans", {"query": "VAULT CODE"})])
        last = json.loads(results[-1])
        if "matches" in last:
            span_id = last["matches"][0]["id"]
            return Reply(text="", tool_calls=[ToolCall("get_span", {"span_id": span_id}, id="c2")])
        code = last["outputs"]["note"].rsplit(" ", 1)[-1]
        return answer(code, f"Span {last['name']} says so.")

    server.responder = responder
    judge = make_judge(
        name="vault_code",
        instructions="Which vault code did the agent use in {{ trace }}? Task: {{ inputs }}",
        model=model,
    )
    (feedback,) = judge.run(inputs={"task": "open the vault"}, trace=deep_trace)
    assert (feedback.value, feedback.rationale, feedback.error) == (
        "7781-ZETA",
        "Span step 25 says so.",
        None,
    )
    assert len(server.requests) == 3
    first = server.requests[0]
    declared = first.body["tools"]
    assert {t.get("name") or t["function"]["name"] for t in declared} == {
        "list_spans",
        "get_span",
        "search_spans",
    }
    assert f"[trace {deep_trace.trace_id}: 500 spans" in user_text(first)
    search, span = tool_results(server.requests[2])
    assert SECRET in search  # the snippet around the match
    shown = json.loads(span)
    assert shown["outputs"] == {"note": SECRET} and shown["depth"] == 25
    assert shown["name"] == "step 25"
    whole = deep_trace.to_json()
    for request in server.requests:
        body = json.dumps(request.body)
        assert len(body) < len(whole) / 10
        assert body.count(FILLER) < 20  # the 474 filler spans never appear wholesale


def test_a_trace_judge_that_never_answers_ends_in_a_feedback_error(
    openai_model, server: FakeLLMServer, deep_trace: Trace
) -> None:
    server.responder = lambda request: Reply(text="", tool_calls=[ToolCall("list_spans", {})])
    judge = make_judge(
        name="stuck", instructions="Judge {{ trace }}", model=openai_model, max_iterations=3
    )
    (feedback,) = judge.run(trace=deep_trace)
    assert feedback.value is None
    assert "did not answer within 3 model calls" in feedback.error
    assert len(server.requests) == 3


def test_bad_tool_calls_are_answered_with_errors_and_the_loop_goes_on(
    openai_model, server: FakeLLMServer, deep_trace: Trace
) -> None:
    replies = iter(
        [
            Reply(text="", tool_calls=[ToolCall("drop_table", {})]),
            Reply(text="", tool_calls=[ToolCall("get_span", {"span_id": "nope"})]),
            Reply(text="", tool_calls=[ToolCall("search_spans", {"query": ""})]),
            answer("done"),
        ]
    )
    server.responder = lambda request: next(replies)
    judge = make_judge(name="x", instructions="Judge {{ trace }}", model=openai_model)
    assert judge.run(trace=deep_trace)[0].value == "done"
    errors = [json.loads(r)["error"] for r in tool_results(server.requests[-1])]
    assert "no tool named 'drop_table'" in errors[0]
    assert "no span with id 'nope'" in errors[1]
    assert "non-empty query" in errors[2]


def test_trace_tools_page_through_spans_and_cut_long_payloads(deep_trace: Trace) -> None:
    tools = TraceTools(deep_trace)
    first = tools.list_spans()
    assert (first["total"], len(first["spans"]), first["next_offset"]) == (500, 100, 100)
    row = first["spans"][0]
    assert row == {
        "id": deep_trace.root.span_id,
        "parent": None,
        "depth": 0,
        "name": "agent",
        "type": "AGENT",
        "status": "OK",
        "ms": row["ms"],
    }
    last = tools.list_spans(offset=450, limit=500)  # the page size is capped
    assert len(last["spans"]) == 50 and "next_offset" not in last
    assert len({s["id"] for p in range(0, 500, 100) for s in tools.list_spans(p)["spans"]}) == 500

    with capture_traces() as exporter:
        client = TracingClient()
        root = client.start_trace("big", inputs={"text": "x" * 50_000})
        client.end_trace(root.trace_id, outputs="small")
    big = TraceTools(exporter.traces[0]).get_span(root.span_id)
    assert big["outputs"] == "small"
    assert len(big["inputs"]) < 4200 and "more characters" in big["inputs"]
    found = TraceTools(deep_trace).search_spans("lookup_1", limit=3)
    assert found["total_matches"] > 3 and len(found["matches"]) == 3
    assert found["matches"][0]["field"] == "name"
