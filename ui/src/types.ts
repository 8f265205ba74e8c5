// The JSON shapes of the REST API (see src/tracemark/entities and server/routes).

export interface Experiment {
  experiment_id: string;
  name: string;
  artifact_location: string;
  lifecycle_stage: "active" | "deleted";
  tags: Record<string, string>;
  creation_time: number;
  last_update_time: number;
}

export interface Run {
  run_id: string;
  experiment_id: string;
  run_name: string;
  status: string;
  start_time: number;
  end_time: number | null;
  artifact_uri: string;
  lifecycle_stage: string;
  parent_run_id: string | null;
  params: Record<string, string>;
  metrics: Record<string, number | string>;
  tags: Record<string, string>;
}

export interface MetricPoint {
  key: string;
  value: number | string;
  timestamp: number;
  step: number;
}

export interface FileInfo {
  path: string;
  is_dir: boolean;
  file_size: number | null;
}

export interface AssessmentSource {
  source_type: "HUMAN" | "LLM_JUDGE" | "CODE";
  source_id: string;
}

export interface Assessment {
  assessment_id: string;
  trace_id: string;
  name: string;
  kind: "feedback" | "expectation";
  value: unknown;
  source: AssessmentSource;
  created_time_ms: number;
  last_updated_time_ms: number;
  span_id: string | null;
  rationale: string | null;
  error: string | null;
  metadata: Record<string, string>;
  run_id: string | null;
  overrides: string | null;
  valid: boolean;
}

export interface TraceInfo {
  trace_id: string;
  experiment_id: string;
  timestamp_ms: number;
  execution_time_ms: number | null;
  status: "OK" | "ERROR" | "IN_PROGRESS";
  name: string;
  run_id: string | null;
  request_preview: string | null;
  response_preview: string | null;
  tags: Record<string, string>;
  metadata: Record<string, string>;
  input_tokens: number | null;
  output_tokens: number | null;
  total_tokens: number | null;
  cost: number | null;
  span_count: number;
  assessments: Assessment[];
}

export interface SpanEvent {
  name: string;
  timestamp_ns: number;
  attributes: Record<string, unknown>;
}

export interface Span {
  trace_id: string;
  span_id: string;
  parent_id: string | null;
  name: string;
  span_type: string;
  start_time_ns: number;
  end_time_ns: number | null;
  status_code: "UNSET" | "OK" | "ERROR";
  status_message: string;
  inputs: unknown;
  outputs: unknown;
  // Only on spans of a trace fetched without payloads: the size in bytes of the inputs and
  // outputs left out (null: the span has none). `api.getSpan` fetches them.
  inputs_size?: number | null;
  outputs_size?: number | null;
  attributes: Record<string, unknown>;
  events: SpanEvent[];
}

export interface Trace {
  info: TraceInfo;
  spans: Span[];
}

export interface SessionSummary {
  session_id: string;
  trace_count: number;
  first_timestamp_ms: number;
  last_timestamp_ms: number;
  error_count: number;
  total_tokens: number | null;
  cost: number | null;
  user_ids: string[];
  first_request_preview: string | null;
}

export interface OverviewStats {
  count: number;
  errors: number;
  error_rate: number | null;
  latency_p50_ms: number | null;
  latency_p95_ms: number | null;
  input_tokens: number | null;
  output_tokens: number | null;
  total_tokens: number | null;
  cost: number | null;
}

export interface Overview {
  bucket_ms: number | null;
  buckets: (OverviewStats & { start_ms: number })[];
  totals: OverviewStats;
}

// The prompt registry (src/tracemark/entities/prompt.py).
export type PromptTemplate = string | Record<string, unknown>[];

export interface Prompt {
  name: string;
  latest_version: number;
  description: string | null;
  tags: Record<string, string>;
  aliases: Record<string, number>;
  creation_time: number;
  last_updated_time: number;
}

export interface PromptVersion {
  name: string;
  version: number;
  template: PromptTemplate;
  commit_message: string | null;
  tags: Record<string, string>;
  aliases: string[];
  creation_time: number;
}

// The model registry (src/tracemark/entities/model.py).
export interface RegisteredModel {
  name: string;
  latest_version: number;
  description: string | null;
  tags: Record<string, string>;
  aliases: Record<string, number>;
  creation_time: number;
  last_updated_time: number;
}

export interface ModelVersion {
  name: string;
  version: number;
  source: string;
  run_id: string | null;
  model_id: string | null;
  description: string | null;
  tags: Record<string, string>;
  aliases: string[];
  creation_time: number;
  last_updated_time: number;
}

export interface LoggedModel {
  model_id: string;
  name: string;
  experiment_id: string;
  run_id: string;
  artifact_path: string;
  flavor: string;
  creation_time: number;
}
