import { useState } from "react";
import { Link } from "react-router-dom";
import { api } from "../api";
import { Empty, ErrorState, Loading } from "../components/States";
import { useAsync } from "../lib/hooks";
import { formatTime } from "../lib/format";
import type { Experiment } from "../types";

export function ExperimentsPage() {
  const [view, setView] = useState<"active_only" | "deleted_only">("active_only");
  const [search, setSearch] = useState("");
  const [newName, setNewName] = useState("");
  const [renaming, setRenaming] = useState<{ id: string; name: string } | null>(null);
  const [actionError, setActionError] = useState<string | null>(null);
  const { data, error, loading, reload } = useAsync(() => api.listExperiments(view), [view]);

  const act = async (fn: () => Promise<unknown>) => {
    setActionError(null);
    try {
      await fn();
      reload();
    } catch (e) {
      setActionError((e as Error).message);
    }
  };

  const shown = (data?.experiments ?? []).filter((e: Experiment) =>
    e.name.toLowerCase().includes(search.trim().toLowerCase()),
  );

  return (
    <div className="page">
      <h1>Experiments</h1>
      <div className="toolbar">
        <input
          aria-label="search experiments"
          placeholder="Search by name"
          value={search}
          onChange={(e) => setSearch(e.target.value)}
        />
        <button className={view === "active_only" ? "on" : ""} onClick={() => setView("active_only")}>
          Active
        </button>
        <button className={view === "deleted_only" ? "on" : ""} onClick={() => setView("deleted_only")}>
          Deleted
        </button>
        <span className="spacer" />
        <form
          className="row"
          onSubmit={(e) => {
            e.preventDefault();
            if (newName.trim()) act(() => api.createExperiment(newName.trim()).then(() => setNewName("")));
          }}
        >
          <input
            aria-label="new experiment name"
            placeholder="New experiment name"
            value={newName}
            onChange={(e) => setNewName(e.target.value)}
          />
          <button className="primary" type="submit" disabled={!newName.trim()}>
            Create
          </button>
        </form>
      </div>
      {actionError && (
        <div className="filter-error" role="alert">
          {actionError}
        </div>
      )}
      {error ? (
        <ErrorState error={error} retry={reload} />
      ) : loading && !data ? (
        <Loading what="Loading experiments" />
      ) : shown.length === 0 ? (
        <Empty title={search ? "No experiment matches" : "No experiments yet"}>
          {view === "active_only" && !search && (
            <p>
              Create one above, or log from Python: <code>tm.set_experiment("my-agent")</code>. Run{" "}
              <code>tracemark demo</code> for example data.
            </p>
          )}
        </Empty>
      ) : (
        <table className="grid">
          <thead>
            <tr>
              <th>Name</th>
              <th>Id</th>
              <th>Tags</th>
              <th>Created</th>
              <th>Updated</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {shown.map((e) => (
              <tr key={e.experiment_id} data-testid="experiment-row">
                <td>
                  {renaming?.id === e.experiment_id ? (
                    <form
                      className="row"
                      onSubmit={(ev) => {
                        ev.preventDefault();
                        act(() => api.renameExperiment(e.experiment_id, renaming.name).then(() => setRenaming(null)));
                      }}
                    >
                      <input
                        aria-label="experiment name"
                        autoFocus
                        value={renaming.name}
                        onChange={(ev) => setRenaming({ id: e.experiment_id, name: ev.target.value })}
                      />
                      <button type="submit" className="primary">
                        Save
                      </button>
                      <button type="button" onClick={() => setRenaming(null)}>
                        Cancel
                      </button>
                    </form>
                  ) : e.lifecycle_stage === "active" ? (
                    <Link to={`/experiments/${e.experiment_id}/traces`}>{e.name}</Link>
                  ) : (
                    e.name
                  )}
                </td>
                <td className="mono">{e.experiment_id}</td>
                <td>
                  {Object.entries(e.tags)
                    .filter(([k]) => !k.startsWith("tracemark."))
                    .map(([k, v]) => (
                      <span className="tag" key={k}>
                        {k}={v}
                      </span>
                    ))}
                </td>
                <td>{formatTime(e.creation_time)}</td>
                <td>{formatTime(e.last_update_time)}</td>
                <td style={{ whiteSpace: "nowrap" }}>
                  {e.lifecycle_stage === "active" ? (
                    <>
                      <button className="link" onClick={() => setRenaming({ id: e.experiment_id, name: e.name })}>
                        Rename
                      </button>
                      <button
                        className="link"
                        onClick={() => {
                          if (confirm(`Delete experiment "${e.name}"? It can be restored later.`)) {
                            act(() => api.deleteExperiment(e.experiment_id));
                          }
                        }}
                      >
                        Delete
                      </button>
                    </>
                  ) : (
                    <button className="link" onClick={() => act(() => api.restoreExperiment(e.experiment_id))}>
                      Restore
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
