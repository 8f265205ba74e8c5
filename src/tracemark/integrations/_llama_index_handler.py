"""The LlamaIndex span and event handlers behind `tm.llama_index.autolog()`.

Imported only once llama-index-core is, by `tracemark.integrations.llama_index`. Every call
LlamaIndex's dispatcher reports becomes a span named `Class.method` (a tool's span is named
after the tool), nested by LlamaIndex's own span ids through `StepSpans`:

| component | span type | inputs | outputs |
| --- | --- | --- | --- |
| query engine, synthesizer, workflow step | CHAIN | the call's arguments | the result |
| retriever | RETRIEVER | the query | documents (`page_content`, `metadata` with `score`, `id`) |
| LLM `chat`/`stream_chat` (and async) | CHAT_MODEL | OpenAI-style `messages` | `choices` |
| LLM `complete`/`stream_complete` (and async) | LLM | `prompt` | `choices` with the text |
| embedding model | EMBEDDING | the texts | how many vectors, of which dimension |
| node postprocessor | RERANKER | the nodes and query | documents |
| tool | TOOL | the tool's arguments | its output |
| agent `run` | AGENT | the user message | the agent's output |

LlamaIndex's private methods (`_query`, `_retrieve`, ...) and node parsers are plumbing and
are not recorded; their children nest under the nearest recorded span. A streamed LLM call's
span lasts until the stream ends (LlamaIndex's end event); a streamed query's span lasts
until its `response_gen` is consumed, and the LLM call that produces the text nests in it.
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import AsyncIterator, Iterator
from typing import Any

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.base.llms.base import BaseLLM
from llama_index.core.base.response.schema import AsyncStreamingResponse, StreamingResponse
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events.exception import ExceptionEvent
from llama_index.core.instrumentation.events.llm import LLMChatEndEvent, LLMCompletionEndEvent
from llama_index.core.instrumentation.span_handlers import BaseSpanHandler
from llama_index.core.node_parser.interface import NodeParser
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.tools.types import BaseTool
from pydantic import PrivateAttr

from tracemark.integrations._llama_index_payloads import (
    arguments,
    model_attributes,
    model_call,
    outputs,
    query_response,
    record_response,
)
from tracemark.integrations._media import scrub_media
from tracemark.integrations._patch import Instrumentation
from tracemark.integrations._steps import ModelCall, StepSpans, sdk_records
from tracemark.tracing._context import CURRENT_SPAN
from tracemark.tracing._errors import log_internal_error
from tracemark.tracing._tracer import DEFAULT_TRACER

__all__ = ["TracemarkEventHandler", "TracemarkSpanHandler", "make_handlers"]

_CHAT = frozenset({"chat", "achat", "stream_chat", "astream_chat"})
_COMPLETE = frozenset({"complete", "acomplete", "stream_complete", "astream_complete"})
_UUID_SUFFIX = 37  # "-" and a UUID4, which the dispatcher appends to every span id


def make_handlers(inst: Instrumentation) -> tuple[Any, Any]:
    """Return the span handler and the event handler to attach to the root dispatcher."""
    steps = StepSpans()
    return TracemarkSpanHandler(inst, steps), TracemarkEventHandler(inst, steps)


class _Step:
    """What a recorded LlamaIndex span needs at its end."""

    __slots__ = ("call", "kind")

    def __init__(self, kind: str, call: ModelCall | None = None) -> None:
        self.kind = kind  # the span type
        self.call = call


class TracemarkSpanHandler(BaseSpanHandler[Any]):
    """Turns the dispatcher's spans into tracemark spans."""

    _inst: Any = PrivateAttr()
    _steps: Any = PrivateAttr()

    def __init__(self, inst: Instrumentation, steps: StepSpans) -> None:
        super().__init__()
        self._inst = inst
        self._steps = steps

    @classmethod
    def class_name(cls) -> str:
        """The handler's name in LlamaIndex."""
        return "TracemarkSpanHandler"

    # The dispatcher calls these three; the abstract hooks below are not used.

    def span_enter(
        self,
        id_: str,
        bound_args: inspect.BoundArguments,
        instance: Any = None,
        parent_id: str | None = None,
        tags: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Start the span of a dispatcher span (or skip LlamaIndex's plumbing)."""
        if not self._inst.recording or not DEFAULT_TRACER.enabled:
            return
        try:
            self._enter(id_, bound_args, instance, parent_id, tags)
        except Exception:
            log_internal_error()

    def span_exit(
        self,
        id_: str,
        bound_args: inspect.BoundArguments,
        instance: Any = None,
        result: Any = None,
        **kwargs: Any,
    ) -> None:
        """End the span with the result (or keep it open while a stream is consumed)."""
        try:
            self._exit(id_, result)
        except Exception:
            log_internal_error()

    def span_drop(
        self,
        id_: str,
        bound_args: inspect.BoundArguments,
        instance: Any = None,
        err: BaseException | None = None,
        **kwargs: Any,
    ) -> None:
        """End the span with the error the call raised."""
        try:
            self._steps.end(id_, error=err)
        except Exception:
            log_internal_error()

    def new_span(self, *args: Any, **kwargs: Any) -> None:
        """Unused: `span_enter` is overridden."""
        return None

    def prepare_to_exit_span(self, *args: Any, **kwargs: Any) -> None:
        """Unused: `span_exit` is overridden."""
        return None

    def prepare_to_drop_span(self, *args: Any, **kwargs: Any) -> None:
        """Unused: `span_drop` is overridden."""
        return None

    # -- what each span records -----------------------------------------------------------

    def _enter(
        self,
        id_: str,
        bound_args: inspect.BoundArguments,
        instance: Any,
        parent_id: str | None,
        tags: dict[str, Any] | None,
    ) -> None:
        qualified = id_[:-_UUID_SUFFIX] if len(id_) > _UUID_SUFFIX else id_
        method = qualified.rpartition(".")[2]
        if (
            method.startswith("_")
            and not method.startswith("__")
            or isinstance(instance, NodeParser)
        ):
            self._steps.skip(id_, parent_id)
            return
        inputs = arguments(bound_args)
        attributes: dict[str, Any] = {}
        if tags:
            attributes["llama_index.tags"] = tags
        name, current, leaf, call = qualified, True, False, None
        if isinstance(instance, BaseLLM) and method in _CHAT | _COMPLETE:
            chat = method in _CHAT
            kind = "CHAT_MODEL" if chat else "LLM"
            leaf = True  # the provider SDK's call inside is this very call
            call = model_call(instance)
            attributes.update(model_attributes(call, "chat" if chat else "text_completion"))
            positional = inputs.pop("args", None)
            if positional:  # a wrapper taking `*args`: the first is the messages or prompt
                inputs = {"messages" if chat else "prompt": positional[0], **inputs}
            if chat and isinstance(inputs.get("messages"), list):
                inputs["messages"] = scrub_media(inputs["messages"])
            tools = inputs.get("tools")
            if isinstance(tools, list):
                attributes["gen_ai.tool.definitions"] = tools
        elif isinstance(instance, BaseEmbedding):
            kind = "EMBEDDING"
            call = model_call(instance)
            attributes.update(model_attributes(call, "embeddings"))
        elif isinstance(instance, BaseRetriever):
            kind = "RETRIEVER"
        elif isinstance(instance, BaseNodePostprocessor):
            kind = "RERANKER"
        elif isinstance(instance, BaseTool):
            kind = "TOOL"
            metadata = instance.metadata
            name = metadata.name or qualified
            attributes["gen_ai.tool.name"] = name
            if metadata.description:
                attributes["gen_ai.tool.description"] = metadata.description
        elif _is_agent(instance) and method == "run":
            kind = "AGENT"
        else:
            kind = "CHAIN"
        if method == "run" and _is_workflow(instance):
            # `Workflow.run` returns a handler that finishes later, elsewhere: its steps
            # nest by LlamaIndex's ids, and the caller's context is left as it was.
            current = False
            inputs.pop("init_state", None)  # the serialized run state, not an input
            inputs.pop("ctx", None)
        self._steps.start(
            id_,
            parent_id,
            name,
            kind,
            inputs=inputs,
            attributes=attributes,
            leaf=leaf,
            current=current,
            data=_Step(kind, call),
        )

    def _exit(self, id_: str, result: Any) -> None:
        steps = self._steps
        step = steps.data(id_)
        if step is None:
            steps.end(id_)  # a skipped span, or one that was never recorded
            return
        span = steps.span(id_)
        if step.kind in ("CHAT_MODEL", "LLM"):
            if inspect.isgenerator(result) or inspect.isasyncgen(result):
                # The call goes on while the caller consumes the stream; LlamaIndex's end
                # event (or the stream's collection) ends the span.
                steps.release(id_)
                weakref.finalize(result, steps.end, id_)
                return
            if span is not None and span.recording:
                record_response(span, result, step.call)
            steps.end(id_)
            return
        if isinstance(result, (StreamingResponse, AsyncStreamingResponse)) and _follow_response(
            steps, id_, span, result
        ):
            return
        steps.end(id_, outputs=outputs(step.kind, result))


class TracemarkEventHandler(BaseEventHandler):
    """Ends the span of a streamed LLM call when LlamaIndex reports the stream's end."""

    _inst: Any = PrivateAttr()
    _steps: Any = PrivateAttr()

    def __init__(self, inst: Instrumentation, steps: StepSpans) -> None:
        super().__init__()
        self._inst = inst
        self._steps = steps

    @classmethod
    def class_name(cls) -> str:
        """The handler's name in LlamaIndex."""
        return "TracemarkEventHandler"

    def handle(self, event: Any, **kwargs: Any) -> None:
        """Look at one event (called for every event, streamed chunks included)."""
        cls = event.__class__
        if cls is not LLMChatEndEvent and cls is not LLMCompletionEndEvent:
            if cls is ExceptionEvent:
                self._failed(event)
            return
        try:
            steps = self._steps
            span_id = event.span_id
            step = steps.data(span_id)
            if step is None or step.kind not in ("CHAT_MODEL", "LLM"):
                return
            if not steps.is_released(span_id):
                return  # not streamed: the span's exit records the response
            span = steps.span(span_id)
            if span is not None and span.recording:
                # The provider SDK's call ran while the caller consumed the stream, outside
                # this span: when that SDK's integration records it, its span has the usage.
                call = step.call
                counted = call is not None and sdk_records(call.provider)
                record_response(span, event.response, call, usage=not counted)
            steps.end(span_id)
        except Exception:
            log_internal_error()

    def _failed(self, event: ExceptionEvent) -> None:
        try:
            steps = self._steps
            span_id = event.span_id
            if span_id is not None and steps.is_released(span_id):
                steps.end(span_id, error=event.exception)
        except Exception:
            log_internal_error()


# -- following a streamed query response ------------------------------------------------------


def _follow_response(steps: StepSpans, id_: str, span: Any, response: Any) -> bool:
    """Keep the span open until `response.response_gen` is consumed; False if impossible."""
    source = response.response_gen
    if source is None or span is None or not span.recording:
        return False
    span.set_outputs(query_response(response, None))
    steps.release(id_)
    if inspect.isasyncgen(source):
        response.response_gen = _afollow(steps, id_, span, response, source)
    elif inspect.isgenerator(source) or hasattr(source, "__next__"):
        response.response_gen = _follow(steps, id_, span, response, source)
    else:
        steps.end(id_)
        return True
    # A response dropped before it was consumed still ends its span.
    weakref.finalize(response, steps.end, id_)
    return True


def _follow(
    steps: StepSpans, id_: str, span: Any, response: Any, source: Iterator[str]
) -> Iterator[str]:
    parts: list[str] = []
    error: BaseException | None = None
    try:
        while True:
            token = CURRENT_SPAN.set(span)  # what the stream calls nests under this span
            try:
                part = next(source)
            except StopIteration:
                break
            finally:
                CURRENT_SPAN.reset(token)
            parts.append(part)
            yield part
    except BaseException as exc:
        error = exc
        raise
    finally:
        try:
            span.set_outputs(query_response(response, "".join(parts)))
        except Exception:
            log_internal_error()
        steps.end(id_, error=error)


async def _afollow(
    steps: StepSpans, id_: str, span: Any, response: Any, source: AsyncIterator[str]
) -> AsyncIterator[str]:
    parts: list[str] = []
    error: BaseException | None = None
    try:
        while True:
            token = CURRENT_SPAN.set(span)
            try:
                part = await source.__anext__()
            except StopAsyncIteration:
                break
            finally:
                CURRENT_SPAN.reset(token)
            parts.append(part)
            yield part
    except BaseException as exc:
        error = exc
        raise
    finally:
        try:
            span.set_outputs(query_response(response, "".join(parts)))
        except Exception:
            log_internal_error()
        steps.end(id_, error=error)


def _is_workflow(instance: Any) -> bool:
    return any(
        cls.__name__ == "Workflow" and cls.__module__.startswith(("workflows", "llama_index"))
        for cls in type(instance).__mro__
    )


def _is_agent(instance: Any) -> bool:
    return any(
        cls.__name__ in ("BaseWorkflowAgent", "AgentWorkflow") for cls in type(instance).__mro__
    )
