import { Link } from "react-router-dom";
import { api } from "../api";
import { AliasChips, TagChips } from "../components/Chips";
import { NameSearchBar, useNameSearch } from "../components/NameSearch";
import { Empty, ErrorState, Loading } from "../components/States";
import { formatRelative, formatTime } from "../lib/format";

/** The model registry: registered models by name, searchable. */
export function ModelsPage() {
  const state = useNameSearch((filter, token) => api.searchRegisteredModels(filter, token));
  const { data, error, loading, reload, search } = state;
  const models = data?.registered_models ?? [];
  return (
    <div className="page">
      <h1>Models</h1>
      <NameSearchBar state={state} label="search models" />
      {error ? (
        <ErrorState error={error} retry={reload} />
      ) : loading && !data ? (
        <Loading what="Loading models" />
      ) : models.length === 0 ? (
        <Empty title={search ? "No model matches" : "No registered models yet"}>
          {!search && (
            <p>
              Log an application with <code>tm.log_model("agent.py", name="agent")</code>, then register it with{" "}
              <code>tm.register_model(model.model_uri, "support-agent")</code>.
            </p>
          )}
        </Empty>
      ) : (
        <table className="grid" data-testid="models-table">
          <thead>
            <tr>
              <th>Name</th>
              <th className="num">Latest version</th>
              <th>Aliases</th>
              <th>Tags</th>
              <th>Description</th>
              <th>Updated</th>
            </tr>
          </thead>
          <tbody>
            {models.map((m) => (
              <tr key={m.name} data-testid="model-row">
                <td>
                  <Link to={`/models/${encodeURIComponent(m.name)}`}>{m.name}</Link>
                </td>
                <td className="num">{m.latest_version ? `v${m.latest_version}` : "–"}</td>
                <td>
                  <AliasChips aliases={m.aliases} />
                </td>
                <td>
                  <TagChips tags={m.tags} />
                </td>
                <td className="preview" title={m.description ?? ""}>
                  {m.description}
                </td>
                <td title={formatTime(m.last_updated_time)}>{formatRelative(m.last_updated_time)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
