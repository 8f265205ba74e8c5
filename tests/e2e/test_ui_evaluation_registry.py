"""The Evaluations tab, the Prompts page and the Models page in a real browser.

The demo holds no evaluation runs, prompts or models, so a module fixture logs them through
the Python API against the live server first: two evaluation runs of the same five questions
(as `tm.evaluate` records them), a prompt with two versions and an alias, traces that loaded
those versions in two experiments, a logged model registered twice with an alias, and traces
and an evaluation made while that model was active.
"""

from __future__ import annotations

import hashlib
import json
import re
import textwrap
from dataclasses import dataclass

import pytest

pytestmark = pytest.mark.e2e

QUESTIONS = [
    ("How long do I have to return an item?", "30 days"),
    ("Do you ship to Canada?", "yes"),
    ("Can I exchange a tent for another size?", "yes, for free"),
    ("What is the warranty on hiking boots?", "one year"),
    ("How do I track my order?", "the tracking link in the email"),
]
# Per question: (correctness, relevance) for each run; a string starting "!" is an error.
BASELINE = [("yes", 4), ("no", 3), ("yes", 5), ("yes", 4), ("no", 2)]
CANDIDATE = [
    ("yes", 4),  # unchanged
    ("yes", 4),  # improved
    ("no", 3),  # regressed
    ("yes", "!judge timed out"),  # an error where there was a score
    ("!not judged: cost budget spent", "!not judged: cost budget spent"),  # skipped
]
PROMPT = "e2e-support-answer"
CHAT_PROMPT = "e2e-triage"
MODEL = "e2e-support-agent"
RELEASES = "e2e: support-agent releases"
AGENT = textwrap.dedent(
    """
    import tracemark as tm


    class Agent(tm.PythonModel):
        def predict(self, model_input, params=None):
            return f"Our policy: {model_input}"


    tm.set_model(Agent())
    """
)


@dataclass
class Logged:
    experiment_id: str
    baseline_id: str
    candidate_id: str
    row_keys: list[str]
    build_run_id: str
    # Newest first: the traces that loaded the prompt's v2, and the one that loaded its v1.
    prompt_v2_traces: list[str]
    prompt_v1_trace: str
    model_traces: set[str]
    model_eval_id: str


def _row_key(inputs: dict) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]


def _log_evaluation(tm, name: str, verdicts: list[tuple], order: list[int]) -> str:
    """Log one evaluation run the way `tm.evaluate` does: tag, metrics, results table."""

    @tm.trace(span_type="AGENT")
    def answer(question: str) -> str:
        return f"[{name}] answer to: {question}"

    columns: dict[str, list] = {
        c: []
        for c in ["row", "row_key", "trace_id", "inputs", "outputs", "expectations"]
        + [
            f"{n}/{part}"
            for n in ("correctness", "relevance")
            for part in ("value", "rationale", "error")
        ]
    }
    with tm.start_run(run_name=name) as run:
        tm.set_tag("tracemark.run_type", "evaluation")
        for position, i in enumerate(order):  # the data in another order: rows match by key
            question, expected = QUESTIONS[i]
            inputs = {"question": question}
            output = answer(question)
            columns["row"].append(position)
            columns["row_key"].append(_row_key(inputs))
            columns["trace_id"].append(tm.get_last_active_trace_id())
            columns["inputs"].append(inputs)
            columns["outputs"].append({"answer": output})
            columns["expectations"].append({"expected_response": expected})
            for scorer, verdict in zip(("correctness", "relevance"), verdicts[i], strict=True):
                error = (
                    verdict[1:] if isinstance(verdict, str) and verdict.startswith("!") else None
                )
                columns[f"{scorer}/value"].append(None if error else verdict)
                columns[f"{scorer}/error"].append(error)
                columns[f"{scorer}/rationale"].append(
                    None if error else f"{scorer} judged {verdict!r}: expected {expected!r}."
                )
        metrics: dict[str, float] = {}
        for scorer in ("correctness", "relevance"):
            values = [v for v in columns[f"{scorer}/value"] if v is not None]
            errors = [e for e in columns[f"{scorer}/error"] if e and not e.startswith("not judged")]
            if scorer == "correctness":
                metrics[f"{scorer}/pass_rate"] = sum(v == "yes" for v in values) / len(values)
            else:
                metrics[f"{scorer}/mean"] = sum(values) / len(values)
            metrics[f"{scorer}/error_count"] = len(errors)
        skipped = sum(1 for e in columns["correctness/error"] if e and e.startswith("not judged"))
        judged = len(order) - skipped
        metrics.update(
            {
                "evaluation/rows": len(order),
                "evaluation/rows_not_judged": skipped,
                "judges/calls": 2 * judged,
                "judges/input_tokens": 310 * judged,
                "judges/output_tokens": 42 * judged,
                "judges/cost_usd": 0.00031 * judged,
            }
        )
        tm.log_metrics(metrics)
        tm.log_table(columns, artifact_file="eval_results.json")
    return run.run_id


