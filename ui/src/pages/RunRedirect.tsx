import { Navigate, useParams } from "react-router-dom";
import { api } from "../api";
import { ErrorState, Loading } from "../components/States";
import { useAsync } from "../lib/hooks";

/** The page of a run known only by its id (the registry's links): `/runs/<run_id>`. */
export const runLink = (runId: string) => `/runs/${encodeURIComponent(runId)}`;

/** Look the run's experiment up, then open the run's page there. */
export function RunRedirect() {
  const { runId = "" } = useParams();
  const { data, error, reload } = useAsync(() => api.getRun(runId), [runId]);
  if (error) return <ErrorState error={error} retry={reload} />;
  if (!data) return <Loading what="Finding the run" />;
  return <Navigate to={`/experiments/${data.experiment_id}/runs/${data.run_id}`} replace />;
}
