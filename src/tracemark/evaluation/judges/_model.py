"""Judge models: one chat call with retries, a timeout, a concurrency limit and metering.

A model is named by a URI, `openai:/gpt-4o-mini` or `anthropic:/claude-3-5-haiku-latest`;
`openai:/<model>` with `base_url=` reaches any OpenAI-compatible server (vLLM, Ollama,
LM Studio, a gateway). The SDK clients run with their own retries off: `JudgeModel.chat`
retries rate limits (429), server errors (5xx), timeouts and lost connections itself, with
exponential back-off and jitter, honouring Retry-After, and reports every attempt to the
evaluation's usage meter (`_usage.record_call`). Requests to one model and endpoint share
one semaphore, so however many judges and threads run, at most `max_concurrency` are in
flight.
"""

from __future__ import annotations

import os
import random
import threading
import time
import traceback
from typing import Any

from tracemark import config
from tracemark.evaluation import _usage
from tracemark.evaluation.judges._providers import ModelResponse, Provider, provider_named
from tracemark.exceptions import InvalidInputError, TracemarkError
from tracemark.tracing._context import suppress

__all__ = ["JudgeModel", "ModelResponse", "describe_error", "get_judge_model", "parse_model_uri"]

_MAX_BACKOFF_S = 30.0
_ENV = {
    "openai": ("OPENAI_BASE_URL", "OPENAI_API_KEY"),
    "anthropic": ("ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY"),
}
# OpenAI-compatible local servers need no key, but the SDK insists on one.
_NO_KEY = "unused"


def parse_model_uri(uri: str) -> tuple[str, str]:
    """Split `"openai:/gpt-4o-mini"` into `("openai", "gpt-4o-mini")`.

    Example:
        >>> parse_model_uri("anthropic:/claude-3-5-haiku-latest")
        ('anthropic', 'claude-3-5-haiku-latest')

    Args:
        uri: `<provider>:/<model>`, the provider `openai` or `anthropic`.
    """
    provider, sep, model = uri.partition(":/") if isinstance(uri, str) else ("", "", "")
    model = model.lstrip("/") if sep else ""
    if not sep or not model or provider_named(provider) is None:
        raise InvalidInputError(
            f"judge model {uri!r} is not a model URI: write 'openai:/<model>' (also for "
            "OpenAI-compatible servers, with base_url=) or 'anthropic:/<model>'",
            field="model",
        )
    return provider, model


