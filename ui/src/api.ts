// A thin client of the REST API: every error becomes an ApiError carrying the server's message.
import type {
  Assessment,
  Experiment,
  FileInfo,
  LoggedModel,
  MetricPoint,
  ModelVersion,
  Overview,
  Prompt,
  PromptVersion,
  RegisteredModel,
  Run,
  SessionSummary,
  Span,
  Trace,
  TraceInfo,
} from "./types";

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly field?: string;
  readonly position?: number;

  constructor(status: number, code: string, message: string, field?: string, position?: number) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
    this.position = position;
  }
}

const BASE = "/api/v1";

declare global {
  interface Window {
    /** A GET that index.html started before the app loaded (the trace of a trace page). */
    tracemarkPreload?: { path: string; response: Promise<Response> };
  }
}

/** The response of the GET index.html already sent for `path`, once; else undefined. */
function preloaded(method: string, path: string): Promise<Response> | undefined {
  const early = window.tracemarkPreload;
  if (method !== "GET" || early?.path !== path) return undefined;
  window.tracemarkPreload = undefined;
  return early.response;
}

async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  let response: Response;
  try {
    response = await (preloaded(method, path) ??
      fetch(BASE + path, {
        method,
        headers: body === undefined ? undefined : { "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      }));
  } catch {
    throw new ApiError(0, "UNREACHABLE", "The tracemark server cannot be reached. Is it running?");
  }
  const text = await response.text();
  let data: unknown;
  try {
    data = text ? JSON.parse(text) : {};
  } catch {
    // not JSON (a proxy's HTML error page, say): report the HTTP status instead
  }
  if (!response.ok) {
    const err = (data ?? {}) as Record<string, unknown>;
    throw new ApiError(
      response.status,
      String(err.error_code ?? "HTTP_" + response.status),
      String(err.message ?? `${response.status} ${response.statusText}`),
      err.field as string | undefined,
      typeof err.position === "number" ? err.position : undefined,
    );
  }
  return data as T;
}

const q = (params: Record<string, string | number | undefined | null>): string => {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(key, String(value));
  }
  const text = search.toString();
  return text ? "?" + text : "";
};

const enc = encodeURIComponent;

export interface TraceSearch {
  filter?: string;
  order_by?: string[];
  max_results?: number;
  page_token?: string | null;
  run_id?: string;
}

const searchTraces = (experimentIds: string[], search: TraceSearch) =>
  request<{ traces: TraceInfo[]; next_page_token: string | null }>("POST", "/traces/search", {
    experiment_ids: experimentIds,
    filter: search.filter || null,
    order_by: search.order_by ?? [],
    max_results: search.max_results ?? 50,
    page_token: search.page_token ?? null,
    run_id: search.run_id ?? null,
  });

/** How many experiments one trace search may name (the server's limit). */
export const MAX_SEARCH_EXPERIMENTS = 1000;

export const api = {
  listExperiments: (viewType: "active_only" | "deleted_only" | "all", filter?: string, maxResults?: number) =>
    request<{ experiments: Experiment[] }>(
      "GET",
      "/experiments" + q({ view_type: viewType, filter, max_results: maxResults }),
    ),
  getExperiment: (id: string) => request<Experiment>("GET", `/experiments/${enc(id)}`),
  createExperiment: (name: string) =>
    request<{ experiment_id: string }>("POST", "/experiments", { name }),
  renameExperiment: (id: string, name: string) =>
    request<object>("PATCH", `/experiments/${enc(id)}`, { name }),
  deleteExperiment: (id: string) => request<object>("DELETE", `/experiments/${enc(id)}`),
  restoreExperiment: (id: string) => request<object>("POST", `/experiments/${enc(id)}/restore`),

  searchRuns: (experimentId: string, filter?: string, orderBy?: string[], pageToken?: string) =>
    request<{ runs: Run[]; next_page_token: string | null }>("POST", "/runs/search", {
      experiment_ids: [experimentId],
      filter: filter || null,
      order_by: orderBy ?? [],
      max_results: 200,
      page_token: pageToken ?? null,
    }),
  getRun: (runId: string) => request<Run>("GET", `/runs/${enc(runId)}`),
  metricHistory: (runId: string, key: string) =>
    request<{ metrics: MetricPoint[] }>(
      "GET",
      `/runs/${enc(runId)}/metric-history` + q({ key }),
    ),
  listArtifacts: (runId: string, path = "") =>
    request<{ files: FileInfo[] }>("GET", `/runs/${enc(runId)}/artifacts` + q({ path })),
  artifactUrl: (runId: string, path: string) =>
    `${BASE}/runs/${enc(runId)}/artifacts/${path.split("/").map(enc).join("/")}`,
  /** A JSON artifact of a run (a `log_table` table, say), decoded. */
  readJsonArtifact: (runId: string, path: string) =>
    request<unknown>("GET", `/runs/${enc(runId)}/artifacts/${path.split("/").map(enc).join("/")}`),

  searchTraces: (experimentId: string, search: TraceSearch) => searchTraces([experimentId], search),
  /** Traces of several experiments at once (at most MAX_SEARCH_EXPERIMENTS of them). */
  searchTracesIn: (experimentIds: string[], search: TraceSearch) => searchTraces(experimentIds, search),
  /** A trace; with `payloads: false` its spans come without inputs and outputs (see getSpan). */
  getTrace: (traceId: string, { payloads = true }: { payloads?: boolean } = {}) =>
    request<Trace>("GET", `/traces/${enc(traceId)}` + q({ payloads: payloads ? undefined : "false" })),
  /** Where the bytes of an attachment of a trace (an image a span refers to) are served. */
  attachmentUrl: (traceId: string, sha256: string) =>
    `${BASE}/traces/${enc(traceId)}/attachments/${enc(sha256)}`,
  /** One span with its inputs and outputs. */
  getSpan: (traceId: string, spanId: string) =>
    request<Span>("GET", `/traces/${enc(traceId)}/spans/${enc(spanId)}`),
  createAssessment: (traceId: string, body: Record<string, unknown>) =>
    request<Assessment>("POST", `/traces/${enc(traceId)}/assessments`, body),
  deleteAssessment: (traceId: string, assessmentId: string) =>
    request<object>("DELETE", `/traces/${enc(traceId)}/assessments/${enc(assessmentId)}`),

  listSessions: (experimentId: string, filter?: string, pageToken?: string | null) =>
    request<{ sessions: SessionSummary[]; next_page_token: string | null }>(
      "GET",
      `/experiments/${enc(experimentId)}/sessions` +
        q({ filter, page_token: pageToken, max_results: 50 }),
    ),
  overview: (experimentId: string, filter?: string) =>
    request<Overview>("GET", `/experiments/${enc(experimentId)}/overview` + q({ filter })),

  searchPrompts: (filter?: string, pageToken?: string | null) =>
    request<{ prompts: Prompt[]; next_page_token: string | null }>(
      "GET",
      "/prompts" + q({ filter, page_token: pageToken, max_results: 100 }),
    ),
  getPrompt: (name: string) => request<Prompt>("GET", `/prompts/${enc(name)}`),
  /** A prompt's versions, newest first. */
  listPromptVersions: (name: string) =>
    request<{ versions: PromptVersion[]; next_page_token: string | null }>(
      "GET",
      `/prompts/${enc(name)}/versions` + q({ max_results: 1000 }),
    ),

  searchRegisteredModels: (filter?: string, pageToken?: string | null) =>
    request<{ registered_models: RegisteredModel[]; next_page_token: string | null }>(
      "GET",
      "/registered-models" + q({ filter, page_token: pageToken, max_results: 100 }),
    ),
  getRegisteredModel: (name: string) => request<RegisteredModel>("GET", `/registered-models/${enc(name)}`),
  searchModelVersions: (filter: string) =>
    request<{ model_versions: ModelVersion[]; next_page_token: string | null }>(
      "GET",
      "/model-versions" + q({ filter, max_results: 1000 }),
    ),
  getLoggedModel: (modelId: string) => request<LoggedModel>("GET", `/logged-models/${enc(modelId)}`),
};

export const assessmentNames = (experimentId: string) =>
  request<{ feedback: string[]; expectation: string[] }>(
    "GET",
    `/experiments/${enc(experimentId)}/assessment-names`,
  );
