// What a registry version is linked to, looked up in every experiment: the traces that loaded
// a prompt version, and the traces and runs of a model version.
//
// A trace records the prompt versions it loaded in its metadata `tracemark.prompts`
// ("qa@3,style@1": each version once, in the order they were first loaded) and the model it
// ran as in `tracemark.model_id` (src/tracemark/registry/prompts.py and active_model.py).
import { ApiError, MAX_SEARCH_EXPERIMENTS, api } from "../api";
import type { Run, TraceInfo } from "../types";
import { quoteString } from "./filter";

export const PROMPTS_KEY = "tracemark.prompts";
export const MODEL_ID_KEY = "tracemark.model_id";
/** The runs of a model listed at most (each one found costs a search). */
export const MAX_MODEL_RUNS = 50;
// Every experiment the server lists in one response.
const MAX_EXPERIMENTS = 50_000;

/** The prompt versions a trace loaded, as `name@version` entries. */
export function promptEntries(trace: TraceInfo): string[] {
  return (trace.metadata[PROMPTS_KEY] ?? "").split(",").filter(Boolean);
}

/** Whether a trace loaded this prompt version (not merely one whose entry contains it). */
export function usedPromptVersion(trace: TraceInfo, name: string, version: number): boolean {
  return promptEntries(trace).includes(`${name}@${version}`);
}

/**
 * The trace filter finding the traces that loaded a prompt version: the entry alone, first,
 * last or in the middle of the list, so `qa@3` matches neither `qa@30` nor `myqa@3`. A `_` of
 * the name matches any character in LIKE, so `usedPromptVersion` confirms each result.
 */
export function promptVersionFilter(name: string, version: number): string {
  const key = "metadata.`" + PROMPTS_KEY + "`";
  const entry = `${name}@${version}`;
  return [
    `${key} = ${quoteString(entry)}`,
    `${key} LIKE ${quoteString(entry + ",%")}`,
    `${key} LIKE ${quoteString("%," + entry)}`,
    `${key} LIKE ${quoteString("%," + entry + ",%")}`,
  ].join(" OR ");
}

/** The trace filter finding the traces linked to a logged model. */
export function modelTraceFilter(modelId: string): string {
  return "metadata.`" + MODEL_ID_KEY + "` = " + quoteString(modelId);
}

/** Split `items` into lists of at most `size`. */
export function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

interface Scope {
  /** The active experiments' ids, as many per list as one search may name. */
  groups: string[][];
  /** Experiment names by id. */
  names: Map<string, string>;
}

async function everyExperiment(): Promise<Scope> {
  const { experiments } = await api.listExperiments("active_only", undefined, MAX_EXPERIMENTS);
  return {
    groups: chunks(
      experiments.map((e) => e.experiment_id),
      MAX_SEARCH_EXPERIMENTS,
    ),
    names: new Map(experiments.map((e) => [e.experiment_id, e.name])),
  };
}

const newestFirst = (a: TraceInfo, b: TraceInfo) =>
  b.timestamp_ms - a.timestamp_ms || (a.trace_id < b.trace_id ? 1 : a.trace_id > b.trace_id ? -1 : 0);

export interface FoundTraces {
  /** Newest first. */
  traces: TraceInfo[];
  /** Whether older traces match too. */
  more: boolean;
  /** Experiment names by id. */
  experiments: Map<string, string>;
}

/**
 * The newest `limit` traces matching `filter` in every active experiment, newest first;
 * `keep` drops the ones the filter cannot tell apart.
 */
export async function searchEveryExperiment(
  filter: string,
  limit: number,
  keep: (trace: TraceInfo) => boolean = () => true,
): Promise<FoundTraces> {
  const scope = await everyExperiment();
  const pages = await Promise.all(
    scope.groups.map((ids) =>
      api.searchTracesIn(ids, { filter, order_by: ["timestamp_ms DESC"], max_results: limit }),
    ),
  );
  const found = pages
    .flatMap((p) => p.traces)
    .filter(keep)
    .sort(newestFirst);
  return {
    traces: found.slice(0, limit),
    more: found.length > limit || pages.some((p) => !!p.next_page_token),
    experiments: scope.names,
  };
}

export interface ModelRuns {
  runs: Run[];
  /** Whether more runs hold linked traces than MAX_MODEL_RUNS. */
  more: boolean;
  experiments: Map<string, string>;
}

/**
 * The runs of a logged model, as `client.search_model_runs` finds them: the run that logged
 * it, then every run holding traces linked to it (the evaluations run while it was active).
 */
export async function searchModelRuns(modelId: string, loggedBy: string | null): Promise<ModelRuns> {
  const scope = await everyExperiment();
  const found: string[] = loggedBy ? [loggedBy] : [];
  const condition = `${modelTraceFilter(modelId)} AND run_id IS NOT NULL`;
  let more = false;
  for (const ids of scope.groups) {
    // One indexed lookup per run, however many traces each evaluation made.
    while (!more) {
      const seen = found.map(quoteString).join(", ");
      const page = await api.searchTracesIn(ids, {
        filter: seen ? `${condition} AND run_id NOT IN (${seen})` : condition,
        max_results: 1,
      });
      const runId = page.traces[0]?.run_id;
      if (!runId) break;
      if (found.length >= MAX_MODEL_RUNS) {
        more = true;
        break;
      }
      found.push(runId);
    }
  }
  const runs = await Promise.all(
    found.map((id) =>
      api.getRun(id).catch((error: unknown) => {
        if (error instanceof ApiError && error.status === 404) return null; // deleted since
        throw error;
      }),
    ),
  );
  return { runs: runs.filter((r): r is Run => r !== null), more, experiments: scope.names };
}
