"""Trace DSPy programs through DSPy's callback system.

Example:
    import tracemark as tm

    tm.dspy.autolog()
    qa = dspy.ChainOfThought("question -> answer")
    qa(question="What is the capital of France?")

autolog adds a callback to the ones DSPy calls (whatever `dspy.configure` and
`dspy.context` set), so each module call is a span (CHAIN; AGENT for
ReAct; RETRIEVER for retrievers), with its predictors, the adapter's formatting and
parsing (PARSER), LM calls (CHAT_MODEL with messages, answers, tokens and cost) and tools
(TOOL) nested under it, sync and async. `dspy.retrievers.Embeddings` searches, which DSPy's
callbacks do not report, are traced as RETRIEVER spans too.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from tracemark.integrations import _cost
from tracemark.integrations._keyed_spans import KeyedSpans
from tracemark.integrations._llm import set_usage
from tracemark.integrations._media import scrub_media
from tracemark.integrations._patch import Instrumentation
from tracemark.tracing._errors import log_internal_error
from tracemark.tracing._span import UNSET
from tracemark.tracing._tracer import DEFAULT_TRACER

__all__ = ["LIBRARY", "autolog"]

LIBRARY = "dspy"
"""The module this integration instruments; `tm.autolog()` enables it when importable."""

INSTRUMENTATION = Instrumentation("dspy", LIBRARY)

# DSPy names models as LiteLLM does (`provider/model`); the genai-prices id of each prefix.
_PROVIDERS = {
    "gemini": "google",
    "vertex_ai": "google",
    "together_ai": "together",
    "fireworks_ai": "fireworks",
    "xai": "x-ai",
    "bedrock": "aws",
    "azure_ai": "azure",
}
_REQUEST_PARAMS = {
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "max_tokens": "gen_ai.request.max_tokens",
    "max_completion_tokens": "gen_ai.request.max_tokens",
}
_AGENT_MODULES = ("ReAct", "CodeAct")

_callback: Any = None  # the callback added to DSPy's settings, once made


def autolog(*, disable: bool = False, log_traces: bool = True, silent: bool = False) -> None:
    """Trace DSPy modules, predictors, LM calls, retrievers and tools.

    Example:
        >>> import tracemark as tm
        >>> tm.dspy.autolog()

    If `dspy` is not imported yet, the callback is added when it is.

    Args:
        disable: Remove tracemark's callback and restore DSPy's own methods.
        log_traces: False keeps the callback but records nothing.
        silent: Do not log tracemark's own messages about this integration.
    """
    INSTRUMENTATION.autolog(
        _install,
        package="dspy",
        disable=disable,
        log_traces=log_traces,
        silent=silent,
    )


def _install(module: Any) -> None:
    global _callback
    inst = INSTRUMENTATION
    if not inst.enabled:
        return
    from dspy.dsp.utils.settings import Settings
    from dspy.utils.callback import BaseCallback

    if _callback is None:
        _callback = type("TracemarkCallback", (_Callback, BaseCallback), {})()
    inst.wrap(Settings, "get", _with_callback)
    try:
        from dspy.retrievers.embeddings import Embeddings
    except ImportError:
        return
    inst.wrap(Embeddings, "__call__", _embeddings_search)


def _with_callback(original: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap `Settings.get`, where DSPy reads its callbacks for each call, to add ours.

    Added where they are read, the callback is in effect whatever `dspy.configure` and
    `dspy.context` set, and `dspy.settings.callbacks` still shows only the user's own.
    """

    @functools.wraps(original)
    def get(self: Any, key: str, *args: Any, **kwargs: Any) -> Any:
        value = original(self, key, *args, **kwargs)
        if key != "callbacks" or not INSTRUMENTATION.recording:
            return value
        callbacks = list(value or ())
        if _callback not in callbacks:
            callbacks.append(_callback)
        return callbacks

    return get


# -- the callback --------------------------------------------------------------------------


