"""Trace AutoGen (`autogen-agentchat`) teams, agent turns, model calls and tools.

Example:
    import tracemark as tm

    tm.autogen.autolog()
    team = RoundRobinGroupChat([writer, critic], termination_condition=...)
    await team.run(task="Write a haiku about tracing")

A team run (`run`/`run_stream` of every group chat) is a CHAIN span, each agent turn
(`on_messages`/`on_messages_stream`) an AGENT span under it, and inside a turn the model
calls of `autogen-ext`'s OpenAI clients (CHAT_MODEL, with the messages, tokens and cost)
and the tools run (TOOL). Agent turns run in AutoGen's agent runtime, on tasks it starts
when the team starts; they inherit the team's span from there.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable
from typing import Any

from tracemark.integrations._async_spans import AsyncSpans
from tracemark.integrations._llm import SKIPPED_KWARGS, client_info, set_usage
from tracemark.integrations._media import media_reference, scrub_media
from tracemark.integrations._patch import Instrumentation
from tracemark.tracing._errors import log_internal_error

__all__ = ["LIBRARY", "autolog"]

LIBRARY = "autogen_agentchat"
"""The module this integration instruments; `tm.autolog()` enables it when importable."""

INSTRUMENTATION = Instrumentation("autogen", LIBRARY)
SPANS = AsyncSpans(INSTRUMENTATION)

_TURN_METHODS = ("on_messages", "on_messages_stream")
_REQUEST_PARAMS = {
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "max_tokens": "gen_ai.request.max_tokens",
    "max_completion_tokens": "gen_ai.request.max_tokens",
    "seed": "gen_ai.request.seed",
}


def autolog(*, disable: bool = False, log_traces: bool = True, silent: bool = False) -> None:
    """Trace AutoGen team runs, agent turns, OpenAI model-client calls and tool calls.

    Example:
        >>> import tracemark as tm
        >>> tm.autogen.autolog()

    If `autogen_agentchat` is not imported yet, the patches are applied when it is.

    Args:
        disable: Remove the patches and restore AutoGen's own methods.
        log_traces: False keeps the patches but records nothing.
        silent: Do not log tracemark's own messages about this integration.
    """
    INSTRUMENTATION.autolog(
        _install,
        package="autogen-agentchat",
        disable=disable,
        log_traces=log_traces,
        silent=silent,
    )


def _install(module: Any) -> None:
    inst = INSTRUMENTATION
    if not inst.enabled:
        return
    from autogen_agentchat.agents import BaseChatAgent
    from autogen_agentchat.teams import BaseGroupChat
    from autogen_core.tools import BaseStreamTool, BaseTool

    inst.wrap(
        BaseGroupChat, "run_stream", lambda f: SPANS.generator(f, _describe_team, _record_team)
    )
    # Agent classes override the turn methods; each class is instrumented when its first
    # instance is made, so agents defined after autolog are covered too.
    _instrument_agent_class(BaseChatAgent)
    for cls in _subclasses(BaseChatAgent):
        _instrument_agent_class(cls)
    inst.wrap(BaseChatAgent, "__init__", _instrumenting_init)
    inst.wrap(BaseTool, "run_json", lambda f: SPANS.coroutine(f, _describe_tool, _record_tool))
    inst.wrap(
        BaseStreamTool,
        "run_json_stream",
        lambda f: SPANS.generator(f, _describe_tool, _record_tool),
    )
    try:
        from autogen_ext.models.openai import BaseOpenAIChatCompletionClient
    except ImportError:  # autogen-ext or its OpenAI extra is not installed
        return
    client = BaseOpenAIChatCompletionClient
    # A model call records its own tokens and cost (a leaf): the OpenAI SDK call inside it
    # (with `tm.openai.autolog()` on too) is not recorded a second time.
    inst.wrap(
        client, "create", lambda f: SPANS.coroutine(f, _describe_model, _record_model, leaf=True)
    )
    inst.wrap(
        client,
        "create_stream",
        lambda f: SPANS.generator(f, _describe_model, _record_model, leaf=True),
    )


def _subclasses(cls: type) -> list[type]:
    found: list[type] = []
    stack = list(cls.__subclasses__())
    while stack:
        sub = stack.pop()
        if sub not in found:
            found.append(sub)
            stack.extend(sub.__subclasses__())
    return found


def _instrument_agent_class(cls: type) -> None:
    """Wrap the turn methods where `cls` and its agent base classes define them."""
    from autogen_agentchat.agents import BaseChatAgent

    for klass in cls.__mro__:
        if not issubclass(klass, BaseChatAgent):
            continue
        for method in _TURN_METHODS:
            if method not in klass.__dict__:
                continue
            if method == "on_messages":
                INSTRUMENTATION.wrap(
                    klass, method, lambda f: SPANS.coroutine(f, _describe_turn, _record_turn)
                )
            else:
                INSTRUMENTATION.wrap(
                    klass, method, lambda f: SPANS.generator(f, _describe_turn, _record_turn)
                )


def _instrumenting_init(original: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap `BaseChatAgent.__init__` to instrument each agent class on its first instance."""
    seen: weakref.WeakSet[type] = weakref.WeakSet()

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:  # noqa: N807
        cls = type(self)
        if cls not in seen and INSTRUMENTATION.enabled:
            seen.add(cls)
            try:
                _instrument_agent_class(cls)
            except Exception:
                log_internal_error()
        original(self, *args, **kwargs)

    return __init__


