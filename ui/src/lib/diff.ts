// A line diff for prompt versions: the longest common subsequence of lines, with the common
// head and tail trimmed first so a small edit to a long prompt stays cheap.

export interface DiffLine {
  kind: "same" | "add" | "del";
  text: string;
  /** 1-based line numbers in the old and new text (null on the side without the line). */
  oldLine: number | null;
  newLine: number | null;
}

/** Beyond this many cells of the LCS table, the changed middle shows as removed then added. */
const MAX_CELLS = 4_000_000;

function lines(text: string): string[] {
  return text === "" ? [] : text.replace(/\r\n/g, "\n").split("\n");
}

export function diffLines(oldText: string, newText: string): DiffLine[] {
  const a = lines(oldText);
  const b = lines(newText);
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (tail < a.length - head && tail < b.length - head && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++;

  const out: DiffLine[] = [];
  let i = 0;
  let j = 0;
  const same = () => out.push({ kind: "same", text: a[i], oldLine: ++i, newLine: ++j });
  const del = () => out.push({ kind: "del", text: a[i], oldLine: ++i, newLine: null });
  const add = () => out.push({ kind: "add", text: b[j], oldLine: null, newLine: ++j });

  while (i < head) same();
  const n = a.length - head - tail;
  const m = b.length - head - tail;
  if (n * m > MAX_CELLS) {
    for (let k = 0; k < n; k++) del();
    for (let k = 0; k < m; k++) add();
  } else {
    // lcs[x * (m + 1) + y]: the LCS length of the middles of a from x and b from y.
    const lcs = new Uint32Array((n + 1) * (m + 1));
    for (let x = n - 1; x >= 0; x--) {
      for (let y = m - 1; y >= 0; y--) {
        lcs[x * (m + 1) + y] =
          a[head + x] === b[head + y]
            ? lcs[(x + 1) * (m + 1) + y + 1] + 1
            : Math.max(lcs[(x + 1) * (m + 1) + y], lcs[x * (m + 1) + y + 1]);
      }
    }
    let x = 0;
    let y = 0;
    while (x < n || y < m) {
      if (x < n && y < m && a[head + x] === b[head + y]) {
        same();
        x++;
        y++;
      } else if (y >= m || (x < n && lcs[(x + 1) * (m + 1) + y] >= lcs[x * (m + 1) + y + 1])) {
        del();
        x++;
      } else {
        add();
        y++;
      }
    }
  }
  while (i < a.length) same();
  return out;
}

export function diffStats(diff: DiffLine[]): { added: number; removed: number } {
  return {
    added: diff.filter((d) => d.kind === "add").length,
    removed: diff.filter((d) => d.kind === "del").length,
  };
}
