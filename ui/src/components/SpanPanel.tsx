import { useMemo, useState } from "react";
import { extractChat, extractDocuments } from "../lib/chat";
import { formatBytes, formatCost, formatDuration, formatNumber, formatValue } from "../lib/format";
import type { SpanPayload } from "../lib/payloads";
import type { Span } from "../types";
import { ChatView, DocumentList } from "./ChatView";
import { JsonView } from "./JsonView";
import { ErrorState, Loading } from "./States";
import { spanStyle } from "./spanTypes";

type Tab = "chat" | "documents" | "io" | "attributes" | "events";

const num = (v: unknown): number | null => (typeof v === "number" ? v : null);

interface Props {
  /** The span as the trace has it: perhaps without its inputs and outputs. */
  span: Span;
  /** The whole span, or why it is not here yet; by default `span` is whole. */
  payload?: SpanPayload;
}

/**
 * One span: its header, attributes and events at once, and its inputs and outputs (as a
 * chat, retrieved documents or JSON) as soon as `payload` has them.
 */
export function SpanPanel({ span, payload }: Props) {
  const whole = payload ? payload.span : span;
  const chat = useMemo(() => (whole ? extractChat(whole.inputs, whole.outputs) : null), [whole]);
  const documents = useMemo(() => (whole ? extractDocuments(whole.outputs) : null), [whole]);
  const initial: Tab = chat ? "chat" : documents ? "documents" : "io";
  // The tab the user picked for this span; otherwise the one that suits its payload.
  const [chosen, setTab] = useState<{ id: string; tab: Tab } | null>(null);
  const tab = chosen?.id === span.span_id ? chosen.tab : initial;
  const attrs = span.attributes ?? {};
  const inputTokens = num(attrs["gen_ai.usage.input_tokens"]);
  const outputTokens = num(attrs["gen_ai.usage.output_tokens"]);
  const cost = num(attrs["tracemark.cost"]) ?? num(attrs["gen_ai.usage.cost"]);
  const model = attrs["gen_ai.request.model"] ?? attrs["gen_ai.response.model"];
  const exceptions = span.events.filter((e) => e.name === "exception");
  const style = spanStyle(span.span_type);
  const duration = span.end_time_ns === null ? null : (span.end_time_ns - span.start_time_ns) / 1e6;

  const tabs: [Tab, string][] = [];
  if (chat) tabs.push(["chat", "Chat"]);
  if (documents) tabs.push(["documents", `Documents (${documents.length})`]);
  tabs.push(["io", "Inputs / Outputs"]);
  tabs.push(["attributes", `Attributes (${Object.keys(attrs).length})`]);
  tabs.push(["events", `Events (${span.events.length})`]);

  return (
    <div className="panel" data-testid="span-panel">
      <div className="row">
        <span className="type-icon" style={{ background: style.color }}>
          {style.icon}
        </span>
        <b style={{ fontSize: 15 }}>{span.name}</b>
        <span className="badge">{span.span_type}</span>
        <span className={`badge ${span.status_code}`}>{span.status_code}</span>
      </div>
      <div className="kv" style={{ marginTop: 8 }}>
        <div>Latency</div>
        <div>{formatDuration(duration)}</div>
        {model !== undefined && (
          <>
            <div>Model</div>
            <div>{formatValue(model)}</div>
          </>
        )}
        {(inputTokens !== null || outputTokens !== null) && (
          <>
            <div>Tokens</div>
            <div>
              {formatNumber(inputTokens)} in · {formatNumber(outputTokens)} out
            </div>
          </>
        )}
        {cost !== null && (
          <>
            <div>Cost</div>
            <div>{formatCost(cost)}</div>
          </>
        )}
        <div>Span id</div>
        <div className="mono">{span.span_id}</div>
        {span.status_message && (
          <>
            <div>Status</div>
            <div>{span.status_message}</div>
          </>
        )}
      </div>
      {exceptions.map((e, i) => (
        <div key={i} style={{ marginTop: 10 }}>
          <h3>Exception</h3>
          <div className="stack" data-testid="exception">
            <b>{String(e.attributes["exception.type"] ?? "Error")}</b>: {String(e.attributes["exception.message"] ?? "")}
            {e.attributes["exception.stacktrace"] ? "\n\n" + String(e.attributes["exception.stacktrace"]) : ""}
          </div>
        </div>
      ))}
      {whole ? (
        <>
          <div className="subtabs" role="tablist">
            {tabs.map(([id, label]) => (
              <button
                key={id}
                role="tab"
                aria-selected={tab === id}
                className={tab === id ? "on" : ""}
                onClick={() => setTab({ id: span.span_id, tab: id })}
              >
                {label}
              </button>
            ))}
          </div>
          {tab === "chat" && chat && <ChatView messages={chat} traceId={span.trace_id} />}
          {tab === "documents" && documents && <DocumentList documents={documents} />}
          {tab === "io" && (
            <>
              <h3>Inputs</h3>
              <JsonView value={whole.inputs} />
              <h3>Outputs</h3>
              <JsonView value={whole.outputs} />
            </>
          )}
          {tab === "attributes" && <JsonView value={attrs} />}
          {tab === "events" &&
            (span.events.length ? (
              span.events.map((e, i) => (
                <div key={i} style={{ marginBottom: 8 }}>
                  <div className="row">
                    <b>{e.name}</b>
                    <span className="muted small">+{formatDuration((e.timestamp_ns - span.start_time_ns) / 1e6)}</span>
                  </div>
                  <JsonView value={e.attributes} />
                </div>
              ))
            ) : (
              <div className="muted">No events.</div>
            ))}
        </>
      ) : payload?.error ? (
        <ErrorState error={payload.error} retry={payload.retry} />
      ) : (
        <div data-testid="payload-loading">
          <Loading
            what={`Loading inputs and outputs (${formatBytes((span.inputs_size ?? 0) + (span.outputs_size ?? 0))})`}
          />
        </div>
      )}
    </div>
  );
}
