// Icon letters and colours by span type; unknown types fall back to UNKNOWN.
export const SPAN_TYPES: Record<string, { icon: string; color: string }> = {
  AGENT: { icon: "AG", color: "#7048e8" },
  CHAIN: { icon: "CH", color: "#1c7ed6" },
  LLM: { icon: "LM", color: "#0ca678" },
  CHAT_MODEL: { icon: "AI", color: "#2f9e44" },
  TOOL: { icon: "TL", color: "#f08c00" },
  RETRIEVER: { icon: "RT", color: "#e64980" },
  EMBEDDING: { icon: "EM", color: "#ae3ec9" },
  RERANKER: { icon: "RR", color: "#d6336c" },
  PARSER: { icon: "PA", color: "#5c940d" },
  MEMORY: { icon: "ME", color: "#1098ad" },
  GUARDRAIL: { icon: "GR", color: "#e8590c" },
  EVALUATOR: { icon: "EV", color: "#4263eb" },
  UNKNOWN: { icon: "··", color: "#868e96" },
};

export function spanStyle(type: string) {
  return SPAN_TYPES[type] ?? SPAN_TYPES.UNKNOWN;
}
