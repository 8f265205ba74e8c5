/** Registry aliases as chips: `@production → v3` (a map) or `@production` (a version's list). */
export function AliasChips({ aliases }: { aliases: Record<string, number> | string[] }) {
  const entries: [string, number | null][] = Array.isArray(aliases)
    ? aliases.map((a) => [a, null])
    : Object.entries(aliases);
  return (
    <>
      {entries.map(([alias, version]) => (
        <span className="alias" key={alias} data-testid="alias">
          @{alias}
          {version === null ? "" : ` → v${version}`}
        </span>
      ))}
    </>
  );
}

/** Tags as `key=value` chips. */
export function TagChips({ tags }: { tags: Record<string, string> }) {
  return (
    <>
      {Object.entries(tags).map(([k, v]) => (
        <span className="tag" key={k}>
          {k}={v}
        </span>
      ))}
    </>
  );
}
