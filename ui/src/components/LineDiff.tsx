import { useMemo } from "react";
import { diffLines, diffStats } from "../lib/diff";

/** A unified line diff of two texts, with line numbers on both sides. */
export function LineDiff({ before, after }: { before: string; after: string }) {
  const diff = useMemo(() => diffLines(before, after), [before, after]);
  const { added, removed } = diffStats(diff);
  return (
    <div data-testid="line-diff">
      <div className="muted small" data-testid="diff-stats">
        {added || removed ? `+${added} −${removed} lines` : "No differences."}
      </div>
      <table className="diff">
        <tbody>
          {diff.map((d, i) => (
            <tr key={i} className={d.kind} data-kind={d.kind}>
              <td className="ln">{d.oldLine ?? ""}</td>
              <td className="ln">{d.newLine ?? ""}</td>
              <td className="mark">{d.kind === "add" ? "+" : d.kind === "del" ? "−" : " "}</td>
              <td className="text">{d.text}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
