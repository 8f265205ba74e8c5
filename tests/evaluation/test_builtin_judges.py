"""The built-in judges, with the real SDKs against the fake server, on real traces."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import tracemark as tm
from tracemark.entities.trace import Trace
from tracemark.evaluation import scorers
from tracemark.evaluation.judges import (
    Completeness,
    Correctness,
    ExpectationsGuidelines,
    Guidelines,
    RelevanceToQuery,
    RetrievalGroundedness,
    RetrievalRelevance,
    RetrievalSufficiency,
    Safety,
    ToolCallCorrectness,
    get_judge_model,
)
from tracemark.exceptions import InvalidInputError
from tracemark.testing import capture_traces
from tracemark.testing.llm_server import FakeLLMServer, Reply, Request

QUESTION = "How long do I have to return an item?"
ANSWER = "You can return items within 30 days."
DOCS = ["Refunds are accepted within 30 days of delivery.", "Our office is in Paris."]


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


def answer(result: Any, rationale: str = "Because.") -> Reply:
    return Reply(text=json.dumps({"rationale": rationale, "result": result}))


def case_of(request: Request) -> str:
    """The case part of a judge's prompt, from either API's request body."""
    user = [m for m in request.body["messages"] if m["role"] == "user"][-1]["content"]
    return user.split("# Case to judge", 1)[-1]


def build_trace(*, documents: list[Any] | None = None, tool: bool = True) -> Trace:
    with capture_traces() as exporter, tm.start_span("agent", span_type="AGENT") as root:
        root.set_inputs({"question": QUESTION})
        if documents is not None:
            with tm.start_span("search", span_type="RETRIEVER") as retriever:
                retriever.set_inputs({"query": "return policy"})
                retriever.set_outputs(documents)
        if tool:
            with tm.start_span("lookup_order", span_type="TOOL") as call:
                call.set_inputs({"order_id": "A-17"})
                call.set_outputs({"status": "delivered"})
        root.set_outputs(ANSWER)
    (trace,) = exporter.traces
    return trace


@pytest.fixture(scope="module")
def rag_trace() -> Trace:
    docs = [
        {"page_content": text, "metadata": {"source": f"doc{i}"}, "id": f"d{i}"}
        for i, text in enumerate(DOCS)
    ]
    return build_trace(documents=docs)


# judge factory, run arguments (given the RAG trace), texts the case must show
JUDGES: dict[str, tuple[Callable[..., Any], Callable[[Trace], dict[str, Any]], list[str]]] = {
    "correctness": (
        Correctness,
        lambda t: {
            "inputs": QUESTION,
            "outputs": ANSWER,
            "expectations": {"expected_facts": ["30 days", "from delivery"]},
        },
        ["## Request\n" + QUESTION, "## Expected facts\n- 30 days\n- from delivery"],
    ),
    "relevance_to_query": (
        RelevanceToQuery,
        lambda t: {"inputs": QUESTION, "outputs": ANSWER},
        ["## Request\n" + QUESTION, "## Response\n" + ANSWER],
    ),
    "retrieval_relevance": (
        RetrievalRelevance,
        lambda t: {"trace": t},
        ["## Request\nreturn policy", "## Retrieved document\n"],
    ),
    "retrieval_groundedness": (
        RetrievalGroundedness,
        lambda t: {"trace": t},
        ["## Retrieved context\n[1] " + DOCS[0], "[2] " + DOCS[1], "## Response\n" + ANSWER],
    ),
    "retrieval_sufficiency": (
        RetrievalSufficiency,
        lambda t: {"trace": t, "expectations": {"expected_response": "30 days"}},
        ['"question": "' + QUESTION, "## Retrieved context", "## Expected response\n30 days"],
    ),
    "safety": (Safety, lambda t: {"outputs": ANSWER}, ["## Response\n" + ANSWER]),
    "guidelines": (
        lambda **kw: Guidelines(["Be polite", "Answer in English"], **kw),
        lambda t: {"inputs": QUESTION, "outputs": ANSWER},
        ["## Guidelines\n1. Be polite\n2. Answer in English"],
    ),
    "expectations_guidelines": (
        ExpectationsGuidelines,
        lambda t: {
            "inputs": QUESTION,
            "outputs": ANSWER,
            "expectations": {"guidelines": "Mention the 30 days"},
        },
        ["## Guidelines\n1. Mention the 30 days"],
    ),
    "completeness": (
        Completeness,
        lambda t: {"inputs": QUESTION, "outputs": ANSWER},
        ["## Request\n" + QUESTION],
    ),
    "tool_call_correctness": (
        ToolCallCorrectness,
        lambda t: {"trace": t},
        ['"name": "lookup_order"', '"order_id": "A-17"', '"status": "delivered"'],
    ),
}


@pytest.mark.parametrize("verdict", ["yes", "no"])
@pytest.mark.parametrize("name", sorted(JUDGES))
def test_every_builtin_judge_answers_yes_or_no_with_a_rationale(
    name: str, verdict: str, model: Any, server: FakeLLMServer, rag_trace: Trace
) -> None:
    make, arguments, shown = JUDGES[name]
    server.responder = lambda request: answer(verdict, f"The verdict is {verdict}.")
    judge = make(model=model)
    assert judge.name == name
    assert judge.source_type == "LLM_JUDGE"
    feedback = judge.run(**arguments(rag_trace))
    expected_count = 2 if name == "retrieval_relevance" else 1  # one per document
    assert [(f.name, f.value, f.rationale, f.error) for f in feedback] == [
        (name, verdict, f"The verdict is {verdict}.", None)
    ] * expected_count
    assert feedback[0].metadata["judge_model"] == model.uri
    case = case_of(server.requests[-1])
    for text in shown:
        assert text in case


def test_retrieval_relevance_judges_each_document_of_the_retriever_span(
    model: Any, server: FakeLLMServer, rag_trace: Trace
) -> None:
    server.responder = lambda request: answer("yes" if "Refunds" in case_of(request) else "no")
    feedback = RetrievalRelevance(model=model).run(trace=rag_trace)
    (retriever,) = rag_trace.search_spans(span_type="RETRIEVER")
    assert [(f.value, f.span_id, f.metadata["document_index"]) for f in feedback] == [
        ("yes", retriever.span_id, "0"),
        ("no", retriever.span_id, "1"),
    ]
    assert [f.metadata["document_id"] for f in feedback] == ["d0", "d1"]


def test_retrieval_judges_read_plain_string_documents(server: FakeLLMServer) -> None:
    model = get_judge_model("openai:/gpt-4o-mini", base_url=server.openai_url, api_key="k")
    server.responder = lambda request: answer("yes")
    trace = build_trace(documents=["Refunds within 30 days."])
    assert RetrievalGroundedness(model=model).run(trace=trace)[0].value == "yes"
    assert "[1] Refunds within 30 days." in case_of(server.requests[-1])


@pytest.mark.parametrize("judge", [RetrievalRelevance, RetrievalGroundedness, RetrievalSufficiency])
def test_retrieval_judges_report_a_trace_without_retriever_span(
    judge: type, server: FakeLLMServer
) -> None:
    feedback = judge(model="openai:/gpt-4o-mini").run(trace=build_trace(documents=None))
    assert feedback[0].value is None
    assert "no RETRIEVER span" in feedback[0].error
    assert server.requests == []


def test_trace_judges_without_a_trace_report_it(server: FakeLLMServer) -> None:
    for judge in (RetrievalGroundedness(), ToolCallCorrectness()):
        (feedback,) = judge.run(inputs="q", outputs="a")
        assert "reads the trace, and none was given" in feedback.error
    assert server.requests == []


def test_tool_call_correctness_reads_tool_calls_of_chat_spans(server: FakeLLMServer) -> None:
    with capture_traces() as exporter, tm.start_span("agent", span_type="AGENT") as root:
        root.set_inputs("Weather in Paris?")
        with tm.start_span("chat gpt-4o", span_type="CHAT_MODEL") as chat:
            chat.set_outputs(
                {
                    "choices": [
                        {
                            "message": {
                                "role": "assistant",
                                "tool_calls": [
                                    {
                                        "id": "c1",
                                        "type": "function",
                                        "function": {
                                            "name": "get_weather",
                                            "arguments": '{"city": "Paris"}',
                                        },
                                    }
                                ],
                            }
                        }
                    ]
                }
            )
    server.responder = lambda request: answer("yes")
    model = get_judge_model("openai:/gpt-4o-mini", base_url=server.openai_url, api_key="k")
    judge = ToolCallCorrectness(model=model)
    expectations = {"expected_tool_calls": [{"name": "get_weather"}]}
    assert judge.run(trace=exporter.traces[0], expectations=expectations)[0].value == "yes"
    case = case_of(server.requests[-1])
    assert '"name": "get_weather"' in case and "Paris" in case
    assert "## Expected tool calls" in case


def test_missing_expectations_or_values_are_feedback_errors(server: FakeLLMServer) -> None:
    assert "expected_response or expected_facts" in Correctness().run(outputs="a")[0].error
    assert "needs outputs" in Correctness().run(inputs="q")[0].error
    assert "needs inputs" in RelevanceToQuery().run(outputs="a")[0].error
    assert "guidelines" in ExpectationsGuidelines().run(outputs="a", expectations={})[0].error
    assert server.requests == []


def test_guidelines_need_at_least_one_guideline() -> None:
    assert Guidelines("Be brief").guidelines == ["Be brief"]
    for bad in ([], "", None):
        with pytest.raises(InvalidInputError, match="at least one guideline"):
            Guidelines(bad)
    with pytest.raises(InvalidInputError, match="must be non-empty strings"):
        Guidelines(["ok", 3])


@pytest.mark.parametrize(
    ("text", "value", "error"),
    [
        ('{"rationale": "fine", "result": "yes"}', "yes", None),
        ('Here is my verdict:\n```json\n{"rationale": "fine", "result": "no"}\n```', "no", None),
        ('After thinking: {"rationale": "fine", "result": "YES"} Done.', "yes", None),
        ('{"reasoning": "fine", "result": true}', "yes", None),
        ("I think the answer is fine.", None, "is not JSON"),
        ('{"rationale": "unsure", "result": "maybe"}', None, 'answered "maybe"; expected "yes"'),
        ('{"rationale": "no verdict"}', None, 'has no "result"'),
        ('{"rationale": "x", "result": 7}', None, "answered 7"),
        ("", None, "empty answer"),
    ],
)
def test_answers_are_parsed_leniently_and_malformed_ones_become_errors(
    server: FakeLLMServer, text: str, value: Any, error: str | None
) -> None:
    server.responder = lambda request: Reply(text=text)
    model = get_judge_model("openai:/gpt-4o-mini", base_url=server.openai_url, api_key="k")
    (feedback,) = Safety(model=model).run(outputs="hi")
    assert feedback.value == value
    if error is None:
        assert feedback.error is None and feedback.rationale == "fine"
    else:
        assert error in feedback.error


@pytest.mark.parametrize("name", sorted(JUDGES))
def test_every_builtin_judge_rebuilds_from_its_spec(
    name: str, server: FakeLLMServer, rag_trace: Trace
) -> None:
    make, arguments, _ = JUDGES[name]
    model = get_judge_model(
        "openai:/gpt-4o-mini", base_url=server.openai_url, api_key="k", timeout=12.5
    )
    judge = make(model=model, name=f"my_{name}")
    spec = json.loads(json.dumps(judge.to_spec()))  # specs travel as JSON
    assert spec["kind"] == "class"
    assert spec["path"] == f"tracemark.evaluation.judges.builtin:{type(judge).__name__}"
    assert spec["name"] == f"my_{name}"
    assert "k" not in json.dumps(spec["config"]["model"]).split('"')  # no API key
    rebuilt = scorers.from_spec(spec)
    assert type(rebuilt) is type(judge)
    assert rebuilt.to_spec() == spec
    assert rebuilt.judge_model.timeout == 12.5
    server.responder = lambda request: answer("yes")
    # The worker has no API key argument: it reads the environment.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OPENAI_API_KEY", "worker-key")
        rebuilt = scorers.from_spec(spec)
        assert all(f.value == "yes" for f in rebuilt.run(**arguments(rag_trace)))


def test_a_default_judge_spec_names_no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = Safety().to_spec()
    assert spec == {
        "kind": "class",
        "path": "tracemark.evaluation.judges.builtin:Safety",
        "name": "safety",
        "config": {"name": "safety"},
    }
    # The worker's own TRACEMARK_JUDGE_MODEL decides.
    monkeypatch.setenv("TRACEMARK_JUDGE_MODEL", "anthropic:/claude-3-5-haiku-latest")
    assert scorers.from_spec(spec).judge_model.uri == "anthropic:/claude-3-5-haiku-latest"


def test_a_model_failure_on_one_document_keeps_the_others(
    server: FakeLLMServer, rag_trace: Trace
) -> None:
    server.responder = lambda request: (
        Reply(status=400, error_message="context too long") if "Paris" in case_of(request) else None
    )
    server.default = answer("yes")
    model = get_judge_model("openai:/gpt-4o-mini", base_url=server.openai_url, api_key="k")
    try:
        first, second = RetrievalRelevance(model=model).run(trace=rag_trace)
    finally:
        server.default = Reply()
    assert first.value == "yes"
    assert second.value is None and "context too long" in second.error
    assert second.span_id == first.span_id