# -- teams and agents ------------------------------------------------------------------------


def _describe_team(team: Any, args: Any, kwargs: dict[str, Any]) -> Any:
    name = getattr(team, "name", None) or type(team).__name__
    attributes = {"autogen.team.type": type(team).__name__}
    participants = getattr(team, "_participants", None)
    if participants:
        attributes["autogen.team.participants"] = [getattr(p, "name", "?") for p in participants]
    return name, "CHAIN", {"task": _task(kwargs.get("task"))}, attributes


def _record_team(owner: Any, span: Any, result: Any, items: list[Any]) -> None:
    if type(result).__name__ == "TaskResult":
        span.set_outputs(
            {
                "messages": [_message(m) for m in result.messages],
                "stop_reason": result.stop_reason,
            }
        )


def _describe_turn(agent: Any, args: Any, kwargs: dict[str, Any]) -> Any:
    messages = args[0] if args else kwargs.get("messages")
    name = getattr(agent, "name", None) or type(agent).__name__
    attributes = {"gen_ai.agent.name": name, "autogen.agent.type": type(agent).__name__}
    return name, "AGENT", {"messages": [_message(m) for m in messages or ()]}, attributes


def _record_turn(owner: Any, span: Any, result: Any, items: list[Any]) -> None:
    if type(result).__name__ != "Response":
        return
    outputs: dict[str, Any] = {"message": _message(result.chat_message)}
    if result.inner_messages:
        outputs["inner_messages"] = [_message(m) for m in result.inner_messages]
    span.set_outputs(outputs)


def _task(task: Any) -> Any:
    if task is None or isinstance(task, str):
        return task
    if isinstance(task, (list, tuple)):
        return [_message(m) for m in task]
    return _message(task)


def _message(message: Any) -> Any:
    """An AgentChat message or event as an OpenAI-style message naming its source."""
    source = getattr(message, "source", None)
    if source is None:
        return message
    out: dict[str, Any] = {
        "role": "user" if source == "user" else "assistant",
        "name": source,
        "type": getattr(message, "type", type(message).__name__),
        "content": _content(getattr(message, "content", None)),
    }
    usage = getattr(message, "models_usage", None)
    if usage is not None:
        out["models_usage"] = {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
        }
    return out


def _content(content: Any) -> Any:
    if isinstance(content, list):
        return [_part(part) for part in content]
    return _part(content)


def _part(part: Any) -> Any:
    """One part of a message: text, an image (by reference), a function call or result."""
    if part is None or isinstance(part, (str, int, float, bool, dict)):
        return part
    if hasattr(part, "data_uri"):  # autogen_core.Image
        return {"type": "image_url", "image_url": {"url": media_reference(part.data_uri)}}
    if type(part).__name__ == "FunctionCall":
        return {
            "id": part.id,
            "type": "function",
            "function": {"name": part.name, "arguments": part.arguments},
        }
    dump = getattr(part, "model_dump", None)
    return dump(mode="json") if dump is not None else part


# -- model calls -----------------------------------------------------------------------------


