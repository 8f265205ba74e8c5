import { cleanup, fireEvent, render, screen, within } from "@testing-library/react";
import { MemoryRouter } from "react-router-dom";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ApiError, api, type TraceSearch } from "../api";
import { LinkedTraces } from "../components/LinkedTraces";
import { ModelRuns } from "../components/ModelRuns";
import { keyMetrics } from "../lib/evaluation";
import {
  chunks,
  modelTraceFilter,
  promptVersionFilter,
  searchEveryExperiment,
  searchModelRuns,
  usedPromptVersion,
} from "../lib/linked";
import type { Experiment, Run, TraceInfo } from "../types";

afterEach(() => {
  cleanup();
  vi.restoreAllMocks();
});

function experiment(id: string): Experiment {
  return {
    experiment_id: id,
    name: `exp ${id}`,
    artifact_location: "",
    lifecycle_stage: "active",
    tags: {},
    creation_time: 0,
    last_update_time: 0,
  };
}

function trace(n: number, experimentId: string, extra: Partial<TraceInfo> = {}): TraceInfo {
  return {
    trace_id: String(n).padStart(32, "0"),
    experiment_id: experimentId,
    timestamp_ms: n * 1000,
    execution_time_ms: 120,
    status: "OK",
    name: `answer_${n}`,
    run_id: null,
    request_preview: '{"question": "Where is my parcel?"}',
    response_preview: null,
    tags: {},
    metadata: {},
    input_tokens: null,
    output_tokens: null,
    total_tokens: null,
    cost: null,
    span_count: 1,
    assessments: [],
    ...extra,
  };
}

function run(id: string, name: string, metrics: Run["metrics"], tags: Run["tags"] = {}): Run {
  return {
    run_id: id,
    experiment_id: "2",
    run_name: name,
    status: "FINISHED",
    start_time: 1000,
    end_time: 2000,
    artifact_uri: "",
    lifecycle_stage: "active",
    parent_run_id: null,
    params: {},
    metrics,
    tags,
  };
}

const page = (traces: TraceInfo[], token: string | null = null) => ({ traces, next_page_token: token });

describe("finding the traces of a prompt version", () => {
  it("matches the version alone, first, last or amid the others, and nothing else", () => {
    const filter = promptVersionFilter("qa", 3);
    expect(filter).toBe(
      "metadata.`tracemark.prompts` = 'qa@3' OR metadata.`tracemark.prompts` LIKE 'qa@3,%' OR " +
        "metadata.`tracemark.prompts` LIKE '%,qa@3' OR metadata.`tracemark.prompts` LIKE '%,qa@3,%'",
    );
    const used = (value: string) =>
      usedPromptVersion(trace(1, "1", { metadata: { "tracemark.prompts": value } }), "qa", 3);
    expect(["qa@3", "style@1,qa@3", "qa@3,style@1", "a@1,qa@3,b@2"].map(used)).toEqual([true, true, true, true]);
    expect(["qa@30", "myqa@3", "qa@3x,b@1", ""].map(used)).toEqual([false, false, false, false]);
    expect(usedPromptVersion(trace(1, "1"), "qa", 3)).toBe(false);
  });

  it("quotes a model id in the model filter", () => {
    expect(modelTraceFilter("ab'c")).toBe("metadata.`tracemark.model_id` = 'ab''c'");
  });

  it("splits the experiments into searches the server accepts", () => {
    expect(chunks([1, 2, 3, 4, 5], 2)).toEqual([[1, 2], [3, 4], [5]]);
    expect(chunks([], 2)).toEqual([]);
  });
});

describe("searching every experiment", () => {
  it("searches 1,000 experiments at a time and merges the results newest first", async () => {
    const experiments = Array.from({ length: 1500 }, (_, i) => experiment(String(i + 1)));
    vi.spyOn(api, "listExperiments").mockResolvedValue({ experiments });
    const search = vi.spyOn(api, "searchTracesIn").mockImplementation(async (ids: string[]) =>
      ids.length === 1000
        ? page([trace(5, "1"), trace(3, "2"), trace(1, "3")])
        : page([trace(4, "1001"), trace(2, "1002")]),
    );

    const found = await searchEveryExperiment("status = 'OK'", 3, (t) => t.timestamp_ms !== 4000);

    expect(search.mock.calls.map(([ids]) => ids.length)).toEqual([1000, 500]);
    expect(search.mock.calls[0][1]).toEqual({ filter: "status = 'OK'", order_by: ["timestamp_ms DESC"], max_results: 3 });
    expect(found.traces.map((t) => t.timestamp_ms)).toEqual([5000, 3000, 2000]); // 4 was not kept
    expect(found.more).toBe(true);
    expect(found.experiments.get("1002")).toBe("exp 1002");
  });

  it("makes no search without experiments", async () => {
    vi.spyOn(api, "listExperiments").mockResolvedValue({ experiments: [] });
    const search = vi.spyOn(api, "searchTracesIn");
    expect(await searchEveryExperiment("x = 1", 10)).toMatchObject({ traces: [], more: false });
    expect(search).not.toHaveBeenCalled();
  });
});

/** A trace search that understands `run_id NOT IN (...)`, over traces linked to runs. */
function searchLinked(traces: TraceInfo[]) {
  return async (_ids: string[], search: TraceSearch) => {
    const excluded = /run_id NOT IN \(([^)]*)\)/.exec(search.filter ?? "")?.[1] ?? "";
    const left = traces.filter((t) => t.run_id && !excluded.includes(`'${t.run_id}'`));
    return page(left.slice(0, search.max_results));
  };
}

