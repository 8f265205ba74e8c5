import { useMemo } from "react";
import { useParams, useSearchParams } from "react-router-dom";
import { ApiError, api } from "../api";
import { LineChart, type Series } from "../components/Chart";
import { FilterBar } from "../components/FilterBar";
import { Empty, ErrorState, Loading } from "../components/States";
import { formatCost, formatDuration, formatNumber } from "../lib/format";
import { useAsync, useInterval } from "../lib/hooks";
import type { Overview } from "../types";

const pct = (v: number) => `${(v * 100).toFixed(0)}%`;
const ms = (v: number) => formatDuration(v);

function charts(o: Overview) {
  const x = o.buckets.map((b) => b.start_ms / 1000);
  const s = (label: string, pick: (b: Overview["buckets"][number]) => number | null): Series => ({
    label,
    values: o.buckets.map((b) => (b.count ? pick(b) : null)),
  });
  return [
    { title: "Traces", x, series: [{ label: "traces", values: o.buckets.map((b) => b.count) }] },
    { title: "Error rate", x, series: [s("error rate", (b) => b.error_rate)], format: pct },
    {
      title: "Latency",
      x,
      series: [s("p50", (b) => b.latency_p50_ms), s("p95", (b) => b.latency_p95_ms)],
      format: ms,
    },
    {
      title: "Tokens",
      x,
      series: [s("input", (b) => b.input_tokens), s("output", (b) => b.output_tokens)],
    },
    { title: "Cost", x, series: [s("cost", (b) => b.cost)], format: (v: number) => formatCost(v) },
  ];
}

export function OverviewTab() {
  const { experimentId = "" } = useParams();
  const [params, setParams] = useSearchParams();
  const filter = params.get("filter") ?? "";
  const { data, error, loading, reload } = useAsync(() => api.overview(experimentId, filter), [experimentId, filter]);
  useInterval(reload, error ? null : 15000);
  const plots = useMemo(() => (data ? charts(data) : []), [data]);
  const filterError =
    error instanceof ApiError && error.code === "INVALID_FILTER"
      ? { message: error.message, position: error.position ?? null }
      : null;
  const t = data?.totals;
  return (
    <div className="page">
      <FilterBar
        value={filter}
        error={filterError}
        placeholder="Narrow the charts, e.g. tags.env = 'prod'"
        onSubmit={(f) => setParams(f ? { filter: f } : {}, { replace: true })}
      />
      {error && !filterError ? (
        <ErrorState error={error} retry={reload} />
      ) : filterError ? null : loading && !data ? (
        <Loading what="Computing overview" />
      ) : !t || t.count === 0 ? (
        <Empty title="No traces to chart yet" />
      ) : (
        <>
          <div className="kpis" data-testid="kpis">
            <div className="kpi">
              <div className="v">{formatNumber(t.count)}</div>
              <div className="l">traces</div>
            </div>
            <div className="kpi">
              <div className="v">{t.error_rate === null ? "–" : pct(t.error_rate)}</div>
              <div className="l">error rate</div>
            </div>
            <div className="kpi">
              <div className="v">{formatDuration(t.latency_p50_ms)}</div>
              <div className="l">latency p50</div>
            </div>
            <div className="kpi">
              <div className="v">{formatDuration(t.latency_p95_ms)}</div>
              <div className="l">latency p95</div>
            </div>
            <div className="kpi">
              <div className="v">{formatNumber(t.total_tokens)}</div>
              <div className="l">tokens</div>
            </div>
            <div className="kpi">
              <div className="v">{formatCost(t.cost)}</div>
              <div className="l">cost</div>
            </div>
          </div>
          <div className="cards">
            {plots.map((p) => (
              <div className="card" key={p.title} data-testid="overview-chart">
                <h4>{p.title}</h4>
                <LineChart x={p.x} series={p.series} time format={p.format} height={180} />
              </div>
            ))}
          </div>
        </>
      )}
    </div>
  );
}
