import { useMemo, useState } from "react";
import { Link, useNavigate, useParams, useSearchParams } from "react-router-dom";
import { ApiError, api, assessmentNames } from "../api";
import { FilterBar, type FilterError } from "../components/FilterBar";
import { Empty, ErrorState, Loading } from "../components/States";
import { TRACE_COLUMNS as COLUMNS } from "../components/TraceColumns";
import { composeFilter, quickFilters, userPosition } from "../lib/filter";
import { useAsync, useInterval } from "../lib/hooks";

const SLOW_MS = 5000;
const PAGE_SIZE = 50;
const POLL_MS = 5000;

const DEFAULT_HIDDEN = ["spans", "trace_id"];
const COLUMNS_KEY = "tracemark.traces.hidden";

function loadHidden(): string[] {
  try {
    return JSON.parse(localStorage.getItem(COLUMNS_KEY) ?? "null") ?? DEFAULT_HIDDEN;
  } catch {
    return DEFAULT_HIDDEN;
  }
}

export function TracesTab() {
  const { experimentId = "" } = useParams();
  const [params, setParams] = useSearchParams();
  const navigate = useNavigate();
  const filter = params.get("filter") ?? "";
  const quick = (params.get("quick") ?? "").split(",").filter(Boolean);
  const order = params.get("order") ?? "timestamp_ms DESC";
  const [tokens, setTokens] = useState<(string | null)[]>([null]);
  const [hidden, setHidden] = useState<string[]>(loadHidden);
  const [chooser, setChooser] = useState(false);
  const page = tokens.length - 1;

  const names = useAsync(() => assessmentNames(experimentId), [experimentId]);
  const quicks = useMemo(() => quickFilters(SLOW_MS, names.data?.feedback ?? []), [names.data]);
  const clauses = quicks.filter((q) => quick.includes(q.id)).map((q) => q.clause);
  const composed = composeFilter(filter, clauses);

  const result = useAsync(
    () =>
      api.searchTraces(experimentId, {
        filter: composed,
        order_by: [order],
        max_results: PAGE_SIZE,
        page_token: tokens[page],
      }),
    [experimentId, composed, order, tokens],
  );
  // New traces appear on the first page without a reload.
  useInterval(result.reload, page === 0 && !result.error ? POLL_MS : null);

  const update = (changes: Record<string, string | null>) => {
    const next = new URLSearchParams(params);
    for (const [k, v] of Object.entries(changes)) {
      if (v) next.set(k, v);
      else next.delete(k);
    }
    setTokens([null]);
    setParams(next, { replace: true });
  };

  let filterError: FilterError | null = null;
  const err = result.error;
  if (err instanceof ApiError && err.code === "INVALID_FILTER") {
    filterError = {
      message: err.message,
      position: err.position === undefined ? null : userPosition(filter, clauses, err.position),
    };
  }

  const [orderKey, orderDir] = order.split(" ");
  const sortBy = (key: string) => {
    const dir = orderKey === key && orderDir === "DESC" ? "ASC" : "DESC";
    update({ order: `${key} ${dir}` });
  };
  const visible = COLUMNS.filter((c) => !hidden.includes(c.id));
  const toggleColumn = (id: string) => {
    const next = hidden.includes(id) ? hidden.filter((h) => h !== id) : [...hidden, id];
    setHidden(next);
    try {
      localStorage.setItem(COLUMNS_KEY, JSON.stringify(next));
    } catch {
      // not persisted; fine
    }
  };
  const traces = result.data?.traces ?? [];

  return (
    <div className="page">
      <FilterBar
        value={filter}
        onSubmit={(f) => update({ filter: f })}
        error={filterError}
        placeholder="status = 'ERROR' AND span.type = 'TOOL' AND metadata.user_id = 'u-7'"
        quick={quicks}
        activeQuick={quick}
        onToggleQuick={(id) =>
          update({ quick: (quick.includes(id) ? quick.filter((q) => q !== id) : [...quick, id]).join(",") })
        }
      />
      <div className="toolbar">
        <span className="muted">
          {result.loading && <span className="spinner" />}
          {traces.length ? `Showing ${page * PAGE_SIZE + 1}–${page * PAGE_SIZE + traces.length}` : ""}
          {page === 0 ? " · live" : ""}
        </span>
        <span className="spacer" />
        <div style={{ position: "relative" }}>
          <button onClick={() => setChooser(!chooser)} aria-expanded={chooser}>
            Columns
          </button>
          {chooser && (
            <div
              className="form"
              style={{ position: "absolute", right: 0, zIndex: 5, minWidth: 160 }}
              data-testid="column-chooser"
            >
              {COLUMNS.map((c) => (
                <label key={c.id}>
                  <input type="checkbox" checked={!hidden.includes(c.id)} onChange={() => toggleColumn(c.id)} />{" "}
                  {c.label}
                </label>
              ))}
            </div>
          )}
        </div>
        <button disabled={page === 0} onClick={() => setTokens(tokens.slice(0, -1))}>
          ← Newer
        </button>
        <button
          disabled={!result.data?.next_page_token}
          onClick={() => setTokens([...tokens, result.data!.next_page_token])}
        >
          Older →
        </button>
      </div>
      {err && !filterError ? (
        <ErrorState error={err} retry={result.reload} />
      ) : filterError ? null : result.loading && !result.data ? (
        <Loading what="Loading traces" />
      ) : traces.length === 0 ? (
        <Empty title={composed ? "No trace matches this filter" : "No traces yet"}>
          {!composed && (
            <p>
              Trace a function with <code>@tm.trace</code> and call it; traces appear here as they arrive.
            </p>
          )}
        </Empty>
      ) : (
        <table className="grid" data-testid="traces-table">
          <thead>
            <tr>
              {visible.map((c) => (
                <th
                  key={c.id}
                  className={(c.num ? "num " : "") + (c.sort ? "sortable" : "")}
                  onClick={c.sort ? () => sortBy(c.sort!) : undefined}
                  aria-sort={orderKey === c.sort ? (orderDir === "ASC" ? "ascending" : "descending") : undefined}
                >
                  {c.label}
                  {orderKey === c.sort ? (orderDir === "ASC" ? " ▲" : " ▼") : ""}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {traces.map((t) => (
              <tr
                key={t.trace_id}
                className="clickable"
                data-testid="trace-row"
                data-trace-id={t.trace_id}
                onClick={() => navigate(`/experiments/${experimentId}/traces/${t.trace_id}`)}
              >
                {visible.map((c) => (
                  <td key={c.id} className={c.num ? "num" : c.id === "request" || c.id === "response" ? "preview" : ""}>
                    {c.id === "name" ? (
                      <Link to={`/experiments/${experimentId}/traces/${t.trace_id}`} onClick={(e) => e.stopPropagation()}>
                        {t.name || t.trace_id.slice(0, 8)}
                      </Link>
                    ) : (
                      c.render(t)
                    )}
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