class _Limits:
    """The semaphores shared by all judges calling the same model at the same endpoint."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._semaphores: dict[tuple[str, str, str, int], threading.BoundedSemaphore] = {}

    def get(self, provider: str, endpoint: str, model: str, limit: int) -> threading.Semaphore:
        key = (provider, endpoint, model, limit)
        with self._lock:
            semaphore = self._semaphores.get(key)
            if semaphore is None:
                semaphore = self._semaphores[key] = threading.BoundedSemaphore(limit)
            return semaphore


_LIMITS = _Limits()


class JudgeModel:
    """A chat model that judges call; get one with `get_judge_model`.

    Args:
        provider: `"openai"` or `"anthropic"`.
        model: The model name the API knows.
        base_url: The API's base URL; the SDK's default (or its env variable) when None.
        api_key: The API key; the SDK's env variable when None.
        timeout: Seconds per request.
        max_retries: Retries after retryable failures.
        max_concurrency: Requests in flight at once (shared with other judges).
        backoff_s: The first retry's delay; doubled per retry, with jitter.
    """

    def __init__(
        self,
        provider: str,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float,
        max_retries: int,
        max_concurrency: int,
        backoff_s: float = 0.5,
    ) -> None:
        found = provider_named(provider)
        if found is None:
            raise InvalidInputError(f"unknown judge model provider {provider!r}", field="model")
        self.provider: Provider = found
        self.model = model
        self.base_url = base_url
        self._api_key = api_key
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_concurrency = max_concurrency
        self.backoff_s = backoff_s
        env_url, env_key = _ENV[provider]
        self._endpoint = base_url or os.environ.get(env_url) or ""
        if self._api_key is None and not os.environ.get(env_key) and self._endpoint:
            self._api_key = _NO_KEY
        self._semaphore = _LIMITS.get(provider, self._endpoint, model, max_concurrency)
        self._client: Any = None
        self._client_lock = threading.Lock()
        self._cost_provider: str | None = None
        # Cleared when the server refuses structured output (some local servers do): the
        # prompt asks for the same JSON anyway.
        self._structured = True

    @property
    def uri(self) -> str:
        """The model URI, e.g. `openai:/gpt-4o-mini`."""
        return f"{self.provider.name}:/{self.model}"

    def __repr__(self) -> str:
        where = f", base_url={self.base_url!r}" if self.base_url else ""
        return f"JudgeModel({self.uri!r}{where})"

    def to_config(self) -> dict[str, Any]:
        """The settings to rebuild this model elsewhere (never the API key)."""
        out: dict[str, Any] = {"model": self.uri}
        if self.base_url:
            out["base_url"] = self.base_url
        out.update(
            timeout=self.timeout,
            max_retries=self.max_retries,
            max_concurrency=self.max_concurrency,
        )
        return out

    def _sdk_client(self) -> Any:
        with self._client_lock:
            if self._client is None:
                self._client = self.provider.client(self.base_url, self._api_key, self.timeout)
            return self._client

    def chat(
        self,
        messages: list[dict[str, Any]],
        *,
        tools: list[dict[str, Any]] | None = None,
        json_schema: dict[str, Any] | None = None,
        name: str | None = None,
    ) -> ModelResponse:
        """Send one chat request (retrying transient failures) and return the answer.

        Example:
            >>> model = get_judge_model("openai:/gpt-4o-mini")
            >>> model.chat([{"role": "user", "content": "Say yes"}]).text

        Args:
            messages: OpenAI-style messages (system, user, assistant with `tool_calls`, tool).
            tools: Tools the model may call: `{"name", "description", "parameters"}` each.
            json_schema: The schema the answer must follow (OpenAI structured output).
            name: The name of the call's span in the evaluation's trace.

        Raises:
            TracemarkError: The request failed for good (after retries when retryable).
            BudgetExceeded: The evaluation's judge budget is spent (raised before calling).
        """
        attempt = 0
        while True:
            schema = json_schema if self._structured else None
            try:
                return self._attempt(messages, tools, schema, name)
            except (_usage.BudgetExceeded, TracemarkError):
                raise
            except Exception as exc:
                if schema is not None and _refuses_schema(exc):
                    self._structured = False
                    continue
                retry_after = self.provider.retry_delay(exc)
                if retry_after is None or attempt >= self.max_retries:
                    tries = f" after {attempt + 1} attempts" if attempt else ""
                    raise TracemarkError(
                        f"judge model {self.uri} failed{tries}: {describe_error(exc)}"
                    ) from exc
                time.sleep(self._delay(attempt, retry_after))
                attempt += 1

    def _delay(self, attempt: int, retry_after: float) -> float:
        if retry_after >= 0:
            return retry_after
        backoff = min(_MAX_BACKOFF_S, self.backoff_s * 2**attempt)
        return backoff * random.uniform(0.5, 1.0)

    def _attempt(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        json_schema: dict[str, Any] | None,
        name: str | None,
    ) -> ModelResponse:
        usage = _usage.current_usage()
        if usage is not None:
            usage.check_budget()
        client = self._sdk_client()
        with self._semaphore:
            start_ns = time.time_ns()
            try:
                with suppress():  # the judge's own SDK call stays out of app traces
                    response = self.provider.call(client, self.model, messages, tools, json_schema)
            except Exception as exc:
                self._record(name, messages, None, start_ns, error=describe_error(exc))
                raise
        response.cost = self._cost(response)
        self._record(name, messages, response, start_ns)
        return response

    def _cost(self, response: ModelResponse) -> float | None:
        from tracemark.integrations import _cost

        if self._cost_provider is None:
            default = self.provider.cost_provider
            self._cost_provider = (
                _cost.provider_for_url(self._endpoint, default) if self._endpoint else default
            )
        counts = {"input_tokens": response.input_tokens, "output_tokens": response.output_tokens}
        return _cost.cost_usd(self._cost_provider, response.model or self.model, counts)

    def _record(
        self,
        name: str | None,
        messages: list[dict[str, Any]],
        response: ModelResponse | None,
        start_ns: int,
        *,
        error: str | None = None,
    ) -> None:
        output = None
        if response is not None:
            output = {"text": response.text}
            if response.tool_calls:
                output["tool_calls"] = [
                    {"id": c.id, "name": c.name, "arguments": c.arguments}
                    for c in response.tool_calls
                ]
        _usage.record_call(
            name=name or f"chat {self.model}",
            provider=self.provider.name,
            model=(response.model if response else None) or self.model,
            messages=messages,
            output=output,
            input_tokens=response.input_tokens if response else 0,
            output_tokens=response.output_tokens if response else 0,
            cost=response.cost if response else None,
            start_ns=start_ns,
            end_ns=time.time_ns(),
            error=error,
        )


def _refuses_schema(exc: BaseException) -> bool:
    """Whether the server rejected the request for its structured-output parameter."""
    text = str(exc).lower()
    return getattr(exc, "status_code", None) in (400, 422) and (
        "response_format" in text or "json_schema" in text
    )


def describe_error(exc: BaseException) -> str:
    """The exception's type and message, as a Feedback error shows it (ours: the message)."""
    if isinstance(exc, TracemarkError):
        return exc.message[:1000]
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()[:1000]


