"""A scriptable fake of the OpenAI and Anthropic HTTP APIs on 127.0.0.1, for tests and benches.

Test an application's LLM calls, or an evaluation's judges, without a network or an API key.

The real SDKs talk to it over real HTTP:

    with FakeLLMServer() as server:
        server.reply(text="Hello!", input_tokens=12, output_tokens=3)
        client = openai.OpenAI(base_url=server.openai_url, api_key="test", max_retries=0)
        client.chat.completions.create(model="gpt-4o-mini", messages=[...])
        server.requests[-1].body["messages"]      # what the SDK sent

Endpoints: `POST /v1/chat/completions` (JSON, or SSE with `stream`, usage chunk with
`stream_options.include_usage`), `POST /v1/responses` (JSON or SSE events),
`POST /v1/embeddings`, and Anthropic's `POST /v1/messages` (JSON or SSE events).

Each request takes the reply of `responder(request)` when one is set and it answers, else
the next scripted `Reply` (`reply`, `fail`), or the default reply when none is queued. A
reply may carry tool calls, an HTTP error status, or a delay (to provoke client timeouts).
Run it as a program (`python -m tracemark.testing.llm_server --port 8000`) to serve on a
fixed port.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FakeLLMServer", "Reply", "Request", "ToolCall"]


@dataclass
class ToolCall:
    """A tool call the fake model makes."""

    name: str
    arguments: dict[str, Any]
    id: str = "call_1"


@dataclass
class Reply:
    """What the fake model answers to one request.

    Attributes:
        text: The assistant's text.
        tool_calls: Tool calls to make (then the finish reason is `tool_calls`/`tool_use`).
        input_tokens: Reported input (prompt) tokens, cached ones included.
        output_tokens: Reported output (completion) tokens.
        cached_tokens: Input tokens reported as read from the prompt cache.
        model: The model reported; the requested one when None.
        status: An HTTP status >= 400 makes this an error reply.
        error_message: The error's message.
        delay: Seconds to wait before answering.
        chunk_chars: Stream the text in pieces of this many characters.
    """

    text: str = "Hello from the fake model."
    tool_calls: list[ToolCall] = field(default_factory=list)
    input_tokens: int = 10
    output_tokens: int = 5
    cached_tokens: int = 0
    model: str | None = None
    status: int = 200
    error_message: str = "injected error"
    delay: float = 0.0
    chunk_chars: int = 6


@dataclass
class Request:
    """One request the server received."""

    path: str
    body: dict[str, Any]
    headers: dict[str, str]


class FakeLLMServer:
    """The fake server; a context manager that serves on a free loopback port in a thread.

    Args:
        port: The port; 0 picks a free one.
    """

    def __init__(self, port: int = 0) -> None:
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        self.requests: list[Request] = []
        self.record_requests = True
        self.default = Reply()
        # Called with each request before the queue is consulted; a Reply it returns wins.
        # Lets concurrent callers (judges, evaluation workers) get answers by content.
        self.responder: Callable[[Request], Reply | None] | None = None
        server = _Server(("127.0.0.1", port), _Handler)
        server.fake = self  # type: ignore[attr-defined]
        self._server = server
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """`http://127.0.0.1:<port>`: the Anthropic client's `base_url`."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def openai_url(self) -> str:
        """`http://127.0.0.1:<port>/v1`: the OpenAI client's `base_url`."""
        return self.url + "/v1"

    def start(self) -> FakeLLMServer:
        """Serve in a daemon thread."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fake-llm-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reply(self, reply: Reply | None = None, /, **fields: Any) -> Reply:
        """Queue the answer to the next request (a `Reply`, or its fields as keywords)."""
        reply = reply or Reply(**fields)
        with self._lock:
            self._queue.append(reply)
        return reply

    def fail(self, status: int = 500, message: str = "injected error", times: int = 1) -> None:
        """Queue `times` error answers with this HTTP status."""
        for _ in range(times):
            self.reply(status=status, error_message=message)

    def next_reply(self) -> Reply:
        """Take the next queued reply, or the default one."""
        with self._lock:
            return self._queue.popleft() if self._queue else self.default

    def clear(self) -> None:
        """Forget queued replies and recorded requests."""
        with self._lock:
            self._queue.clear()
            self.requests.clear()


# -- rendering a reply in each API's format ------------------------------------------------


def _pieces(text: str, size: int) -> list[str]:
    size = max(1, size)
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _chat_completion(body: dict[str, Any], reply: Reply, model: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": tc.id,
                "type": "function",
                "function": {"name": tc.name, "arguments": json.dumps(tc.arguments)},
            }
            for tc in reply.tool_calls
        ]
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "tool_calls" if reply.tool_calls else "stop",
                "logprobs": None,
            }
        ],
        "usage": _chat_usage(reply),
        "service_tier": "default",
        "system_fingerprint": "fp_fake",
    }


def _chat_usage(reply: Reply) -> dict[str, Any]:
    return {
        "prompt_tokens": reply.input_tokens,
        "completion_tokens": reply.output_tokens,
        "total_tokens": reply.input_tokens + reply.output_tokens,
        "prompt_tokens_details": {"cached_tokens": reply.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    }


def _chat_chunks(body: dict[str, Any], reply: Reply, model: str) -> list[dict[str, Any]]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        }

    chunks = [chunk({"role": "assistant", "content": ""})]
    if reply.text:
        chunks += [chunk({"content": piece}) for piece in _pieces(reply.text, reply.chunk_chars)]
    for i, tc in enumerate(reply.tool_calls):
        arguments = json.dumps(tc.arguments)
        half = len(arguments) // 2
        chunks.append(
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": i,
                            "id": tc.id,
                            "type": "function",
                            "function": {"name": tc.name, "arguments": arguments[:half]},
                        }
                    ]
                }
            )
        )
        chunks.append(
            chunk({"tool_calls": [{"index": i, "function": {"arguments": arguments[half:]}}]})
        )
    chunks.append(chunk({}, "tool_calls" if reply.tool_calls else "stop"))
    if (body.get("stream_options") or {}).get("include_usage"):
        last = chunk({})
        last["choices"] = []
        last["usage"] = _chat_usage(reply)
        chunks.append(last)
    return chunks


def _response(body: dict[str, Any], reply: Reply, model: str, status: str) -> dict[str, Any]:
    output: list[dict[str, Any]] = []
    if reply.text:
        output.append(
            {
                "id": "msg_fake",
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": reply.text, "annotations": []}],
            }
        )
    for tc in reply.tool_calls:
        output.append(
            {
                "id": f"fc_{tc.id}",
                "type": "function_call",
                "call_id": tc.id,
                "name": tc.name,
                "arguments": json.dumps(tc.arguments),
                "status": "completed",
            }
        )
    return {
        "id": "resp_fake",
        "object": "response",
        "created_at": 1_700_000_000,
        "status": status,
        "model": model,
        "output": output if status == "completed" else [],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": body.get("tools", []),
        "usage": {
            "input_tokens": reply.input_tokens,
            "input_tokens_details": {"cached_tokens": reply.cached_tokens},
            "output_tokens": reply.output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": reply.input_tokens + reply.output_tokens,
        }
        if status == "completed"
        else None,
    }


def _response_events(body: dict[str, Any], reply: Reply, model: str) -> list[tuple[str, Any]]:
    events: list[tuple[str, Any]] = [
        ("response.created", {"response": _response(body, reply, model, "in_progress")}),
    ]
    if reply.text:
        events.append(
            (
                "response.output_item.added",
                {
                    "output_index": 0,
                    "item": {
                        "id": "msg_fake",
                        "type": "message",
                        "role": "assistant",
                        "status": "in_progress",
                        "content": [],
                    },
                },
            )
        )
        part = {"type": "output_text", "text": "", "annotations": []}
        events.append(
            (
                "response.content_part.added",
                {"item_id": "msg_fake", "output_index": 0, "content_index": 0, "part": part},
            )
        )
        for piece in _pieces(reply.text, reply.chunk_chars):
            events.append(
                (
                    "response.output_text.delta",
                    {
                        "item_id": "msg_fake",
                        "output_index": 0,
                        "content_index": 0,
                        "delta": piece,
                        "logprobs": [],
                    },
                )
            )
        events.append(
            (
                "response.output_text.done",
                {
                    "item_id": "msg_fake",
                    "output_index": 0,
                    "content_index": 0,
                    "text": reply.text,
                    "logprobs": [],
                },
            )
        )
        done_part = {**part, "text": reply.text}
        events.append(
            (
                "response.content_part.done",
                {"item_id": "msg_fake", "output_index": 0, "content_index": 0, "part": done_part},
            )
        )
        message = _response(body, reply, model, "completed")["output"][0]
        events.append(("response.output_item.done", {"output_index": 0, "item": message}))
    events.append(("response.completed", {"response": _response(body, reply, model, "completed")}))
    for i, (kind, data) in enumerate(events):
        data["type"] = kind
        data["sequence_number"] = i
    return events


def _embeddings(body: dict[str, Any], reply: Reply, model: str) -> dict[str, Any]:
    inputs = body.get("input")
    texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
    dims = int(body.get("dimensions") or 8)
    data = []
    for i, text in enumerate(texts):
        seed = hashlib.sha256(json.dumps(text).encode()).digest()
        vector = [
            ((seed[(j * 2) % 32] * 256 + seed[(j * 2 + 1) % 32]) / 65535.0) for j in range(dims)
        ]
        if body.get("encoding_format") == "base64":
            import base64

            value: Any = base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode()
        else:
            value = vector
        data.append({"object": "embedding", "index": i, "embedding": value})
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": reply.input_tokens, "total_tokens": reply.input_tokens},
    }


def _anthropic_usage(reply: Reply) -> dict[str, Any]:
    return {
        "input_tokens": reply.input_tokens - reply.cached_tokens,
        "output_tokens": reply.output_tokens,
        "cache_read_input_tokens": reply.cached_tokens,
        "cache_creation_input_tokens": 0,
    }


def _anthropic_content(reply: Reply) -> list[dict[str, Any]]:
    content: list[dict[str, Any]] = []
    if reply.text:
        content.append({"type": "text", "text": reply.text})
    for tc in reply.tool_calls:
        content.append({"type": "tool_use", "id": tc.id, "name": tc.name, "input": tc.arguments})
    return content


def _anthropic_message(body: dict[str, Any], reply: Reply, model: str) -> dict[str, Any]:
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": _anthropic_content(reply),
        "stop_reason": "tool_use" if reply.tool_calls else "end_turn",
        "stop_sequence": None,
        "usage": _anthropic_usage(reply),
    }


def _anthropic_events(body: dict[str, Any], reply: Reply, model: str) -> list[tuple[str, Any]]:
    start = _anthropic_message(body, reply, model)
    start.update(content=[], stop_reason=None)
    start["usage"] = {**_anthropic_usage(reply), "output_tokens": 1}
    events: list[tuple[str, Any]] = [("message_start", {"message": start})]
    index = 0
    if reply.text:
        events.append(
            (
                "content_block_start",
                {"index": index, "content_block": {"type": "text", "text": ""}},
            )
        )
        events.append(("ping", {}))
        for piece in _pieces(reply.text, reply.chunk_chars):
            events.append(
                (
                    "content_block_delta",
                    {"index": index, "delta": {"type": "text_delta", "text": piece}},
                )
            )
        events.append(("content_block_stop", {"index": index}))
        index += 1
    for tc in reply.tool_calls:
        events.append(
            (
                "content_block_start",
                {
                    "index": index,
                    "content_block": {
                        "type": "tool_use",
                        "id": tc.id,
                        "name": tc.name,
                        "input": {},
                    },
                },
            )
        )
        arguments = json.dumps(tc.arguments)
        half = len(arguments) // 2
        for piece in (arguments[:half], arguments[half:]):
            events.append(
                (
                    "content_block_delta",
                    {"index": index, "delta": {"type": "input_json_delta", "partial_json": piece}},
                )
            )
        events.append(("content_block_stop", {"index": index}))
        index += 1
    events.append(
        (
            "message_delta",
            {
                "delta": {
                    "stop_reason": "tool_use" if reply.tool_calls else "end_turn",
                    "stop_sequence": None,
                },
                "usage": {"output_tokens": reply.output_tokens},
            },
        )
    )
    events.append(("message_stop", {}))
    for kind, data in events:
        data["type"] = kind
    return events


def _error_body(path: str, reply: Reply) -> dict[str, Any]:
    if path == "/v1/messages":
        kind = {429: "rate_limit_error", 529: "overloaded_error"}.get(reply.status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": reply.error_message}}
    kind = "rate_limit_exceeded" if reply.status == 429 else "server_error"
    return {"error": {"message": reply.error_message, "type": kind, "param": None, "code": kind}}


# -- HTTP ------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return  # a client hung up (closed a stream early, timed out): not our error
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real APIs do
    server_version = "FakeLLM/1.0"
    # Headers and body go out in separate writes; with Nagle's algorithm on, the body
    # would wait for the client's delayed ACK (40 ms per response).
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass  # quiet

    @property
    def fake(self) -> FakeLLMServer:
        return self.server.fake  # type: ignore[attr-defined]

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            self._send_json(400, {"error": {"message": "invalid JSON"}})
            return
        path = self.path.split("?", 1)[0]
        fake = self.fake
        if fake.record_requests:
            with fake._lock:
                fake.requests.append(Request(path, body, dict(self.headers)))
        if path not in (
            "/v1/chat/completions",
            "/v1/responses",
            "/v1/embeddings",
            "/v1/messages",
        ):
            self._send_json(404, {"error": {"message": f"no route {path}"}})
            return
        reply = None
        if fake.responder is not None:
            try:
                reply = fake.responder(Request(path, body, dict(self.headers)))
            except Exception as exc:  # a broken script is a 500 with the reason
                reply = Reply(status=500, error_message=f"responder failed: {exc!r}")
        if reply is None:
            reply = fake.next_reply()
        if reply.delay:
            time.sleep(reply.delay)
        if reply.status >= 400:
            self._send_json(reply.status, _error_body(path, reply))
            return
        model = reply.model or body.get("model") or "fake-model"
        stream = bool(body.get("stream"))
        if path == "/v1/chat/completions":
            if stream:
                self._send_sse([(None, c) for c in _chat_chunks(body, reply, model)], done=True)
            else:
                self._send_json(200, _chat_completion(body, reply, model))
        elif path == "/v1/responses":
            if stream:
                self._send_sse(_response_events(body, reply, model))
            else:
                self._send_json(200, _response(body, reply, model, "completed"))
        elif path == "/v1/embeddings":
            self._send_json(200, _embeddings(body, reply, model))
        elif stream:
            self._send_sse(_anthropic_events(body, reply, model))
        else:
            self._send_json(200, _anthropic_message(body, reply, model))

    def _send_json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if status == 429:
            self.send_header("Retry-After", "0")
        self.end_headers()
        self.wfile.write(data)

    def _send_sse(self, events: list[tuple[str | None, Any]], done: bool = False) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for name, data in events:
            text = (f"event: {name}\n" if name else "") + f"data: {json.dumps(data)}\n\n"
            self._chunk(text.encode())
        if done:
            self._chunk(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%X\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the fake LLM API on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--no-record", action="store_true", help="do not keep requests")
    parser.add_argument("--text", help="the text of every answer")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    args = parser.parse_args()
    server = FakeLLMServer(args.port)
    if args.text is not None:
        server.default.text = args.text
    server.default.delay = args.delay
    server.record_requests = not args.no_record
    print(server.url, flush=True)
    try:
        server._server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server._server.server_close()


if __name__ == "__main__":
    main()
