// Recognise chat payloads (OpenAI-style messages, also Anthropic-style content blocks) and
// retriever documents in span inputs and outputs, normalised for rendering.

export interface ToolCall {
  id?: string;
  name: string;
  arguments: string;
}

/** An image a message sent, stored as an attachment of the trace (see `parseAttachment`). */
export interface ChatImage {
  sha256: string;
  mediaType: string;
  size?: number;
}

export interface ChatMessage {
  role: string;
  content: string;
  name?: string;
  toolCalls: ToolCall[];
  toolCallId?: string;
  images: ChatImage[];
}

export interface Document {
  id?: string;
  content: string;
  metadata: Record<string, unknown>;
  score?: number;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

const ATTACHMENT = /^tracemark-attachment:sha256:([0-9a-f]{64})(?:\?type=([^&\s]*)(?:&size=(\d+))?)?$/;

/**
 * The attachment a span payload refers to in place of inline media, such as
 * `tracemark-attachment:sha256:<hex>?type=image/png&size=48213`, or null.
 */
export function parseAttachment(value: unknown): ChatImage | null {
  if (typeof value !== "string") return null;
  const found = ATTACHMENT.exec(value);
  if (!found) return null;
  return {
    sha256: found[1],
    mediaType: found[2] || "application/octet-stream",
    size: found[3] === undefined ? undefined : Number(found[3]),
  };
}

/** The stored image of a content part: OpenAI `image_url` or an Anthropic `image` block. */
function partImage(part: Obj): ChatImage | null {
  if (part.type === "image_url") {
    const url = isObj(part.image_url) ? part.image_url.url : part.image_url;
    return parseAttachment(url);
  }
  if (part.type === "image" && isObj(part.source)) return parseAttachment(part.source.data);
  if (part.type === "input_image") return parseAttachment(part.image_url);
  return null;
}

function images(content: unknown): ChatImage[] {
  if (!Array.isArray(content)) return [];
  const found: ChatImage[] = [];
  for (const part of content) {
    const image = isObj(part) ? partImage(part) : null;
    if (image?.mediaType.startsWith("image/")) found.push(image);
  }
  return found;
}

function text(content: unknown): string {
  if (content === null || content === undefined) return "";
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    return content
      .map((part) => {
        if (typeof part === "string") return part;
        if (isObj(part)) {
          if (typeof part.text === "string") return part.text;
          if (partImage(part)?.mediaType.startsWith("image/")) return ""; // shown as an image
          if (part.type === "image_url") return "[image]";
          if (part.type === "tool_result") return text(part.content);
        }
        return "";
      })
      .filter(Boolean)
      .join("\n");
  }
  return JSON.stringify(content, null, 2);
}

function args(value: unknown): string {
  if (typeof value === "string") {
    try {
      return JSON.stringify(JSON.parse(value), null, 2);
    } catch {
      return value;
    }
  }
  return JSON.stringify(value ?? {}, null, 2);
}

function toolCalls(msg: Obj): ToolCall[] {
  const calls: ToolCall[] = [];
  if (Array.isArray(msg.tool_calls)) {
    for (const call of msg.tool_calls) {
      if (!isObj(call)) continue;
      const fn = isObj(call.function) ? call.function : call;
      calls.push({
        id: typeof call.id === "string" ? call.id : undefined,
        name: String(fn.name ?? "tool"),
        arguments: args(fn.arguments ?? fn.args),
      });
    }
  }
  if (Array.isArray(msg.content)) {
    for (const block of msg.content) {
      if (isObj(block) && block.type === "tool_use") {
        calls.push({ id: block.id as string, name: String(block.name), arguments: args(block.input) });
      }
    }
  }
  return calls;
}

const ROLES = new Set(["system", "user", "assistant", "tool", "function", "developer", "model"]);

export function asMessage(value: unknown): ChatMessage | null {
  if (!isObj(value) || typeof value.role !== "string" || !ROLES.has(value.role)) return null;
  if (!("content" in value) && !("tool_calls" in value)) return null;
  let toolCallId = typeof value.tool_call_id === "string" ? value.tool_call_id : undefined;
  if (!toolCallId && Array.isArray(value.content)) {
    const result = value.content.find((b) => isObj(b) && b.type === "tool_result") as Obj | undefined;
    if (result) toolCallId = String(result.tool_use_id ?? "");
  }
  return {
    role: value.role,
    content: text(value.content),
    name: typeof value.name === "string" ? value.name : undefined,
    toolCalls: toolCalls(value),
    toolCallId,
    images: images(value.content),
  };
}

function asMessages(value: unknown): ChatMessage[] | null {
  if (!Array.isArray(value) || value.length === 0) return null;
  const messages = value.map(asMessage);
  return messages.every((m): m is ChatMessage => m !== null) ? messages : null;
}

/** The conversation a span carries: input messages followed by the reply, or null. */
export function extractChat(inputs: unknown, outputs: unknown): ChatMessage[] | null {
  let input = asMessages(inputs);
  if (!input && isObj(inputs)) {
    input = asMessages(inputs.messages) ?? asMessages(inputs.input);
    if (!input) {
      for (const value of Object.values(inputs)) {
        input = asMessages(value);
        if (input) break;
      }
    }
  }
  const output = extractReply(outputs);
  if (!input && !output) return null;
  return [...(input ?? []), ...(output ?? [])];
}

function extractReply(outputs: unknown): ChatMessage[] | null {
  const single = asMessage(outputs);
  if (single) return [single];
  const many = asMessages(outputs);
  if (many) return many;
  if (isObj(outputs)) {
    if (Array.isArray(outputs.choices)) {
      const messages = outputs.choices
        .map((c) => (isObj(c) ? asMessage(c.message) : null))
        .filter((m): m is ChatMessage => m !== null);
      if (messages.length) return messages;
    }
    if (outputs.type === "message" && Array.isArray(outputs.content)) {
      return [asMessage({ role: outputs.role ?? "assistant", content: outputs.content })!];
    }
    const nested = asMessage(outputs.message) ?? null;
    if (nested) return [nested];
    if (Array.isArray(outputs.messages)) return asMessages(outputs.messages);
  }
  return null;
}

/** Retriever documents (`page_content`, `metadata`, `id`), or null. */
export function extractDocuments(outputs: unknown): Document[] | null {
  const list = Array.isArray(outputs)
    ? outputs
    : isObj(outputs) && Array.isArray(outputs.documents)
      ? outputs.documents
      : null;
  if (!list || list.length === 0) return null;
  const docs: Document[] = [];
  for (const item of list) {
    if (!isObj(item)) return null;
    const content = item.page_content ?? item.content ?? item.text;
    if (typeof content !== "string") return null;
    const metadata = isObj(item.metadata) ? item.metadata : {};
    const score = typeof item.score === "number" ? item.score : (metadata.score as number | undefined);
    docs.push({ id: item.id === undefined ? undefined : String(item.id), content, metadata, score });
  }
  return docs;
}
