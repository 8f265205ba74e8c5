// Prompt templates as the registry stores them: text, or a list of chat messages, with
// {{ variable }} placeholders (the same rule as src/tracemark/entities/prompt.py).
import type { PromptTemplate } from "../types";

const PLACEHOLDER = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;

function contents(template: PromptTemplate): string[] {
  if (typeof template === "string") return [template];
  return template.map((m) => m.content).filter((c): c is string => typeof c === "string");
}

/** The placeholder names of a template, in order of first appearance. */
export function templateVariables(template: PromptTemplate): string[] {
  const names: string[] = [];
  for (const text of contents(template)) {
    for (const match of text.matchAll(PLACEHOLDER)) {
      if (!names.includes(match[1])) names.push(match[1]);
    }
  }
  return names;
}

/** The template as text to diff: a chat template becomes one "[role]" block per message. */
export function templateText(template: PromptTemplate): string {
  if (typeof template === "string") return template;
  return template
    .map((m) => {
      const content = typeof m.content === "string" ? m.content : JSON.stringify(m.content ?? null, null, 2);
      return `[${String(m.role ?? "message")}]\n${content}`;
    })
    .join("\n\n");
}
