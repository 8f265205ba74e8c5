"""tm.evaluate end to end: rows in, traced predictions, verdicts stored, run recorded."""

from __future__ import annotations

import threading
import time

import pytest

from tracemark.entities.trace import AssessmentSource
from tracemark.evaluation._usage import current_usage, record_call
from tracemark.evaluation.results import NOT_JUDGED
from tracemark.evaluation.scorers import Feedback, Scorer
from tracemark.exceptions import InvalidInputError

ROWS = [
    {"inputs": {"question": "2+2"}, "expectations": {"expected_response": "4"}},
    {"inputs": {"question": "3+3"}, "expectations": {"expected_response": "6"}},
    {"inputs": {"question": "5+5"}, "expectations": {"expected_response": "10"}},
]


def calculator(question: str) -> str:
    a, b = question.split("+")
    return "4" if question == "2+2" else str(int(a) * int(b))


def _scorers(tm):
    @tm.scorer
    def exact(outputs, expectations) -> bool:
        return outputs == expectations["expected_response"]

    @tm.scorer(name="length")
    def output_length(outputs) -> int:
        return len(outputs)

    return [exact, output_length]


class PricedJudge(Scorer):
    """A judge whose every call costs one cent, metered like a real judge model call."""

    name = "priced"
    source_type = "LLM_JUDGE"

    def score(self, outputs):
        usage = current_usage()
        if usage is not None:
            usage.check_budget()
        start = time.time_ns()
        record_call(
            name="judge priced",
            provider="openai",
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": str(outputs)}],
            output={"result": "yes"},
            input_tokens=100,
            output_tokens=10,
            cost=0.01,
            start_ns=start,
        )
        return Feedback(value="yes", rationale="looks right")


def test_evaluate_traces_predictions_stores_verdicts_and_records_the_run(tracking):
    tm = tracking
    tm.set_experiment("calc")
    result = tm.evaluate(data=ROWS, predict_fn=calculator, scorers=_scorers(tm), run_name="v1")

    assert result.metrics["exact/pass_rate"] == pytest.approx(1 / 3)
    assert result.metrics["length/mean"] == pytest.approx((1 + 1 + 2) / 3)
    assert result.metrics["evaluation/rows"] == 3
    assert result.metrics["evaluation/assessments_stored"] == 6
    run = tm.get_run(result.run_id)
    assert run.tags["tracemark.run_type"] == "evaluation"
    assert run.run_name == "v1" and run.status == "FINISHED"
    assert run.metrics["exact/pass_rate"] == pytest.approx(1 / 3)

    # Every row ran in its own trace, linked to the run, with both verdicts on it.
    for row, given in zip(result.rows, ROWS, strict=True):
        assert row.inputs == given["inputs"]
        trace = tm.get_trace(row.trace_id)
        assert trace.info.run_id == result.run_id
        assert trace.root.name == "calculator" and trace.root.outputs == row.outputs
        verdicts = {a.name: a for a in trace.info.assessments}
        assert set(verdicts) == {"exact", "length"}
        assert verdicts["exact"].value is (
            row.outputs == given["expectations"]["expected_response"]
        )
        assert verdicts["exact"].source == AssessmentSource("CODE", "exact")
        assert verdicts["length"].run_id == result.run_id

    table = tm.load_table("eval_results.json", run_ids=[result.run_id])
    assert list(table["row"]) == [0, 1, 2]
    assert list(table["exact/value"]) == [True, False, False]
    assert list(table["trace_id"]) == [r.trace_id for r in result.rows]
    frame = result.to_pandas()
    assert list(frame["length/value"]) == [1, 1, 2]


def test_rows_with_outputs_need_no_predict_fn_and_get_a_trace_each(tracking):
    tm = tracking
    rows = [
        {"inputs": {"q": "hi"}, "outputs": "hello", "expectations": {"expected_response": "hello"}}
    ]

    @tm.scorer
    def exact(outputs, expectations):
        return outputs == expectations["expected_response"]

    result = tm.evaluate(data=rows, scorers=[exact])
    assert result.metrics["exact/pass_rate"] == 1.0
    trace = tm.get_trace(result.rows[0].trace_id)
    assert trace.root.inputs == {"q": "hi"} and trace.root.outputs == "hello"
    assert [a.name for a in trace.info.assessments] == ["exact"]


