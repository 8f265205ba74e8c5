import { useVirtualizer } from "@tanstack/react-virtual";
import { useEffect, useMemo, useRef, useState, type KeyboardEvent } from "react";
import { formatDuration } from "../lib/format";
import {
  ancestorIds,
  navigate,
  searchRows,
  visibleRows,
  type SpanTree as Tree,
  type TreeKey,
} from "../lib/tree";
import { spanStyle } from "./spanTypes";

const ROW_HEIGHT = 26;
const KEYS = new Set(["ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight", "Home", "End"]);

interface Props {
  tree: Tree;
  selectedId: string | null;
  onSelect: (spanId: string) => void;
  query?: string;
}

/**
 * The span tree and its waterfall, one virtualized list: only the rows in view are in the
 * DOM, so a trace of 10,000 spans renders as fast as one of 10.
 */
export function SpanTree({ tree, selectedId, onSelect, query = "" }: Props) {
  const [collapsed, setCollapsed] = useState<Set<string>>(() => new Set());
  const [focusId, setFocusId] = useState<string | null>(selectedId);
  const scrollRef = useRef<HTMLDivElement>(null);
  // The span this tree itself selected last (Enter, click): the selection coming back
  // through the URL must not move the keyboard focus the user has moved on since.
  const selectedHere = useRef<string | null>(null);
  const select = (spanId: string) => {
    selectedHere.current = spanId;
    onSelect(spanId);
  };

  const searching = query.trim().length > 0;
  const { rows, matches } = useMemo(() => {
    if (searching) return searchRows(tree, query.trim());
    return { rows: visibleRows(tree, collapsed), matches: null };
  }, [tree, collapsed, query, searching]);

  const virtualizer = useVirtualizer({
    count: rows.length,
    getScrollElement: () => scrollRef.current,
    estimateSize: () => ROW_HEIGHT,
    overscan: 12,
    initialRect: { width: 800, height: 600 },
  });

  // Reveal the selected span (a deep link) by expanding its ancestors once.
  useEffect(() => {
    if (!selectedId) return;
    const hidden = ancestorIds(tree, selectedId).filter((id) => collapsed.has(id));
    if (hidden.length) {
      setCollapsed((prev) => {
        const next = new Set(prev);
        hidden.forEach((id) => next.delete(id));
        return next;
      });
    }
    if (selectedId !== selectedHere.current) setFocusId(selectedId);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [selectedId, tree]);

  useEffect(() => {
    if (!focusId) return;
    const index = rows.findIndex((r) => r.span.span_id === focusId);
    if (index >= 0) virtualizer.scrollToIndex(index, { align: "auto" });
  }, [focusId, rows, virtualizer]);

  const toggle = (spanId: string) =>
    setCollapsed((prev) => {
      const next = new Set(prev);
      if (next.has(spanId)) next.delete(spanId);
      else next.add(spanId);
      return next;
    });

  const onKeyDown = (e: KeyboardEvent) => {
    if (KEYS.has(e.key)) {
      e.preventDefault();
      const move = navigate(rows, focusId, e.key as TreeKey, searching ? new Set() : collapsed);
      if (move.toggle && !searching) toggle(move.toggle);
      setFocusId(move.focus);
    } else if (e.key === "Enter" && focusId) {
      e.preventDefault();
      select(focusId);
    } else if (e.key === " " && focusId) {
      e.preventDefault();
      toggle(focusId);
    }
  };

  const total = Math.max(tree.endNs - tree.startNs, 1);
  const expandAll = () => setCollapsed(new Set());
  const collapseAll = () =>
    setCollapsed(new Set([...tree.byId.values()].filter((n) => n.children.length).map((n) => n.span.span_id)));

  return (
    <>
      <div className="wf-head">
        <div className="row">
          <span>
            {rows.length.toLocaleString()} {searching ? "matching rows" : "rows"}
          </span>
          <button className="link small" onClick={expandAll}>
            expand all
          </button>
          <button className="link small" onClick={collapseAll}>
            collapse all
          </button>
        </div>
        <div className="ticks">
          <span>0</span>
          <span>{formatDuration(total / 2e6)}</span>
          <span>{formatDuration(total / 1e6)}</span>
        </div>
      </div>
      <div
        className="tree-scroll"
        ref={scrollRef}
        tabIndex={0}
        role="tree"
        aria-label="span tree"
        onKeyDown={onKeyDown}
      >
        <div style={{ height: virtualizer.getTotalSize(), position: "relative" }}>
          {virtualizer.getVirtualItems().map((item) => {
            const node = rows[item.index];
            const { span } = node;
            const style = spanStyle(span.span_type);
            const start = ((span.start_time_ns - tree.startNs) / total) * 100;
            const end = span.end_time_ns ?? tree.endNs;
            const width = Math.max(((end - span.start_time_ns) / total) * 100, 0.2);
            const isCollapsed = collapsed.has(span.span_id) && !searching;
            const cls = [
              "tree-row",
              span.span_id === selectedId ? "selected" : "",
              span.span_id === focusId ? "focused" : "",
              matches?.has(span.span_id) ? "match" : "",
            ].join(" ");
            return (
              <div
                key={span.span_id}
                className={cls}
                style={{ top: item.start, height: ROW_HEIGHT }}
                role="treeitem"
                aria-level={node.depth + 1}
                aria-selected={span.span_id === selectedId}
                aria-expanded={node.children.length ? !isCollapsed : undefined}
                data-span-id={span.span_id}
                onClick={() => {
                  setFocusId(span.span_id);
                  select(span.span_id);
                }}
              >
                <div className="tree-name" style={{ paddingLeft: 4 + node.depth * 14 }}>
                  <span
                    className="twisty"
                    onClick={(e) => {
                      e.stopPropagation();
                      if (node.children.length) toggle(span.span_id);
                    }}
                    data-testid="twisty"
                  >
                    {node.children.length ? (isCollapsed ? "▸" : "▾") : ""}
                  </span>
                  <span className="type-icon" style={{ background: style.color }} title={span.span_type}>
                    {style.icon}
                  </span>
                  <span className="name">{span.name}</span>
                  {span.status_code === "ERROR" && (
                    <span className="err-dot" title={span.status_message || "error"}>
                      !
                    </span>
                  )}
                  <span className="dur">
                    {span.end_time_ns === null ? "…" : formatDuration((span.end_time_ns - span.start_time_ns) / 1e6)}
                  </span>
                </div>
                <div className="wf">
                  <div
                    className="wf-bar"
                    style={{
                      left: `${start}%`,
                      width: `${Math.min(width, 100 - start)}%`,
                      background: span.status_code === "ERROR" ? "var(--error)" : style.color,
                    }}
                  />
                </div>
              </div>
            );
          })}
        </div>
      </div>
    </>
  );
}
