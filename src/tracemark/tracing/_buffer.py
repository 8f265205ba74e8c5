"""One trace while it runs: its spans, trace-level tags and metadata, and when it completes.

A trace completes when its last open span ends: usually the root, but a generator or a
worker thread may outlive it, and spans recorded from OpenTelemetry may close the trace.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from tracemark.entities.trace import SpanStatusCode
from tracemark.tracing._errors import logger

if TYPE_CHECKING:
    from tracemark.entities.trace import Attachment
    from tracemark.tracing._span import LiveSpan
    from tracemark.tracing._tracer import Tracer

__all__ = ["TraceBuffer"]


class TraceBuffer:
    """The spans and trace-level data of one in-flight trace."""

    __slots__ = (
        "tracer",
        "trace_id",
        "experiment_id",
        "run_id",
        "tags",
        "metadata",
        "request_preview",
        "response_preview",
        "spans",
        "open_count",
        "root",
        "done",
        "lock",
        "attachments",
    )

    def __init__(
        self, tracer: Tracer, trace_id: str, experiment_id: str, run_id: str | None
    ) -> None:
        self.tracer = tracer
        self.trace_id = trace_id
        self.experiment_id = experiment_id
        self.run_id = run_id
        self.tags: dict[str, str] = {}
        self.metadata: dict[str, str] = {}
        self.request_preview: str | None = None
        self.response_preview: str | None = None
        self.spans: list[LiveSpan] = []
        self.open_count = 0
        self.root: LiveSpan | None = None
        self.done = False
        self.lock = threading.Lock()
        # Media the spans refer to, by SHA-256; None until a span keeps some.
        self.attachments: dict[str, Attachment] | None = None

    def add(self, span: LiveSpan) -> bool:
        """Add a started span; False when the trace has already completed."""
        with self.lock:
            if self.done:
                return False
            if self.root is None:
                self.root = span
            self.spans.append(span)
            self.open_count += 1
        return True

    def span_ended(self, span: LiveSpan) -> None:
        """Note that `span` ended; hand the trace to the tracer when nothing is left open."""
        with self.lock:
            if self.done:
                return
            self.open_count -= 1
            complete = self.open_count == 0
            if complete:
                self.done = True
        tracer = self.tracer
        if span is self.root:
            tracer.last_trace_id = self.trace_id
        if complete:
            tracer.trace_completed(self)

    def add_attachment(self, attachment: Attachment) -> bool:
        """Keep media a span refers to, stored with the trace once per content.

        Returns False when the trace has already completed (nothing is kept then).
        """
        with self.lock:
            if self.done:
                return False
            if self.attachments is None:
                self.attachments = {}
            self.attachments.setdefault(attachment.sha256, attachment)
        return True

    def find(self, span_id: str) -> LiveSpan | None:
        """Return the span with this id, open or ended."""
        with self.lock:
            for span in self.spans:
                if span.span_id == span_id:
                    return span
        return None

    def force_complete(self, end_time_ns: int) -> None:
        """End every span still open (at exit), marking them unfinished."""
        with self.lock:
            still_open = [span for span in self.spans if span.end_time_ns is None]
        if still_open:
            logger.warning(
                "tracemark: trace %s had %d unfinished span(s) at exit; ending them",
                self.trace_id,
                len(still_open),
            )
        for span in still_open:
            span.attributes["tracemark.span.unfinished"] = True
            span.end(status=SpanStatusCode.UNSET, end_time_ns=end_time_ns)

    def release(self) -> None:
        """Drop the spans once the trace is built or dropped.

        Spans and their buffer point at each other; breaking the cycle lets reference
        counting free them at once instead of leaving them to the cyclic GC, which a
        queue of thousands of traces would make slow for the whole process.
        """
        for span in self.spans:
            span._buffer = None  # type: ignore[assignment]
        self.spans = []
        self.root = None
        self.attachments = None