def test_traces_from_search_are_scored_in_place(tracking):
    tm = tracking
    tm.set_experiment("prod")

    @tm.trace
    def agent(question: str) -> str:
        return question.upper()

    for q in ("a", "bb", "ccc"):
        agent(q)
    tm.flush()
    found = tm.search_traces()
    answer = tm.get_trace(found[0].trace_id).root.outputs
    tm.log_expectation(trace_id=found[0].trace_id, name="expected_response", value=answer)

    @tm.scorer
    def shouts(outputs) -> bool:
        return outputs.isupper()

    @tm.scorer
    def expected(outputs, expectations, trace) -> bool:
        assert trace.root.name == "agent"
        return outputs == expectations.get("expected_response", outputs)

    result = tm.evaluate(data=found, scorers=[shouts, expected])
    assert sorted(r.trace_id for r in result.rows) == sorted(t.trace_id for t in found)
    assert result.rows[0].expectations == {"expected_response": answer}
    assert result.metrics["shouts/pass_rate"] == 1.0
    assert result.metrics["expected/pass_rate"] == 1.0
    for info in found:
        names = {a.name for a in tm.get_trace(info.trace_id).info.assessments}
        assert {"shouts", "expected"} <= names

    frame = tm.search_traces(filter_string="name = 'agent'", return_type="pandas")
    again = tm.evaluate(data=frame, scorers=[shouts])
    assert len(again.rows) == 3 and again.metrics["shouts/pass_rate"] == 1.0


def test_a_failing_scorer_or_prediction_never_aborts_the_evaluation(tracking):
    tm = tracking

    @tm.scorer
    def fragile(outputs) -> bool:
        if outputs == "9":
            raise ValueError("cannot judge nine")
        return True

    def agent(question: str) -> str:
        if question == "5+5":
            raise RuntimeError("model down")
        return calculator(question)

    result = tm.evaluate(data=ROWS, predict_fn=agent, scorers=[fragile])
    errors = [r.feedback["fragile"].error for r in result.rows]
    assert errors[0] is None
    assert errors[1] == "ValueError: cannot judge nine"
    assert "prediction failed (RuntimeError: model down)" in errors[2]
    assert result.rows[2].error == "RuntimeError: model down"
    assert result.metrics["fragile/error_count"] == 2
    assert result.metrics["evaluation/prediction_errors"] == 1
    failed = tm.get_trace(result.rows[2].trace_id)
    assert failed.info.status == "ERROR"
    stored = {a.name: a for a in failed.info.assessments}
    assert stored["fragile"].error.startswith("not scored")
    six = {a.name: a for a in tm.get_trace(result.rows[1].trace_id).info.assessments}
    assert six["fragile"].value is None and "cannot judge nine" in six["fragile"].error


def test_rows_run_in_parallel_within_max_workers(tracking):
    tm = tracking
    lock = threading.Lock()
    running = peak = 0

    def slow(question: str) -> str:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.05)
        with lock:
            running -= 1
        return question

    @tm.scorer
    def nonempty(outputs) -> bool:
        return bool(outputs)

    rows = [{"inputs": {"question": str(i)}} for i in range(12)]
    result = tm.evaluate(data=rows, predict_fn=slow, scorers=[nonempty], max_workers=3)
    assert 1 < peak <= 3
    assert [r.outputs for r in result.rows] == [str(i) for i in range(12)]


def test_cost_budget_stops_judging_and_reports_the_rows_not_judged(tracking):
    tm = tracking

    @tm.scorer
    def free(outputs) -> bool:
        return True

    rows = [{"inputs": {"i": i}, "outputs": str(i)} for i in range(8)]
    result = tm.evaluate(data=rows, scorers=[PricedJudge(), free], max_cost_usd=0.03, max_workers=1)
    judged = [r for r in result.rows if r.judged]
    assert len(judged) == 3
    assert len(result.rows_not_judged) == 5
    assert all(r.feedback["priced"].error == NOT_JUDGED for r in result.rows_not_judged)
    assert all(r.feedback["free"].value is True for r in result.rows)  # code is free
    assert result.metrics["evaluation/rows_not_judged"] == 5
    assert result.metrics["judges/calls"] == 3
    assert result.metrics["judges/cost_usd"] == pytest.approx(0.03)
    assert result.metrics["judges/input_tokens"] == 300
    assert result.metrics["priced/pass_rate"] == 1.0  # over the judged rows only
    not_judged_trace = tm.get_trace(result.rows_not_judged[0].trace_id)
    assert [a.name for a in not_judged_trace.info.assessments] == ["free"]

    # The judge calls are spans of the evaluation's own trace, with their cost.
    own = tm.search_traces(
        filter_string=f"tags.`tracemark.evaluation.judges_of` = '{result.run_id}'"
    )
    assert len(own) == 1
    trace = tm.get_trace(own[0].trace_id)
    calls = [s for s in trace.spans if s.name == "judge priced"]
    assert len(calls) == 3
    assert trace.info.cost == pytest.approx(0.03)
    assert trace.info.input_tokens == 300