class _Callback:
    """DSPy's start/end events as spans; DSPy calls both in the context the step runs in."""

    def __init__(self) -> None:
        self.steps = KeyedSpans(INSTRUMENTATION)

    def _start(self, call_id: str, name: str, span_type: str, **options: Any) -> None:
        self.steps.start(call_id, name, span_type, **options)

    def _end(self, call_id: str, outputs: Any, exception: BaseException | None) -> None:
        self.steps.end(call_id, outputs=UNSET if exception else outputs, error=exception)

    def on_module_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        """Start a module's span: CHAIN, AGENT for ReAct, RETRIEVER for `dspy.Retrieve`."""
        import dspy

        if isinstance(instance, dspy.Retrieve):
            span_type = "RETRIEVER"
        elif type(instance).__name__ in _AGENT_MODULES:
            span_type = "AGENT"
        else:
            span_type = "CHAIN"
        attributes: dict[str, Any] = {}
        text = getattr(getattr(instance, "signature", None), "signature", None)
        if isinstance(text, str):
            attributes["dspy.signature"] = text
        self._start(
            call_id,
            type(instance).__name__,
            span_type,
            inputs=_call_inputs(inputs),
            attributes=attributes,
        )

    def on_module_end(
        self, call_id: str, outputs: Any | None, exception: BaseException | None = None
    ) -> None:
        """End a module's span with its prediction (a retriever's: its documents)."""
        span = self.steps.get(call_id)
        result: Any = UNSET
        if span is not None and exception is None:
            result = _documents(outputs) if span.span_type == "RETRIEVER" else _plain(outputs)
        self._end(call_id, result, exception)

    def on_lm_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        """Start an LM call's span with the messages sent and the request parameters."""
        if not INSTRUMENTATION.recording:
            return
        call = _LMCall(instance, inputs)
        self._start(
            call_id,
            call.name(),
            call.span_type(),
            inputs=call.inputs(),
            attributes=call.attributes(),
            # The call records its own tokens and cost; an SDK call made for it (LiteLLM
            # through `openai`, with `tm.openai.autolog()` on) is not recorded twice.
            leaf=True,
            data=call,
        )

    def on_lm_end(
        self, call_id: str, outputs: Any | None, exception: BaseException | None = None
    ) -> None:
        """End an LM call's span with the answers, token usage and cost."""
        span = self.steps.get(call_id)
        call = self.steps.data(call_id)
        result: Any = UNSET
        if span is not None and exception is None and call is not None:
            result = _answers(outputs)
            try:
                call.record(span, outputs)
            except Exception:
                log_internal_error()
        self._end(call_id, result, exception)

    def on_tool_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        """Start a tool's span with the arguments it is called with."""
        name = getattr(instance, "name", None) or type(instance).__name__
        attributes = {"gen_ai.tool.name": name}
        description = getattr(instance, "desc", None)
        if isinstance(description, str):
            attributes["gen_ai.tool.description"] = description
        arguments = inputs.get("kwargs", inputs) if isinstance(inputs, dict) else inputs
        self._start(call_id, name, "TOOL", inputs=arguments, attributes=attributes)

    def on_tool_end(
        self, call_id: str, outputs: Any | None, exception: BaseException | None = None
    ) -> None:
        """End a tool's span with its result."""
        self._end(call_id, outputs, exception)

    def on_adapter_format_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        """Start the span of an adapter turning a signature and inputs into messages."""
        self._parser_start(call_id, instance, "format", inputs)

    def on_adapter_format_end(
        self, call_id: str, outputs: Any | None, exception: BaseException | None = None
    ) -> None:
        """End the formatting span with the messages made."""
        self._end(call_id, outputs if exception else scrub_media(outputs), exception)

    def on_adapter_parse_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        """Start the span of an adapter reading the fields out of an LM's answer."""
        self._parser_start(call_id, instance, "parse", inputs)

    def on_adapter_parse_end(
        self, call_id: str, outputs: Any | None, exception: BaseException | None = None
    ) -> None:
        """End the parsing span with the fields read."""
        self._end(call_id, outputs, exception)

    def _parser_start(self, call_id: str, instance: Any, step: str, inputs: dict[str, Any]) -> None:
        values = dict(inputs)
        text = getattr(values.get("signature"), "signature", None)
        if isinstance(text, str):
            values["signature"] = text
        self._start(call_id, f"{type(instance).__name__}.{step}", "PARSER", inputs=values)


