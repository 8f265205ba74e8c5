"""A small OpenAI-compatible server on 127.0.0.1, for tests that drive the real `openai` client.

It answers `POST /v1/chat/completions` the way the OpenAI API does: a `chat.completion`
object with the requested model, one choice and token usage, or, when the request says
`"stream": true`, server-sent `chat.completion.chunk` events ending in `data: [DONE]`
(with a final usage chunk when `stream_options.include_usage` is set). Token counts are
whitespace-separated words, so tests can predict them.

Example::

    with FakeOpenAIServer(reply="Paris.") as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="test")
        client.chat.completions.create(model="gpt-4o-mini", messages=[...])
        server.requests[0]["messages"]
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FakeOpenAIServer", "count_tokens"]

Reply = str | Callable[[dict[str, Any]], str]


def count_tokens(text: str) -> int:
    """Return the fake's token count for a text: its whitespace-separated words."""
    return len(text.split())


def _prompt_tokens(messages: list[dict[str, Any]]) -> int:
    total = 0
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            total += count_tokens(content)
        elif isinstance(content, list):
            total += sum(count_tokens(p.get("text", "")) for p in content if isinstance(p, dict))
    return total


class FakeOpenAIServer:
    """An OpenAI-compatible chat completions endpoint in a background thread.

    Args:
        reply: The assistant's answer, or a function of the request body returning it.
        created: The `created` timestamp put in every response.
    """

    def __init__(
        self, reply: Reply = "Hello from the fake model.", *, created: int = 1_700_000_000
    ):
        self.reply = reply
        self.created = created
        self.requests: list[dict[str, Any]] = []
        self._counter = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        """The `base_url` to give the `openai` client (ends in `/v1`)."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> FakeOpenAIServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _answer(self, body: dict[str, Any]) -> tuple[str, str, dict[str, int]]:
        with self._lock:
            self.requests.append(body)
            self._counter += 1
            completion_id = f"chatcmpl-fake{self._counter:04d}"
        text = self.reply(body) if callable(self.reply) else self.reply
        prompt = _prompt_tokens(body.get("messages") or [])
        completion = count_tokens(text)
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        return completion_id, text, usage

    def _completion(self, body: dict[str, Any]) -> dict[str, Any]:
        completion_id, text, usage = self._answer(body)
        return {
            "id": completion_id,
            "object": "chat.completion",
            "created": self.created,
            "model": body.get("model", "fake-model"),
            "system_fingerprint": "fp_fake",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": usage,
        }

    def _chunks(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        completion_id, text, usage = self._answer(body)
        base = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": body.get("model", "fake-model"),
            "system_fingerprint": "fp_fake",
        }
        words = text.split(" ")
        deltas = [{"role": "assistant", "content": ""}] + [
            {"content": word if i == 0 else f" {word}"} for i, word in enumerate(words)
        ]
        chunks = [
            {**base, "choices": [{"index": 0, "delta": d, "logprobs": None, "finish_reason": None}]}
            for d in deltas
        ]
        chunks.append(
            {
                **base,
                "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}],
            }
        )
        if (body.get("stream_options") or {}).get("include_usage"):
            chunks.append({**base, "choices": [], "usage": usage})
        return chunks

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._json(404, {"error": {"message": f"no route {self.path}"}})
                    return
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    self._json(400, {"error": {"message": "body is not JSON"}})
                    return
                if not isinstance(body, dict) or not body.get("messages"):
                    self._json(400, {"error": {"message": "messages is required"}})
                    return
                if body.get("stream"):
                    self._stream(fake._chunks(body))
                else:
                    self._json(200, fake._completion(body))

            def _json(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, chunks: list[dict[str, Any]]) -> None:
                events = [f"data: {json.dumps(c)}\n\n" for c in chunks] + ["data: [DONE]\n\n"]
                data = "".join(events).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler
