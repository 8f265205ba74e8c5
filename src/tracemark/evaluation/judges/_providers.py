"""The two judge model APIs: OpenAI chat completions (and compatible servers) and Anthropic.

Judges speak one message format, OpenAI's: `{"role": "system" | "user" | "assistant" |
"tool", "content": str}`, assistant messages with `tool_calls` (`{"id", "name",
"arguments": dict}`) and tool messages with `tool_call_id`. Each provider translates that to
its API, makes one request with the real SDK (imported here, lazily), and reads the answer
back into a `ModelResponse`. Retries, limits and metering are the caller's (`_model.py`).
"""

from __future__ import annotations

import email.utils
import json
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ModelResponse", "Provider", "ToolCall", "provider_named"]

_MAX_RETRY_AFTER_S = 60.0
# Anthropic requires a bound on the answer; a judge's rationale fits comfortably.
_ANTHROPIC_MAX_TOKENS = 2048


@dataclass
class ToolCall:
    """A tool call the judge model asked for."""

    id: str
    name: str
    arguments: dict[str, Any]
    # The raw arguments when they were not a JSON object (reported back to the model).
    invalid_arguments: str | None = None


@dataclass
class ModelResponse:
    """One answer of a judge model.

    Attributes:
        text: The answer's text ("" when the model only called tools).
        tool_calls: Tool calls the model asked for.
        input_tokens: Input tokens, cached ones included.
        output_tokens: Output tokens.
        cost: The cost in USD, when the model's price is known.
        model: The model that answered, as the API reported it.
    """

    text: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float | None = None
    model: str = ""


class Provider:
    """How to call one API; subclasses implement the translation."""

    name = ""
    cost_provider = ""

    def client(self, base_url: str | None, api_key: str | None, timeout: float) -> Any:
        """Create the SDK client (SDK retries off: the caller retries)."""
        raise NotImplementedError

    def call(
        self,
        client: Any,
        model: str,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        json_schema: dict[str, Any] | None,
    ) -> ModelResponse:
        """Make one request and read its answer."""
        raise NotImplementedError

    def connection_errors(self) -> tuple[type[BaseException], ...]:
        """The SDK's exceptions for timeouts and failed connections."""
        raise NotImplementedError

    def retry_delay(self, exc: BaseException) -> float | None:
        """Return None when `exc` is final, else the server's Retry-After (or -1 for none)."""
        status = getattr(exc, "status_code", None)
        if isinstance(status, int):
            if status not in (408, 409, 429) and status < 500:
                return None
            return _retry_after(getattr(exc, "response", None))
        if isinstance(exc, self.connection_errors()):
            return -1.0
        return None


def _retry_after(response: Any) -> float:
    headers = getattr(response, "headers", None) or {}
    try:
        millis = headers.get("retry-after-ms")
        if millis is not None:
            seconds = float(millis) / 1000
        else:
            raw = headers.get("retry-after")
            if raw is None:
                return -1.0
            try:
                seconds = float(raw)
            except ValueError:
                when = email.utils.parsedate_to_datetime(raw)
                seconds = when.timestamp() - time.time()
    except (TypeError, ValueError):
        return -1.0
    return seconds if 0 <= seconds <= _MAX_RETRY_AFTER_S else -1.0


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


class OpenAIProvider(Provider):
    """OpenAI chat completions; any OpenAI-compatible server through `base_url`."""

    name = "openai"
    cost_provider = "openai"

    def client(self, base_url: str | None, api_key: str | None, timeout: float) -> Any:
        """Create an `openai.OpenAI` client."""
        import openai

        return openai.OpenAI(base_url=base_url, api_key=api_key, timeout=timeout, max_retries=0)

    def connection_errors(self) -> tuple[type[BaseException], ...]:
        """`openai.APIConnectionError` (timeouts included)."""
        import openai

        return (openai.APIConnectionError,)

    def call(
        self,
        client: Any,
        model: str,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        json_schema: dict[str, Any] | None,
    ) -> ModelResponse:
        """Call `chat.completions.create`; structured output through `response_format`."""
        kwargs: dict[str, Any] = {
            "model": model,
            "messages": [_openai_message(m) for m in messages],
        }
        if tools:
            kwargs["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": t["name"],
                        "description": t["description"],
                        "parameters": t["parameters"],
                    },
                }
                for t in tools
            ]
        if json_schema is not None:
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "judgement", "schema": json_schema, "strict": True},
            }
        response = client.chat.completions.create(**kwargs)
        message = response.choices[0].message if response.choices else None
        text = ""
        calls: list[ToolCall] = []
        if message is not None:
            text = message.content or getattr(message, "refusal", None) or ""
            for tc in message.tool_calls or ():
                function = getattr(tc, "function", None)
                if function is None:
                    continue
                calls.append(_tool_call(tc.id, function.name, function.arguments))
        usage = response.usage
        return ModelResponse(
            text=text,
            tool_calls=calls,
            input_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            output_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            model=response.model or model,
        )


