"""The web UI in a real browser against a real server with the demo data and a big trace."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e


def _traces(seeded) -> str:
    return f"/experiments/{seeded.experiment_id}/traces"


def _search(seeded, filter_string: str) -> list[dict]:
    body = {"experiment_ids": [seeded.experiment_id], "filter": filter_string}
    return seeded.api("POST", "/traces/search", json=body)["traces"]


def test_experiments_page_creates_renames_deletes_and_restores(page, seeded, screenshot):
    page.goto("/")
    page.get_by_text("demo: support-bot prompt comparison").wait_for()
    screenshot("experiments")
    page.get_by_label("new experiment name").fill("e2e-scratch")
    page.get_by_role("button", name="Create").click()
    row = page.get_by_test_id("experiment-row").filter(has_text="e2e-scratch")
    row.get_by_role("button", name="Rename").click()
    page.get_by_label("experiment name", exact=True).fill("e2e-renamed")
    page.get_by_role("button", name="Save").click()
    row = page.get_by_test_id("experiment-row").filter(has_text="e2e-renamed")
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Delete").click()
    row.wait_for(state="detached")
    page.get_by_role("button", name="Deleted").click()
    page.get_by_test_id("experiment-row").filter(has_text="e2e-renamed").get_by_role(
        "button", name="Restore"
    ).click()
    page.get_by_test_id("experiment-row").filter(has_text="e2e-renamed").wait_for(state="detached")
    names = [e["name"] for e in seeded.api("GET", "/experiments")["experiments"]]
    assert "e2e-renamed" in names


def test_traces_list_filters_errors_and_explains_a_bad_filter(page, seeded, screenshot, console):
    page.goto(_traces(seeded))
    rows = page.get_by_test_id("trace-row")
    rows.first.wait_for()
    assert rows.count() >= 10
    screenshot("traces")

    page.get_by_role("button", name="Errors only").click()
    page.wait_for_url(re.compile(r"quick=errors"))
    expected = {t["trace_id"] for t in _search(seeded, "status = 'ERROR'")}
    page.wait_for_function(
        "n => document.querySelectorAll('[data-testid=trace-row]').length === n", arg=len(expected)
    )
    shown = {rows.nth(i).get_attribute("data-trace-id") for i in range(rows.count())}
    assert shown == expected
    assert all("ERROR" in rows.nth(i).inner_text() for i in range(rows.count()))

    console.allow("status of 400")  # the browser logs the rejected request itself
    page.get_by_role("button", name="Errors only").click()
    page.get_by_label("filter").fill("status = ")
    page.get_by_label("filter").press("Enter")
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert "expected a value" in alert.inner_text()
    assert page.get_by_test_id("filter-caret").inner_text().splitlines()[1] == " " * 8 + "^"


def test_trace_detail_expands_spans_and_reads_a_chat_span(page, seeded, screenshot):
    trace = _search(seeded, "metadata.session_id = 'sess-returns-ana'")[-1]
    page.goto(f"{_traces(seeded)}/{trace['trace_id']}")
    items = page.get_by_role("treeitem")
    items.first.wait_for()
    total = items.count()
    assert total == trace["span_count"]

    root = items.first
    root.get_by_test_id("twisty").click()
    page.wait_for_function("() => document.querySelectorAll('[role=treeitem]').length === 1")
    root.get_by_test_id("twisty").click()
    page.wait_for_function(
        "n => document.querySelectorAll('[role=treeitem]').length === n", arg=total
    )

    page.get_by_role("treeitem").filter(has_text="answer").click()
    page.wait_for_url(re.compile(r"span=[0-9a-f]{16}"))
    panel = page.get_by_test_id("span-panel")
    expect(panel.get_by_role("tab", selected=True)).to_have_text("Chat")
    assert "Can I still return the tent" in panel.inner_text()
    assert panel.locator(".msg[data-role=tool]").count() >= 1
    assert "gpt-4o-mini" in panel.inner_text()
    screenshot("trace-detail")

    page.get_by_role("treeitem").filter(has_text="plan").click()
    panel.get_by_test_id("tool-call").first.wait_for()  # the payload loads when the span opens

    page.get_by_role("treeitem").filter(has_text="search_policies").click()
    # The retriever's documents are its outputs, fetched when the span opens.
    expect(panel.get_by_role("tab", selected=True)).to_have_text(re.compile(r"^Documents"))
    assert "30 days" in panel.inner_text()


def test_chat_span_shows_an_image_kept_as_an_attachment(page, seeded):
    import base64
    import hashlib

    from tracemark.entities.trace import Span, Trace, TraceInfo

    png = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
    )
    sha = hashlib.sha256(png).hexdigest()
    reference = f"tracemark-attachment:sha256:{sha}?type=image/png&size={len(png)}"
    experiment_id = seeded.api("POST", "/experiments", json={"name": "e2e: attachments"})[
        "experiment_id"
    ]
    trace_id = "a7" * 16
    span = Span(trace_id, "a7" * 8, None, "chat gpt-4o-mini", "CHAT_MODEL", 10**18, 10**18 + 10**6)
    span.inputs_json = (
        '{"messages": [{"role": "user", "content": [{"type": "text", "text": "Which colour?"}, '
        f'{{"type": "image_url", "image_url": {{"url": "{reference}"}}}}]}}]}}'
    )
    span.outputs_json = '{"choices": [{"message": {"role": "assistant", "content": "Red."}}]}'
    body = Trace(TraceInfo(trace_id, experiment_id, 10**12, 1, "OK", name=span.name), [span])
    wire = body.to_dict()
    wire["attachments"] = [
        {"sha256": sha, "media_type": "image/png", "data": base64.b64encode(png).decode()}
    ]
    seeded.api("POST", "/traces", json={"traces": [wire]})

    page.goto(f"/experiments/{experiment_id}/traces/{trace_id}?span={span.span_id}")
    image = page.get_by_test_id("span-panel").get_by_role("img")
    image.wait_for()
    assert image.get_attribute("src") == f"/api/v1/traces/{trace_id}/attachments/{sha}"
    page.wait_for_function(
        "img => img.complete && img.naturalWidth === 1", arg=image.element_handle()
    )


def test_deep_link_to_a_span_survives_a_reload(page, seeded):
    error = _search(seeded, "status = 'ERROR'")[0]
    spans = seeded.api("GET", f"/traces/{error['trace_id']}")["spans"]
    tool = next(s for s in spans if s["name"] == "lookup_order")
    url = f"{_traces(seeded)}/{error['trace_id']}?span={tool['span_id']}"
    page.goto(url)
    panel = page.get_by_test_id("span-panel")
    panel.get_by_test_id("exception").wait_for()
    page.reload()
    panel.get_by_test_id("exception").wait_for()
    assert "OrderServiceTimeout" in panel.inner_text()
    assert page.url.endswith(f"?span={tool['span_id']}")


def test_feedback_and_a_correction_are_saved_through_the_api(page, seeded):
    trace = _search(seeded, "metadata.session_id = 'sess-exchange-dana'")[0]
    trace_id = trace["trace_id"]
    page.goto(f"{_traces(seeded)}/{trace_id}")
    form = page.get_by_test_id("feedback-form")
    form.get_by_label("assessment name").fill("e2e_helpful")
    form.get_by_role("button", name="thumbs down").click()
    form.get_by_label("comment").fill("Too vague about the size.")
    form.get_by_role("button", name="Save").click()
    page.get_by_test_id("assessment").filter(has_text="e2e_helpful").wait_for()

    stored = [
        a
        for a in seeded.api("GET", f"/traces/{trace_id}")["info"]["assessments"]
        if a["name"] == "e2e_helpful"
    ]
    assert len(stored) == 1
    first = stored[0]
    assert first["value"] is False
    assert first["kind"] == "feedback"
    assert first["rationale"] == "Too vague about the size."
    assert first["source"] == {"source_type": "HUMAN", "source_id": "ui"}

    page.get_by_test_id("assessment").filter(has_text="e2e_helpful").get_by_role(
        "button", name="correct"
    ).click()
    correct = page.get_by_test_id("correct-form")
    correct.get_by_role("button", name="thumbs up").click()
    correct.get_by_role("button", name="Save").click()
    page.locator("[data-testid=assessment][data-name=e2e_helpful]").nth(1).wait_for()

    stored = {
        a["assessment_id"]: a
        for a in seeded.api("GET", f"/traces/{trace_id}")["info"]["assessments"]
        if a["name"] == "e2e_helpful"
    }
    assert stored[first["assessment_id"]]["valid"] is False
    (correction,) = [a for a in stored.values() if a["overrides"] == first["assessment_id"]]
    assert correction["value"] is True and correction["valid"] is True

    form = page.get_by_test_id("feedback-form")
    form.get_by_label("assessment kind").select_option("expectation")
    form.get_by_label("assessment name").fill("expected_answer")
    form.get_by_label("expected value").fill("Yes, exchanges are free within 30 days.")
    form.get_by_role("button", name="Save").click()
    page.get_by_test_id("assessment").filter(has_text="exchanges are free").wait_for()
    kinds = {
        a["name"]: a["kind"]
        for a in seeded.api("GET", f"/traces/{trace_id}")["info"]["assessments"]
    }
    assert kinds["expected_answer"] == "expectation"


def test_compare_two_runs(page, seeded, screenshot):
    page.goto(f"/experiments/{seeded.experiment_id}/runs")
    page.get_by_test_id("run-row").first.wait_for()
    page.get_by_label("select baseline").check()
    page.get_by_label("select grounded-mini").check()
    page.get_by_role("button", name=re.compile("Compare 2 runs")).click()
    compare = page.get_by_test_id("compare")
    compare.get_by_test_id("compare-params").wait_for()
    diff_rows = compare.locator("[data-testid=compare-params] tr[data-diff=true]")
    diff_params = {
        diff_rows.nth(i).locator("td").first.inner_text() for i in range(diff_rows.count())
    }
    assert "prompt_template" in diff_params
    assert diff_rows.count() < compare.locator("[data-testid=compare-params] tbody tr").count()
    compare.get_by_test_id("overlay-chart").first.locator("canvas").wait_for()
    assert compare.get_by_test_id("artifact-table").count() == 2  # predictions side by side
    screenshot("compare-runs")


def test_run_detail_shows_charts_and_previews_artifacts(page, seeded, screenshot):
    page.goto(f"/experiments/{seeded.experiment_id}/runs")
    page.get_by_role("link", name="grounded-mini").click()
    page.get_by_test_id("metric-chart").first.locator("canvas").wait_for()
    page.get_by_test_id("artifacts").get_by_text("predictions.json").click()
    page.get_by_test_id("artifact-table").wait_for()
    screenshot("run-detail")


def test_sessions_open_as_a_chat_thread(page, seeded, screenshot):
    page.goto(f"/experiments/{seeded.experiment_id}/sessions")
    rows = page.get_by_test_id("session-row")
    rows.first.wait_for()
    assert rows.count() == len(
        seeded.api("GET", f"/experiments/{seeded.experiment_id}/sessions")["sessions"]
    )
    screenshot("sessions")
    rows.filter(has_text="sess-returns-ana").click()
    turns = page.get_by_test_id("turn")
    turns.first.wait_for()
    assert turns.count() == 3
    assert "Can I still return the tent" in turns.first.inner_text()
    screenshot("session-thread")
    turns.nth(1).get_by_role("link", name=re.compile("Open trace")).click()
    page.get_by_role("treeitem").first.wait_for()


def test_overview_charts(page, seeded, screenshot):
    page.goto(f"/experiments/{seeded.experiment_id}/overview")
    charts = page.get_by_test_id("overview-chart")
    charts.first.locator("canvas").wait_for()
    assert charts.count() == 5
    assert "traces" in page.get_by_test_id("kpis").inner_text()
    screenshot("overview")
    page.get_by_role("button", name="toggle theme").click()
    page.goto(_traces(seeded))
    page.get_by_test_id("trace-row").first.wait_for()
    screenshot("traces-dark")
    page.get_by_role("button", name="toggle theme").click()


def test_big_trace_opens_and_stays_responsive(page, seeded, screenshot):
    url = f"{_traces(seeded)}/{seeded.big_trace_id}"
    started = time.perf_counter()
    page.goto(url)
    page.get_by_role("treeitem").first.wait_for()
    tree = page.get_by_role("tree")
    tree.focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"span="))
    interactive = time.perf_counter() - started
    rendered = page.get_by_role("treeitem").count()
    assert rendered < 200, "the tree must be virtualized"

    # Scrolling to the end and searching stay quick on 10,000 spans.
    started = time.perf_counter()
    page.keyboard.press("End")
    page.get_by_role("treeitem").filter(has_text="tail_").first.wait_for()
    to_end = time.perf_counter() - started
    started = time.perf_counter()
    page.get_by_label("search spans").fill("llm_98_")
    page.wait_for_function(
        "() => [...document.querySelectorAll('[role=treeitem]')].some(r => "
        "r.textContent.includes('llm_98_'))"
    )
    search = time.perf_counter() - started
    print(
        f"\n10,000-span trace: time to interactive {interactive * 1000:.0f} ms "
        f"(budget 1000 ms), jump to last span {to_end * 1000:.0f} ms, "
        f"search {search * 1000:.0f} ms, {rendered} rows in the DOM"
    )
    page.get_by_label("search spans").fill("")
    screenshot("big-trace")
