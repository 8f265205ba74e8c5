// The span tree: built once per trace in O(n), flattened to visible rows on every change.
import type { Span } from "../types";

export interface TreeNode {
  span: Span;
  depth: number;
  parent: TreeNode | null;
  children: TreeNode[];
}

export interface SpanTree {
  roots: TreeNode[];
  byId: Map<string, TreeNode>;
  startNs: number;
  endNs: number;
}

export function buildTree(spans: Span[]): SpanTree {
  const byId = new Map<string, TreeNode>();
  for (const span of spans) {
    byId.set(span.span_id, { span, depth: 0, parent: null, children: [] });
  }
  const roots: TreeNode[] = [];
  let startNs = Infinity;
  let endNs = -Infinity;
  for (const node of byId.values()) {
    const { span } = node;
    startNs = Math.min(startNs, span.start_time_ns);
    endNs = Math.max(endNs, span.end_time_ns ?? span.start_time_ns);
    const parent = span.parent_id ? byId.get(span.parent_id) : undefined;
    if (parent && parent !== node) {
      node.parent = parent;
      parent.children.push(node);
    } else {
      roots.push(node);
    }
  }
  const byStart = (a: TreeNode, b: TreeNode) => a.span.start_time_ns - b.span.start_time_ns;
  roots.sort(byStart);
  // Depth-first with an explicit stack: a 10,000-deep chain must not overflow the call stack.
  const stack = [...roots];
  while (stack.length) {
    const node = stack.pop()!;
    node.children.sort(byStart);
    for (const child of node.children) {
      child.depth = node.depth + 1;
      stack.push(child);
    }
  }
  if (!Number.isFinite(startNs)) {
    startNs = 0;
    endNs = 0;
  }
  return { roots, byId, startNs, endNs };
}

/** The nodes to show, in display order: children of collapsed nodes are hidden. */
export function visibleRows(tree: SpanTree, collapsed: ReadonlySet<string>): TreeNode[] {
  const rows: TreeNode[] = [];
  const stack = [...tree.roots].reverse();
  while (stack.length) {
    const node = stack.pop()!;
    rows.push(node);
    if (!collapsed.has(node.span.span_id)) {
      for (let i = node.children.length - 1; i >= 0; i--) stack.push(node.children[i]);
    }
  }
  return rows;
}

export function spanMatches(span: Span, query: string): boolean {
  const q = query.toLowerCase();
  return (
    span.name.toLowerCase().includes(q) ||
    span.span_type.toLowerCase().includes(q) ||
    span.span_id.startsWith(q) ||
    (span.status_code === "ERROR" && "error".startsWith(q))
  );
}

/** Rows for a search: every matching span with its ancestors, so matches keep their place. */
export function searchRows(tree: SpanTree, query: string): { rows: TreeNode[]; matches: Set<string> } {
  const matches = new Set<string>();
  const keep = new Set<string>();
  for (const node of tree.byId.values()) {
    if (spanMatches(node.span, query)) {
      matches.add(node.span.span_id);
      for (let n: TreeNode | null = node; n && !keep.has(n.span.span_id); n = n.parent) {
        keep.add(n.span.span_id);
      }
    }
  }
  const rows = visibleRows(tree, new Set()).filter((n) => keep.has(n.span.span_id));
  return { rows, matches };
}

/** Ids of the ancestors of a span, so revealing it means un-collapsing these. */
export function ancestorIds(tree: SpanTree, spanId: string): string[] {
  const ids: string[] = [];
  for (let n = tree.byId.get(spanId)?.parent ?? null; n; n = n.parent) ids.push(n.span.span_id);
  return ids;
}

export type TreeKey = "ArrowUp" | "ArrowDown" | "ArrowLeft" | "ArrowRight" | "Home" | "End";

export interface TreeMove {
  focus: string | null;
  toggle?: string; // a span whose collapsed state flips
}

/** What a navigation key does, given the visible rows and the focused span. */
export function navigate(
  rows: TreeNode[],
  focusId: string | null,
  key: TreeKey,
  collapsed: ReadonlySet<string>,
): TreeMove {
  if (!rows.length) return { focus: null };
  const index = focusId === null ? -1 : rows.findIndex((r) => r.span.span_id === focusId);
  const node = index >= 0 ? rows[index] : null;
  switch (key) {
    case "ArrowDown":
      return { focus: rows[Math.min(index + 1, rows.length - 1)].span.span_id };
    case "ArrowUp":
      return { focus: rows[Math.max(index - 1, 0)].span.span_id };
    case "Home":
      return { focus: rows[0].span.span_id };
    case "End":
      return { focus: rows[rows.length - 1].span.span_id };
    case "ArrowRight":
      if (!node) return { focus: rows[0].span.span_id };
      if (node.children.length && collapsed.has(node.span.span_id)) {
        return { focus: node.span.span_id, toggle: node.span.span_id };
      }
      return { focus: node.children.length ? node.children[0].span.span_id : node.span.span_id };
    case "ArrowLeft":
      if (!node) return { focus: rows[0].span.span_id };
      if (node.children.length && !collapsed.has(node.span.span_id)) {
        return { focus: node.span.span_id, toggle: node.span.span_id };
      }
      return { focus: node.parent ? node.parent.span.span_id : node.span.span_id };
  }
}
