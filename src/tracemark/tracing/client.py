"""`TracingClient`: explicit trace control and trace/assessment reads and writes.

`TracemarkClient` inherits from this and from the tracking client, which provides
`self.store`. Spans started here do not touch the current context, so one can start on
one thread and end on another (callback-style instrumentation).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from tracemark.entities.paging import PagedList
from tracemark.entities.trace import (
    Assessment,
    AssessmentSource,
    SpanType,
    Trace,
    TraceInfo,
    is_sha256,
    new_assessment_id,
    parse_attachment_reference,
)
from tracemark.exceptions import InvalidInputError, NotFoundError
from tracemark.tracing._errors import logger
from tracemark.tracing._serialize import to_jsonable
from tracemark.tracing._span import UNSET, LiveSpan, NonRecordingSpan
from tracemark.tracing._tracer import DEFAULT_TRACER, Tracer, _attributes

__all__ = ["PagedList", "TracingClient"]

_FLUSH_BEFORE_READ_S = 10.0


def _check_value(value: Any, field: str = "value") -> Any:
    if value is None or isinstance(value, (bool, int, float, str, list, dict)):
        return to_jsonable(value)
    raise InvalidInputError(
        f"assessment {field} must be a bool, number, string, list or dict, "
        f"got {type(value).__name__}",
        field=field,
    )


def _str_dict(values: Mapping[str, Any] | None) -> dict[str, str]:
    return {str(k): str(v) for k, v in (values or {}).items()}


class TracingClient:
    """Explicit tracing and trace storage operations; mixed into `TracemarkClient`."""

    store: Any  # provided by the tracking client

    @property
    def _tracer(self) -> Tracer:
        return DEFAULT_TRACER

    # -- explicit span lifecycle ----------------------------------------------------------

    def start_trace(
        self,
        name: str,
        *,
        span_type: str = SpanType.UNKNOWN,
        inputs: Any = None,
        attributes: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        experiment_id: str | None = None,
        start_time_ns: int | None = None,
    ) -> LiveSpan | NonRecordingSpan:
        """Start a new trace and return its root span (not made current).

        Example:
            >>> import tracemark as tm
            >>> client = tm.TracemarkClient()
            >>> root = client.start_trace("handle", inputs={"q": "hi"})
            >>> client.end_trace(root.trace_id, outputs={"a": "hello"})

        Args:
            name: The root span's name.
            span_type: One of `SpanType`.
            inputs: The root span's inputs.
            attributes: The root span's attributes.
            tags: Trace tags.
            metadata: Trace metadata.
            experiment_id: The experiment; the active run's or the current one by default.
            start_time_ns: Start time in nanoseconds; now by default.
        """
        tracer = self._tracer
        if not tracer.enabled:
            return NonRecordingSpan()
        span = tracer.start_root(
            name,
            span_type,
            _attributes(attributes),
            sample_ratio=1.0,
            experiment_id=experiment_id,
            start_time_ns=start_time_ns,
            join_otel=False,
        )
        if span.recording:
            buffer = span._buffer  # type: ignore[union-attr]
            buffer.tags.update(_str_dict(tags))
            buffer.metadata.update(_str_dict(metadata))
            if inputs is not None:
                span.set_inputs(inputs)
        return span

    def start_span(
        self,
        name: str,
        *,
        trace_id: str | None,
        parent_id: str | None = None,
        span_type: str = SpanType.UNKNOWN,
        inputs: Any = None,
        attributes: Mapping[str, Any] | None = None,
        start_time_ns: int | None = None,
    ) -> LiveSpan | NonRecordingSpan:
        """Start a span in a running trace, under an explicit parent (not made current).

        Example:
            >>> import tracemark as tm
            >>> client = tm.TracemarkClient()
            >>> root = client.start_trace("agent")
            >>> tool = client.start_span("tool", trace_id=root.trace_id, parent_id=root.span_id)
            >>> client.end_span(root.trace_id, tool.span_id, outputs=42)
            >>> client.end_trace(root.trace_id)

        Args:
            name: The span name.
            trace_id: The running trace (None when tracing was off: a no-op span).
            parent_id: The parent span; the trace's root by default.
            span_type: One of `SpanType`.
            inputs: The span's inputs.
            attributes: The span's attributes.
            start_time_ns: Start time in nanoseconds; now by default.
        """
        tracer = self._tracer
        if trace_id is None or not tracer.enabled:
            return NonRecordingSpan()
        buffer = tracer.inflight.get(trace_id)
        if buffer is None:
            raise NotFoundError(f"trace {trace_id!r} is not in progress (already ended?)")
        if parent_id is None:
            root = buffer.root
            parent_id = None if root is None else root.span_id
        elif buffer.find(parent_id) is None:
            raise NotFoundError(f"parent span {parent_id!r} is not part of trace {trace_id!r}")
        span = LiveSpan(
            buffer,
            tracer.ids.span_id(),
            parent_id,
            name,
            span_type,
            tracer.clock() if start_time_ns is None else int(start_time_ns),
            _attributes(attributes),
        )
        if inputs is not None:
            span.set_inputs(inputs)
        if not buffer.add(span):
            raise NotFoundError(f"trace {trace_id!r} has already completed")
        return span

    def end_span(
        self,
        trace_id: str | None,
        span_id: str | None,
        *,
        outputs: Any = UNSET,
        attributes: Mapping[str, Any] | None = None,
        status: Any = None,
        end_time_ns: int | None = None,
    ) -> None:
        """End a span started with `start_span`; an unknown or ended span logs a warning.

        Args:
            trace_id: The span's trace.
            span_id: The span.
            outputs: The span's outputs.
            attributes: Attributes to add.
            status: `"OK"` (default) or `"ERROR"`.
            end_time_ns: End time in nanoseconds; now by default.
        """
        if trace_id is None or span_id is None:
            return
        buffer = self._tracer.inflight.get(trace_id)
        span = None if buffer is None else buffer.find(span_id)
        if span is None:
            logger.warning(
                "tracemark: end_span: span %s of trace %s is not in progress", span_id, trace_id
            )
            return
        if attributes:
            span.set_attributes(attributes)
        span.end(outputs, status=status, end_time_ns=end_time_ns)

    def end_trace(
        self,
        trace_id: str | None,
        *,
        outputs: Any = UNSET,
        attributes: Mapping[str, Any] | None = None,
        status: Any = None,
        end_time_ns: int | None = None,
    ) -> None:
        """End a trace's root span; the trace is exported once all its spans have ended.

        Args:
            trace_id: The trace started with `start_trace`.
            outputs: The root span's outputs.
            attributes: Attributes to add to the root span.
            status: `"OK"` (default) or `"ERROR"`.
            end_time_ns: End time in nanoseconds; now by default.
        """
        if trace_id is None:
            return
        buffer = self._tracer.inflight.get(trace_id)
        root = None if buffer is None else buffer.root
        if root is None:
            logger.warning("tracemark: end_trace: trace %s is not in progress", trace_id)
            return
        self.end_span(
            trace_id,
            root.span_id,
            outputs=outputs,
            attributes=attributes,
            status=status,
            end_time_ns=end_time_ns,
        )

    # -- reading and deleting traces ------------------------------------------------------

    def get_trace(self, trace_id: str) -> Trace:
        """Return a stored trace with its spans and assessments.

        A trace that just ended may still be in the export queue: it is flushed first.

        Example:
            >>> import tracemark as tm
            >>> trace = tm.get_trace(tm.get_last_active_trace_id())
            >>> trace.root.name

        Args:
            trace_id: The trace id.
        """
        try:
            return self.store.get_trace(trace_id)
        except NotFoundError:
            if not self._tracer.flush(_FLUSH_BEFORE_READ_S):
                raise
        return self.store.get_trace(trace_id)

    def get_trace_attachment(self, trace_id: str, reference_or_sha256: str) -> bytes:
        """Return the bytes of media a span of the trace refers to (an image sent to a model).

        Inline media in a chat request is stored once as an attachment; the span holds a
        reference to it, such as ``tracemark-attachment:sha256:<hex>?type=image/png&size=N``.

        Example:
            >>> import tracemark as tm
            >>> client = tm.TracemarkClient()
            >>> span = client.get_trace(trace_id).search_spans(span_type="CHAT_MODEL")[0]
            >>> url = span.inputs["messages"][0]["content"][1]["image_url"]["url"]
            >>> png = client.get_trace_attachment(trace_id, url)

        Args:
            trace_id: The trace holding the attachment.
            reference_or_sha256: The reference found in the span, or the content's SHA-256
                in 64 lowercase hex digits.

        Raises:
            InvalidInputError: The reference is neither an attachment reference nor a digest.
            NotFoundError: The trace holds no such attachment.
        """
        parsed = parse_attachment_reference(reference_or_sha256)
        sha256 = parsed[0] if parsed is not None else reference_or_sha256
        if not is_sha256(sha256):
            raise InvalidInputError(
                f"expected an attachment reference or a SHA-256 digest, "
                f"got {reference_or_sha256!r}",
                field="reference_or_sha256",
            )
        try:
            return self.store.get_trace_attachment(trace_id, sha256).data
        except NotFoundError:
            if not self._tracer.flush(_FLUSH_BEFORE_READ_S):
                raise
        return self.store.get_trace_attachment(trace_id, sha256).data

    def search_traces(
        self,
        experiment_ids: Sequence[str] | None = None,
        *,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 100,
        page_token: str | None = None,
        run_id: str | None = None,
        return_type: str = "list",
    ) -> Any:
        """Search traces; newest first unless `order_by` says otherwise.

        Example:
            >>> import tracemark as tm
            >>> page = tm.search_traces(filter_string="status = 'ERROR' AND tags.env = 'prod'")
            >>> next_page = tm.search_traces(page_token=page.token)

        Args:
            experiment_ids: Experiments to search; the current experiment by default.
            filter_string: e.g. `metadata.session_id = 's-1' AND span.type = 'TOOL'`.
            order_by: e.g. `["execution_time_ms DESC"]`.
            max_results: Page size.
            page_token: The `token` of the previous page.
            run_id: Only traces linked to this run.
            return_type: `"list"` (a `PagedList` of `TraceInfo`) or `"pandas"` (a DataFrame
                with the next-page token in `df.attrs["token"]`).
        """
        if return_type not in ("list", "pandas"):
            raise InvalidInputError(
                f"return_type must be 'list' or 'pandas', got {return_type!r}", field="return_type"
            )
        if experiment_ids is None:
            experiment_ids = [self._current_experiment_id()]
        self._tracer.flush(_FLUSH_BEFORE_READ_S)
        infos, token = self.store.search_traces(
            list(experiment_ids),
            filter_string=filter_string,
            order_by=list(order_by) if order_by else None,
            max_results=max_results,
            page_token=page_token,
            run_id=run_id,
        )
        if return_type == "pandas":
            import pandas as pd

            frame = pd.DataFrame([_info_row(info) for info in infos])
            frame.attrs["token"] = token
            return frame
        return PagedList(infos, token)

    def _current_experiment_id(self) -> str:
        from tracemark.tracking.fluent import DEFAULT_TRACKER

        return str(DEFAULT_TRACKER.current_experiment_id())

    def delete_traces(
        self,
        experiment_id: str,
        *,
        max_timestamp_ms: int | None = None,
        trace_ids: Sequence[str] | None = None,
    ) -> int:
        """Delete traces older than a time, or by id; return how many were deleted.

        Args:
            experiment_id: The experiment holding the traces.
            max_timestamp_ms: Delete traces started at or before this time.
            trace_ids: Delete exactly these traces.
        """
        if max_timestamp_ms is None and not trace_ids:
            raise InvalidInputError(
                "delete_traces needs max_timestamp_ms or trace_ids", field="trace_ids"
            )
        return self.store.delete_traces(
            experiment_id,
            max_timestamp_ms=max_timestamp_ms,
            trace_ids=list(trace_ids) if trace_ids else None,
        )

    def set_trace_tag(self, trace_id: str, key: str, value: Any) -> None:
        """Set a tag on a trace, running or stored.

        Args:
            trace_id: The trace.
            key: Tag name.
            value: Tag value (stored as a string).
        """
        if self._tracer.set_inflight_tag(trace_id, key, value):
            return
        try:
            self.store.set_trace_tag(trace_id, key, str(value))
        except NotFoundError:
            if not self._tracer.flush(_FLUSH_BEFORE_READ_S):
                raise
            self.store.set_trace_tag(trace_id, key, str(value))

    def delete_trace_tag(self, trace_id: str, key: str) -> None:
        """Remove a tag from a trace, running or stored.

        Args:
            trace_id: The trace.
            key: Tag name.
        """
        if self._tracer.delete_inflight_tag(trace_id, key):
            return
        try:
            self.store.delete_trace_tag(trace_id, key)
        except NotFoundError:
            if not self._tracer.flush(_FLUSH_BEFORE_READ_S):
                raise
            self.store.delete_trace_tag(trace_id, key)

    # -- assessments ----------------------------------------------------------------------

    def log_feedback(
        self,
        *,
        trace_id: str,
        name: str,
        value: Any = None,
        rationale: str | None = None,
        source: AssessmentSource | None = None,
        span_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        error: str | None = None,
        run_id: str | None = None,
    ) -> Assessment:
        """Attach a verdict (human, LLM judge or code) to a trace or one of its spans.

        Example:
            >>> import tracemark as tm
            >>> tm.log_feedback(trace_id=t, name="helpful", value=True,
            ...                 source=tm.AssessmentSource("HUMAN", "ana"))

        Args:
            trace_id: The trace assessed.
            name: The assessment name, e.g. `helpful`.
            value: bool, number, string, list or dict.
            rationale: Why.
            source: Who judged; code (`CODE`, `default`) by default.
            span_id: The span assessed, when not the whole trace.
            metadata: String key/values.
            error: Why no value could be produced (e.g. a judge that failed).
            run_id: The evaluation run that produced it.
        """
        return self._log_assessment(
            Assessment.FEEDBACK,
            trace_id,
            name,
            value,
            rationale,
            source,
            span_id,
            metadata,
            error,
            run_id,
            overrides=None,
        )

    def log_expectation(
        self,
        *,
        trace_id: str,
        name: str,
        value: Any,
        source: AssessmentSource | None = None,
        span_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Assessment:
        """Attach ground truth (an expected answer or facts) to a trace or span.

        Example:
            >>> import tracemark as tm
            >>> tm.log_expectation(trace_id=t, name="expected_answer", value="30 days")

        Args:
            trace_id: The trace.
            name: The expectation name.
            value: bool, number, string, list or dict.
            source: Who provided it; a human (`HUMAN`, `default`) by default.
            span_id: The span it applies to, when not the whole trace.
            metadata: String key/values.
        """
        source = source or AssessmentSource(AssessmentSource.HUMAN)
        return self._log_assessment(
            Assessment.EXPECTATION,
            trace_id,
            name,
            value,
            None,
            source,
            span_id,
            metadata,
            None,
            None,
            overrides=None,
        )

    def override_feedback(
        self,
        *,
        trace_id: str,
        assessment_id: str,
        value: Any,
        rationale: str | None = None,
        source: AssessmentSource | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Assessment:
        """Log a corrected label that supersedes a feedback; the original stays in history.

        Example:
            >>> import tracemark as tm
            >>> tm.override_feedback(trace_id=t, assessment_id=a.assessment_id, value=False,
            ...                      source=tm.AssessmentSource("HUMAN", "ana"))

        Args:
            trace_id: The trace.
            assessment_id: The feedback being corrected.
            value: The corrected value.
            rationale: Why.
            source: Who corrected it; a human by default.
            metadata: String key/values.
        """
        old = self.store.get_assessment(trace_id, assessment_id)
        if old.kind != Assessment.FEEDBACK:
            raise InvalidInputError(
                f"assessment {assessment_id!r} is an {old.kind}, not a feedback",
                field="assessment_id",
            )
        source = source or AssessmentSource(AssessmentSource.HUMAN)
        return self._log_assessment(
            Assessment.FEEDBACK,
            trace_id,
            old.name,
            value,
            rationale,
            source,
            old.span_id,
            metadata,
            None,
            old.run_id,
            overrides=assessment_id,
        )

    def _log_assessment(
        self,
        kind: str,
        trace_id: str,
        name: str,
        value: Any,
        rationale: str | None,
        source: AssessmentSource | None,
        span_id: str | None,
        metadata: Mapping[str, Any] | None,
        error: str | None,
        run_id: str | None,
        *,
        overrides: str | None,
    ) -> Assessment:
        if not name:
            raise InvalidInputError("an assessment needs a name", field="name")
        if value is None and error is None:
            raise InvalidInputError("an assessment needs a value or an error", field="value")
        source = source or AssessmentSource(AssessmentSource.CODE)
        if source.source_type not in AssessmentSource.TYPES:
            raise InvalidInputError(
                f"source_type must be one of {', '.join(AssessmentSource.TYPES)}, "
                f"got {source.source_type!r}",
                field="source",
            )
        now = int(time.time() * 1000)
        assessment = Assessment(
            assessment_id=new_assessment_id(),
            trace_id=trace_id,
            name=name,
            kind=kind,
            value=_check_value(value),
            source=source,
            created_time_ms=now,
            last_updated_time_ms=now,
            span_id=span_id,
            rationale=rationale,
            error=error,
            metadata=_str_dict(metadata),
            run_id=run_id,
            overrides=overrides,
        )
        try:
            return self.store.create_assessment(assessment)
        except NotFoundError:
            if not self._tracer.flush(_FLUSH_BEFORE_READ_S):
                raise
        return self.store.create_assessment(assessment)

    def get_assessment(self, trace_id: str, assessment_id: str) -> Assessment:
        """Return one assessment.

        Args:
            trace_id: The trace.
            assessment_id: The assessment.
        """
        return self.store.get_assessment(trace_id, assessment_id)

    def update_assessment(
        self,
        trace_id: str,
        assessment_id: str,
        *,
        name: str | None = None,
        value: Any = UNSET,
        rationale: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Assessment:
        """Change an assessment in place (use `override_feedback` to keep history).

        Args:
            trace_id: The trace.
            assessment_id: The assessment.
            name: A new name.
            value: A new value.
            rationale: A new rationale.
            metadata: Metadata to set.
        """
        extra = {} if value is UNSET else {"value": _check_value(value)}
        return self.store.update_assessment(
            trace_id,
            assessment_id,
            name=name,
            rationale=rationale,
            metadata=None if metadata is None else _str_dict(metadata),
            **extra,
        )

    def delete_assessment(self, trace_id: str, assessment_id: str) -> None:
        """Delete an assessment.

        Args:
            trace_id: The trace.
            assessment_id: The assessment.
        """
        self.store.delete_assessment(trace_id, assessment_id)


def _info_row(info: TraceInfo) -> dict[str, Any]:
    row = info.to_dict()
    row["assessments"] = info.assessments
    return row