def _prompt_traces(tm) -> tuple:
    """Traced functions that load prompt versions, as an application does."""

    @tm.trace(span_type="AGENT")
    def draft_reply(question: str) -> str:
        prompt = tm.load_prompt(f"prompts:/{PROMPT}@production")
        return prompt.format(question=question, policy="the returns policy")

    @tm.trace(span_type="AGENT")
    def triage_and_reply(message: str) -> str:
        tm.load_prompt(f"prompts:/{CHAT_PROMPT}/1")
        return tm.load_prompt(f"prompts:/{PROMPT}@staging").format(question=message)

    return draft_reply, triage_and_reply


@pytest.fixture(scope="module")
def logged(seeded, tmp_path_factory) -> Logged:
    """Evaluation runs, a prompt and a model, logged through the Python API to the server."""
    import tracemark as tm
    from tracemark.store import registry
    from tracemark.tracking.fluent import DEFAULT_TRACKER

    previous = tm.get_tracking_uri()
    registry.reset()
    tm.set_tracking_uri(seeded.url)
    try:
        experiment = tm.set_experiment("e2e: support-bot evaluations")
        baseline = _log_evaluation(tm, "baseline-eval", BASELINE, [0, 1, 2, 3, 4])
        candidate = _log_evaluation(tm, "candidate-eval", CANDIDATE, [4, 3, 2, 1, 0])

        tm.register_prompt(
            PROMPT,
            "You are a support agent for an outdoor shop.\nAnswer: {{ question }}",
            commit_message="first draft",
            tags={"team": "support"},
        )
        tm.register_prompt(
            PROMPT,
            "You are a friendly support agent for an outdoor shop.\n"
            "Answer briefly: {{ question }}\nQuote the policy in {{ policy }}.",
            commit_message="shorter answers that quote the policy",
        )
        tm.set_prompt_alias(PROMPT, "production", 2)
        tm.set_prompt_alias(PROMPT, "staging", 1)
        tm.register_prompt(
            CHAT_PROMPT,
            [
                {"role": "system", "content": "Sort the message into returns, shipping or other."},
                {"role": "user", "content": "{{ message }}"},
            ],
            commit_message="a chat template",
        )
        draft_reply, triage_and_reply = _prompt_traces(tm)
        draft_reply("Do you ship to Canada?")
        prompt_v2_traces = [tm.get_last_active_trace_id()]
        triage_and_reply("My tent is too small, can I swap it?")
        prompt_v1_trace = tm.get_last_active_trace_id()

        folder = tmp_path_factory.mktemp("agent")
        (folder / "agent.py").write_text(AGENT)
        with tm.start_run(run_name="agent-build") as build:
            model = tm.log_model(
                str(folder / "agent.py"),
                name="agent",
                model_config={"temperature": 0},
                pip_requirements=["tracemark"],
            )
        client = tm.TracemarkClient()
        tm.register_model(
            model.model_uri, MODEL, description="First release", tags={"owner": "ana"}
        )
        tm.register_model(model.model_uri, MODEL, description="Same code, new config")
        client.update_registered_model(MODEL, "The support agent behind the shop's chat.")
        client.set_registered_model_alias(MODEL, "champion", 1)

        # Another experiment: a trace of prompt v2 there too, then traces and an evaluation
        # made while the logged model is active.
        tm.set_experiment(RELEASES)
        draft_reply("How long do I have to return an item?")
        prompt_v2_traces.insert(0, tm.get_last_active_trace_id())

        @tm.trace(span_type="AGENT")
        def handle(question: str) -> str:
            return f"Our policy: {question}"

        @tm.scorer
        def concise(outputs) -> bool:
            return len(outputs) < 80

        with tm.set_active_model(model_id=model.model_id):
            handle("Do you ship to Canada?")
            handle("How do I track my order?")
            evaluation = tm.evaluate(
                data=[{"inputs": {"question": q}} for q, _ in QUESTIONS[:2]],
                predict_fn=handle,
                scorers=[concise],
                run_name="agent-eval",
            )
        tm.flush()
        model_traces = {t.trace_id for t in tm.search_model_traces(model.model_id)}
    finally:
        tm.clear_active_model()
        while DEFAULT_TRACKER.active_run() is not None:
            DEFAULT_TRACKER.end_run()
        registry.reset()
        tm.set_tracking_uri(previous)
    return Logged(
        experiment_id=experiment.experiment_id,
        baseline_id=baseline,
        candidate_id=candidate,
        row_keys=[_row_key({"question": q}) for q, _ in QUESTIONS],
        build_run_id=build.run_id,
        prompt_v2_traces=prompt_v2_traces,
        prompt_v1_trace=prompt_v1_trace,
        model_traces=model_traces,
        model_eval_id=evaluation.run_id,
    )


