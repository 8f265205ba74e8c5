import { NavLink, Outlet, useParams } from "react-router-dom";
import { api } from "../api";
import { ErrorState } from "../components/States";
import { useAsync } from "../lib/hooks";
import type { Experiment } from "../types";

export interface ExperimentContext {
  experiment: Experiment | undefined;
}

export function ExperimentLayout() {
  const { experimentId = "" } = useParams();
  const { data, error, reload } = useAsync(() => api.getExperiment(experimentId), [experimentId]);
  if (error) return <ErrorState error={error} retry={reload} />;
  const base = `/experiments/${experimentId}`;
  const tabs = [
    ["traces", "Traces"],
    ["sessions", "Sessions"],
    ["runs", "Runs"],
    ["evaluations", "Evaluations"],
    ["overview", "Overview"],
  ];
  return (
    <div style={{ display: "flex", flexDirection: "column", height: "100%" }}>
      <div className="tabs">
        <span style={{ padding: "8px 12px 8px 0", fontWeight: 700 }} data-testid="experiment-name">
          {data?.name ?? "…"}
        </span>
        {tabs.map(([path, label]) => (
          <NavLink key={path} to={`${base}/${path}`} className={({ isActive }) => (isActive ? "active" : "")}>
            {label}
          </NavLink>
        ))}
      </div>
      <div style={{ flex: 1, minHeight: 0, overflow: "auto" }}>
        <Outlet context={{ experiment: data } satisfies ExperimentContext} />
      </div>
    </div>
  );
}
