import { cleanup, render, screen } from "@testing-library/react";
import { afterEach, describe, expect, it } from "vitest";
import { ChatView, DocumentList } from "../components/ChatView";
import { SpanPanel } from "../components/SpanPanel";
import { extractChat, extractDocuments, parseAttachment } from "../lib/chat";
import type { Span } from "../types";

afterEach(cleanup);

const inputs = {
  model: "gpt-4o-mini",
  messages: [
    { role: "system", content: "Be brief." },
    { role: "user", content: "Where is order A-1?" },
    {
      role: "assistant",
      content: null,
      tool_calls: [{ id: "call_1", type: "function", function: { name: "lookup_order", arguments: '{"order_id":"A-1"}' } }],
    },
    { role: "tool", tool_call_id: "call_1", content: '{"status":"shipped"}' },
  ],
};
const outputs = { choices: [{ index: 0, message: { role: "assistant", content: "It has shipped." } }] };

describe("chat extraction", () => {
  it("reads OpenAI messages, tool calls, tool results and the reply", () => {
    const chat = extractChat(inputs, outputs)!;
    expect(chat.map((m) => m.role)).toEqual(["system", "user", "assistant", "tool", "assistant"]);
    expect(chat[2].toolCalls).toEqual([{ id: "call_1", name: "lookup_order", arguments: '{\n  "order_id": "A-1"\n}' }]);
    expect(chat[3].toolCallId).toBe("call_1");
    expect(chat[4].content).toBe("It has shipped.");
  });

  it("reads Anthropic-style content blocks", () => {
    const chat = extractChat(
      [{ role: "user", content: [{ type: "text", text: "hi" }] }],
      { type: "message", role: "assistant", content: [{ type: "tool_use", id: "t1", name: "search", input: { q: "x" } }] },
    )!;
    expect(chat[0].content).toBe("hi");
    expect(chat[1].toolCalls[0].name).toBe("search");
  });

  it("reads images stored as attachments, OpenAI and Anthropic style", () => {
    const sha = "ab".repeat(32);
    const ref = `tracemark-attachment:sha256:${sha}?type=image/png&size=2048`;
    const chat = extractChat(
      [
        {
          role: "user",
          content: [
            { type: "text", text: "What is this?" },
            { type: "image_url", image_url: { url: ref } },
            { type: "image", source: { type: "base64", media_type: "image/png", data: ref } },
            { type: "image_url", image_url: { url: "https://example.com/cat.png" } },
          ],
        },
      ],
      null,
    )!;
    expect(chat[0].content).toBe("What is this?\n[image]");
    expect(chat[0].images).toEqual([
      { sha256: sha, mediaType: "image/png", size: 2048 },
      { sha256: sha, mediaType: "image/png", size: 2048 },
    ]);
    expect(parseAttachment("[image/png base64: 8 bytes, sha256:00]")).toBeNull();
  });

  it("returns null for payloads that are not chats", () => {
    expect(extractChat({ query: "x" }, [{ page_content: "doc" }])).toBeNull();
    expect(extractChat({ role: "nobody", content: "x" }, null)).toBeNull();
  });

  it("reads retriever documents", () => {
    const docs = extractDocuments([{ id: "d1", page_content: "30 days", metadata: { score: 0.9, source: "a.md" } }])!;
    expect(docs[0]).toMatchObject({ id: "d1", content: "30 days", score: 0.9 });
    expect(extractDocuments([{ other: 1 }])).toBeNull();
  });
});

describe("chat rendering", () => {
  it("renders roles, tool calls and tool results as a conversation", () => {
    render(<ChatView messages={extractChat(inputs, outputs)!} />);
    const roles = [...document.querySelectorAll(".msg")].map((m) => m.getAttribute("data-role"));
    expect(roles).toEqual(["system", "user", "assistant", "tool", "assistant"]);
    expect(screen.getByTestId("tool-call").textContent).toContain("calls lookup_order");
    expect(screen.getByText("It has shipped.")).toBeTruthy();
    expect(screen.getByText(/result of call_1/)).toBeTruthy();
  });

  it("loads attachment images from the trace's attachments endpoint", () => {
    const sha = "cd".repeat(32);
    const messages = extractChat(
      [{ role: "user", content: [{ type: "image_url", image_url: { url: `tracemark-attachment:sha256:${sha}?type=image/jpeg&size=10` } }] }],
      null,
    )!;
    render(<ChatView messages={messages} traceId={"f".repeat(32)} />);
    const img = screen.getByRole("img");
    expect(img.getAttribute("src")).toBe(`/api/v1/traces/${"f".repeat(32)}/attachments/${sha}`);
    expect(img.getAttribute("alt")).toBe("image (image/jpeg, 10 B)");
    cleanup();
    render(<ChatView messages={messages} />);
    expect(screen.queryByRole("img")).toBeNull();
    expect(screen.getByText("[image: image/jpeg, 10 B]")).toBeTruthy();
  });

  it("renders documents with their metadata", () => {
    render(<DocumentList documents={extractDocuments([{ id: "d1", page_content: "30 days", metadata: { source: "a.md" } }])!} />);
    expect(screen.getByText("30 days")).toBeTruthy();
    expect(screen.getByText("source: a.md")).toBeTruthy();
  });

  it("opens a chat span on the Chat tab and shows exceptions with their stack", () => {
    const span: Span = {
      trace_id: "t".repeat(32),
      span_id: "s".repeat(16),
      parent_id: null,
      name: "answer",
      span_type: "CHAT_MODEL",
      start_time_ns: 0,
      end_time_ns: 2_000_000,
      status_code: "ERROR",
      status_message: "boom",
      inputs,
      outputs,
      attributes: { "gen_ai.usage.input_tokens": 12, "gen_ai.usage.output_tokens": 3, "gen_ai.request.model": "gpt-4o-mini" },
      events: [
        {
          name: "exception",
          timestamp_ns: 1,
          attributes: { "exception.type": "TimeoutError", "exception.message": "slow", "exception.stacktrace": "Traceback: line 1" },
        },
      ],
    };
    render(<SpanPanel span={span} />);
    expect(screen.getByRole("tab", { selected: true }).textContent).toBe("Chat");
    expect(screen.getByText("It has shipped.")).toBeTruthy();
    expect(screen.getByTestId("exception").textContent).toContain("Traceback: line 1");
    expect(screen.getByText("12 in · 3 out")).toBeTruthy();
  });
});
