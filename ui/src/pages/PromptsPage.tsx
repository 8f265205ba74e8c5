import { useState } from "react";
import { Link, useSearchParams } from "react-router-dom";
import { api } from "../api";
import { AliasChips, TagChips } from "../components/Chips";
import { Empty, ErrorState, Loading } from "../components/States";
import { nameContains } from "../lib/filter";
import { formatRelative, formatTime } from "../lib/format";
import { useAsync } from "../lib/hooks";

/** The prompt registry: prompts by name, searchable. */
export function PromptsPage() {
  const [params, setParams] = useSearchParams();
  const search = params.get("q") ?? "";
  const [tokens, setTokens] = useState<(string | null)[]>([null]);
  const page = tokens.length - 1;
  const { data, error, loading, reload } = useAsync(
    () => api.searchPrompts(nameContains(search), tokens[page]),
    [search, tokens],
  );
  const prompts = data?.prompts ?? [];
  return (
    <div className="page">
      <h1>Prompts</h1>
      <div className="toolbar">
        <input
          aria-label="search prompts"
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