def test_evaluations_tab_lists_only_evaluation_runs_with_their_scores(page, logged, screenshot):
    page.goto(f"/experiments/{logged.experiment_id}/evaluations")
    rows = page.get_by_test_id("evaluation-row")
    rows.first.wait_for()
    assert rows.count() == 2  # agent-build is an ordinary run
    baseline = page.locator("[data-testid=evaluation-row][data-run-name=baseline-eval]")
    assert baseline.locator("td[data-scorer=correctness]").inner_text() == "60%"
    assert baseline.locator("td[data-scorer=relevance]").inner_text() == "3.6"
    candidate = page.locator("[data-testid=evaluation-row][data-run-name=candidate-eval]")
    assert "1 not judged" in candidate.inner_text()
    assert "1 err" in candidate.locator("td[data-scorer=relevance]").inner_text()
    screenshot("evaluations")


def test_evaluation_run_filters_failing_rows_and_links_each_row_to_its_trace(
    page, logged, screenshot
):
    page.goto(f"/experiments/{logged.experiment_id}/evaluations")
    page.get_by_role("link", name="candidate-eval").click()
    rows = page.get_by_test_id("result-row")
    rows.first.wait_for()
    assert rows.count() == 5
    verdicts = page.get_by_test_id("verdict")
    kinds = {verdicts.nth(i).get_attribute("data-verdict") for i in range(verdicts.count())}
    assert kinds == {"pass", "fail", "number", "error", "skipped"}

    page.get_by_role("button", name="Failing only").click()
    page.wait_for_url(re.compile(r"failing=1"))
    page.wait_for_function(
        "() => document.querySelectorAll('[data-testid=result-row]').length === 2"
    )
    shown = [rows.nth(i).inner_text() for i in range(rows.count())]
    assert any("exchange a tent" in text and "fail" in text for text in shown)
    assert any("warranty" in text and "error" in text for text in shown)

    rows.filter(has_text="exchange a tent").click()
    detail = page.get_by_test_id("row-detail")
    detail.wait_for()
    assert "correctness judged 'no'" in detail.inner_text()
    screenshot("evaluation-run")

    rows.filter(has_text="warranty").get_by_role("link", name="trace").click()
    page.get_by_role("treeitem").first.wait_for()
    assert "answer" in page.get_by_role("treeitem").first.inner_text()


def test_compare_two_evaluations_lists_regressions_first(page, logged, screenshot):
    page.goto(f"/experiments/{logged.experiment_id}/evaluations")
    page.get_by_test_id("evaluation-row").first.wait_for()
    page.get_by_label("select candidate-eval").check()
    page.get_by_label("select baseline-eval").check()
    page.get_by_role("button", name="Compare 2 evaluations").click()
    rows = page.get_by_test_id("comparison-row")
    rows.first.wait_for()
    assert page.get_by_test_id("baseline-name").inner_text() == "baseline-eval"
    counts = {
        status: page.get_by_test_id(f"summary-{status}").locator(".v").inner_text()
        for status in ("regression", "improvement", "changed", "unchanged")
    }
    assert counts == {"regression": "1", "improvement": "1", "changed": "2", "unchanged": "1"}
    statuses = [rows.nth(i).get_attribute("data-status") for i in range(rows.count())]
    assert statuses == ["regression", "improvement", "changed", "changed", "unchanged"]
    # Matched by row_key although the candidate saw the questions in reverse order.
    assert rows.first.get_attribute("data-key") == logged.row_keys[2]
    assert rows.nth(1).get_attribute("data-key") == logged.row_keys[1]
    assert "1 → 3" in rows.nth(1).inner_text()
    page.mouse.move(0, 0)
    screenshot("compare-evaluations")

    page.get_by_test_id("summary-regression").click()
    page.wait_for_function(
        "() => document.querySelectorAll('[data-testid=comparison-row]').length === 1"
    )
    rows.first.click()
    assert "Candidate: candidate-eval" in page.get_by_test_id("row-detail").inner_text()


