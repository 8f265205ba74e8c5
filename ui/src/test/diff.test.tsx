import { cleanup, render, screen } from "@testing-library/react";
import { afterEach, describe, expect, it } from "vitest";
import { LineDiff } from "../components/LineDiff";
import { diffLines, diffStats } from "../lib/diff";
import { templateText, templateVariables } from "../lib/prompts";

afterEach(cleanup);

const compact = (before: string, after: string) =>
  diffLines(before, after).map((d) => (d.kind === "same" ? " " : d.kind === "add" ? "+" : "-") + d.text);

describe("line diff", () => {
  it("keeps common lines and marks removed and added ones, removals first", () => {
    expect(compact("a\nb\nc\nd", "a\nB\nc\nd\ne")).toEqual([" a", "-b", "+B", " c", " d", "+e"]);
  });

  it("numbers lines on both sides", () => {
    const diff = diffLines("one\ntwo", "zero\none\ntwo");
    expect(diff.map((d) => [d.kind, d.oldLine, d.newLine])).toEqual([
      ["add", null, 1],
      ["same", 1, 2],
      ["same", 2, 3],
    ]);
  });

  it("finds the longest common run of lines in a reordered middle", () => {
    expect(compact("x\n1\n2\n3\ny", "x\n3\n1\n2\ny")).toEqual([" x", "+3", " 1", " 2", "-3", " y"]);
  });

  it("handles empty texts and identical ones", () => {
    expect(compact("", "a")).toEqual(["+a"]);
    expect(compact("a", "")).toEqual(["-a"]);
    expect(compact("", "")).toEqual([]);
    expect(diffStats(diffLines("a\nb", "a\nb"))).toEqual({ added: 0, removed: 0 });
    expect(compact("a\r\nb", "a\nb")).toEqual([" a", " b"]);
  });

  it("stays linear on a huge rewrite", () => {
    const before = Array.from({ length: 5000 }, (_, i) => `old ${i}`).join("\n");
    const after = Array.from({ length: 5000 }, (_, i) => `new ${i}`).join("\n");
    expect(diffStats(diffLines(before, after))).toEqual({ added: 5000, removed: 5000 });
  });
});

describe("prompt templates", () => {
  it("diffs chat templates message by message and lists their variables", () => {
    const chat = [
      { role: "system", content: "You are {{ persona }}." },
      { role: "user", content: "{{question}} in {{ lang }}, {{ persona }}" },
    ];
    expect(templateText(chat)).toBe("[system]\nYou are {{ persona }}.\n\n[user]\n{{question}} in {{ lang }}, {{ persona }}");
    expect(templateVariables(chat)).toEqual(["persona", "question", "lang"]);
    expect(templateVariables("Hi {{ name }} {{ 1bad }}")).toEqual(["name"]);
  });

  it("renders the diff with its counts", () => {
    render(<LineDiff before={"Answer: {{ q }}"} after={"Answer briefly: {{ q }}\nCite sources."} />);
    expect(screen.getByTestId("diff-stats").textContent).toBe("+2 −1 lines");
    const kinds = [...screen.getByTestId("line-diff").querySelectorAll("tr")].map((tr) => tr.dataset.kind);
    expect(kinds).toEqual(["del", "add", "add"]);
  });
});