def test_an_active_run_receives_the_evaluation(tracking):
    tm = tracking
    with tm.start_run(run_name="mine") as run:
        result = tm.evaluate(data=ROWS, predict_fn=calculator, scorers=_scorers(tm))
        assert result.run_id == run.run_id
    assert tm.get_run(run.run_id).tags["tracemark.run_type"] == "evaluation"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"data": []}, "data is empty"),
        ({"data": None}, "evaluate needs data"),
        ({"data": "rows"}, "not a str"),
        ({"data": [{"question": "x"}]}, "row 0 has no 'inputs' \\(it has question\\)"),
        ({"data": [{"inputs": "x"}]}, "row 0: 'inputs' must be a dict"),
        ({"data": [{"inputs": {}, "expectations": 3}]}, "'expectations' must be a dict"),
        ({"data": [{"inputs": {"q": 1}}]}, "row 0 has no outputs and no predict_fn"),
        ({"data": ROWS, "predict_fn": calculator, "scorers": []}, "at least one scorer"),
        ({"data": ROWS, "predict_fn": 3}, "predict_fn must be callable"),
        ({"data": ROWS, "predict_fn": calculator, "max_workers": 0}, "max_workers"),
        ({"data": ROWS, "predict_fn": calculator, "max_cost_usd": -1}, "max_cost_usd"),
    ],
)
def test_bad_arguments_are_rejected_before_anything_runs(tracking, kwargs, message):
    tm = tracking

    @tm.scorer
    def ok(outputs) -> bool:
        return True

    kwargs.setdefault("scorers", [ok])
    with pytest.raises(InvalidInputError, match=message):
        tm.evaluate(**kwargs)
    assert tm.search_runs() == [] or len(tm.search_runs()) == 0


def test_scorer_definitions_are_checked(tracking):
    tm = tracking
    with pytest.raises(InvalidInputError, match="may take only inputs, outputs"):

        @tm.scorer
        def odd(answer):
            return True

    @tm.scorer(name="same")
    def one(outputs):
        return True

    @tm.scorer(name="same")
    def two(outputs):
        return True

    with pytest.raises(InvalidInputError, match="repeated: same"):
        tm.evaluate(data=ROWS, predict_fn=calculator, scorers=[one, two])
    with pytest.raises(InvalidInputError, match="is not a scorer"):
        tm.evaluate(data=ROWS, predict_fn=calculator, scorers=["nope"])


def test_scorers_may_return_lists_feedback_and_odd_values(tracking):
    tm = tracking

    @tm.scorer
    def several(outputs):
        return [Feedback(name="a", value=1.0), Feedback(name="b", value="no", rationale="r")]

    @tm.scorer
    def odd(outputs):
        return object()

    result = tm.evaluate(data=ROWS[:1], predict_fn=calculator, scorers=[several, odd])
    row = result.rows[0]
    assert row.feedback["a"].value == 1.0 and row.feedback["b"].rationale == "r"
    assert "expected bool, number, string" in row.feedback["odd"].error
    assert result.metrics["a/mean"] == 1.0 and result.metrics["b/pass_rate"] == 0.0


def test_progress_bar_is_shown_on_request(tracking, capsys):
    tm = tracking
    tm.evaluate(data=ROWS, predict_fn=calculator, scorers=_scorers(tm), progress=True)
    assert "evaluating" in capsys.readouterr().err


def test_real_judges_through_the_fake_server_survive_malformed_answers(tracking):
    tm = tracking
    from tracemark.evaluation.judges import Correctness
    from tracemark.testing.llm_server import FakeLLMServer, Reply

    def answer(request):
        text = str(request.body["messages"])
        if "5+5" in text:
            return Reply(text="I think it is probably fine?")  # not the JSON asked for
        verdict = "yes" if "2+2" in text else "no"
        return Reply(text=f'{{"rationale": "checked", "result": "{verdict}"}}')

    with FakeLLMServer() as server:
        server.responder = answer
        judge = Correctness(model="openai:/gpt-4o-mini", base_url=server.openai_url, api_key="t")
        result = tm.evaluate(data=ROWS, predict_fn=calculator, scorers=[judge])

    values = [r.feedback["correctness"].value for r in result.rows]
    assert values[:2] == ["yes", "no"]
    assert values[2] is None and result.rows[2].feedback["correctness"].error
    assert result.metrics["correctness/pass_rate"] == 0.5
    assert result.metrics["correctness/error_count"] == 1
    assert result.metrics["judges/calls"] == 3
    assert result.metrics["judges/input_tokens"] == 30
    broken = {a.name: a for a in tm.get_trace(result.rows[2].trace_id).info.assessments}
    assert broken["correctness"].source.source_type == "LLM_JUDGE"
    assert broken["correctness"].error and broken["correctness"].value is None