def test_prompts_page_shows_versions_aliases_and_a_line_diff(page, logged, screenshot):
    page.goto("/prompts")
    rows = page.get_by_test_id("prompt-row")
    rows.filter(has_text=CHAT_PROMPT).wait_for()
    screenshot("prompts")
    page.get_by_label("search prompts").fill("support-ANS")
    page.wait_for_function(
        "() => document.querySelectorAll('[data-testid=prompt-row]').length === 1"
    )
    assert PROMPT in rows.first.inner_text()
    assert "@production → v2" in rows.first.inner_text()

    rows.first.get_by_role("link", name=PROMPT).click()
    versions = page.get_by_test_id("version-item")
    versions.first.wait_for()
    assert versions.count() == 2
    assert "@production" in versions.first.inner_text()
    version = page.get_by_test_id("prompt-version")
    assert "Version 2" in version.inner_text()
    assert page.get_by_test_id("variables").locator(".tag").all_inner_texts() == [
        "question",
        "policy",
    ]
    assert "shorter answers" in page.get_by_test_id("commit-message").inner_text()
    diff = page.get_by_test_id("line-diff")
    assert page.get_by_test_id("diff-stats").inner_text() == "+3 −2 lines"
    assert (
        diff.locator("tr[data-kind=add]")
        .first.inner_text()
        .endswith("You are a friendly support agent for an outdoor shop.")
    )
    page.get_by_test_id("prompt-traces").wait_for()  # below the diff, in the picture too
    screenshot("prompt-diff")

    versions.filter(has_text="v1").click()
    page.wait_for_url(re.compile(r"version=1"))
    page.get_by_test_id("commit-message").filter(has_text="first draft").wait_for()
    assert "team=support" in version.inner_text()
    assert page.get_by_label("compare with version").input_value() == "2"
    # v1 was loaded once, beside the chat prompt: its entry is not the last of the list.
    traces = page.get_by_test_id("linked-trace-row")
    page.locator(
        f"[data-testid=linked-trace-row][data-trace-id='{logged.prompt_v1_trace}']"
    ).wait_for()
    assert traces.count() == 1

    page.get_by_role("link", name="← Prompts").click()
    page.get_by_label("search prompts").fill("")
    page.get_by_role("link", name=CHAT_PROMPT).click()
    template = page.get_by_test_id("template")
    template.locator(".msg[data-role=system]").wait_for()
    assert "Sort the message" in template.inner_text()
    assert page.get_by_test_id("variables").inner_text() == "message"


def test_a_prompt_version_lists_the_traces_that_used_it_in_every_experiment(page, logged):
    page.goto(f"/prompts/{PROMPT}")
    listed = page.get_by_test_id("prompt-traces")
    listed.wait_for()
    assert page.get_by_role("heading", name="Traces that used v2").is_visible()
    rows = listed.get_by_test_id("linked-trace-row")
    assert [rows.nth(i).get_attribute("data-trace-id") for i in range(rows.count())] == (
        logged.prompt_v2_traces
    )  # newest first
    assert RELEASES in rows.first.inner_text()
    assert "e2e: support-bot evaluations" in rows.nth(1).inner_text()
    assert "How long do I have to return an item?" in rows.first.inner_text()
    assert "OK" in rows.first.inner_text()

    rows.nth(1).get_by_role("link", name="draft_reply").click()
    page.wait_for_url(re.compile(rf"/traces/{logged.prompt_v2_traces[1]}"))
    assert "draft_reply" in page.get_by_role("treeitem").first.inner_text()

    page.goto(f"/prompts/{CHAT_PROMPT}")
    row = page.get_by_test_id("linked-trace-row")
    row.first.wait_for()
    assert [row.nth(i).get_attribute("data-trace-id") for i in range(row.count())] == [
        logged.prompt_v1_trace
    ]
    row.first.click()
    page.wait_for_url(re.compile(rf"/traces/{logged.prompt_v1_trace}"))
    assert "triage_and_reply" in page.get_by_role("treeitem").first.inner_text()


