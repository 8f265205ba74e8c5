"""Trace LlamaIndex: query engines, retrievers, LLM and embedding calls, synthesizers, agents.

Example:
    import tracemark as tm

    tm.llama_index.autolog()
    index = VectorStoreIndex.from_documents(documents)
    index.as_query_engine().query("What is the refund policy?")  # one trace per query

autolog attaches a span handler and an event handler to LlamaIndex's root instrumentation
dispatcher (`llama_index.core.instrumentation.get_dispatcher()`), which every LlamaIndex
component reports to: each instrumented call becomes a span, nested as LlamaIndex nests
them, and the events complete what a span cannot see by itself (the end of a streamed LLM
call). Nothing of LlamaIndex is patched. `disable=True` detaches both handlers.
"""

from __future__ import annotations

import threading
from typing import Any

from tracemark.integrations._patch import Instrumentation

__all__ = ["LIBRARY", "autolog"]

LIBRARY = "llama_index.core"
"""The module this integration instruments; `tm.autolog()` enables it when importable."""

INSTRUMENTATION = Instrumentation("llama_index", LIBRARY)


class _Registration:
    """The handlers attached to LlamaIndex's root dispatcher while autolog is on."""

    def __init__(self) -> None:
        self.span_handler: Any = None
        self.event_handler: Any = None
        self._lock = threading.Lock()

    def install(self, module: Any) -> None:
        """Attach the handlers (once) now that llama-index-core is imported."""
        if not INSTRUMENTATION.enabled:
            return
        from llama_index.core.instrumentation import get_dispatcher

        from tracemark.integrations._llama_index_handler import make_handlers

        with self._lock:
            if self.span_handler is None:
                self.span_handler, self.event_handler = make_handlers(INSTRUMENTATION)
            root = get_dispatcher()
            if not any(h is self.span_handler for h in root.span_handlers):
                root.add_span_handler(self.span_handler)
            if not any(h is self.event_handler for h in root.event_handlers):
                root.add_event_handler(self.event_handler)

    def remove(self) -> None:
        """Detach the handlers from the root dispatcher."""
        import sys

        instrumentation = sys.modules.get("llama_index.core.instrumentation")
        if instrumentation is None or self.span_handler is None:
            return
        with self._lock:
            root = instrumentation.get_dispatcher()
            for handlers, ours in (
                (root.span_handlers, self.span_handler),
                (root.event_handlers, self.event_handler),
            ):
                for index in reversed(range(len(handlers))):
                    if handlers[index] is ours:
                        del handlers[index]

    @property
    def attached(self) -> bool:
        """Whether the span handler is attached to the root dispatcher now."""
        import sys

        instrumentation = sys.modules.get("llama_index.core.instrumentation")
        if instrumentation is None or self.span_handler is None:
            return False
        root = instrumentation.get_dispatcher()
        return any(h is self.span_handler for h in root.span_handlers)


_REGISTRATION = _Registration()


def autolog(*, disable: bool = False, log_traces: bool = True, silent: bool = False) -> None:
    """Trace every LlamaIndex query, retrieval, LLM and embedding call, synthesis and agent run.

    Example:
        >>> import tracemark as tm
        >>> tm.llama_index.autolog()

    If `llama_index.core` is not imported yet, the handlers are attached when it is.

    Args:
        disable: Detach the handlers; LlamaIndex runs as it does without tracemark.
        log_traces: False keeps the handlers but records nothing.
        silent: Do not log tracemark's own messages about this integration.
    """
    INSTRUMENTATION.autolog(
        _REGISTRATION.install,
        package="llama-index-core",
        disable=disable,
        log_traces=log_traces,
        silent=silent,
        remove=_REGISTRATION.remove,
    )
