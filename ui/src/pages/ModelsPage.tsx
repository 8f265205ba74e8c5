import { useState } from "react";
import { Link, useSearchParams } from "react-router-dom";
import { api } from "../api";
import { AliasChips, TagChips } from "../components/Chips";
import { Empty, ErrorState, Loading } from "../components/States";
import { nameContains } from "../lib/filter";
import { formatRelative, formatTime } from "../lib/format";
import { useAsync } from "../lib/hooks";

/** The model registry: registered models by name, searchable. */
export function ModelsPage() {
  const [params, setParams] = useSearchParams();
  const search = params.get("q") ?? "";
  const [tokens, setTokens] = useState<(string | null)[]>([null]);
  const page = tokens.length - 1;
  const { data, error, loading, reload } = useAsync(
    () => api.searchRegisteredModels(nameContains(search), tokens[page]),
    [search, tokens],
  );
  const models = data?.registered_models ?? [];
  return (
    <div className="page">
      <h1>Models</h1>
      <div className="toolbar">
        <input
          aria-label="search models"
          placeholder="Search by name"
          value={search}
          onChange={(e) => {
            setTokens([null]);
            setParams(e.target.value ? { q: e.target.value } : {}, { replace: true });
          }}
        />
        {loading && <span className="spinner" />}
        <span className="spacer" />
        <button disabled={page === 0} onClick={() => setTokens(tokens.slice(0, -1))}>
          ← Previous
        </button>
        <button disabled={!data?.next_page_token} onClick={() => setTokens([...tokens, data!.next_page_token])}>
          Next →
        </button>
      </div>
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
