"""The export pipeline: a bounded queue of finished traces and the thread that writes them.

The caller's only cost when a trace completes is one `deque.append`. A daemon thread
drains the queue in batches and hands each batch to every exporter (by default the store
of the tracking URI, one transaction per batch). A full queue drops whole traces and
counts them; an exporter that raises is counted and logged, never raised to the app.
"""

from __future__ import annotations

import os
import random
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from tracemark.entities.trace import Trace
from tracemark.exceptions import (
    InvalidInputError,
    NotFoundError,
    StoreUnavailableError,
    TracemarkError,
)
from tracemark.tracing._errors import internal_errors_raise, logger
from tracemark.tracing._mask import Mask
from tracemark.tracing._rollup import build_trace

if TYPE_CHECKING:
    from tracemark.tracing._buffer import TraceBuffer

__all__ = [
    "ExportPipeline",
    "ExportStats",
    "StoreExporter",
    "TraceExporter",
    "default_exporters",
]

EXPORT_INTERVAL_S = 0.25
"""The worker drains at least this often; a full batch or a flush wakes it sooner."""
# Waits between attempts at a batch while its store is unavailable: doubling, jittered.
RETRY_FIRST_S = 1.0
RETRY_MAX_S = 30.0


class TraceExporter(Protocol):
    """Receives finished traces in batches, on the exporter thread (or the caller's in sync mode).

    An exporter may also define `shutdown()`, called when the tracer shuts down.
    """

    def export(self, traces: Sequence[Trace]) -> None:
        """Write or send a batch of finished traces; raise on failure."""
        ...


class StoreExporter:
    """Writes traces to a tracemark store with `log_traces`, one call per batch.

    Args:
        store: The store to write to; by default the store of the current tracking URI,
            resolved on first export.
    """

    def __init__(self, store: Any | None = None) -> None:
        self._store = store

    def export(self, traces: Sequence[Trace]) -> None:
        """Write one batch of traces in one transaction.

        When the store refuses the batch for what is in it (a trace of a deleted
        experiment, say), the traces are written one by one, so one bad trace does not
        take the others of its batch down with it.
        """
        store = self._store
        if store is None:
            from tracemark.tracking.fluent import DEFAULT_TRACKER

            store = DEFAULT_TRACKER.get_store()
        try:
            store.log_traces(traces)
        except (NotFoundError, InvalidInputError):
            if len(traces) == 1:
                raise
            failed: list[Exception] = []
            for trace in traces:
                try:
                    store.log_traces([trace])
                except (NotFoundError, InvalidInputError) as exc:
                    failed.append(exc)
            if failed:
                raise PartialExportError(len(failed), len(traces)) from failed[0]


class PartialExportError(TracemarkError):
    """Some traces of a batch were refused by the store; the others were written."""

    def __init__(self, failed: int, total: int) -> None:
        super().__init__(f"{failed} of {total} traces were refused by the store")
        self.failed = failed


def default_exporters() -> list[TraceExporter]:
    """Return the exporters used when none are configured.

    The tracking store always; an OTLP exporter too when
    `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set.
    """
    exporters: list[TraceExporter] = [StoreExporter()]
    if os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        from tracemark.tracing.otel import OtlpExporter

        exporters.append(OtlpExporter())
    return exporters


@dataclass(frozen=True, slots=True)
class ExportStats:
    """Counts of finished traces since the tracer started.

    Attributes:
        exported: Traces every exporter accepted.
        dropped: Traces dropped because the queue was full.
        queued: Traces waiting for export now: queued, or in the batch being exported.
        errors: Traces at least one exporter (or the mask/rollup step) failed on.
    """

    exported: int
    dropped: int
    queued: int
    errors: int


class _FlushMarker:
    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


_PIPELINES: weakref.WeakSet[ExportPipeline] = weakref.WeakSet()