_MODELS: dict[tuple[Any, ...], JudgeModel] = {}
_MODELS_LOCK = threading.Lock()


def get_judge_model(
    model: str | None = None,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    timeout: float | None = None,
    max_retries: int | None = None,
    max_concurrency: int | None = None,
    backoff_s: float = 0.5,
) -> JudgeModel:
    """Return the judge model for a URI (the same object for the same arguments).

    Example:
        >>> model = get_judge_model("openai:/llama3.1", base_url="http://localhost:11434/v1")
        >>> judge = Correctness(model=model)

    Args:
        model: `openai:/<model>` or `anthropic:/<model>`; `TRACEMARK_JUDGE_MODEL`
            (default `openai:/gpt-4o-mini`) when None.
        base_url: The API's base URL, e.g. a local OpenAI-compatible server; else the SDK's
            env variable (`OPENAI_BASE_URL`, `ANTHROPIC_BASE_URL`) or its default.
        api_key: The API key; else `OPENAI_API_KEY` / `ANTHROPIC_API_KEY`.
        timeout: Seconds per request (`TRACEMARK_JUDGE_TIMEOUT_S`, default 60).
        max_retries: Retries of failed requests (`TRACEMARK_JUDGE_MAX_RETRIES`, default 4).
        max_concurrency: Requests in flight at once for this model and endpoint
            (`TRACEMARK_JUDGE_MAX_CONCURRENCY`, default 8).
        backoff_s: The first retry's delay in seconds; doubled per retry, with jitter.
    """
    provider, name = parse_model_uri(config.resolve(config.JUDGE_MODEL, model))
    settings = (
        config.resolve(config.JUDGE_TIMEOUT_S, timeout),
        config.resolve(config.JUDGE_MAX_RETRIES, max_retries),
        config.resolve(config.JUDGE_MAX_CONCURRENCY, max_concurrency),
    )
    if settings[0] <= 0 or settings[1] < 0 or settings[2] < 1:
        raise InvalidInputError(
            "judge model timeout must be > 0, max_retries >= 0 and max_concurrency >= 1",
            field="model",
        )
    env_url, env_key = _ENV[provider]
    key = (
        provider,
        name,
        base_url,
        api_key,
        os.environ.get(env_url),
        os.environ.get(env_key),
        *settings,
        backoff_s,
    )
    with _MODELS_LOCK:
        found = _MODELS.get(key)
        if found is None:
            found = _MODELS[key] = JudgeModel(
                provider,
                name,
                base_url=base_url,
                api_key=api_key,
                timeout=settings[0],
                max_retries=settings[1],
                max_concurrency=settings[2],
                backoff_s=backoff_s,
            )
        return found