def test_models_page_shows_versions_aliases_and_the_logged_model(page, logged, screenshot):
    page.goto("/models")
    page.get_by_label("search models").fill("support-agent")
    rows = page.get_by_test_id("model-row")
    rows.filter(has_text=MODEL).wait_for()
    assert "@champion → v1" in rows.filter(has_text=MODEL).inner_text()
    screenshot("models")

    page.get_by_role("link", name=MODEL).click()
    versions = page.get_by_test_id("model-version-row")
    versions.first.wait_for()
    assert [versions.nth(i).get_attribute("data-version") for i in range(2)] == ["2", "1"]
    versions.filter(has_text="First release").click()
    page.wait_for_url(re.compile(r"version=1"))
    detail = page.get_by_test_id("model-version")
    detail.get_by_role("heading", name="Version 1").wait_for()
    # The linked runs and traces load above the files: let them settle before clicking below.
    page.get_by_test_id("model-runs").wait_for()
    page.get_by_test_id("model-traces").wait_for()
    assert "@champion" in detail.inner_text()
    assert "owner=ana" in detail.inner_text()
    assert f"models:/{MODEL}/1" in detail.inner_text()
    logged_model = page.get_by_test_id("logged-model")
    logged_model.get_by_text("requirements.txt").click()
    logged_model.locator(".preview-box pre", has_text="tracemark").wait_for()
    screenshot("model-detail")

    detail.get_by_role("link", name=logged.build_run_id).click()
    page.wait_for_url(
        re.compile(rf"/experiments/{logged.experiment_id}/runs/{logged.build_run_id}")
    )
    page.get_by_role("heading", name="agent-build").wait_for()


def test_a_model_version_lists_its_runs_and_traces(page, logged, screenshot):
    page.goto(f"/models/{MODEL}?version=1")
    runs = page.get_by_test_id("model-run-row")
    runs.first.wait_for()
    # The run that logged the model, then the evaluation run while it was active.
    assert [runs.nth(i).get_attribute("data-run-name") for i in range(runs.count())] == [
        "agent-build",
        "agent-eval",
    ]
    assert "logged the model" in runs.first.inner_text()
    evaluation = runs.nth(1)
    assert "evaluation" in evaluation.inner_text()
    assert RELEASES in evaluation.inner_text()
    assert evaluation.locator("[data-metric=concise]").inner_text() == "concise 100%"

    traces = page.get_by_test_id("model-traces").get_by_test_id("linked-trace-row")
    traces.first.wait_for()
    shown = {traces.nth(i).get_attribute("data-trace-id") for i in range(traces.count())}
    assert shown == logged.model_traces
    assert len(shown) >= 4  # two calls, and the evaluation's two rows
    page.get_by_test_id("model-runs").scroll_into_view_if_needed()
    page.mouse.move(0, 0)
    screenshot("model-version-links")

    evaluation.get_by_role("link", name="Results →").click()
    page.wait_for_url(re.compile(rf"/evaluations/{logged.model_eval_id}"))
    page.get_by_test_id("result-row").first.wait_for()
    assert page.get_by_test_id("result-row").count() == 2

    page.go_back()
    page.get_by_test_id("model-run-row").filter(has_text="agent-eval").get_by_role(
        "link", name="agent-eval"
    ).click()
    page.wait_for_url(re.compile(rf"/runs/{logged.model_eval_id}"))
    page.get_by_role("heading", name="agent-eval").wait_for()

    page.go_back()
    first = page.get_by_test_id("model-traces").get_by_test_id("linked-trace-row").first
    trace_id = first.get_attribute("data-trace-id")
    first.locator("td").nth(1).get_by_role("link").click()
    page.wait_for_url(re.compile(rf"/traces/{trace_id}"))
    page.get_by_role("treeitem").first.wait_for()
