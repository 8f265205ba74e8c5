"""Trace the OpenAI Agents SDK (`openai-agents`) through its trace-processor API.

Example:
    import tracemark as tm

    tm.openai_agents.autolog()
    result = await agents.Runner.run(agent, "What is the weather in Paris?")

autolog adds a trace processor to the SDK's tracing; each SDK trace becomes a tracemark
span tree (nested under the caller's current span when there is one): agents (AGENT),
model calls of the Chat Completions and Responses APIs (CHAT_MODEL, with tokens and cost),
function tools (TOOL), handoffs, guardrails (GUARDRAIL), and the SDK's run and turn spans.
The SDK's own processors (the upload to the OpenAI dashboard) are left as they are.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from tracemark.integrations import _cost
from tracemark.integrations._keyed_spans import KeyedSpans
from tracemark.integrations._llm import SKIPPED_KWARGS, set_usage
from tracemark.integrations._media import scrub_media
from tracemark.integrations._patch import Instrumentation
from tracemark.tracing._errors import log_internal_error
from tracemark.tracing._span import UNSET
from tracemark.tracing._tracer import DEFAULT_TRACER

__all__ = ["LIBRARY", "autolog"]

LIBRARY = "agents"
"""The module this integration instruments; `tm.autolog()` enables it when importable."""

INSTRUMENTATION = Instrumentation("openai_agents", LIBRARY)

_MODEL_SETTINGS = {
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "max_tokens": "gen_ai.request.max_tokens",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
    "presence_penalty": "gen_ai.request.presence_penalty",
}
_SYSTEM_ROLES = frozenset({"system", "developer"})

_processor: Any = None  # the processor registered with the SDK, once made


def autolog(*, disable: bool = False, log_traces: bool = True, silent: bool = False) -> None:
    """Trace OpenAI Agents SDK runs: agents, model calls, tools, handoffs and guardrails.

    Example:
        >>> import tracemark as tm
        >>> tm.openai_agents.autolog()

    If `agents` is not imported yet, the processor is added when it is. The SDK's tracing
    must be on (`set_tracing_disabled(True)` turns off every processor, this one too).

    Args:
        disable: Remove tracemark's trace processor from the SDK.
        log_traces: False keeps the processor but records nothing.
        silent: Do not log tracemark's own messages about this integration.
    """
    INSTRUMENTATION.autolog(
        _install,
        package="openai-agents",
        disable=disable,
        log_traces=log_traces,
        silent=silent,
        remove=_remove_processor,
    )


def _registered(provider: Any) -> tuple[Any, ...] | None:
    """The provider's processors, when the installed SDK lets them be read."""
    processors = getattr(getattr(provider, "_multi_processor", None), "_processors", None)
    return processors if isinstance(processors, tuple) else None


def _install(module: Any) -> None:
    global _processor
    if not INSTRUMENTATION.enabled:
        return
    try:
        from agents.tracing import TracingProcessor, get_trace_provider
    except ImportError:  # another package that happens to be called `agents`
        return
    if _processor is None:
        _processor = type("TracemarkProcessor", (_Processor, TracingProcessor), {})()
    provider = get_trace_provider()
    processors = _registered(provider)
    if processors is None:
        # Cannot tell whether it is still registered: add it once per process.
        if getattr(_processor, "added_to", None) is provider:
            return
    elif _processor in processors:
        return
    provider.register_processor(_processor)
    _processor.added_to = provider


def _remove_processor() -> None:
    """Take the processor out of the SDK; where that cannot be done it just stays inert."""
    if _processor is None or LIBRARY not in sys.modules:
        return
    from agents.tracing import get_trace_provider

    provider = get_trace_provider()
    processors = _registered(provider)
    if processors is not None and _processor in processors:
        provider.set_processors([p for p in processors if p is not _processor])
        _processor.added_to = None


# -- the processor -----------------------------------------------------------------------


