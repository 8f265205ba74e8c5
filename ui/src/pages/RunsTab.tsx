import { useMemo, useState } from "react";
import { Link, useNavigate, useParams, useSearchParams } from "react-router-dom";
import { ApiError, api } from "../api";
import { FilterBar } from "../components/FilterBar";
import { Empty, ErrorState, Loading } from "../components/States";
import { formatDuration, formatTime, formatValue } from "../lib/format";
import { useAsync } from "../lib/hooks";

const ident = (key: string) => (/^[A-Za-z_]\w*$/.test(key) ? key : "`" + key + "`");

export function RunsTab() {
  const { experimentId = "" } = useParams();
  const [params, setParams] = useSearchParams();
  const navigate = useNavigate();
  const filter = params.get("filter") ?? "";
  const order = params.get("order") ?? "attributes.start_time DESC";
  const [checked, setChecked] = useState<string[]>([]);
  const [shown, setShown] = useState<Record<string, boolean>>({});
  const [chooser, setChooser] = useState(false);
  const { data, error, loading, reload } = useAsync(
    () => api.searchRuns(experimentId, filter, [order]),
    [experimentId, filter, order],
  );
  const runs = useMemo(() => data?.runs ?? [], [data]);
  const columns = useMemo(() => {
    const keys = (pick: (r: (typeof runs)[number]) => Record<string, unknown>, prefix: string) =>
      [...new Set(runs.flatMap((r) => Object.keys(pick(r))))]
        .filter((k) => !k.startsWith("tracemark."))
        .sort()
        .map((k) => `${prefix}.${k}`);
    return [...keys((r) => r.metrics, "metrics"), ...keys((r) => r.params, "params"), ...keys((r) => r.tags, "tags")];
  }, [runs]);
  const isShown = (col: string) => shown[col] ?? (col.startsWith("metrics.") || col.startsWith("params."));
  const visible = columns.filter(isShown);

  const filterError =
    error instanceof ApiError && error.code === "INVALID_FILTER"
      ? { message: error.message, position: error.position ?? null }
      : null;
  const set = (changes: Record<string, string>) => {
    const next = new URLSearchParams(params);
    for (const [k, v] of Object.entries(changes)) {
      if (v) next.set(k, v);
      else next.delete(k);
    }
    setParams(next, { replace: true });
  };
  const sortKey = (col: string) => {
    const [prefix, ...rest] = col.split(".");
    return `${prefix}.${ident(rest.join("."))}`;
  };
  const [orderKey, orderDir] = [order.slice(0, order.lastIndexOf(" ")), order.slice(order.lastIndexOf(" ") + 1)];
  const sortBy = (key: string) => set({ order: `${key} ${orderKey === key && orderDir === "DESC" ? "ASC" : "DESC"}` });
  const arrow = (key: string) => (orderKey === key ? (orderDir === "ASC" ? " ▲" : " ▼") : "");
  const value = (run: (typeof runs)[number], col: string) => {
    const [prefix, ...rest] = col.split(".");
    const key = rest.join(".");
    const source = prefix === "metrics" ? run.metrics : prefix === "params" ? run.params : run.tags;
    return source[key];
  };

  return (
    <div className="page">
      <FilterBar
        value={filter}
        error={filterError}
        placeholder="metrics.accuracy > 0.8 AND params.model = 'gpt-4o-mini'"
        onSubmit={(f) => set({ filter: f })}
      />
      <div className="toolbar">
        <button
          className="primary"
          disabled={checked.length < 2}
          onClick={() => navigate(`/experiments/${experimentId}/compare?runs=${checked.join(",")}`)}
        >
          Compare {checked.length || ""} runs
        </button>
        <span className="muted small">Select two or more runs to compare them.</span>
        <span className="spacer" />
        <div style={{ position: "relative" }}>
          <button onClick={() => setChooser(!chooser)}>Columns</button>
          {chooser && (
            <div className="form" style={{ position: "absolute", right: 0, zIndex: 5, maxHeight: 360, overflow: "auto", minWidth: 220 }}>
              {columns.map((c) => (
                <label key={c}>
                  <input type="checkbox" checked={isShown(c)} onChange={() => setShown({ ...shown, [c]: !isShown(c) })} /> {c}
                </label>
              ))}
            </div>
          )}
        </div>
      </div>
      {error && !filterError ? (
        <ErrorState error={error} retry={reload} />
      ) : filterError ? null : loading && !data ? (
        <Loading what="Loading runs" />
      ) : runs.length === 0 ? (
        <Empty title={filter ? "No run matches this filter" : "No runs yet"}>
          {!filter && (
            <p>
              Log one with <code>with tm.start_run(): tm.log_metric("accuracy", 0.9)</code>.
            </p>
          )}
        </Empty>
      ) : (
        <div style={{ overflow: "auto" }}>
          <table className="grid" data-testid="runs-table">
            <thead>
              <tr>
                <th />
                <th className="sortable" onClick={() => sortBy("attributes.run_name")}>
                  Run{arrow("attributes.run_name")}
                </th>
                <th className="sortable" onClick={() => sortBy("attributes.status")}>
                  Status{arrow("attributes.status")}
                </th>
                <th className="sortable" onClick={() => sortBy("attributes.start_time")}>
                  Started{arrow("attributes.start_time")}
                </th>
                <th className="num">Duration</th>
                {visible.map((c) => (
                  <th key={c} className="sortable num" onClick={() => sortBy(sortKey(c))}>
                    {c}
                    {arrow(sortKey(c))}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {runs.map((r) => (
                <tr key={r.run_id} data-testid="run-row" data-run-name={r.run_name}>
                  <td>
                    <input
                      type="checkbox"
                      aria-label={`select ${r.run_name}`}
                      checked={checked.includes(r.run_id)}
                      onChange={() =>
                        setChecked(checked.includes(r.run_id) ? checked.filter((c) => c !== r.run_id) : [...checked, r.run_id])
                      }
                    />
                  </td>
                  <td>
                    {r.parent_run_id ? "↳ " : ""}
                    <Link to={`/experiments/${experimentId}/runs/${r.run_id}`}>{r.run_name}</Link>
                  </td>
                  <td>
                    <span className={`badge ${r.status}`}>{r.status}</span>
                  </td>
                  <td>{formatTime(r.start_time)}</td>
                  <td className="num">{r.end_time ? formatDuration(r.end_time - r.start_time) : "–"}</td>
                  {visible.map((c) => (
                    <td key={c} className="num">
                      {formatValue(value(r, c))}
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}
