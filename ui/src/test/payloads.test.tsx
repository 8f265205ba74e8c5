import { act, cleanup, fireEvent, render, screen } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { api } from "../api";
import { SpanPanel } from "../components/SpanPanel";
import { hasPayload, useSpanPayload } from "../lib/payloads";
import type { Span } from "../types";

afterEach(() => {
  cleanup();
  vi.restoreAllMocks();
});

const TRACE = "t".repeat(32);

function span(id: string, overrides: Partial<Span> = {}): Span {
  return {
    trace_id: TRACE,
    span_id: id,
    parent_id: null,
    name: `span ${id}`,
    span_type: "RETRIEVER",
    start_time_ns: 0,
    end_time_ns: 1_000_000,
    status_code: "OK",
    status_message: "",
    inputs: null,
    outputs: null,
    attributes: { "gen_ai.request.model": "m-1" },
    events: [],
    ...overrides,
  };
}

const light = span("a".repeat(16), { inputs_size: 20, outputs_size: 2048 });
const whole = span("a".repeat(16), {
  inputs: { query: "refunds" },
  outputs: [{ page_content: "Refunds within 30 days", metadata: { source: "faq.md" } }],
});

function Panel({ of }: { of: Span }) {
  const payload = useSpanPayload(TRACE, of);
  return <SpanPanel span={of} payload={payload} />;
}

function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe("span payloads on demand", () => {
  it("tells spans with a payload left out from those without", () => {
    expect(hasPayload(light)).toBe(true);
    expect(hasPayload(span("b".repeat(16), { inputs_size: null, outputs_size: 5 }))).toBe(true);
    expect(hasPayload(span("c".repeat(16), { inputs_size: null, outputs_size: null }))).toBe(false);
    expect(hasPayload(whole)).toBe(false);
  });

  it("shows the header at once, loads the payload, then picks the tab for it", async () => {
    const pending = deferred<Span>();
    const getSpan = vi.spyOn(api, "getSpan").mockReturnValue(pending.promise);
    render(<Panel of={light} />);
    expect(getSpan).toHaveBeenCalledWith(TRACE, light.span_id);
    expect(screen.getByText("m-1")).toBeTruthy();
    expect(screen.getByTestId("payload-loading").textContent).toContain("2.0 KB");
    expect(screen.queryByRole("tab")).toBeNull();

    await act(async () => pending.resolve(whole));
    expect(screen.queryByTestId("payload-loading")).toBeNull();
    expect(screen.getByRole("tab", { selected: true }).textContent).toBe("Documents (1)");
    expect(screen.getByText("Refunds within 30 days")).toBeTruthy();
  });

  it("fetches a span once and reuses it when the span is opened again", async () => {
    const other = span("b".repeat(16), { inputs_size: 5, outputs_size: null });
    const getSpan = vi
      .spyOn(api, "getSpan")
      .mockImplementation(async (_, id) => (id === light.span_id ? whole : { ...other, inputs: "hello" }));
    const view = render(<Panel of={light} />);
    await act(async () => {});
    view.rerender(<Panel of={other} />);
    await act(async () => {});
    expect(screen.getByText(/hello/)).toBeTruthy();
    view.rerender(<Panel of={light} />);
    expect(screen.getByText("Refunds within 30 days")).toBeTruthy();
    expect(getSpan).toHaveBeenCalledTimes(2);
  });

  it("does not fetch a span that has nothing left out", () => {
    const getSpan = vi.spyOn(api, "getSpan");
    render(<Panel of={span("c".repeat(16), { attributes: {} })} />);
    expect(getSpan).not.toHaveBeenCalled();
    expect(screen.getByRole("tab", { selected: true }).textContent).toBe("Inputs / Outputs");
  });

  it("reports a failed fetch and retries it", async () => {
    const getSpan = vi
      .spyOn(api, "getSpan")
      .mockRejectedValueOnce(new Error("server is down"))
      .mockResolvedValueOnce(whole);
    render(<Panel of={light} />);
    await act(async () => {});
    expect(screen.getByRole("alert").textContent).toContain("server is down");
    await act(async () => fireEvent.click(screen.getByRole("button", { name: "Retry" })));
    expect(getSpan).toHaveBeenCalledTimes(2);
    expect(screen.getByText("Refunds within 30 days")).toBeTruthy();
  });
});
