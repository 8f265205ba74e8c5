// The columns of a trace table: the Traces tab offers them all, other pages pick a few.
import type { ReactNode } from "react";
import { formatCost, formatDuration, formatNumber, formatTime, formatValue, previewText } from "../lib/format";
import type { TraceInfo } from "../types";

export interface TraceColumn {
  id: string;
  label: string;
  sort?: string;
  num?: boolean;
  render: (t: TraceInfo) => ReactNode;
}

export const TRACE_COLUMNS: TraceColumn[] = [
  { id: "time", label: "Time", sort: "timestamp_ms", render: (t) => formatTime(t.timestamp_ms) },
  { id: "name", label: "Name", sort: "name", render: (t) => t.name },
  {
    id: "request",
    label: "Request",
    render: (t) => <span title={t.request_preview ?? ""}>{previewText(t.request_preview, 90)}</span>,
  },
  {
    id: "response",
    label: "Response",
    render: (t) => <span title={t.response_preview ?? ""}>{previewText(t.response_preview, 90)}</span>,
  },
  { id: "status", label: "Status", sort: "status", render: (t) => <span className={`badge ${t.status}`}>{t.status}</span> },
  { id: "latency", label: "Latency", sort: "execution_time_ms", num: true, render: (t) => formatDuration(t.execution_time_ms) },
  { id: "tokens", label: "Tokens", sort: "total_tokens", num: true, render: (t) => formatNumber(t.total_tokens) },
  { id: "cost", label: "Cost", sort: "cost", num: true, render: (t) => formatCost(t.cost) },
  { id: "spans", label: "Spans", sort: "span_count", num: true, render: (t) => formatNumber(t.span_count) },
  {
    id: "tags",
    label: "Tags",
    render: (t) =>
      Object.entries(t.tags)
        .filter(([k]) => !k.startsWith("tracemark."))
        .map(([k, v]) => (
          <span className="tag" key={k}>
            {k}={v}
          </span>
        )),
  },
  { id: "session", label: "Session", render: (t) => t.metadata.session_id ?? "" },
  { id: "user", label: "User", render: (t) => t.metadata.user_id ?? "" },
  {
    id: "feedback",
    label: "Feedback",
    render: (t) =>
      t.assessments
        .filter((a) => a.valid && a.kind === "feedback")
        .map((a) => (
          <span className="tag" key={a.assessment_id}>
            {a.name}: {formatValue(a.value)}
          </span>
        )),
  },
  { id: "trace_id", label: "Trace id", render: (t) => <span className="mono">{t.trace_id.slice(0, 12)}</span> },
];
