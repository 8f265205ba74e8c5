"""Trace LangChain and LangGraph: chains, chat models and LLMs, tools, retrievers, agents, graphs.

Example:
    import tracemark as tm

    tm.langchain.autolog()
    chain = prompt | ChatOpenAI(model="gpt-4o-mini") | StrOutputParser()
    chain.invoke({"question": "..."})  # a CHAIN span with the prompt, model and parser in it

autolog registers one callback handler with langchain-core's configure hooks
(`langchain_core.tracers.context.register_configure_hook`), the mechanism langchain-core
uses for its own tracers: every callback manager langchain-core configures, for a runnable,
a LangGraph graph or node, a chat model, a tool or a retriever, sync or async, gets the
handler, once, and passes it on to the child runs. Patching `CallbackManager.configure`
would do the same less directly. The hook reads a context variable whose default value is
the handler, so it applies on every thread and in every asyncio task, whichever one called
autolog.

While a run executes its span is the current span (see `_steps`). An async run's end is
reported from a shielded copy of its caller's context, where the caller's own current span
cannot be put back; so autolog also wraps the end methods of langchain-core's async run
managers: when the caller calls one, the run stops being current right there, and the
original method then runs unchanged. Nothing else of LangChain is patched, and no return
value passes through tracemark.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from tracemark.integrations._patch import Instrumentation
from tracemark.tracing._errors import log_internal_error

__all__ = ["LIBRARY", "autolog"]

LIBRARY = "langchain_core"
"""The module this integration instruments; `tm.autolog()` enables it when importable."""

INSTRUMENTATION = Instrumentation("langchain", LIBRARY)


class _Registration:
    """The handler registered with langchain-core's configure hooks while autolog is on."""

    def __init__(self) -> None:
        self.handler: Any = None
        self.variable: ContextVar[Any] | None = None
        self._lock = threading.Lock()

    def install(self, module: Any) -> None:
        """Register the handler (once) now that langchain-core is imported."""
        if not INSTRUMENTATION.enabled:
            return
        from langchain_core.tracers import context

        from tracemark.integrations._langchain_handler import TracemarkCallbackHandler

        with self._lock:
            if self.variable is None:
                self.handler = TracemarkCallbackHandler(INSTRUMENTATION)
                self.variable = ContextVar("tracemark_langchain_handler", default=self.handler)
            hooks = getattr(context, "_configure_hooks", ())
            if not any(hook[0] is self.variable for hook in hooks):
                context.register_configure_hook(self.variable, True)
        from langchain_core.callbacks import manager

        for class_name, methods in _ASYNC_ENDS:
            owner = getattr(manager, class_name, None)
            for method in methods if owner is not None else ():
                INSTRUMENTATION.wrap(owner, method, self._leaving_current)

    def _leaving_current(self, original: Callable[..., Any]) -> Callable[..., Any]:
        """Wrap an async run manager's end method to restore the caller's current span."""

        @functools.wraps(original)
        def end_where_awaited(manager: Any, *args: Any, **kwargs: Any) -> Any:
            # A plain function returning the original coroutine: this line runs in the
            # caller's context, which the coroutine (run as a shielded task) never sees.
            handler = self.handler
            if handler is not None:
                try:
                    handler.release(manager.run_id)
                except Exception:
                    log_internal_error()
            return original(manager, *args, **kwargs)

        return end_where_awaited

    def remove(self) -> None:
        """Take the handler out of langchain-core's configure hooks and remove the wrappers."""
        import sys

        context = sys.modules.get("langchain_core.tracers.context")
        if context is None or self.variable is None:
            return
        INSTRUMENTATION.unpatch()
        with self._lock:
            hooks = getattr(context, "_configure_hooks", None)
            if hooks is None:
                return  # the handler stays registered but records nothing (`enabled` is off)
            for hook in list(hooks):
                if hook[0] is self.variable:
                    with contextlib.suppress(ValueError):
                        hooks.remove(hook)

    @property
    def registered(self) -> bool:
        """Whether the handler is in langchain-core's configure hooks now."""
        import sys

        context = sys.modules.get("langchain_core.tracers.context")
        hooks = getattr(context, "_configure_hooks", ())
        return self.variable is not None and any(hook[0] is self.variable for hook in hooks)


# The async run managers' end methods, which langchain-core runs as shielded tasks.
_ASYNC_ENDS = (
    ("AsyncCallbackManagerForChainRun", ("on_chain_end", "on_chain_error")),
    ("AsyncCallbackManagerForLLMRun", ("on_llm_end", "on_llm_error")),
    ("AsyncCallbackManagerForToolRun", ("on_tool_end", "on_tool_error")),
    ("AsyncCallbackManagerForRetrieverRun", ("on_retriever_end", "on_retriever_error")),
)
_REGISTRATION = _Registration()


def autolog(*, disable: bool = False, log_traces: bool = True, silent: bool = False) -> None:
    """Trace every LangChain and LangGraph run: chains, models, tools, retrievers, graphs.

    Example:
        >>> import tracemark as tm
        >>> tm.langchain.autolog()

    If `langchain_core` is not imported yet, the handler is registered when it is.

    Args:
        disable: Unregister the handler; LangChain runs as it does without tracemark.
        log_traces: False keeps the handler but records nothing.
        silent: Do not log tracemark's own messages about this integration.
    """
    INSTRUMENTATION.autolog(
        _REGISTRATION.install,
        package="langchain-core",
        disable=disable,
        log_traces=log_traces,
        silent=silent,
        remove=_REGISTRATION.remove,
    )
