"""Spans for frameworks that report each step as two callbacks: its start, later its end.

LangChain's run callbacks and LlamaIndex's span handlers name every step by an id and its
parent's id and report the start and the end separately, possibly on different threads or
asyncio tasks. `StepSpans` turns those steps into tracemark spans, the same way for both:

- a step whose parent step is known nests under the parent's span; a step without one nests
  under the span current where it starts (the caller's `@tm.trace` function) or starts a
  trace. A span the caller opened inside a step (a `@tm.trace` function used as a tool) wins
  over that step when it is open and more recent, so steps started inside it nest under it;
- while a step runs, its span is the current span, so the caller's own spans and other
  integrations' spans made inside it (in a tool, say) nest under it;
- an LLM step that records the call's tokens and cost itself is a *leaf*: inside it a
  non-recording span is current, so the provider SDK's autolog span for the very same call
  (`tm.openai.autolog()` under LangChain's `ChatOpenAI`) is not recorded a second time and the
  trace's tokens and cost are not counted twice;
- a skipped step (a framework's internal plumbing) records nothing; its children nest under
  its nearest recorded ancestor.

When a step ends, whatever was current before it is current again where the step was,
even when steps end out of order (see `StepSpans._restore`).

Beside it, what both integrations need around a model step: `document` (a retrieved
document in tracemark's form), `ModelCall` (where to find the call's price), `sdk_records`
(whether the provider SDK's own integration records the call).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Hashable, Mapping
from typing import Any

from tracemark.integrations import _cost
from tracemark.tracing._context import CURRENT_SPAN
from tracemark.tracing._span import UNSET, LiveSpan, NonRecordingSpan
from tracemark.tracing._tracer import DEFAULT_TRACER

__all__ = ["ModelCall", "StepSpans", "document", "sdk_records"]

Span = LiveSpan | NonRecordingSpan


class _Step:
    __slots__ = ("data", "dependents", "marker", "previous", "span")

    def __init__(self, span: Span, data: Any) -> None:
        self.span = span
        self.data = data
        self.marker: Span | None = None  # what is current while the step runs
        self.previous: Span | None = None  # what was current when it started
        self.dependents: list[_Step] = []  # steps started while this one was current


class StepSpans:
    """The spans of a framework's running steps, by the framework's step ids."""

    def __init__(self) -> None:
        self._steps: dict[Hashable, _Step] = {}
        self._skipped: dict[Hashable, Hashable | None] = {}
        self._by_marker: dict[int, _Step] = {}  # id(marker) -> step, while it is current
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._steps)

    def start(
        self,
        key: Hashable,
        parent_key: Hashable | None,
        name: str,
        span_type: str,
        *,
        inputs: Any = UNSET,
        attributes: Mapping[str, Any] | None = None,
        leaf: bool = False,
        current: bool = True,
        data: Any = None,
    ) -> Span:
        """Start the span of a step and make it current in this context.

        Args:
            key: The framework's id of the step.
            parent_key: The framework's id of its parent step, if any.
            name: The span name.
            span_type: One of `SpanType`.
            inputs: The step's inputs.
            attributes: Initial attributes.
            leaf: Record nothing inside the step (an LLM call that records its own usage).
            current: False leaves the current span alone (for a step whose end is reported
                in another context, which would otherwise keep pointing at an ended span).
            data: Anything the integration wants back with the step (`data`).
        """
        now = CURRENT_SPAN.get()
        parent = self._parent(parent_key, now)
        token = CURRENT_SPAN.set(parent)
        try:
            span = DEFAULT_TRACER.start_span(name, span_type=span_type, attributes=attributes)
        finally:
            CURRENT_SPAN.reset(token)
        if inputs is not UNSET and span.recording:
            span.set_inputs(inputs)
        step = _Step(span, data)
        if current:
            step.marker = NonRecordingSpan() if leaf else span
            step.previous = now
            with self._lock:
                owner = self._by_marker.get(id(now))
                if owner is not None:
                    owner.dependents.append(step)
                self._by_marker[id(step.marker)] = step
            CURRENT_SPAN.set(step.marker)
        self._steps[key] = step
        return span

    def skip(self, key: Hashable, parent_key: Hashable | None) -> None:
        """Record nothing for a step; its children nest under its nearest recorded ancestor."""
        self._skipped[key] = parent_key

    def span(self, key: Hashable) -> Span | None:
        """Return the span of a running step, or None."""
        step = self._steps.get(key)
        return None if step is None else step.span

    def data(self, key: Hashable) -> Any:
        """Return the `data` a running step was started with, or None."""
        step = self._steps.get(key)
        return None if step is None else step.data

    def is_released(self, key: Hashable) -> bool:
        """Whether a running step's span has stopped being current (or never was)."""
        step = self._steps.get(key)
        return step is not None and step.marker is None

    def release(self, key: Hashable) -> None:
        """Stop making a step's span current; the step goes on (a stream being consumed)."""
        step = self._steps.get(key)
        if step is not None:
            self._restore(step)

    def end(
        self,
        key: Hashable,
        *,
        outputs: Any = UNSET,
        error: BaseException | None = None,
    ) -> Span | None:
        """End a step's span with its outputs or its error; return it (None if unknown).

        A `GeneratorExit` (a stream closed early) is not an error: the span ends with what
        was set so far.

        Args:
            key: The framework's id of the step.
            outputs: The step's outputs.
            error: The exception the step raised.
        """
        if self._skipped.pop(key, _MISSING) is not _MISSING:
            return None
        step = self._steps.pop(key, None)
        if step is None:
            return None
        self._restore(step)
        span = step.span
        if span.recording:
            if error is not None and not isinstance(error, GeneratorExit):
                span.record_exception(error)
            span.end(outputs)
        return span

    def _parent(self, parent_key: Hashable | None, now: Span | None) -> Span | None:
        for _ in range(100):  # a chain of skipped steps; bounded against a cycle
            if parent_key not in self._skipped:
                break
            parent_key = self._skipped[parent_key]
        step = self._steps.get(parent_key) if parent_key is not None else None
        if step is None:
            return self._outside(now)
        span = step.span
        if now is None or not span.recording or id(now) in self._by_marker:
            return span  # the framework's own nesting wins over another of its steps
        if (
            now.recording
            and now.trace_id == span.trace_id
            and now.end_time_ns is None  # type: ignore[union-attr]
            and now.start_time_ns >= span.start_time_ns  # type: ignore[union-attr]
        ):
            return now  # the caller's own span, opened inside the parent step
        return span

    def _outside(self, now: Span | None) -> Span | None:
        """The span current here apart from this framework's own steps."""
        # A step the framework says has no parent, started where another of its steps is
        # current (a batch starts all its runs first), goes where that one would have.
        with self._lock:
            while now is not None:
                step = self._by_marker.get(id(now))
                if step is None:
                    break
                now = step.previous
        if now is not None and now.recording and now.end_time_ns is not None:  # type: ignore[union-attr]
            return None  # left current by a context that ended elsewhere: a new trace
        return now

    def _restore(self, step: _Step) -> None:
        """Put back what was current before the step, where the step is still current.

        Steps do not always end in the order they started (a batch ends its runs first to
        last, a stream's parser outlives its model call): a step started while this one
        was current then takes over what this one started on, so no context is ever left
        pointing at an ended step.
        """
        marker = step.marker
        if marker is None:
            return
        with self._lock:
            step.marker = None
            self._by_marker.pop(id(marker), None)
            owner = self._by_marker.get(id(step.previous))
            for dependent in step.dependents:
                if dependent.marker is not None:
                    dependent.previous = step.previous
                    if owner is not None:
                        owner.dependents.append(dependent)
            step.dependents = []
        if CURRENT_SPAN.get() is marker:
            CURRENT_SPAN.set(step.previous)