def _describe_model(client: Any, args: Any, kwargs: dict[str, Any]) -> Any:
    create_args = dict(getattr(client, "_create_args", None) or {})
    create_args.update(kwargs.get("extra_create_args") or {})
    model = create_args.get("model")
    messages = args[0] if args else kwargs.get("messages")
    inputs: dict[str, Any] = {"model": model, "messages": _llm_messages(messages or ())}
    tools = kwargs.get("tools")
    if tools:
        inputs["tools"] = [_tool_schema(t) for t in tools]
        choice = kwargs.get("tool_choice")
        inputs["tool_choice"] = choice if isinstance(choice, str) else getattr(choice, "name", None)
    json_output = kwargs.get("json_output")
    if json_output is not None:
        inputs["json_output"] = (
            json_output if isinstance(json_output, bool) else getattr(json_output, "__name__", None)
        )
    # Headers may carry credentials: left out, as the OpenAI integration leaves them out.
    inputs.update(
        {k: v for k, v in create_args.items() if k != "model" and k not in SKIPPED_KWARGS}
    )
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
    }
    if model:
        attributes["gen_ai.request.model"] = model
    for key, attr in _REQUEST_PARAMS.items():
        value = create_args.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            attributes[attr] = value
    host = client_info(client, "openai").host
    if host:
        attributes["server.address"] = host
    return (f"chat {model}" if model else "chat"), "CHAT_MODEL", inputs, attributes


def _record_model(owner: Any, span: Any, result: Any, items: list[Any]) -> None:
    if type(result).__name__ != "CreateResult":
        # A stream closed before its final result: the text received so far.
        text = "".join(i for i in items if isinstance(i, str))
        if text:
            span.set_outputs({"message": {"role": "assistant", "content": text}})
        return
    message: dict[str, Any] = {"role": "assistant"}
    if isinstance(result.content, str):
        message["content"] = result.content
    else:
        message["content"] = None
        message["tool_calls"] = [_part(call) for call in result.content]
    if result.thought:
        message["thought"] = result.thought
    usage = result.usage
    span.set_outputs(
        {
            "message": message,
            "finish_reason": result.finish_reason,
            "usage": {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
            },
            "cached": result.cached,
        }
    )
    span.set_attribute("gen_ai.response.finish_reasons", [result.finish_reason])
    # A cached answer cost nothing; a stream without usage reports zeros: no tokens then.
    if result.cached or not (usage.prompt_tokens or usage.completion_tokens):
        return
    model = span.attributes.get("gen_ai.request.model")
    set_usage(
        span,
        provider=client_info(owner, "openai").provider,
        model=model,
        input_tokens=usage.prompt_tokens,
        output_tokens=usage.completion_tokens,
    )


def _llm_messages(messages: Any) -> list[Any]:
    """AutoGen's `LLMMessage`s as the OpenAI-style messages they are sent as."""
    out: list[Any] = []
    for message in messages:
        kind = getattr(message, "type", None)
        content = getattr(message, "content", None)
        if kind == "SystemMessage":
            out.append({"role": "system", "content": content})
        elif kind == "UserMessage":
            out.append({"role": "user", "name": message.source, "content": _content(content)})
        elif kind == "AssistantMessage":
            entry: dict[str, Any] = {"role": "assistant", "name": message.source}
            if isinstance(content, str):
                entry["content"] = content
            else:
                entry["content"] = None
                entry["tool_calls"] = [_part(call) for call in content or ()]
            if getattr(message, "thought", None):
                entry["thought"] = message.thought
            out.append(entry)
        elif kind == "FunctionExecutionResultMessage":
            for result in content or ():
                out.append(
                    {
                        "role": "tool",
                        "tool_call_id": result.call_id,
                        "name": result.name,
                        "content": result.content,
                    }
                )
        else:
            out.append(_part(message))
    return scrub_media(out)


def _tool_schema(tool: Any) -> Any:
    schema = getattr(tool, "schema", tool)
    return {"type": "function", "function": schema}


# -- tools -----------------------------------------------------------------------------------


def _describe_tool(tool: Any, args: Any, kwargs: dict[str, Any]) -> Any:
    arguments = args[0] if args else kwargs.get("args")
    call_id = kwargs.get("call_id") if "call_id" in kwargs else (args[2] if len(args) > 2 else None)
    name = getattr(tool, "name", None) or type(tool).__name__
    attributes: dict[str, Any] = {"gen_ai.tool.name": name}
    description = getattr(tool, "description", None)
    if isinstance(description, str):
        attributes["gen_ai.tool.description"] = description
    if call_id:
        attributes["gen_ai.tool.call.id"] = call_id
    return name, "TOOL", dict(arguments or {}), attributes


def _record_tool(owner: Any, span: Any, result: Any, items: list[Any]) -> None:
    span.set_outputs(_part(result) if not isinstance(result, (list, tuple)) else result)
