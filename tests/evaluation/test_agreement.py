"""Agreement between judges and people, and aligning judges with people's labels."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Literal

import pytest

import tracemark as tm
from tracemark.entities.trace import Assessment, AssessmentSource, Trace
from tracemark.evaluation.agreement import Agreement, judge_agreement
from tracemark.evaluation.judges import Guidelines, get_judge_model, make_judge
from tracemark.evaluation.scorers import Feedback, scorer
from tracemark.exceptions import InvalidInputError, TracemarkError
from tracemark.testing import capture_traces
from tracemark.testing.llm_server import FakeLLMServer, Reply, Request

HUMAN = AssessmentSource("HUMAN", "ana")


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


@pytest.fixture
def model(server: FakeLLMServer):
    return get_judge_model("openai:/gpt-4o-mini", base_url=server.openai_url, api_key="k")


def answer(result: Any, rationale: str = "Because.") -> Reply:
    return Reply(text=json.dumps({"rationale": rationale, "result": result}))


def make_trace(question: str, response: str) -> Trace:
    with capture_traces(deterministic=False) as exporter, tm.start_span("agent") as span:
        span.set_inputs(question)
        span.set_outputs(response)
    (trace,) = exporter.traces
    return trace


def label(
    trace: Trace,
    value: Any,
    *,
    name: str = "polite",
    source: AssessmentSource = HUMAN,
    time_ms: int = 1,
    valid: bool = True,
    rationale: str | None = None,
) -> Trace:
    trace.info.assessments.append(
        Assessment(
            assessment_id=f"a-{len(trace.info.assessments)}",
            trace_id=trace.trace_id,
            name=name,
            kind=Assessment.FEEDBACK,
            value=value,
            source=source,
            created_time_ms=time_ms,
            last_updated_time_ms=time_ms,
            rationale=rationale,
            valid=valid,
        )
    )
    return trace


# -- the metrics ---------------------------------------------------------------------------


def test_accuracy_kappa_and_confusion_match_hand_computed_values() -> None:
    # (people, judge): 5 x (yes, yes), 1 x (yes, no), 2 x (no, no), 2 x (no, yes)
    pairs = [(True, "yes")] * 3 + [("Yes", "yes")] * 2 + [("yes", "no")]
    pairs += [(False, "no"), ("no", "no"), ("No ", "yes"), (False, "yes")]
    traces = [label(make_trace(f"q{i}", "a"), human) for i, (human, _) in enumerate(pairs)]
    verdicts = {f"q{i}": judged for i, (_, judged) in enumerate(pairs)}
    unlabelled = make_trace("q-unlabelled", "a")
    judged_by_llm_only = label(
        make_trace("q-llm", "a"), "yes", source=AssessmentSource("LLM_JUDGE", "x")
    )
    failing = label(make_trace("q-fail", "a"), "yes")
    verdicts["q-fail"] = Feedback(error="the judge model failed")

    @scorer(name="polite")
    def polite(inputs: str) -> Any:
        return verdicts[inputs]

    agreement = judge_agreement(polite, [*traces, unlabelled, judged_by_llm_only, failing])
    assert agreement.n == 10
    assert agreement.accuracy == pytest.approx(0.7)
    # p_e = (4 * 3 + 6 * 7) / 100 = 0.54; kappa = (0.7 - 0.54) / (1 - 0.54)
    assert agreement.kappa == pytest.approx(0.16 / 0.46)
    assert agreement.labels == ["no", "yes"]
    assert agreement.confusion == [[2, 2], [1, 5]]
    assert agreement.disagreements == [traces[i].trace_id for i in (5, 8, 9)]
    assert agreement.skipped == 2
    assert agreement.errors == [failing.trace_id]
    assert json.loads(json.dumps(agreement.to_dict()))["confusion"] == [[2, 2], [1, 5]]
    assert str(agreement) == "accuracy 0.70, kappa 0.35 over 10 traces"


def test_kappa_over_three_labels() -> None:
    pairs = [("a", "a"), ("a", "b"), ("b", "b"), ("c", "c")]
    traces = [
        label(make_trace(f"q{i}", "x"), human, name="kind") for i, (human, _) in enumerate(pairs)
    ]
    verdicts = {f"q{i}": judged for i, (_, judged) in enumerate(pairs)}
    kind = scorer(lambda inputs: verdicts[inputs], name="kind")
    agreement = judge_agreement(kind, traces)
    # p_o = 3/4; p_e = (2*1 + 1*2 + 1*1) / 16 = 5/16
    assert agreement.accuracy == 0.75
    assert agreement.kappa == pytest.approx((0.75 - 5 / 16) / (1 - 5 / 16))
    assert agreement.confusion == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]


def test_the_latest_valid_human_label_counts_and_kappa_can_be_undefined() -> None:
    trace = make_trace("q", "a")
    label(trace, "no", time_ms=1)
    label(trace, "maybe", time_ms=3, valid=False)  # superseded by a correction
    label(trace, "yes", time_ms=2)
    label(trace, "no", name="other", time_ms=5)
    always_yes = scorer(lambda outputs: "yes", name="polite")
    agreement = judge_agreement(always_yes, [trace])
    assert (agreement.n, agreement.accuracy, agreement.kappa) == (1, 1.0, None)
    nobody = judge_agreement(always_yes, [make_trace("q", "a")])
    assert (nobody.n, nobody.accuracy, nobody.kappa, nobody.skipped) == (0, None, None, 1)
    assert str(nobody) == "no traces compared (1 without a human label)"


def test_human_name_selects_the_label(model, server: FakeLLMServer) -> None:
    server.responder = lambda request: answer("yes")
    judge = make_judge(name="polite", instructions="Is {{ outputs }} polite?", model=model)
    trace = label(make_trace("q", "a"), False, name="politeness")
    agreement = judge_agreement(judge, [trace], human_name="politeness")
    assert (agreement.n, agreement.accuracy) == (1, 0.0)
    assert agreement.confusion == [[0, 1], [0, 0]]


@pytest.mark.parametrize("tracking_uri", ["sqlite"], indirect=True)
def test_traces_can_be_given_by_id(tracking: Any, model, server: FakeLLMServer) -> None:
    responses = ["Thank you for asking!", "Go away.", "Happy to help.", "Whatever."]
    ids = []
    for i, response in enumerate(responses):
        with tm.start_span("agent") as span:
            span.set_inputs(f"question {i}")
            span.set_outputs(response)
        ids.append(span.trace_id)
    tm.flush()
    for trace_id, polite in zip(ids, [True, False, True, True], strict=True):
        tm.log_feedback(trace_id=trace_id, name="polite", value=polite, source=HUMAN)
    server.responder = lambda request: answer(
        "no" if "Go away" in request.body["messages"][-1]["content"] else "yes"
    )
    judge = make_judge(
        name="polite",
        instructions="Is {{ outputs }} polite?",
        model=model,
        feedback_value_type=Literal["yes", "no"],
    )
    agreement = judge_agreement(judge, ids)
    assert (agreement.n, agreement.accuracy, agreement.kappa) == (4, 1.0, 1.0)
    with pytest.raises(InvalidInputError, match="list of Trace"):
        judge_agreement(judge, ids[0])


# -- align ---------------------------------------------------------------------------------

REWRITE = "Answer no when the response apologises (ALIGNED). Response: {{ outputs }}"


def scripted(request: Request) -> Reply:
    """A judge model that says "yes" until its criteria are rewritten, then follows them."""
    system = request.body["messages"][0]["content"]
    user = request.body["messages"][-1]["content"]
    if system.startswith("You improve the criteria"):
        return answer(REWRITE, "Reviewers reject apologies.")
    case = user.split("# Case to judge", 1)[-1]
    aligned = "ALIGNED" in user
    return answer("no" if aligned and "Sorry" in case else "yes")


def support_traces() -> list[Trace]:
    traces = []
    for i in range(12):
        sorry = i % 2 == 0
        response = f"Sorry, I cannot help with order {i}." if sorry else f"Order {i} ships today."
        traces.append(label(make_trace(f"Where is order {i}?", response), not sorry))
    return traces


def test_align_rewrites_a_custom_judge_and_improves_agreement_on_the_holdout(
    model, server: FakeLLMServer
) -> None:
    server.responder = scripted
    traces = support_traces()
    judge = make_judge(
        name="polite",
        instructions="Is {{ outputs }} a polite answer to {{ inputs }}?",
        model=model,
        feedback_value_type=Literal["yes", "no"],
    )
    result = judge.align(traces, holdout=0.3, seed=0)
    assert result.before.n == result.after.n == 4
    assert result.before.accuracy < 1.0
    assert result.after.accuracy == 1.0 and result.after.disagreements == []
    aligned = result.judge
    assert aligned is not judge and judge.instructions.startswith("Is {{ outputs }}")
    # The rewrite kept {{ outputs }}; the lost {{ inputs }} was put back.
    assert aligned.instructions == REWRITE + "\n\nInputs: {{ inputs }}"
    assert aligned.parameters == judge.parameters
    assert aligned.examples and all(e["result"] == "no" for e in aligned.examples)
    assert aligned.examples[0]["outputs"].startswith("Sorry")
    # The rewrite saw only train cases where judge and people disagreed.
    (rewrite,) = [
        r for r in server.requests if r.body["messages"][0]["content"].startswith("You improve")
    ]
    text = rewrite.body["messages"][-1]["content"]
    held = [t for t in traces if t.trace_id in result.before.disagreements]
    assert held and all(t.root.outputs not in text for t in held)
    assert "### The reviewers' verdict\nfalse" in text
    assert "{{ outputs }}" in text  # asked to keep the template's variables
    again = result.judge.from_spec(json.loads(json.dumps(aligned.to_spec())))
    assert (again.instructions, again.examples) == (aligned.instructions, aligned.examples)


def test_align_works_on_builtin_judges_and_is_deterministic(model, server: FakeLLMServer) -> None:
    server.responder = scripted
    traces = support_traces()
    judge = Guidelines(["Be polite"], name="polite", model=model)
    result = judge.align(traces, seed=3)
    assert result.after.accuracy == 1.0 > result.before.accuracy
    assert result.judge.instructions == REWRITE
    assert result.judge.guidelines == ["Be polite"]
    assert result.judge.to_spec()["config"]["instructions"] == REWRITE
    repeat = judge.align(traces, seed=3)
    assert repeat.before == result.before and repeat.after == result.after


def test_align_keeps_a_judge_that_already_agrees(model, server: FakeLLMServer) -> None:
    server.responder = lambda request: answer("yes")
    traces = [label(make_trace(f"q{i}", "a"), "yes") for i in range(5)]
    judge = make_judge(name="polite", instructions="{{ outputs }}", model=model)
    result = judge.align(traces)
    assert result.judge is judge
    assert result.before == result.after == Agreement(2, 1.0, None, ["yes"], [[2]], [], 0, [])


def test_align_reports_what_it_cannot_do(model, server: FakeLLMServer) -> None:
    judge = make_judge(name="polite", instructions="{{ outputs }}", model=model)
    with pytest.raises(InvalidInputError, match="at least 2 traces with HUMAN feedback"):
        judge.align([label(make_trace("q", "a"), "yes"), make_trace("q", "b")])
    with pytest.raises(InvalidInputError, match="holdout"):
        judge.align(support_traces(), holdout=1.5)
    server.responder = lambda request: (
        Reply(text="I would rather not.")
        if request.body["messages"][0]["content"].startswith("You improve")
        else answer("yes")
    )
    with pytest.raises(TracemarkError, match="rewritten criteria could not be read"):
        judge.align(support_traces())
