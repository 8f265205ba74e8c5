"""The request and response formats of the model server, free of any web framework.

Scoring requests follow MLflow's protocol; chat requests and answers follow OpenAI's chat
completions (a completion object, or ``chat.completion.chunk`` events when streaming).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

import orjson

from tracemark.tracing._serialize import to_jsonable

_INPUT_KEYS = ("dataframe_records", "dataframe_split", "instances", "inputs")


class BadRequest(Exception):
    """A request the model cannot be asked: answered with 4xx and the message."""

    def __init__(self, message: str, field: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status


# -- /invocations -------------------------------------------------------------------------


def parse_invocation(body: Any) -> tuple[Any, bool, dict[str, Any] | None]:
    """Return ``(inputs, batch, params)`` from a scoring request; `batch`: one input per item."""
    if not isinstance(body, dict):
        raise BadRequest(
            f"request body must be a JSON object with one of {', '.join(_INPUT_KEYS)}", "body"
        )
    given = [key for key in _INPUT_KEYS if key in body]
    unknown = sorted(set(body) - set(_INPUT_KEYS) - {"params"})
    if unknown:
        raise BadRequest(f"unknown field {unknown[0]!r}; use one of {', '.join(_INPUT_KEYS)}")
    if len(given) != 1:
        raise BadRequest(
            f"give exactly one of {', '.join(_INPUT_KEYS)}, got {len(given)}",
            field=given[1] if given else "inputs",
        )
    params = body.get("params")
    if params is not None and not isinstance(params, dict):
        raise BadRequest("params must be a JSON object", field="params")
    key = given[0]
    value = body[key]
    if key == "inputs":
        return value, False, params
    if key == "dataframe_split":
        return _split_records(value), True, params
    if not isinstance(value, list):
        raise BadRequest(f"{key} must be a list", field=key)
    return value, True, params


def _split_records(split: Any) -> list[dict[str, Any]]:
    if not isinstance(split, dict) or not isinstance(split.get("data"), list):
        raise BadRequest("dataframe_split must be an object with columns and data", "data")
    columns = split.get("columns")
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise BadRequest("dataframe_split.columns must be a list of strings", "columns")
    records = []
    for i, row in enumerate(split["data"]):
        if not isinstance(row, list) or len(row) != len(columns):
            raise BadRequest(
                f"dataframe_split.data[{i}] must be a list of {len(columns)} values", "data"
            )
        records.append(dict(zip(columns, row, strict=True)))
    return records


# -- /v1/chat/completions -----------------------------------------------------------------


def parse_chat(body: Any) -> tuple[dict[str, Any], bool]:
    """Return ``(model_input, stream)`` from a chat completions request."""
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object", field="body")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages must be a non-empty list of messages", field="messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise BadRequest(f"messages[{i}] must be an object with a role", "messages")
        content = message.get("content")
        if content is not None and not isinstance(content, (str, list)):
            raise BadRequest(f"messages[{i}].content must be a string or a list", "messages")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise BadRequest("stream must be true or false", field="stream")
    model_input = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
    return model_input, stream


def _as_message(result: Any) -> dict[str, Any]:
    """Turn a prediction into an assistant message."""
    if isinstance(result, Mapping):
        if isinstance(result.get("messages"), list) and result["messages"]:
            result = result["messages"][-1]
        if "content" in result or "tool_calls" in result:
            message = {"role": result.get("role") or "assistant", "content": result.get("content")}
            if result.get("tool_calls"):
                message["tool_calls"] = to_jsonable(result["tool_calls"])
            return message
    return {"role": "assistant", "content": _text(result)}


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return orjson.dumps(to_jsonable(value)).decode()


def as_delta(chunk: Any) -> dict[str, Any]:
    """Turn one streamed chunk (text, a message part or an OpenAI delta) into a delta."""
    if isinstance(chunk, Mapping):
        if isinstance(chunk.get("delta"), Mapping):
            return to_jsonable(dict(chunk["delta"]))
        if "content" in chunk or "tool_calls" in chunk:
            keys = ("role", "content", "tool_calls")
            return to_jsonable({k: chunk[k] for k in keys if k in chunk})
    return {"content": _text(chunk)}


class Completion:
    """The envelope shared by one response's completion or chunks."""

    def __init__(self, model: str) -> None:
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.model = model

    def envelope(self, obj: str, choices: list[dict[str, Any]]) -> dict[str, Any]:
        """Return the fields every completion and chunk of this response share."""
        return {
            "id": self.id,
            "object": obj,
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }

    def completion(self, result: Any) -> dict[str, Any]:
        """Return a ``chat.completion`` for a prediction (a completion passes through)."""
        if isinstance(result, Mapping) and isinstance(result.get("choices"), list):
            base = self.envelope("chat.completion", [])
            return {**base, **to_jsonable(dict(result))}  # already a completion
        message = _as_message(result)
        finish = "tool_calls" if message.get("tool_calls") else "stop"
        return self.envelope(
            "chat.completion", [{"index": 0, "message": message, "finish_reason": finish}]
        )

    def chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        """Return one ``chat.completion.chunk`` as a server-sent event."""
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return event(self.envelope("chat.completion.chunk", [choice]))


def event(data: Any) -> bytes:
    """Return `data` as one server-sent event."""
    return b"data: " + orjson.dumps(data) + b"\n\n"
