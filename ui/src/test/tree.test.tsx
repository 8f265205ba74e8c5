import { cleanup, fireEvent, render, screen } from "@testing-library/react";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { SpanTree } from "../components/SpanTree";
import { buildTree, navigate, searchRows, visibleRows } from "../lib/tree";
import type { Span } from "../types";

afterEach(cleanup);

beforeAll(() => {
  // happy-dom lays nothing out; give the scroll area a size so the virtualizer renders rows.
  Object.defineProperty(HTMLElement.prototype, "clientHeight", { configurable: true, get: () => 600 });
  Object.defineProperty(HTMLElement.prototype, "clientWidth", { configurable: true, get: () => 800 });
});

function span(id: string, parent: string | null, start: number, name = id, type = "CHAIN"): Span {
  return {
    trace_id: "t".repeat(32),
    span_id: id,
    parent_id: parent,
    name,
    span_type: type,
    start_time_ns: start,
    end_time_ns: start + 10,
    status_code: "OK",
    status_message: "",
    inputs: null,
    outputs: null,
    attributes: {},
    events: [],
  };
}

const spans = [
  span("b", "root", 20, "retrieve", "RETRIEVER"),
  span("root", null, 0, "agent", "AGENT"),
  span("a", "root", 10, "plan", "CHAT_MODEL"),
  span("a1", "a", 11, "lookup", "TOOL"),
];

describe("tree logic", () => {
  it("orders children by start time and computes depth", () => {
    const tree = buildTree(spans);
    const rows = visibleRows(tree, new Set());
    expect(rows.map((r) => [r.span.span_id, r.depth])).toEqual([
      ["root", 0],
      ["a", 1],
      ["a1", 2],
      ["b", 1],
    ]);
  });

  it("hides the children of collapsed spans", () => {
    const rows = visibleRows(buildTree(spans), new Set(["a"]));
    expect(rows.map((r) => r.span.span_id)).toEqual(["root", "a", "b"]);
  });

  it("keeps ancestors of search matches", () => {
    const { rows, matches } = searchRows(buildTree(spans), "lookup");
    expect(rows.map((r) => r.span.span_id)).toEqual(["root", "a", "a1"]);
    expect([...matches]).toEqual(["a1"]);
  });

  it("navigates with arrows: down, collapse with left, parent with left", () => {
    const tree = buildTree(spans);
    const rows = visibleRows(tree, new Set());
    expect(navigate(rows, "root", "ArrowDown", new Set()).focus).toBe("a");
    expect(navigate(rows, "a", "ArrowLeft", new Set())).toEqual({ focus: "a", toggle: "a" });
    expect(navigate(rows, "a1", "ArrowLeft", new Set()).focus).toBe("a");
    expect(navigate(rows, "a", "ArrowRight", new Set()).focus).toBe("a1");
    expect(navigate(rows, "a", "ArrowRight", new Set(["a"]))).toEqual({ focus: "a", toggle: "a" });
  });

  it("builds a 10,000-span tree and a 10,000-deep chain without recursion", () => {
    const wide = [span("r", null, 0), ...Array.from({ length: 9999 }, (_, i) => span(`s${i}`, "r", i + 1))];
    expect(visibleRows(buildTree(wide), new Set())).toHaveLength(10000);
    const deep = Array.from({ length: 10000 }, (_, i) => span(`d${i}`, i ? `d${i - 1}` : null, i));
    const rows = visibleRows(buildTree(deep), new Set());
    expect(rows[9999].depth).toBe(9999);
  });
});

describe("SpanTree component", () => {
  it("renders rows, collapses on the twisty and selects with Enter", () => {
    const onSelect = vi.fn();
    render(<SpanTree tree={buildTree(spans)} selectedId="root" onSelect={onSelect} />);
    expect(screen.getAllByRole("treeitem")).toHaveLength(4);
    const plan = screen.getByText("plan").closest("[role=treeitem]")!;
    expect(plan.getAttribute("aria-expanded")).toBe("true");
    fireEvent.click(plan.querySelector("[data-testid=twisty]")!);
    expect(screen.getAllByRole("treeitem")).toHaveLength(3);
    expect(screen.queryByText("lookup")).toBeNull();

    const tree = screen.getByRole("tree");
    fireEvent.keyDown(tree, { key: "ArrowDown" });
    fireEvent.keyDown(tree, { key: "Enter" });
    expect(onSelect).toHaveBeenLastCalledWith("a");
    fireEvent.keyDown(tree, { key: "ArrowRight" }); // expands "a" again
    expect(screen.getByText("lookup")).toBeTruthy();
  });

  it("keeps the keyboard focus when its own selection comes back after a later key", () => {
    const tree = buildTree(spans);
    const onSelect = vi.fn();
    const { rerender } = render(<SpanTree tree={tree} selectedId="root" onSelect={onSelect} />);
    const box = screen.getByRole("tree");
    fireEvent.keyDown(box, { key: "ArrowDown" });
    fireEvent.keyDown(box, { key: "Enter" });
    expect(onSelect).toHaveBeenLastCalledWith("a");
    // The user moves on before the page passes the selection back down (via the URL).
    fireEvent.keyDown(box, { key: "End" });
    rerender(<SpanTree tree={tree} selectedId="a" onSelect={onSelect} />);
    const focused = document.querySelector(".tree-row.focused");
    expect(focused?.getAttribute("data-span-id")).toBe("b");
    // A selection made elsewhere (a deep link) still moves the focus.
    rerender(<SpanTree tree={tree} selectedId="a1" onSelect={onSelect} />);
    expect(document.querySelector(".tree-row.focused")?.getAttribute("data-span-id")).toBe("a1");
  });

  it("only puts the rows in view into the DOM for a 10,000-span trace", () => {
    const wide = [span("r", null, 0), ...Array.from({ length: 9999 }, (_, i) => span(`s${i}`, "r", i + 1))];
    render(<SpanTree tree={buildTree(wide)} selectedId="r" onSelect={() => {}} />);
    const rendered = screen.getAllByRole("treeitem").length;
    expect(rendered).toBeGreaterThan(5);
    expect(rendered).toBeLessThan(200);
  });

  it("filters rows by the search query", () => {
    render(<SpanTree tree={buildTree(spans)} selectedId={null} onSelect={() => {}} query="retr" />);
    expect(screen.getAllByRole("treeitem").map((r) => r.getAttribute("data-span-id"))).toEqual(["root", "b"]);
  });
});