describe("the runs of a model", () => {
  it("lists the run that logged it, then each run holding linked traces once", async () => {
    vi.spyOn(api, "listExperiments").mockResolvedValue({ experiments: [experiment("1"), experiment("2")] });
    const search = vi
      .spyOn(api, "searchTracesIn")
      .mockImplementation(
        searchLinked([
          trace(4, "2", { run_id: "eval2" }),
          trace(3, "2", { run_id: "eval2" }),
          trace(2, "2", { run_id: "gone" }),
          trace(1, "2", { run_id: "eval1" }),
        ]),
      );
    vi.spyOn(api, "getRun").mockImplementation(async (id) => {
      if (id === "gone") throw new ApiError(404, "NOT_FOUND", "no run gone");
      return run(id, `run ${id}`, {});
    });

    const found = await searchModelRuns("m1", "build");

    expect(found.runs.map((r) => r.run_id)).toEqual(["build", "eval2", "eval1"]);
    expect(found.more).toBe(false);
    expect(search.mock.calls[0][1].filter).toBe(
      "metadata.`tracemark.model_id` = 'm1' AND run_id IS NOT NULL AND run_id NOT IN ('build')",
    );
    expect(search).toHaveBeenCalledTimes(4); // eval2, gone, eval1, then none left
  });

  it("reports other errors than a deleted run", async () => {
    vi.spyOn(api, "listExperiments").mockResolvedValue({ experiments: [experiment("1")] });
    vi.spyOn(api, "searchTracesIn").mockImplementation(searchLinked([]));
    vi.spyOn(api, "getRun").mockRejectedValue(new ApiError(500, "INTERNAL", "boom"));
    await expect(searchModelRuns("m1", "build")).rejects.toMatchObject({ message: "boom" });
  });

  it("sums a run up by its assessments if it is an evaluation, else by its first metrics", () => {
    const evaluation = run("e", "eval", { "concise/pass_rate": 0.5, "concise/error_count": 0, "evaluation/rows": 2 }, {
      "tracemark.run_type": "evaluation",
    });
    expect(keyMetrics(evaluation)).toEqual({ shown: [{ name: "concise", value: "50%" }], hidden: 0 });
    const training = run("t", "train", { loss: 0.25, accuracy: 0.9, f1: 0.8, recall: 0.7, precision: 0.6 });
    expect(keyMetrics(training, 2)).toEqual({
      shown: [
        { name: "accuracy", value: "0.9" },
        { name: "f1", value: "0.8" },
      ],
      hidden: 3,
    });
  });
});

describe("the linked lists", () => {
  it("shows traces of every experiment, each linking to its trace, and loads more on demand", async () => {
    vi.spyOn(api, "listExperiments").mockResolvedValue({ experiments: [experiment("1"), experiment("2")] });
    const search = vi
      .spyOn(api, "searchTracesIn")
      .mockImplementation(async (_ids, s) =>
        page(
          Array.from({ length: s.max_results! + 1 }, (_, i) => trace(100 - i, i % 2 ? "2" : "1")).slice(0, s.max_results),
          "next",
        ),
      );
    render(
      <MemoryRouter>
        <LinkedTraces filter="x = 1" testId="linked" empty={{ title: "none" }} />
      </MemoryRouter>,
    );
    const rows = await screen.findAllByTestId("linked-trace-row");
    expect(rows).toHaveLength(25);
    expect(within(rows[1]).getByText("answer_99").getAttribute("href")).toBe(`/experiments/2/traces/${"99".padStart(32, "0")}`);
    expect(within(rows[1]).getByText("exp 2")).toBeTruthy();
    expect(within(rows[0]).getByText("Where is my parcel?")).toBeTruthy();

    fireEvent.click(screen.getByRole("button", { name: "Show more" }));
    expect(await screen.findByText("The newest 50 traces")).toBeTruthy();
    expect(search.mock.calls.map(([, s]) => s.max_results)).toEqual([25, 50]);
  });

  it("says so when no trace is linked", async () => {
    vi.spyOn(api, "listExperiments").mockResolvedValue({ experiments: [experiment("1")] });
    vi.spyOn(api, "searchTracesIn").mockResolvedValue(page([]));
    render(
      <MemoryRouter>
        <LinkedTraces filter="x = 1" testId="linked" empty={{ title: "No trace has loaded v2 yet" }} />
      </MemoryRouter>,
    );
    expect(await screen.findByText("No trace has loaded v2 yet")).toBeTruthy();
  });

  it("links an evaluation run to its run page and its results", async () => {
    vi.spyOn(api, "listExperiments").mockResolvedValue({ experiments: [experiment("2")] });
    vi.spyOn(api, "searchTracesIn").mockImplementation(searchLinked([trace(1, "2", { run_id: "e" })]));
    vi.spyOn(api, "getRun").mockImplementation(async (id) =>
      id === "e"
        ? run("e", "agent-eval", { "concise/pass_rate": 1 }, { "tracemark.run_type": "evaluation" })
        : run("b", "agent-build", {}),
    );
    render(
      <MemoryRouter>
        <ModelRuns modelId="m1" loggedBy="b" />
      </MemoryRouter>,
    );
    const rows = await screen.findAllByTestId("model-run-row");
    expect(rows.map((r) => r.dataset.runName)).toEqual(["agent-build", "agent-eval"]);
    expect(within(rows[0]).getByText("logged the model")).toBeTruthy();
    expect(within(rows[1]).getByText("agent-eval").getAttribute("href")).toBe("/experiments/2/runs/e");
    expect(within(rows[1]).getByText("Results →").getAttribute("href")).toBe("/experiments/2/evaluations/e");
    expect(rows[1].querySelector("[data-metric=concise]")?.textContent).toBe("concise 100%");
  });
});
