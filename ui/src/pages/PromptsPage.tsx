import { Link } from "react-router-dom";
import { api } from "../api";
import { AliasChips, TagChips } from "../components/Chips";
import { NameSearchBar, useNameSearch } from "../components/NameSearch";
import { Empty, ErrorState, Loading } from "../components/States";
import { formatRelative, formatTime } from "../lib/format";

/** The prompt registry: prompts by name, searchable. */
export function PromptsPage() {
  const state = useNameSearch((filter, token) => api.searchPrompts(filter, token));
  const { data, error, loading, reload, search } = state;
  const prompts = data?.prompts ?? [];
  return (
    <div className="page">
      <h1>Prompts</h1>
      <NameSearchBar state={state} label="search prompts" />
      {error ? (
        <ErrorState error={error} retry={reload} />
      ) : loading && !data ? (
        <Loading what="Loading prompts" />
      ) : prompts.length === 0 ? (
        <Empty title={search ? "No prompt matches" : "No prompts yet"}>
          {!search && (
            <p>
              Register one with <code>tm.register_prompt("qa", "Answer: {"{{ question }}"}")</code>.
            </p>
          )}
        </Empty>
      ) : (
        <table className="grid" data-testid="prompts-table">
          <thead>
            <tr>
              <th>Name</th>
              <th className="num">Latest version</th>
              <th>Aliases</th>
              <th>Tags</th>
              <th>Updated</th>
            </tr>
          </thead>
          <tbody>
            {prompts.map((p) => (
              <tr key={p.name} data-testid="prompt-row">
                <td>
                  <Link to={`/prompts/${encodeURIComponent(p.name)}`}>{p.name}</Link>
                  {p.description && <div className="muted small">{p.description}</div>}
                </td>
                <td className="num">v{p.latest_version}</td>
                <td>
                  <AliasChips aliases={p.aliases} />
                </td>
                <td>
                  <TagChips tags={p.tags} />
                </td>
                <td title={formatTime(p.last_updated_time)}>{formatRelative(p.last_updated_time)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