class _Processor:
    """Maps the SDK's traces and spans onto tracemark spans (see the module docstring)."""

    def __init__(self) -> None:
        self.steps = KeyedSpans(INSTRUMENTATION)
        self.added_to: Any = None
        # SDK trace id -> what the trace's root and run spans show: the conversation's
        # first user input and its latest model answer.
        self._io: dict[str, dict[str, Any]] = {}

    # The SDK calls these synchronously, where the traced code runs.

    def on_trace_start(self, trace: Any) -> None:
        """Start the trace's root span (under the caller's current span, if any)."""
        if not INSTRUMENTATION.recording or not DEFAULT_TRACER.enabled:
            return
        parent = DEFAULT_TRACER.get_current_active_span()
        attributes: dict[str, Any] = {"agents.trace_id": trace.trace_id}
        group_id = getattr(trace, "group_id", None)
        if group_id:
            attributes["agents.group_id"] = group_id
        metadata = getattr(trace, "metadata", None)
        if metadata:
            attributes["agents.metadata"] = metadata
        span = self.steps.start(trace.trace_id, trace.name, "CHAIN", attributes=attributes)
        if span is None:
            return
        self._io[trace.trace_id] = {}
        if parent is None and group_id:
            # A trace of its own: the SDK's group (a conversation thread) is its session.
            DEFAULT_TRACER.update_current_trace(session_id=str(group_id))

    def on_trace_end(self, trace: Any) -> None:
        """End the trace's root span."""
        io = self._io.pop(trace.trace_id, None) or {}
        self.steps.end(trace.trace_id, outputs=io.get("output", UNSET))

    def on_span_start(self, span: Any) -> None:
        """Start the span of an SDK span, under its parent's."""
        if not INSTRUMENTATION.recording or not DEFAULT_TRACER.enabled:
            return
        data = span.span_data
        try:
            name, span_type, inputs, attributes = _describe_start(data)
        except Exception:
            log_internal_error()
            return
        live = self.steps.start(
            span.span_id,
            name,
            span_type,
            parent_key=span.parent_id or span.trace_id,
            inputs=inputs,
            attributes=attributes,
            # A model call records its own tokens and cost: the OpenAI SDK call inside it
            # (with `tm.openai.autolog()` on too) is not recorded a second time.
            leaf=data.type in ("generation", "response"),
        )
        io = self._io.get(span.trace_id)
        if live is not None and io is not None and data.type == "task":
            io.setdefault("tasks", []).append(span.span_id)

    def on_span_end(self, span: Any) -> None:
        """Fill in what the SDK span learned while it ran, then end it."""
        live = self.steps.get(span.span_id)
        error = span.error
        if live is not None:
            try:
                self._fill(live, span)
                if error:
                    self._fail(live, span, _error_message(error))
            except Exception:
                log_internal_error()
        self.steps.end(span.span_id)

    def _fail(self, live: Any, span: Any, message: str) -> None:
        live.set_status("ERROR", message)
        if span.span_data.type != "agent":
            return
        # A failed agent run raises out of the run: its run span and the trace fail too.
        io = self._io.get(span.trace_id) or {}
        for key in (*io.get("tasks", ()), span.trace_id):
            failed = self.steps.get(key)
            if failed is not None:
                failed.set_status("ERROR", message)

    def shutdown(self) -> None:
        """Nothing to release: tracemark exports on its own thread."""

    def force_flush(self) -> None:
        """Export the traces that have ended."""
        DEFAULT_TRACER.flush(timeout=10)

    # -- per span type ----------------------------------------------------------------

    def _fill(self, live: Any, span: Any) -> None:
        data = span.span_data
        kind = data.type
        if kind == "generation":
            _fill_generation(live, data)
            last = data.output[-1] if data.output else None
            self._note_io(span.trace_id, _user_messages(data.input, live), _answer(last))
        elif kind == "response":
            _fill_response(live, data)
            response = data.response
            self._note_io(span.trace_id, scrub_media(data.input, span=live), _answer(response))
        elif kind == "function":
            live.set_inputs(_tool_input(data.input))
            live.set_outputs(data.output)
            if data.mcp_data:
                live.set_attribute("agents.mcp_data", data.mcp_data)
        elif kind == "agent":
            live.set_attributes(_agent_attributes(data))
        elif kind == "handoff":
            live.name = f"handoff to {data.to_agent}" if data.to_agent else "handoff"
            live.set_inputs({"from_agent": data.from_agent, "to_agent": data.to_agent})
            live.set_outputs({"to_agent": data.to_agent})
        elif kind == "guardrail":
            live.set_outputs({"triggered": bool(data.triggered)})
            live.set_attribute("agents.guardrail.triggered", bool(data.triggered))
        elif kind == "task":
            io = self._io.get(span.trace_id) or {}
            if "input" in io:
                live.set_inputs(io["input"])
            if "output" in io:
                live.set_outputs(io["output"])
        elif kind == "mcp_tools":
            live.set_outputs(data.result)
        elif kind not in ("turn", "custom"):
            live.set_outputs(data.export())

    def _note_io(self, trace_id: str, user_input: Any, answer: Any) -> None:
        io = self._io.get(trace_id)
        if io is None:
            return
        if "input" not in io and user_input:
            io["input"] = user_input
            root = self.steps.get(trace_id)
            if root is not None:
                root.set_inputs(user_input)
        if answer is not None:
            io["output"] = answer


def _describe_start(data: Any) -> tuple[str, str, Any, dict[str, Any]]:
    """Return the name, type, inputs and attributes of a span as it starts."""
    kind = data.type
    if kind == "agent":
        return data.name, "AGENT", UNSET, _agent_attributes(data)
    if kind == "generation":
        model = data.model
        return (f"chat {model}" if model else "chat"), "CHAT_MODEL", UNSET, _model_attributes(data)
    if kind == "response":
        return "response", "CHAT_MODEL", UNSET, {"gen_ai.provider.name": "openai"}
    if kind == "function":
        return data.name, "TOOL", UNSET, {"gen_ai.tool.name": data.name}
    if kind == "handoff":
        return "handoff", "CHAIN", UNSET, {"agents.handoff.from_agent": data.from_agent}
    if kind == "guardrail":
        return data.name, "GUARDRAIL", UNSET, {}
    if kind == "task":
        return "task", "CHAIN", UNSET, {}
    if kind == "turn":
        return f"turn {data.turn}", "CHAIN", UNSET, {"gen_ai.agent.name": data.agent_name}
    if kind == "custom":
        return data.name, "UNKNOWN", data.data, {}
    if kind == "mcp_tools":
        return "list_tools", "TOOL", UNSET, {"agents.mcp.server": data.server}
    return kind, "UNKNOWN", UNSET, {}


