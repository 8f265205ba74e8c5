// Compose the user's filter with quick filters into one string for the server, and map an
// error position in the composed string back into the text the user typed.

export interface QuickFilter {
  id: string;
  label: string;
  clause: string;
}

export function quickFilters(slowMs: number, feedbackNames: string[]): QuickFilter[] {
  const filters: QuickFilter[] = [
    { id: "errors", label: "Errors only", clause: "status = 'ERROR'" },
    { id: "slow", label: `Slow (> ${slowMs / 1000} s)`, clause: `execution_time_ms > ${slowMs}` },
  ];
  if (feedbackNames.length) {
    const quote = (name: string) => (/^[A-Za-z_][\w]*$/.test(name) ? name : "`" + name + "`");
    filters.push({
      id: "feedback",
      label: "Has feedback",
      clause: feedbackNames.map((n) => `feedback.${quote(n)} IS NOT NULL`).join(" OR "),
    });
  }
  return filters;
}

export function composeFilter(user: string, clauses: string[]): string {
  const typed = user.trim();
  if (!clauses.length) return typed;
  const parts = typed ? [`(${typed})`] : [];
  for (const clause of clauses) parts.push(`(${clause})`);
  return parts.join(" AND ");
}

/** The position in the typed text, or null when the error lies in a quick filter. */
export function userPosition(user: string, clauses: string[], position: number): number | null {
  const typed = user.trim();
  const offset = user.indexOf(typed);
  if (!clauses.length) return position + offset;
  if (!typed) return null;
  if (position >= 1 && position <= typed.length + 1) return Math.min(position - 1, typed.length) + offset;
  return null;
}

/** A string literal of the filter grammar (a doubled quote escapes a quote). */
export function quoteString(value: string): string {
  return "'" + value.replace(/'/g, "''") + "'";
}

/** The registry filter for names containing `text`, case-insensitively; "" for no text. */
export function nameContains(text: string): string {
  const typed = text.trim();
  return typed ? `name ILIKE ${quoteString("%" + typed + "%")}` : "";
}
