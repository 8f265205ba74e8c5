import { useState } from "react";
import { useSearchParams } from "react-router-dom";
import { nameContains } from "../lib/filter";
import { type Async, useAsync } from "../lib/hooks";

/** A registry list searched by name (`?q=` in the URL) and paged by the server's tokens. */
export interface NameSearch<T> extends Async<T> {
  search: string;
  setSearch: (value: string) => void;
  hasPrevious: boolean;
  previous: () => void;
  next: (() => void) | null;
}

/** Search a registry by name: `load(filter, pageToken)` fetches one page. */
export function useNameSearch<T extends { next_page_token?: string | null }>(
  load: (filter: string | undefined, pageToken: string | null) => Promise<T>,
): NameSearch<T> {
  const [params, setParams] = useSearchParams();
  const search = params.get("q") ?? "";
  const [tokens, setTokens] = useState<(string | null)[]>([null]);
  const page = tokens.length - 1;
  const result = useAsync(() => load(nameContains(search), tokens[page]), [search, tokens]);
  const nextToken = result.data?.next_page_token ?? null;
  return {
    ...result,
    search,
    setSearch: (value) => {
      setTokens([null]);
      setParams(value ? { q: value } : {}, { replace: true });
    },
    hasPrevious: page > 0,
    previous: () => setTokens(tokens.slice(0, -1)),
    next: nextToken ? () => setTokens([...tokens, nextToken]) : null,
  };
}

/** The search box, a spinner while loading, and previous/next page buttons. */
export function NameSearchBar<T>({ state, label }: { state: NameSearch<T>; label: string }) {
  return (
    <div className="toolbar">
      <input
        aria-label={label}
        placeholder="Search by name"
        value={state.search}
        onChange={(e) => state.setSearch(e.target.value)}
      />
      {state.loading && <span className="spinner" />}
      <span className="spacer" />
      <button disabled={!state.hasPrevious} onClick={state.previous}>
        ← Previous
      </button>
      <button disabled={!state.next} onClick={() => state.next?.()}>
        Next →
      </button>
    </div>
  );
}
