import { useEffect, useState } from "react";
import type { QuickFilter } from "../lib/filter";

export interface FilterError {
  message: string;
  position: number | null;
}

interface Props {
  value: string;
  onSubmit: (filter: string) => void;
  error?: FilterError | null;
  placeholder?: string;
  quick?: QuickFilter[];
  activeQuick?: string[];
  onToggleQuick?: (id: string) => void;
}

/** The filter grammar's search box: submit on Enter, the server's error shown inline. */
export function FilterBar({
  value,
  onSubmit,
  error,
  placeholder,
  quick = [],
  activeQuick = [],
  onToggleQuick,
}: Props) {
  const [text, setText] = useState(value);
  useEffect(() => setText(value), [value]);
  const firstLine = error?.message.split("\n")[0];
  return (
    <div className="filterbar">
      <form
        onSubmit={(e) => {
          e.preventDefault();
          onSubmit(text);
        }}
      >
        <input
          className={"filter" + (error ? " invalid" : "")}
          aria-label="filter"
          aria-invalid={!!error}
          value={text}
          placeholder={placeholder ?? "status = 'ERROR' AND tags.env = 'prod'"}
          onChange={(e) => setText(e.target.value)}
          spellCheck={false}
        />
        <button type="submit" className="primary">
          Search
        </button>
        {(value || text) && (
          <button
            type="button"
            onClick={() => {
              setText("");
              onSubmit("");
            }}
          >
            Clear
          </button>
        )}
      </form>
      {quick.length > 0 && (
        <div className="row">
          <span className="muted small">Quick filters:</span>
          {quick.map((q) => (
            <button
              key={q.id}
              type="button"
              className={activeQuick.includes(q.id) ? "on" : ""}
              aria-pressed={activeQuick.includes(q.id)}
              title={q.clause}
              onClick={() => onToggleQuick?.(q.id)}
            >
              {q.label}
            </button>
          ))}
        </div>
      )}
      {error && (
        <div className="filter-error" role="alert">
          {firstLine}
          {error.position !== null && (
            <pre data-testid="filter-caret">
              {value}
              {"\n"}
              {" ".repeat(Math.max(0, error.position))}^
            </pre>
          )}
        </div>
      )}
    </div>
  );
}
