"""The Store protocol: everything the SDK asks of a backend.

The SQL store implements it for SQLite and PostgreSQL; a REST store will implement it
against a tracemark server. Callers never know which one they hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from tracemark.entities import Experiment, Metric, Param, Run, RunTag
from tracemark.entities.trace import Assessment, Span, Trace, TraceInfo
from tracemark.store.artifacts import ArtifactRepository


class ViewType:
    """Which lifecycle stages a search returns."""

    ACTIVE_ONLY = "active_only"
    DELETED_ONLY = "deleted_only"
    ALL = "all"
    VALUES = (ACTIVE_ONLY, DELETED_ONLY, ALL)


class Store(Protocol):
    """Persistence for experiments, runs, traces and assessments."""

    artifact_root: str

    # experiments
    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: dict[str, str] | None = None
    ) -> str: ...
    def get_experiment(self, experiment_id: str) -> Experiment: ...
    def get_experiment_by_name(self, name: str) -> Experiment | None: ...
    def search_experiments(
        self,
        view_type: str = ViewType.ACTIVE_ONLY,
        filter_string: str | None = None,
        max_results: int = 1000,
        order_by: Sequence[str] | None = None,
    ) -> list[Experiment]: ...
    def rename_experiment(self, experiment_id: str, new_name: str) -> None: ...
    def delete_experiment(self, experiment_id: str) -> None: ...
    def restore_experiment(self, experiment_id: str) -> None: ...
    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None: ...
    def delete_experiment_tag(self, experiment_id: str, key: str) -> None: ...

    # runs
    def create_run(
        self,
        experiment_id: str,
        run_name: str | None,
        start_time: int,
        tags: dict[str, str] | None = None,
        parent_run_id: str | None = None,
    ) -> Run: ...
    def get_run(self, run_id: str) -> Run: ...
    def update_run(
        self,
        run_id: str,
        *,
        status: str | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> Run: ...
    def delete_run(self, run_id: str) -> None: ...
    def restore_run(self, run_id: str) -> None: ...
    def log_metric(self, run_id: str, metric: Metric) -> None: ...
    def log_param(self, run_id: str, param: Param) -> None: ...
    def set_tag(self, run_id: str, tag: RunTag) -> None: ...
    def delete_tag(self, run_id: str, key: str) -> None: ...
    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None: ...
    def get_metric_history(self, run_id: str, key: str) -> list[Metric]: ...
    def artifact_repository(self, run: Run) -> ArtifactRepository: ...
    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        view_type: str = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> tuple[list[Run], str | None]: ...

    # traces (SQL implementation: store/sql/traces.py and store/sql/assessments.py)
    def log_traces(self, traces: Sequence[Trace]) -> None: ...
    def get_trace(self, trace_id: str, *, include_payloads: bool = True) -> Trace: ...
    def get_span(self, trace_id: str, span_id: str) -> Span: ...
    def search_traces(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 100,
        page_token: str | None = None,
        run_id: str | None = None,
    ) -> tuple[list[TraceInfo], str | None]: ...
    def delete_traces(
        self,
        experiment_id: str,
        max_timestamp_ms: int | None = None,
        trace_ids: Sequence[str] | None = None,
    ) -> int: ...
    def set_trace_tag(self, trace_id: str, key: str, value: str) -> None: ...
    def delete_trace_tag(self, trace_id: str, key: str) -> None: ...

    # assessments
    def create_assessment(self, assessment: Assessment) -> Assessment: ...
    def get_assessment(self, trace_id: str, assessment_id: str) -> Assessment: ...
    def update_assessment(
        self,
        trace_id: str,
        assessment_id: str,
        *,
        name: str | None = None,
        value: Any = ...,
        rationale: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Assessment: ...
    def delete_assessment(self, trace_id: str, assessment_id: str) -> None: ...
