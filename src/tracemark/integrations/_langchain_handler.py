"""The LangChain callback handler behind `tm.langchain.autolog()`.

Imported only once langchain-core is, by `tracemark.integrations.langchain`. Each LangChain
run (a runnable, a LangGraph graph or node, a chat model or LLM call, a tool, a retriever)
becomes a span, nested by `run_id`/`parent_run_id` through `StepSpans`:

| run | span type | inputs | outputs |
| --- | --- | --- | --- |
| chain, graph, node | CHAIN (PARSER for output parsers) | the run's inputs | its outputs |
| chat model | CHAT_MODEL | OpenAI-style `messages` (and `tools`) | `choices` with the message |
| LLM | LLM | `prompt` | `choices` with the text |
| tool | TOOL | the tool's arguments | its result |
| retriever | RETRIEVER | `query` | documents (`page_content`, `metadata`, `id`) |

LangChain messages anywhere in a payload are written OpenAI-style, documents in tracemark's
document form. A chain that reports agent actions becomes an AGENT span. Token usage comes
from the message's `usage_metadata` (else the provider's `llm_output`), the cost from it and
the model with genai-prices.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.documents import Document
from langchain_core.messages import BaseMessage, ToolMessage
from langchain_core.outputs import LLMResult

from tracemark.integrations._langchain_payloads import (
    base_url,
    is_graph_signal,
    openai_messages,
    payload,
    record_result,
    run_name,
)
from tracemark.integrations._patch import Instrumentation
from tracemark.integrations._steps import ModelCall, StepSpans
from tracemark.tracing._errors import internal_errors_raise, log_internal_error
from tracemark.tracing._span import UNSET
from tracemark.tracing._tracer import DEFAULT_TRACER

__all__ = ["TracemarkCallbackHandler"]

_REQUEST_PARAMS = {
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "max_tokens": "gen_ai.request.max_tokens",
    "max_completion_tokens": "gen_ai.request.max_tokens",
}
_REQUEST_INPUTS = ("tools", "tool_choice", "response_format")
# Tags langchain-core and LangGraph add to every step; the caller's own tags are kept.
_INTERNAL_TAG_PREFIXES = ("seq:step:", "graph:step:", "map:key:", "langsmith:", "branch:")
_HIDDEN_TAG = "langsmith:hidden"


class TracemarkCallbackHandler(BaseCallbackHandler):
    """Records LangChain runs as tracemark spans (registered by `tm.langchain.autolog()`).

    Args:
        inst: The integration's switches (`enabled`, `log_traces`).
    """

    # Called on the run's own thread and asyncio task, never in an executor: the span of
    # a run is then current where the run's code executes.
    run_inline = True

    def __init__(self, inst: Instrumentation) -> None:
        self._inst = inst
        self._steps = StepSpans()

    @property
    def raise_error(self) -> bool:  # type: ignore[override]
        """Let LangChain re-raise the handler's own failures only under tracemark's tests."""
        return internal_errors_raise()

    def release(self, run_id: UUID) -> None:
        """Stop making a run's span current here (its end is reported elsewhere)."""
        self._steps.release(run_id)

    def _recording(self) -> bool:
        return self._inst.recording and DEFAULT_TRACER.enabled

    def _start(
        self,
        run_id: UUID,
        parent_run_id: UUID | None,
        tags: list[str] | None,
        name: str,
        span_type: str,
        inputs: Any,
        attributes: dict[str, Any],
        metadata: dict[str, Any] | None,
        *,
        leaf: bool = False,
        data: Any = None,
    ) -> Any:
        if tags and _HIDDEN_TAG in tags:
            self._steps.skip(run_id, parent_run_id)
            return None
        metadata = metadata or {}
        if "langgraph_node" in metadata:
            attributes["langgraph.node"] = metadata["langgraph_node"]
            attributes["langgraph.step"] = metadata.get("langgraph_step")
        if parent_run_id is None or self._steps.span(parent_run_id) is None:
            # Inherited by every run below: recorded once, on the outermost span.
            own_tags = [t for t in tags or () if not t.startswith(_INTERNAL_TAG_PREFIXES)]
            if own_tags:
                attributes["langchain.tags"] = own_tags
            own_metadata = {
                k: v for k, v in metadata.items() if not k.startswith(("ls_", "langgraph_"))
            }
            if own_metadata:
                attributes["langchain.metadata"] = own_metadata
        return self._steps.start(
            run_id,
            parent_run_id,
            name,
            span_type,
            inputs=inputs,
            attributes=attributes,
            leaf=leaf,
            data=data,
        )

    def _end(self, run_id: UUID, outputs: Any = UNSET, error: BaseException | None = None) -> None:
        self._steps.end(run_id, outputs=outputs, error=error)

    # -- chains ---------------------------------------------------------------------------

    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Start a CHAIN span (PARSER for an output parser)."""
        if not self._recording():
            return
        try:
            span_type = "PARSER" if kwargs.get("run_type") == "parser" else "CHAIN"
            name = run_name(serialized, kwargs, "chain")
            self._start(run_id, parent_run_id, tags, name, span_type, payload(inputs), {}, metadata)
        except Exception:
            log_internal_error()

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """End a chain's span with its outputs (and its inputs, when streamed)."""
        try:
            self._set_streamed_inputs(run_id, kwargs)
            self._end(run_id, payload(outputs))
        except Exception:
            log_internal_error()

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """End a chain's span with its error (a LangGraph interrupt is not one)."""
        try:
            self._set_streamed_inputs(run_id, kwargs)
            span = self._steps.span(run_id)
            if span is not None and is_graph_signal(error):
                span.add_event("langgraph.interrupt", {"type": type(error).__name__})
                self._end(run_id)
                return
            self._end(run_id, error=error)
        except Exception:
            log_internal_error()

    def _set_streamed_inputs(self, run_id: UUID, kwargs: dict[str, Any]) -> None:
        # A streamed run starts with a placeholder and reports its real inputs at the end.
        inputs = kwargs.get("inputs", UNSET)
        if inputs is not UNSET:
            span = self._steps.span(run_id)
            if span is not None and span.recording:
                span.set_inputs(payload(inputs))

    # -- chat models and LLMs -------------------------------------------------------------

    def on_chat_model_start(
        self,
        serialized: dict[str, Any] | None,
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Start a CHAT_MODEL span with the messages sent, OpenAI-style."""
        if not self._recording():
            return
        try:
            batch = [openai_messages(m) for m in messages]
            inputs: dict[str, Any] = {"messages": batch[0] if len(batch) == 1 else batch}
            params = kwargs.get("invocation_params") or {}
            for key in _REQUEST_INPUTS:
                if params.get(key) is not None:
                    inputs[key] = params[key]
            self._start_model(
                "CHAT_MODEL",
                "chat",
                serialized,
                inputs,
                run_id,
                parent_run_id,
                tags,
                metadata,
                **kwargs,
            )
        except Exception:
            log_internal_error()

    def on_llm_start(
        self,
        serialized: dict[str, Any] | None,
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Start an LLM span with the prompt."""
        if not self._recording():
            return
        try:
            inputs = {"prompt": prompts[0]} if len(prompts) == 1 else {"prompts": prompts}
            self._start_model(
                "LLM",
                "text_completion",
                serialized,
                inputs,
                run_id,
                parent_run_id,
                tags,
                metadata,
                **kwargs,
            )
        except Exception:
            log_internal_error()

    def _start_model(
        self,
        span_type: str,
        operation: str,
        serialized: dict[str, Any] | None,
        inputs: dict[str, Any],
        run_id: UUID,
        parent_run_id: UUID | None,
        tags: list[str] | None,
        metadata: dict[str, Any] | None,
        **kwargs: Any,
    ) -> None:
        metadata = metadata or {}
        params = kwargs.get("invocation_params") or {}
        provider = str(metadata.get("ls_provider") or "")
        model = params.get("model") or params.get("model_name") or metadata.get("ls_model_name")
        model = model if isinstance(model, str) else None
        attributes: dict[str, Any] = {"gen_ai.operation.name": operation}
        if provider:
            attributes["gen_ai.provider.name"] = provider
        if model:
            attributes["gen_ai.request.model"] = model
        for key, attribute in _REQUEST_PARAMS.items():
            value = params.get(key, metadata.get(f"ls_{key}"))
            if value is not None and value.__class__ in (int, float):
                attributes[attribute] = value
        tools = inputs.get("tools")
        if isinstance(tools, list):
            attributes["gen_ai.tool.definitions"] = tools
        call = ModelCall(provider, model, base_url(serialized))
        name = run_name(serialized, kwargs, span_type.lower())
        self._start(
            run_id,
            parent_run_id,
            tags,
            name,
            span_type,
            inputs,
            attributes,
            metadata,
            leaf=True,
            data=call,
        )

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        """End a model span with the generations, token usage and cost."""
        try:
            span = self._steps.span(run_id)
            if span is not None and span.recording:
                record_result(span, response, self._steps.data(run_id))
            self._end(run_id)
        except Exception:
            log_internal_error()

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """End a model span with its error (a stream closed early keeps what it got)."""
        try:
            span = self._steps.span(run_id)
            partial = kwargs.get("response")
            if span is not None and span.recording and isinstance(partial, LLMResult):
                record_result(span, partial, self._steps.data(run_id))
            self._end(run_id, error=error)
        except Exception:
            log_internal_error()

    # -- tools and retrievers -------------------------------------------------------------

    def on_tool_start(
        self,
        serialized: dict[str, Any] | None,
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        inputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Start a TOOL span with the tool's arguments."""
        if not self._recording():
            return
        try:
            name = run_name(serialized, kwargs, "tool")
            attributes: dict[str, Any] = {"gen_ai.tool.name": name}
            if kwargs.get("tool_call_id"):
                attributes["gen_ai.tool.call.id"] = kwargs["tool_call_id"]
            description = (serialized or {}).get("description")
            if description:
                attributes["gen_ai.tool.description"] = description
            args = payload(inputs) if inputs is not None else {"input": input_str}
            self._start(run_id, parent_run_id, tags, name, "TOOL", args, attributes, metadata)
        except Exception:
            log_internal_error()

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """End a tool's span with its result."""
        try:
            if isinstance(output, ToolMessage):
                artifact = getattr(output, "artifact", None)
                result = output.content
                outputs = result if artifact is None else {"content": result, "artifact": artifact}
            else:
                outputs = payload(output)
            self._end(run_id, outputs)
        except Exception:
            log_internal_error()

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """End a tool's span with its error."""
        try:
            self._end(run_id, error=error)
        except Exception:
            log_internal_error()

    def on_retriever_start(
        self,
        serialized: dict[str, Any] | None,
        query: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Start a RETRIEVER span with the query."""
        if not self._recording():
            return
        try:
            name = run_name(serialized, kwargs, "retriever")
            inputs = {"query": query}
            self._start(run_id, parent_run_id, tags, name, "RETRIEVER", inputs, {}, metadata)
        except Exception:
            log_internal_error()

    def on_retriever_end(
        self, documents: Sequence[Document], *, run_id: UUID, **kwargs: Any
    ) -> None:
        """End a retriever's span with the documents it found."""
        try:
            self._end(run_id, [payload(d) for d in documents])
        except Exception:
            log_internal_error()

    def on_retriever_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """End a retriever's span with its error."""
        try:
            self._end(run_id, error=error)
        except Exception:
            log_internal_error()

    # -- agents and events ----------------------------------------------------------------

    def on_agent_action(self, action: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """Mark the run as an agent and note the action it chose."""
        try:
            span = self._steps.span(run_id)
            if span is not None and span.recording:
                span.span_type = "AGENT"  # type: ignore[misc]
                span.add_event(
                    "agent_action",
                    {"tool": action.tool, "tool_input": action.tool_input, "log": action.log},
                )
        except Exception:
            log_internal_error()

    def on_agent_finish(self, finish: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """Mark the run as an agent and note its final answer."""
        try:
            span = self._steps.span(run_id)
            if span is not None and span.recording:
                span.span_type = "AGENT"  # type: ignore[misc]
                span.add_event(
                    "agent_finish", {"return_values": finish.return_values, "log": finish.log}
                )
        except Exception:
            log_internal_error()

    def on_retry(self, retry_state: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """Note a retry on the run's span."""
        try:
            span = self._steps.span(run_id)
            if span is not None and span.recording:
                outcome = getattr(retry_state, "outcome", None)
                failed = outcome.exception() if outcome is not None and outcome.failed else None
                attributes: dict[str, Any] = {"attempt": getattr(retry_state, "attempt_number", 0)}
                if failed is not None:
                    attributes["exception.message"] = str(failed)
                span.add_event("retry", attributes)
        except Exception:
            log_internal_error()

    def on_custom_event(self, name: str, data: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """Add a custom event (`dispatch_custom_event`) to the run's span."""
        try:
            span = self._steps.span(run_id)
            if span is not None and span.recording:
                span.add_event(name, {"data": payload(data)})
        except Exception:
            log_internal_error()
