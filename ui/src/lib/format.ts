// Formatting of durations, counts, money and times: one place so every page agrees.

export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "–";
  if (ms < 1) return `${(ms * 1000).toFixed(0)} µs`;
  if (ms < 1000) return `${ms < 10 ? ms.toFixed(1) : ms.toFixed(0)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(2)} s`;
  const minutes = Math.floor(ms / 60_000);
  return `${minutes} min ${Math.round((ms % 60_000) / 1000)} s`;
}

export function formatNumber(n: number | null | undefined): string {
  if (n === null || n === undefined) return "–";
  return n.toLocaleString("en-US", { maximumFractionDigits: 4 });
}

export function formatCost(n: number | null | undefined): string {
  if (n === null || n === undefined) return "–";
  return n < 0.01 ? `$${n.toFixed(5)}` : `$${n.toFixed(4)}`;
}

export function formatTime(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "–";
  const d = new Date(ms);
  const pad = (x: number) => String(x).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function formatRelative(ms: number, now: number = Date.now()): string {
  const s = Math.round((now - ms) / 1000);
  if (s < 60) return `${Math.max(s, 0)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

/** A one-line preview of a JSON payload preview: the text a person would recognise. */
export function previewText(preview: string | null | undefined, max = 160): string {
  if (!preview) return "";
  let text = preview;
  try {
    text = summarize(JSON.parse(preview));
  } catch {
    // a truncated or plain-text preview: show it as it is
  }
  text = text.replace(/\s+/g, " ").trim();
  return text.length > max ? text.slice(0, max - 1) + "…" : text;
}

function summarize(value: unknown): string {
  if (typeof value === "string") return value;
  if (Array.isArray(value)) {
    const last = value[value.length - 1];
    if (last && typeof last === "object" && "content" in last) return summarize(last);
    return JSON.stringify(value);
  }
  if (value && typeof value === "object") {
    const obj = value as Record<string, unknown>;
    if (Array.isArray(obj.messages)) return summarize(obj.messages);
    if (Array.isArray(obj.choices) && obj.choices.length) {
      const choice = obj.choices[0] as Record<string, unknown>;
      if (choice.message) return summarize(choice.message);
    }
    if ("content" in obj && typeof obj.content === "string") return obj.content;
    const keys = Object.keys(obj);
    if (keys.length === 1) return summarize(obj[keys[0]]);
    for (const key of ["question", "query", "input", "answer", "output", "text", "response"]) {
      if (typeof obj[key] === "string") return obj[key] as string;
    }
  }
  return JSON.stringify(value);
}

export function shortId(id: string, n = 8): string {
  return id.length > n ? id.slice(0, n) : id;
}

export function formatValue(value: unknown): string {
  if (value === null || value === undefined) return "–";
  if (typeof value === "string") return value;
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "number") return formatNumber(value);
  return JSON.stringify(value);
}

export function formatBytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return "–";
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / (1024 * 1024)).toFixed(1)} MB`;
}
