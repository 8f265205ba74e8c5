// Span payloads on demand: a trace opens without its spans' inputs and outputs, and a span's
// arrive when the span is opened, once per span (kept for the life of the page).
import { useCallback, useEffect, useRef, useState } from "react";
import { api } from "../api";
import type { Span } from "../types";

/** Whether the server left inputs or outputs out of this span. */
export function hasPayload(span: Span): boolean {
  return (span.inputs_size ?? null) !== null || (span.outputs_size ?? null) !== null;
}

/** What a span panel shows: the whole span once loaded, else an error to retry, else loading. */
export interface SpanPayload {
  span?: Span;
  error?: Error;
  retry?: () => void;
}

/** The whole `span` (of trace `traceId`), fetched the first time it is asked for. */
export function useSpanPayload(traceId: string, span: Span | null): SpanPayload {
  const [loaded, setLoaded] = useState<ReadonlyMap<string, Span>>(() => new Map());
  const [failed, setFailed] = useState<{ key: string; error: Error } | null>(null);
  // Requests in flight, so reopening a span before its payload arrived asks only once.
  const pending = useRef(new Map<string, Promise<Span>>());
  const spanId = span?.span_id ?? null;
  const needed = span !== null && hasPayload(span);
  const key = `${traceId}/${spanId}`;
  const whole = loaded.get(key);
  const error = failed?.key === key ? failed.error : undefined;

  useEffect(() => {
    if (!needed || spanId === null || whole || error) return;
    let live = true;
    let request = pending.current.get(key);
    if (!request) {
      const requests = pending.current;
      request = api.getSpan(traceId, spanId);
      requests.set(key, request);
      const done = () => requests.delete(key);
      request.then(done, done);
    }
    request.then(
      // Kept even if the user moved on: opening the span again is then instant.
      (full) => setLoaded((prev) => new Map(prev).set(key, full)),
      (err: Error) => {
        if (live) setFailed({ key, error: err });
      },
    );
    return () => {
      live = false;
    };
  }, [traceId, spanId, key, needed, whole, error]);

  // Clearing the error runs the effect again.
  const retry = useCallback(() => setFailed(null), []);

  if (span === null) return {};
  if (!needed) return { span };
  if (whole) return { span: whole };
  if (error) return { error, retry };
  return {};
}