class _LMCall:
    """What an LM call's span shows, from the `dspy.LM` and the call's arguments."""

    __slots__ = ("inputs_", "lm", "model", "provider")

    def __init__(self, lm: Any, inputs: dict[str, Any]) -> None:
        self.lm = lm
        self.inputs_ = inputs
        full = str(getattr(lm, "model", "") or "")
        prefix, _, name = full.partition("/")
        self.provider, self.model = (prefix, name) if name else ("", full)

    def _params(self) -> dict[str, Any]:
        merged = {**(getattr(self.lm, "kwargs", None) or {}), **(self.inputs_.get("kwargs") or {})}
        # Keys and endpoints are settings of the client, not of the request.
        return {
            k: v for k, v in merged.items() if v is not None and not k.startswith(("api_", "base_"))
        }

    def span_type(self) -> str:
        return "LLM" if getattr(self.lm, "model_type", "chat") == "text" else "CHAT_MODEL"

    def name(self) -> str:
        operation = "text_completion" if self.span_type() == "LLM" else "chat"
        return f"{operation} {self.model}" if self.model else operation

    def inputs(self) -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.model}
        messages = self.inputs_.get("messages")
        if messages is not None:
            out["messages"] = scrub_media(messages)
        prompt = self.inputs_.get("prompt")
        if prompt is not None:
            out["prompt"] = prompt
        out.update(self._params())
        return out

    def attributes(self) -> dict[str, Any]:
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": "chat" if self.span_type() == "CHAT_MODEL" else "text",
            "dspy.lm.model": getattr(self.lm, "model", None),
        }
        if self.provider:
            attrs["gen_ai.provider.name"] = self.provider
        if self.model:
            attrs["gen_ai.request.model"] = self.model
        for key, value in self._params().items():
            attr = _REQUEST_PARAMS.get(key)
            if attr and isinstance(value, (int, float)) and not isinstance(value, bool):
                attrs[attr] = value
        return attrs

    def cost_provider(self) -> str:
        default = _PROVIDERS.get(self.provider, self.provider)
        settings = getattr(self.lm, "kwargs", None) or {}
        base_url = settings.get("api_base") or settings.get("base_url")
        return _cost.provider_for_url(str(base_url), default) if base_url else default

    def record(self, span: Any, outputs: Any) -> None:
        """Set the response model, token usage and cost from DSPy's record of the call."""
        entry = _history_entry(self.lm, outputs)
        usage = entry.get("usage") if entry else getattr(outputs, "usage", None)
        if entry and entry.get("response_model"):
            span.set_attribute("gen_ai.response.model", entry["response_model"])
        if not isinstance(usage, dict):
            dump = getattr(usage, "model_dump", None)
            usage = dump() if dump is not None else None
        if not usage:
            return
        details = usage.get("prompt_tokens_details") or usage.get("input_tokens_details") or {}
        input_tokens = usage.get("prompt_tokens", usage.get("input_tokens"))
        output_tokens = usage.get("completion_tokens", usage.get("output_tokens"))
        if not (input_tokens or output_tokens):
            return  # a cached answer, or usage not reported: no tokens rather than a zero cost
        set_usage(
            span,
            provider=self.cost_provider(),
            model=(entry or {}).get("response_model") or self.model,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_read_tokens=(details.get("cached_tokens") if isinstance(details, dict) else 0)
            or 0,
        )


def _history_entry(lm: Any, outputs: Any) -> dict[str, Any] | None:
    """DSPy's history entry for the call that returned `outputs` (matched by identity)."""
    from dspy.clients.base_lm import GLOBAL_HISTORY

    for history in (getattr(lm, "history", None) or (), GLOBAL_HISTORY):
        for entry in reversed(history[-32:]):
            if isinstance(entry, dict) and entry.get("outputs") is outputs:
                return entry
    return None


# -- turning DSPy values into span payloads -------------------------------------------------


def _call_inputs(inputs: dict[str, Any]) -> Any:
    """A module's inputs as its caller named them: keyword arguments, then positional ones."""
    if not isinstance(inputs, dict) or set(inputs) - {"args", "kwargs"}:
        return inputs
    out = dict(inputs.get("kwargs") or {})
    args = inputs.get("args")
    if args:
        out["args"] = list(args)
    return out


def _plain(value: Any) -> Any:
    """A `dspy.Prediction` (or `Example`) as the dict of its fields."""
    to_dict = getattr(value, "toDict", None)
    if callable(to_dict):
        try:
            return to_dict()
        except Exception:
            return value
    return value


def _answers(outputs: Any) -> Any:
    """An LM's answers as OpenAI-style assistant messages (tool calls included)."""
    if not isinstance(outputs, list):
        return _plain(outputs)
    messages: list[Any] = []
    for item in outputs:
        if isinstance(item, str):
            messages.append({"role": "assistant", "content": item})
        elif isinstance(item, dict) and ("text" in item or "tool_calls" in item):
            message: dict[str, Any] = {"role": "assistant", "content": item.get("text")}
            if item.get("tool_calls"):
                message["tool_calls"] = item["tool_calls"]
            messages.append(message)
        else:
            messages.append(item)
    return messages


def _documents(outputs: Any) -> Any:
    """A retriever's passages as documents (`page_content`, `metadata`, `id`)."""
    fields = _plain(outputs)
    if not isinstance(fields, dict) or not isinstance(fields.get("passages"), list):
        return fields
    passages = fields["passages"]
    indices = fields.get("indices")
    scores = fields.get("scores")
    docs = []
    for i, passage in enumerate(passages):
        metadata: dict[str, Any] = {}
        if isinstance(scores, list) and i < len(scores):
            metadata["score"] = scores[i]
        doc: dict[str, Any] = {"page_content": passage, "metadata": metadata}
        if isinstance(indices, list) and i < len(indices):
            doc["id"] = str(indices[i])
        docs.append(doc)
    return docs


def _embeddings_search(original: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap `Embeddings.__call__`: one RETRIEVER span per search."""

    @functools.wraps(original)
    def wrapper(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        if not INSTRUMENTATION.recording or not DEFAULT_TRACER.enabled:
            return original(self, query, *args, **kwargs)
        attributes = {"dspy.retriever.k": getattr(self, "k", None)}
        with DEFAULT_TRACER.start_span(
            type(self).__name__, span_type="RETRIEVER", inputs={"query": query}
        ) as span:
            span.set_attributes(attributes)
            result = original(self, query, *args, **kwargs)
            try:
                span.set_outputs(_documents(result))
            except Exception:
                log_internal_error()
            return result

    return wrapper
