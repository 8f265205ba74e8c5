import { cleanup, fireEvent, render, screen, within } from "@testing-library/react";
import { MemoryRouter, Route, Routes } from "react-router-dom";
import { afterEach, describe, expect, it, vi } from "vitest";
import { api } from "../api";
import {
  compareResults,
  compareVerdicts,
  formatSummary,
  isFailing,
  parseResults,
  scorerSummaries,
  verdictOf,
} from "../lib/evaluation";
import { CompareEvaluations } from "../pages/CompareEvaluations";
import { EvaluationRun } from "../pages/EvaluationRun";
import type { Run } from "../types";

afterEach(() => {
  cleanup();
  vi.restoreAllMocks();
});

const COLUMNS = [
  "row",
  "row_key",
  "trace_id",
  "inputs",
  "outputs",
  "expectations",
  "correct/value",
  "correct/rationale",
  "correct/error",
  "quality/value",
  "quality/rationale",
  "quality/error",
];

type Cell = [unknown, string | null, string | null];

/** A results table row: row number, key, then (value, rationale, error) for correct and quality. */
function row(n: number, key: string | null, correct: Cell, quality: Cell): unknown[] {
  return [n, key, `t${n}`.padEnd(32, "0"), { q: `question ${key}` }, `answer ${n}`, null, ...correct, ...quality];
}

const ok: Cell = [true, "matches", null];
const bad: Cell = [false, "wrong", null];
const num = (v: number): Cell => [v, null, null];

describe("reading a results table", () => {
  it("finds the assessments and classifies values, errors and skipped rows", () => {
    const results = parseResults({
      columns: COLUMNS,
      data: [
        row(0, "k0", ["yes", "fine", null], num(4)),
        row(1, "k1", ["No", null, null], [null, null, "judge timed out"]),
        row(2, "k2", [null, null, "not judged: cost budget spent"], num(2.5)),
        row(3, null, ["maybe", null, null], [null, null, null]),
      ],
    });
    expect(results.scorers).toEqual(["correct", "quality"]);
    const kinds = results.rows.map((r) => [r.scores.correct.verdict.kind, r.scores.quality.verdict.kind]);
    expect(kinds).toEqual([
      ["pass", "number"],
      ["fail", "error"],
      ["skipped", "number"],
      ["label", "missing"],
    ]);
    expect(results.rows[3].key).toBe("row:3"); // no row_key: matched by row number
    expect(results.rows[0].scores.correct.rationale).toBe("fine");
    expect(results.rows.map(isFailing)).toEqual([false, true, false, false]);
  });

  it("decodes JSON text cells and keeps plain text as it is", () => {
    const results = parseResults({
      columns: ["row", "row_key", "inputs", "outputs"],
      data: [[0, "a", '{"q": "hi"}', "[not json"]],
    });
    expect(results.rows[0].inputs).toEqual({ q: "hi" });
    expect(results.rows[0].outputs).toBe("[not json");
    expect(results.rows[0].traceId).toBeNull();
  });

  it("reads each assessment's aggregate from the run metrics", () => {
    const summaries = scorerSummaries({
      "correct/pass_rate": 0.75,
      "correct/error_count": 1,
      "quality/mean": 3.25,
      "quality/error_count": 0,
      "evaluation/rows": 4,
      "judges/cost_usd": 0.01,
    });
    expect(summaries.map((s) => [s.name, s.kind, formatSummary(s), s.errors])).toEqual([
      ["correct", "pass_rate", "75%", 1],
      ["quality", "mean", "3.25", 0],
    ]);
    expect(verdictOf(0, null)).toEqual({ kind: "number", value: 0 });
  });
});

describe("comparing two evaluations", () => {
  it("classifies changes: pass to fail and a lower number regress", () => {
    expect(compareVerdicts({ kind: "pass" }, { kind: "fail" })).toBe("regressed");
    expect(compareVerdicts({ kind: "fail" }, { kind: "pass" })).toBe("improved");
    expect(compareVerdicts({ kind: "number", value: 4 }, { kind: "number", value: 3 })).toBe("regressed");
    expect(compareVerdicts({ kind: "number", value: 0.1 + 0.2 }, { kind: "number", value: 0.3 })).toBe("same");
    expect(compareVerdicts({ kind: "pass" }, { kind: "error", message: "boom" })).toBe("differs");
    expect(compareVerdicts({ kind: "error", message: "a" }, { kind: "skipped", message: "not judged" })).toBe("same");
    expect(compareVerdicts({ kind: "label", value: "A" }, { kind: "label", value: "B" })).toBe("differs");
  });

  it("matches rows by row_key, not position, and lists regressions, improvements, then the rest", () => {
    const baseline = parseResults({
      columns: COLUMNS,
      data: [
        row(0, "same", ok, num(3)),
        row(1, "up", bad, num(3)),
        row(2, "down", ok, num(4)),
        row(3, "gone", ok, num(1)),
        row(4, "both", ok, num(1)),
        row(5, "erred", ok, num(2)),
      ],
    });
    // The candidate saw the data in another order, lost one row and gained one.
    const candidate = parseResults({
      columns: COLUMNS,
      data: [
        row(0, "down", bad, num(4)),
        row(1, "new", ok, num(5)),
        row(2, "both", bad, num(0)),
        row(3, "same", ok, num(3)),
        row(4, "up", ok, num(3.5)),
        row(5, "erred", [null, null, "judge timed out"], num(2)),
      ],
    });
    const c = compareResults(baseline, candidate);
    expect(c.rows.map((r) => [r.key, r.status])).toEqual([
      ["both", "regression"], // two assessments regressed: first
      ["down", "regression"],
      ["up", "improvement"],
      ["erred", "changed"],
      ["same", "unchanged"],
      ["gone", "removed"],
      ["new", "added"],
    ]);
    expect(c.counts).toEqual({ regression: 2, improvement: 1, changed: 1, unchanged: 1, removed: 1, added: 1 });
    expect(c.perScorer).toEqual({ correct: { regressed: 2, improved: 1 }, quality: { regressed: 1, improved: 1 } });
    const down = c.rows.find((r) => r.key === "down")!;
    expect([down.baseline!.row, down.candidate!.row]).toEqual([2, 0]);
    expect(down.changes).toEqual({ correct: "regressed", quality: "same" });
  });

  it("pairs repeated inputs in order and compares assessments only one run has", () => {
    const baseline = parseResults({
      columns: ["row", "row_key", "correct/value", "correct/error"],
      data: [
        [0, "dup", true, null],
        [1, "dup", true, null],
      ],
    });
    const candidate = parseResults({
      columns: ["row", "row_key", "correct/value", "correct/error", "tone/value"],
      data: [
        [0, "dup", true, null, "ok"],
        [1, "dup", false, null, "ok"],
      ],
    });
    const c = compareResults(baseline, candidate);
    expect(c.scorers).toEqual(["correct", "tone"]);
    expect(c.rows.map((r) => [r.key, r.status])).toEqual([
      ["dup#1", "regression"],
      ["dup", "changed"], // tone: no value before, a value now
    ]);
  });
});