def _agent_attributes(data: Any) -> dict[str, Any]:
    attrs: dict[str, Any] = {"gen_ai.agent.name": data.name}
    if data.tools:
        attrs["agents.tools"] = list(data.tools)
    if data.handoffs:
        attrs["agents.handoffs"] = list(data.handoffs)
    if data.output_type:
        attrs["agents.output_type"] = data.output_type
    return attrs


def _model_attributes(data: Any) -> dict[str, Any]:
    attrs: dict[str, Any] = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai"}
    if data.model:
        attrs["gen_ai.request.model"] = data.model
    config = data.model_config or {}
    for key, attr in _MODEL_SETTINGS.items():
        value = config.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            attrs[attr] = value
    return attrs


def _fill_generation(live: Any, data: Any) -> None:
    """A Chat Completions call: request messages, answer messages, usage and cost."""
    config = {
        k: v
        for k, v in (data.model_config or {}).items()
        if v is not None and k not in SKIPPED_KWARGS  # headers may carry credentials
    }
    base_url = config.pop("base_url", None)
    messages = scrub_media(data.input or [], span=live)
    inputs: dict[str, Any] = {"model": data.model, "messages": messages}
    inputs.update(config)
    live.set_inputs(inputs)
    live.set_outputs(data.output)
    live.set_attributes(_model_attributes(data))
    provider = _cost.provider_for_url(str(base_url), "openai") if base_url else "openai"
    _record_usage(live, data.usage, provider, data.model)


def _fill_response(live: Any, data: Any) -> None:
    """A Responses API call: the input items, the `Response`, usage and cost."""
    response = data.response
    inputs: dict[str, Any] = {}
    if response is not None:
        inputs["model"] = response.model
        if getattr(response, "instructions", None):
            inputs["instructions"] = response.instructions
    inputs["input"] = scrub_media(data.input, span=live)
    live.set_inputs(inputs)
    if response is None:
        return
    live.name = f"chat {response.model}"
    live.set_outputs(response.model_dump(exclude_unset=True, warnings=False))
    attrs = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": response.model,
        "gen_ai.response.model": response.model,
        "gen_ai.response.id": response.id,
    }
    if response.status:
        attrs["gen_ai.response.finish_reasons"] = [response.status]
    live.set_attributes(attrs)
    usage = data.usage
    if usage is None and response.usage is not None:
        usage = response.usage.model_dump()
    _record_usage(live, usage, "openai", response.model)


def _record_usage(live: Any, usage: Any, provider: str, model: str | None) -> None:
    if not isinstance(usage, dict) or not (usage.get("input_tokens") or usage.get("output_tokens")):
        return  # not reported (a stream without usage): no tokens rather than a zero cost
    details = usage.get("input_tokens_details") or {}
    set_usage(
        live,
        provider=provider,
        model=model,
        input_tokens=usage.get("input_tokens"),
        output_tokens=usage.get("output_tokens"),
        cache_read_tokens=details.get("cached_tokens") or 0,
    )


def _tool_input(raw: Any) -> Any:
    """A function tool's arguments: the JSON the model sent, decoded when it is JSON."""
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def _user_messages(messages: Any, live: Any) -> Any:
    if not isinstance(messages, (list, tuple)):
        return messages
    return scrub_media(
        [m for m in messages if not (isinstance(m, dict) and m.get("role") in _SYSTEM_ROLES)],
        span=live,
    )


def _answer(item: Any) -> Any:
    """The text of a model's answer: a chat message, or a `Response` (object or dict)."""
    if item is None:
        return None
    if not isinstance(item, dict):
        text = getattr(item, "output_text", None)
        if text:
            return text
        dump = getattr(item, "model_dump", None)
        item = dump(warnings=False) if dump is not None else item
        if not isinstance(item, dict):
            return item
    if item.get("content") is not None:
        return item["content"]
    texts = [
        part.get("text")
        for output in item.get("output") or ()
        if isinstance(output, dict) and output.get("type") == "message"
        for part in output.get("content") or ()
        if isinstance(part, dict) and part.get("type") == "output_text"
    ]
    return "".join(t for t in texts if t) or item


def _error_message(error: Any) -> str:
    message = str(error.get("message") or "error") if isinstance(error, dict) else str(error)
    data = error.get("data") if isinstance(error, dict) else None
    return f"{message}: {json.dumps(data, default=str)}" if data else message