def _tool_call(call_id: str, name: str, raw: str | None) -> ToolCall:
    try:
        arguments = json.loads(raw or "{}")
    except ValueError:
        arguments = None
    if isinstance(arguments, dict):
        return ToolCall(call_id, name, arguments)
    return ToolCall(call_id, name, {}, invalid_arguments=raw or "")


def _openai_message(message: dict[str, Any]) -> dict[str, Any]:
    if message["role"] == "assistant" and message.get("tool_calls"):
        return {
            "role": "assistant",
            "content": message.get("content") or None,
            "tool_calls": [
                {
                    "id": tc["id"],
                    "type": "function",
                    "function": {"name": tc["name"], "arguments": _dump(tc["arguments"])},
                }
                for tc in message["tool_calls"]
            ],
        }
    return dict(message)


class AnthropicProvider(Provider):
    """Anthropic's Messages API; the answer format is asked for in the system prompt."""

    name = "anthropic"
    cost_provider = "anthropic"

    def client(self, base_url: str | None, api_key: str | None, timeout: float) -> Any:
        """Create an `anthropic.Anthropic` client."""
        import anthropic

        return anthropic.Anthropic(
            base_url=base_url, api_key=api_key, timeout=timeout, max_retries=0
        )

    def connection_errors(self) -> tuple[type[BaseException], ...]:
        """`anthropic.APIConnectionError` (timeouts included)."""
        import anthropic

        return (anthropic.APIConnectionError,)

    def call(
        self,
        client: Any,
        model: str,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        json_schema: dict[str, Any] | None,
    ) -> ModelResponse:
        """Call `messages.create`."""
        system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
        kwargs: dict[str, Any] = {
            "model": model,
            "max_tokens": _ANTHROPIC_MAX_TOKENS,
            "messages": _anthropic_messages(messages),
        }
        if system:
            kwargs["system"] = system
        if tools:
            kwargs["tools"] = [
                {
                    "name": t["name"],
                    "description": t["description"],
                    "input_schema": t["parameters"],
                }
                for t in tools
            ]
        response = client.messages.create(**kwargs)
        texts: list[str] = []
        calls: list[ToolCall] = []
        for block in response.content or ():
            if block.type == "text":
                texts.append(block.text)
            elif block.type == "tool_use":
                arguments = block.input if isinstance(block.input, dict) else {}
                calls.append(ToolCall(block.id, block.name, arguments))
        usage = response.usage
        input_tokens = sum(
            int(getattr(usage, key, 0) or 0)
            for key in ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
        )
        return ModelResponse(
            text="".join(texts),
            tool_calls=calls,
            input_tokens=input_tokens,
            output_tokens=int(getattr(usage, "output_tokens", 0) or 0),
            model=response.model or model,
        )


def _anthropic_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for message in messages:
        role = message["role"]
        if role == "system":
            continue
        if role == "tool":
            block = {
                "type": "tool_result",
                "tool_use_id": message["tool_call_id"],
                "content": message["content"],
            }
            # Results of one turn's tool calls go back together, in one user message.
            if out and out[-1]["role"] == "user" and isinstance(out[-1]["content"], list):
                out[-1]["content"].append(block)
            else:
                out.append({"role": "user", "content": [block]})
        elif role == "assistant" and message.get("tool_calls"):
            blocks: list[dict[str, Any]] = []
            if message.get("content"):
                blocks.append({"type": "text", "text": message["content"]})
            blocks += [
                {"type": "tool_use", "id": tc["id"], "name": tc["name"], "input": tc["arguments"]}
                for tc in message["tool_calls"]
            ]
            out.append({"role": "assistant", "content": blocks})
        else:
            out.append({"role": role, "content": message["content"]})
    return out


_PROVIDERS: dict[str, Provider] = {"openai": OpenAIProvider(), "anthropic": AnthropicProvider()}


def provider_named(name: str) -> Provider | None:
    """Return the provider called `name` (`openai`, `anthropic`), or None."""
    return _PROVIDERS.get(name)