function run(id: string, name: string, start: number, metrics: Record<string, number> = {}): Run {
  return {
    run_id: id,
    experiment_id: "1",
    run_name: name,
    status: "FINISHED",
    start_time: start,
    end_time: start + 1000,
    artifact_uri: "",
    lifecycle_stage: "active",
    parent_run_id: null,
    params: {},
    metrics,
    tags: { "tracemark.run_type": "evaluation" },
  };
}

function serve(runs: Run[], tables: Record<string, unknown[][]>) {
  vi.spyOn(api, "getRun").mockImplementation(async (id) => runs.find((r) => r.run_id === id)!);
  vi.spyOn(api, "listArtifacts").mockImplementation(async (id) => ({
    files: id in tables ? [{ path: "eval_results.json", is_dir: false, file_size: 10 }] : [],
  }));
  vi.spyOn(api, "readJsonArtifact").mockImplementation(async (id) => ({ columns: COLUMNS, data: tables[id] }));
  vi.spyOn(api, "searchRuns").mockImplementation(async () => ({ runs, next_page_token: null }));
}

describe("the comparison page", () => {
  it("shows the summary counts and the regressed row first", async () => {
    serve([run("a", "v1", 1), run("b", "v2", 2)], {
      a: [row(0, "x", ok, num(1)), row(1, "y", bad, num(1))],
      b: [row(0, "y", ok, num(1)), row(1, "x", bad, num(1))],
    });
    render(
      <MemoryRouter initialEntries={["/experiments/1/evaluations/compare?baseline=a&candidate=b"]}>
        <Routes>
          <Route path="/experiments/:experimentId/evaluations/compare" element={<CompareEvaluations />} />
        </Routes>
      </MemoryRouter>,
    );
    const rows = await screen.findAllByTestId("comparison-row");
    expect(rows.map((r) => r.dataset.status)).toEqual(["regression", "improvement"]);
    expect(screen.getByTestId("summary-regression").textContent).toContain("1");
    expect(within(rows[0]).getByText("candidate").getAttribute("href")).toBe(`/experiments/1/traces/${"t1".padEnd(32, "0")}`);

    fireEvent.click(screen.getByTestId("summary-improvement"));
    const filtered = await screen.findAllByTestId("comparison-row");
    expect(filtered.map((r) => r.dataset.key)).toEqual(["y"]);
  });

  it("says which run has no results table", async () => {
    serve([run("a", "v1", 1), run("b", "v2", 2)], { a: [row(0, "x", ok, num(1))] });
    render(
      <MemoryRouter initialEntries={["/experiments/1/evaluations/compare?baseline=a&candidate=b"]}>
        <Routes>
          <Route path="/experiments/:experimentId/evaluations/compare" element={<CompareEvaluations />} />
        </Routes>
      </MemoryRouter>,
    );
    expect(await screen.findByText("v2 has no eval_results.json")).toBeTruthy();
  });
});

describe("one evaluation's rows", () => {
  it("filters failing rows and expands a row's rationale", async () => {
    serve([run("a", "v1", 1, { "correct/pass_rate": 0.5, "evaluation/rows": 2 })], {
      a: [row(0, "x", ok, num(1)), row(1, "y", bad, num(1))],
    });
    render(
      <MemoryRouter initialEntries={["/experiments/1/evaluations/a"]}>
        <Routes>
          <Route path="/experiments/:experimentId/evaluations/:runId" element={<EvaluationRun />} />
        </Routes>
      </MemoryRouter>,
    );
    expect(await screen.findAllByTestId("result-row")).toHaveLength(2);
    expect(screen.getAllByTestId("scorer-kpi")[0].textContent).toContain("50%");
    fireEvent.click(screen.getByRole("button", { name: "Failing only" }));
    const rows = await screen.findAllByTestId("result-row");
    expect(rows.map((r) => r.dataset.row)).toEqual(["1"]);
    expect(within(rows[0]).getAllByTestId("verdict")[0].getAttribute("title")).toContain("wrong");
    fireEvent.click(rows[0]);
    expect(screen.getByTestId("row-detail").textContent).toContain("wrong");
  });
});