_MISSING = object()


def document(page_content: Any, metadata: Any = None, id: Any = None) -> dict[str, Any]:
    """Return a retrieved document in tracemark's form (`page_content`, `metadata`, `id`).

    Args:
        page_content: The document's text.
        metadata: Its metadata (a dict).
        id: Its id.
    """
    return {"page_content": page_content, "metadata": dict(metadata or {}), "id": id}


# Frameworks' provider names mapped to genai-prices provider ids where they differ.
_PROVIDER_IDS = {
    "amazon_bedrock": "aws",
    "azure_openai": "azure",
    "bedrock": "aws",
    "bedrock_converse": "aws",
    "gemini": "google",
    "google_genai": "google",
    "google_vertexai": "google",
    "mistralai": "mistral",
    "vertex": "google",
    "xai": "x-ai",
}


class ModelCall:
    """What a framework's model step needs at its end to price the call.

    Args:
        provider: The framework's name for the provider (`"openai"`, `"google_genai"`, ...).
        model: The model requested.
        base_url: The API base URL the model's client was given, if any.
    """

    __slots__ = ("base_url", "model", "provider")

    def __init__(self, provider: str, model: str | None, base_url: str | None) -> None:
        self.provider = provider
        self.model = model
        self.base_url = base_url

    def cost_provider(self) -> str:
        """The genai-prices provider: the API host's when it is a known one, else the SDK's."""
        provider = _PROVIDER_IDS.get(self.provider, self.provider)
        if self.base_url:
            return _cost.provider_for_url(self.base_url, provider)
        return provider


def sdk_records(provider: str) -> bool:
    """Whether tracemark's integration of this provider's SDK (`tm.openai`, ...) records now.

    Args:
        provider: The provider, named as its integration is (`"openai"`, `"anthropic"`).
    """
    module = sys.modules.get(f"tracemark.integrations.{provider}") if provider else None
    inst = getattr(module, "INSTRUMENTATION", None)
    return bool(getattr(inst, "recording", False))
