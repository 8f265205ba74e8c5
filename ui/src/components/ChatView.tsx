import { api } from "../api";
import type { ChatImage, ChatMessage, Document } from "../lib/chat";
import { formatBytes, formatValue } from "../lib/format";

function imageLabel(image: ChatImage): string {
  return image.size === undefined ? image.mediaType : `${image.mediaType}, ${formatBytes(image.size)}`;
}

/**
 * A conversation. With `traceId`, the images its messages sent are loaded from that trace's
 * attachments; without it they are named only.
 */
export function ChatView({ messages, traceId }: { messages: ChatMessage[]; traceId?: string }) {
  return (
    <div className="chat" aria-label="conversation">
      {messages.map((m, i) => (
        <div key={i} className={`msg ${m.role}`} data-role={m.role}>
          <div className="role">
            {m.role}
            {m.name ? ` · ${m.name}` : ""}
            {m.toolCallId ? ` · result of ${m.toolCallId}` : ""}
          </div>
          {m.content && <div className="content">{m.content}</div>}
          {m.images.length > 0 && (
            <div className="chat-images">
              {m.images.map((image, j) =>
                traceId ? (
                  <a key={j} href={api.attachmentUrl(traceId, image.sha256)} target="_blank" rel="noreferrer">
                    <img
                      className="chat-image"
                      src={api.attachmentUrl(traceId, image.sha256)}
                      alt={`image (${imageLabel(image)})`}
                      title={imageLabel(image)}
                      loading="lazy"
                    />
                  </a>
                ) : (
                  <span key={j} className="muted small">
                    [image: {imageLabel(image)}]
                  </span>
                ),
              )}
            </div>
          )}
          {m.toolCalls.map((call, j) => (
            <div key={j} className="toolcall" data-testid="tool-call">
              <div>
                <b>calls {call.name}</b>
                {call.id ? <span className="muted small"> ({call.id})</span> : null}
              </div>
              <pre>{call.arguments}</pre>
            </div>
          ))}
        </div>
      ))}
    </div>
  );
}

export function DocumentList({ documents }: { documents: Document[] }) {
  return (
    <div className="docs">
      {documents.map((d, i) => (
        <div className="doc" key={d.id ?? i}>
          <div className="row">
            <b>#{i + 1}</b>
            {d.id && <span className="mono muted">{d.id}</span>}
            {d.score !== undefined && <span className="badge">score {d.score.toFixed(3)}</span>}
          </div>
          <div style={{ whiteSpace: "pre-wrap" }}>{d.content}</div>
          {Object.keys(d.metadata).length > 0 && (
            <div className="meta">
              {Object.entries(d.metadata).map(([k, v]) => (
                <span key={k} className="tag">
                  {k}: {formatValue(v)}
                </span>
              ))}
            </div>
          )}
        </div>
      ))}
    </div>
  );
}
