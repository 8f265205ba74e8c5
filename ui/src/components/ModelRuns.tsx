import { Link } from "react-router-dom";
import { isEvaluation, keyMetrics } from "../lib/evaluation";
import { formatTime } from "../lib/format";
import { useAsync } from "../lib/hooks";
import { MAX_MODEL_RUNS, searchModelRuns } from "../lib/linked";
import type { Run } from "../types";
import { Empty, ErrorState, Loading } from "./States";

function Kind({ run, loggedBy }: { run: Run; loggedBy: string | null }) {
  if (run.run_id === loggedBy) return <span className="tag">logged the model</span>;
  if (isEvaluation(run)) return <span className="tag">evaluation</span>;
  return <span className="tag">linked traces</span>;
}

function Metrics({ run }: { run: Run }) {
  const { shown, hidden } = keyMetrics(run);
  if (!shown.length) return <span className="muted">none</span>;
  return (
    <>
      {shown.map((m) => (
        <span className="tag" key={m.name} data-metric={m.name}>
          {m.name} <b>{m.value}</b>
        </span>
      ))}
      {hidden > 0 && <span className="muted small"> +{hidden} more</span>}
    </>
  );
}

/**
 * The runs of a logged model: the one that logged it, then every run holding traces linked to
 * it (the evaluations run while it was active), with their key metrics.
 */
export function ModelRuns({ modelId, loggedBy }: { modelId: string; loggedBy: string | null }) {
  const { data, error, reload } = useAsync(
    async () => ({ modelId, ...(await searchModelRuns(modelId, loggedBy)) }),
    [modelId, loggedBy],
  );
  if (error) return <ErrorState error={error} retry={reload} />;
  if (!data || data.modelId !== modelId) return <Loading what="Loading runs" />;
  if (!data.runs.length) return <Empty title="No runs are linked to this version" />;
  return (
    <div data-testid="model-runs">
      <table className="grid">
        <thead>
          <tr>
            <th>Run</th>
            <th>Kind</th>
            <th>Experiment</th>
            <th>Status</th>
            <th>Started</th>
            <th>Key metrics</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {data.runs.map((r) => (
            <tr key={r.run_id} data-testid="model-run-row" data-run-name={r.run_name}>
              <td>
                <Link to={`/experiments/${r.experiment_id}/runs/${r.run_id}`}>{r.run_name || r.run_id}</Link>
              </td>
              <td>
                <Kind run={r} loggedBy={loggedBy} />
              </td>
              <td>{data.experiments.get(r.experiment_id) ?? r.experiment_id}</td>
              <td>
                <span className={`badge ${r.status}`}>{r.status}</span>
              </td>
              <td>{formatTime(r.start_time)}</td>
              <td>
                <Metrics run={r} />
              </td>
              <td>
                {isEvaluation(r) && (
                  <Link to={`/experiments/${r.experiment_id}/evaluations/${r.run_id}`}>Results →</Link>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {data.more && <div className="muted small">Only the first {MAX_MODEL_RUNS} runs are listed.</div>}
    </div>
  );
}
