import { afterEach, describe, expect, it, vi } from "vitest";
import { api } from "../api";

afterEach(() => {
  vi.restoreAllMocks();
  window.tracemarkPreload = undefined;
});

const json = (body: unknown) =>
  new Response(JSON.stringify(body), { status: 200, headers: { "content-type": "application/json" } });

describe("the trace index.html starts fetching early", () => {
  it("is taken over by the first matching request, and only by that one", async () => {
    const trace = { info: { trace_id: "a".repeat(32) }, spans: [] };
    window.tracemarkPreload = { path: `/traces/${"a".repeat(32)}?payloads=false`, response: Promise.resolve(json(trace)) };
    const fetch = vi.spyOn(globalThis, "fetch").mockImplementation(async () => json({ info: {}, spans: [1] }));

    expect(await api.getTrace("a".repeat(32))).toEqual({ info: {}, spans: [1] }); // with payloads: not it
    expect(await api.getTrace("a".repeat(32), { payloads: false })).toEqual(trace);
    expect(window.tracemarkPreload).toBeUndefined();
    await api.getTrace("a".repeat(32), { payloads: false });
    expect(fetch.mock.calls.map(([url]) => url)).toEqual([
      `/api/v1/traces/${"a".repeat(32)}`,
      `/api/v1/traces/${"a".repeat(32)}?payloads=false`,
    ]);
  });

  it("reports a failed early request like any other", async () => {
    window.tracemarkPreload = { path: "/traces/x?payloads=false", response: Promise.reject(new TypeError("offline")) };
    await expect(api.getTrace("x", { payloads: false })).rejects.toMatchObject({ code: "UNREACHABLE" });
  });
});
