import { useState } from "react";

function Node({ name, value, depth }: { name?: string; value: unknown; depth: number }) {
  const composite = value !== null && typeof value === "object";
  const [open, setOpen] = useState(depth < 2);
  const label = name === undefined ? null : <span className="k">{JSON.stringify(name)}: </span>;
  if (!composite) {
    let cls = "n";
    if (typeof value === "string") cls = "s";
    return (
      <div>
        {label}
        <span className={cls}>{JSON.stringify(value)}</span>
      </div>
    );
  }
  const entries: [string | undefined, unknown][] = Array.isArray(value)
    ? value.map((v) => [undefined, v])
    : Object.entries(value as Record<string, unknown>);
  const [l, r] = Array.isArray(value) ? ["[", "]"] : ["{", "}"];
  if (!entries.length) {
    return (
      <div>
        {label}
        {l}
        {r}
      </div>
    );
  }
  return (
    <div>
      <span className="toggle" onClick={() => setOpen(!open)} role="button" aria-expanded={open}>
        {open ? "▾ " : "▸ "}
      </span>
      {label}
      {l}
      {open ? (
        <>
          <div className="ind">
            {entries.map(([k, v], i) => (
              <Node key={k ?? i} name={k} value={v} depth={depth + 1} />
            ))}
          </div>
          {r}
        </>
      ) : (
        <span className="toggle" onClick={() => setOpen(true)}>
          {" "}
          {entries.length} {Array.isArray(value) ? "items" : "keys"} {r}
        </span>
      )}
    </div>
  );
}

/** Formatted, collapsible JSON with a copy button. */
export function JsonView({ value }: { value: unknown }) {
  const [copied, setCopied] = useState(false);
  const copy = () => {
    const text = typeof value === "string" ? value : JSON.stringify(value, null, 2);
    navigator.clipboard?.writeText(text).then(
      () => {
        setCopied(true);
        setTimeout(() => setCopied(false), 1200);
      },
      () => undefined,
    );
  };
  if (value === undefined || value === null) return <div className="muted">none</div>;
  return (
    <div className="json">
      <button className="copy" onClick={copy} title="Copy as JSON">
        {copied ? "Copied" : "Copy"}
      </button>
      <Node value={value} depth={0} />
    </div>
  );
}