class ExportPipeline:
    """A bounded queue and background batch exporter, or inline export in sync mode.

    Args:
        exporters: A callable returning the exporters; called once, on first export.
        queue_size: Traces held at most before new ones are dropped.
        batch_size: Traces handed to the exporters in one call at most.
        async_export: False exports on the caller's thread before the root span returns.
        mask: Applied to inputs, outputs and attributes before export.
        retry_timeout: Seconds a batch is retried while an exporter raises
            `StoreUnavailableError` (server down, 429, 5xx); counted from the first failure
            since the last success, so a long outage costs one wait, not one per batch.
    """

    def __init__(
        self,
        exporters: Callable[[], list[TraceExporter]],
        *,
        queue_size: int,
        batch_size: int,
        async_export: bool,
        mask: Mask | None = None,
        retry_timeout: float = 300.0,
    ) -> None:
        self.exporters_factory = exporters
        self.queue_size = queue_size
        self.batch_size = batch_size
        self.retry_timeout = retry_timeout
        self._unavailable_since: float | None = None
        self._held = 0  # traces of the batch being exported (or held for its store)
        self.async_export = async_export
        self.mask = mask
        self._exporters: list[TraceExporter] | None = None
        self._exported = 0
        self._dropped = 0
        self._errors = 0
        self._dropping = False
        self._failing = False
        self._worker_error: BaseException | None = None
        self._init_thread_state()
        _PIPELINES.add(self)

    def _init_thread_state(self) -> None:
        self._queue: deque[TraceBuffer | _FlushMarker] = deque()
        self._wake = threading.Event()
        self._stop_retrying = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = False

    # -- caller side ----------------------------------------------------------------------

    def submit(self, buffer: TraceBuffer) -> None:
        """Hand over a completed trace: queue it, or export it now in sync mode."""
        if not self.async_export:
            self._export_batch([buffer])
            return
        queue = self._queue
        if len(queue) >= self.queue_size:
            buffer.release()
            self._drop()
            return
        queue.append(buffer)
        if self._thread is None:
            self._start()
        # Waking the worker per trace would cost a thread switch each; let batches fill.
        if len(queue) >= self.batch_size and not self._wake.is_set():
            self._wake.set()

    def _drop(self) -> None:
        with self._lock:
            self._dropped += 1
            first_of_burst = not self._dropping
            self._dropping = True
        if first_of_burst:
            logger.warning(
                "tracemark: the trace export queue is full (%d traces); dropping new traces "
                "until it drains (see tm.tracing.stats())",
                self.queue_size,
            )

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every trace queued so far is exported; False if `timeout` ran out.

        Args:
            timeout: Seconds to wait at most; None waits as long as it takes.
        """
        thread = self._thread
        if thread is None or threading.current_thread() is thread:
            drained = not self._queue
        else:
            marker = _FlushMarker()
            self._queue.append(marker)
            self._wake.set()
            drained = marker.done.wait(timeout)
        error, self._worker_error = self._worker_error, None
        if error is not None and internal_errors_raise():
            raise error
        return drained

    def stats(self) -> ExportStats:
        """Return the export counters."""
        queued = sum(1 for item in tuple(self._queue) if not isinstance(item, _FlushMarker))
        return ExportStats(self._exported, self._dropped, queued + self._held, self._errors)

    def shutdown(self, timeout: float | None = None) -> bool:
        """Drain the queue, stop the thread and shut the exporters down.

        Args:
            timeout: Seconds to wait for the drain at most.
        """
        drained = self.flush(timeout)
        thread = self._thread
        if thread is not None:
            self._stopping = True
            self._stop_retrying.set()  # a batch held for an unavailable store fails now
            self._wake.set()
            thread.join(timeout)
            self._thread = None
            self._stopping = False
            self._stop_retrying.clear()
        for exporter in self._exporters or ():
            shutdown = getattr(exporter, "shutdown", None)
            if shutdown is not None:
                try:
                    shutdown()
                except Exception:
                    logger.warning("tracemark: exporter shutdown failed", exc_info=True)
        self._exporters = None
        return drained

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            thread = threading.Thread(
                target=self._run, name="tracemark-trace-exporter", daemon=True
            )
            self._thread = thread
        thread.start()

    # -- exporter thread ------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(EXPORT_INTERVAL_S)
            # Clear before draining: an append after the drain sets it again.
            self._wake.clear()
            try:
                self._drain()
            except BaseException as exc:  # keep the worker alive whatever happens
                self._worker_error = exc
                logger.error("tracemark: trace exporter thread error", exc_info=True)
        self._drain()

    def _drain(self) -> None:
        queue = self._queue
        while True:
            batch: list[TraceBuffer] = []
            marker: _FlushMarker | None = None
            while len(batch) < self.batch_size:
                try:
                    item = queue.popleft()
                except IndexError:
                    break
                if isinstance(item, _FlushMarker):
                    marker = item
                    break
                batch.append(item)
            if batch:
                self._export_batch(batch)
            if marker is not None:
                marker.done.set()
            if self._dropping and len(queue) < self.queue_size:
                self._end_drop_burst()
            if not batch and marker is None:
                return

    def _end_drop_burst(self) -> None:
        with self._lock:
            self._dropping = False
            dropped = self._dropped
        logger.warning("tracemark: export queue drained; %d traces dropped so far", dropped)

    def _export_batch(self, buffers: list[TraceBuffer]) -> None:
        traces: list[Trace] = []
        for buffer in buffers:
            try:
                traces.append(build_trace(buffer, self.mask))
                buffer.release()
            except Exception as exc:
                with self._lock:
                    self._errors += 1
                self._worker_error = exc
                logger.error("tracemark: could not build trace %s", buffer.trace_id, exc_info=True)
        if not traces:
            return
        failed = 0
        self._held = len(traces)
        try:
            for exporter in self._get_exporters():
                try:
                    self._export_holding(exporter, traces)
                except Exception as exc:
                    failed = max(failed, getattr(exc, "failed", len(traces)))
                    self._log_export_failure(exporter, failed)
        finally:
            self._held = 0
        with self._lock:  # sync mode runs this on many caller threads at once
            self._errors += failed
            self._exported += len(traces) - failed
            if not failed:
                self._failing = False

    def _export_holding(self, exporter: TraceExporter, traces: list[Trace]) -> None:
        """Export a batch; while the store is unavailable, hold it and try again.

        The exporter thread waits with the batch (1 s doubling to 30 s, jittered) while
        new traces queue up behind it within `queue_size`, so a server restart loses
        nothing. It gives up after `retry_timeout` seconds of unavailability, on
        shutdown, and in sync mode (the caller's thread must not wait).
        """
        delay = RETRY_FIRST_S
        while True:
            try:
                exporter.export(traces)
            except StoreUnavailableError:
                now = time.monotonic()
                since = self._unavailable_since
                if since is None:
                    since = self._unavailable_since = now
                    logger.warning(
                        "tracemark: the trace store is unavailable; holding %d traces and "
                        "retrying for up to %.0f s (new traces queue up to %d)",
                        len(traces),
                        self.retry_timeout,
                        self.queue_size,
                    )
                wait = min(delay * (0.5 + random.random()), since + self.retry_timeout - now)
                if not self.async_export or self._stopping or wait <= 0:
                    raise
                if self._stop_retrying.wait(wait):
                    raise
                delay = min(delay * 2, RETRY_MAX_S)
            else:
                if self._unavailable_since is not None:
                    self._unavailable_since = None
                    logger.warning("tracemark: the trace store is available again")
                return

    def _log_export_failure(self, exporter: TraceExporter, count: int) -> None:
        name = type(exporter).__name__
        if self._failing:
            logger.debug("tracemark: %s failed again on %d traces", name, count, exc_info=True)
            return
        self._failing = True
        logger.error(
            "tracemark: %s failed to export %d traces (further failures are logged at "
            "debug level until an export succeeds)",
            name,
            count,
            exc_info=True,
        )

    def _get_exporters(self) -> list[TraceExporter]:
        exporters = self._exporters
        if exporters is None:
            try:
                exporters = list(self.exporters_factory())
            except Exception:
                logger.error("tracemark: could not create the trace exporters", exc_info=True)
                exporters = []
            self._exporters = exporters
        return exporters


def _reinit_after_fork() -> None:
    # The exporter thread does not survive fork, and the parent still owns what it queued.
    for pipeline in list(_PIPELINES):
        pipeline._init_thread_state()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reinit_after_fork)
