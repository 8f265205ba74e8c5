"""The current span, carried by a context variable, and helpers that move it across threads.

asyncio tasks copy the context when they are created, so spans nest across `await` and
`asyncio.gather` by themselves. Threads start with an empty context; `wrap_context` and
`TracedThreadPoolExecutor` carry the submitting code's context into the worker.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from tracemark.tracing._span import LiveSpan, NonRecordingSpan

__all__ = ["CURRENT_SPAN", "TracedThreadPoolExecutor", "suppress", "wrap_context"]

T = TypeVar("T")

CURRENT_SPAN: contextvars.ContextVar[LiveSpan | NonRecordingSpan | None] = contextvars.ContextVar(
    "tracemark_current_span", default=None
)


def wrap_context(fn: Callable[..., T]) -> Callable[..., T]:
    """Bind `fn` to the current context so spans it makes on another thread nest here.

    Each call runs in its own copy of the captured context, so the wrapped function may
    be called from several threads at once.

    Example:
        >>> import threading
        >>> worker = threading.Thread(target=wrap_context(lambda: None))
        >>> worker.start(); worker.join()

    Args:
        fn: The callable to run later, usually on another thread.
    """
    captured = contextvars.copy_context()

    @functools.wraps(fn)
    def run_in_captured_context(*args: Any, **kwargs: Any) -> T:
        return captured.copy().run(fn, *args, **kwargs)

    return run_in_captured_context


class TracedThreadPoolExecutor(ThreadPoolExecutor):
    """A `ThreadPoolExecutor` whose tasks run in the context of the code that submitted them.

    Example:
        >>> with TracedThreadPoolExecutor(max_workers=2) as pool:
        ...     list(pool.map(str, [1, 2]))
        ['1', '2']
    """

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        """Schedule `fn(*args, **kwargs)` in a copy of the caller's context."""
        return super().submit(contextvars.copy_context().run, fn, *args, **kwargs)


@contextlib.contextmanager
def suppress() -> Iterator[None]:
    """Record nothing inside the block: no spans, no traces, autolog integrations included.

    For calls that should stay out of the application's traces, such as health checks or
    an evaluation's own judge model calls. Spans started inside are non-recording; what
    was current before the block is current again after it.

    Example:
        >>> import tracemark as tm
        >>> with tm.tracing.suppress():
        ...     pass  # nothing traced here
    """
    from tracemark.tracing._span import NonRecordingSpan

    with NonRecordingSpan():
        yield
