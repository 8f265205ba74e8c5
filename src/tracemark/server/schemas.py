"""Request bodies of the REST API; FastAPI validates them and documents them in OpenAPI."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt

Key = Field(min_length=1, max_length=250)
INT64_MAX = 2**63 - 1  # integer columns are 64-bit: larger values are refused, not stored
# Strict: `true` or "5" is not an integer here, as the schema says.
Timestamp = Annotated[StrictInt, Field(ge=0, le=INT64_MAX)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorBody(BaseModel):
    """Every error answer: a code, a message naming the object, the field at fault if any."""

    error_code: str
    message: str
    field: str | None = None
    position: int | None = None


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in (
        (400, "Invalid input, filter or Host header"),
        (401, "Missing or wrong bearer token"),
        (404, "No such object"),
        (409, "Already exists, or conflicts with what is stored"),
        (413, "Request body too large"),
        (422, "Body or parameters do not match the schema"),
    )
}
"""The error answers every API route may give, documented in OpenAPI."""


class CreateExperiment(_Body):
    """POST /experiments."""

    name: str = Field(min_length=1, max_length=256)
    artifact_location: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)


class RenameExperiment(_Body):
    """PATCH /experiments/{id}."""

    name: str = Field(min_length=1, max_length=256)


class TagValue(_Body):
    """PUT .../tags/{key}."""

    value: str = Field(max_length=65_000)


class CreateRun(_Body):
    """POST /runs."""

    experiment_id: str = Field(pattern=r"^\d{1,18}$")
    run_name: str | None = Field(default=None, max_length=250)
    start_time: Timestamp | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    parent_run_id: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$")


class UpdateRun(_Body):
    """PATCH /runs/{run_id}."""

    status: str | None = Field(default=None, pattern=r"^(RUNNING|FINISHED|FAILED|KILLED)$")
    end_time: Timestamp | None = None
    run_name: str | None = Field(default=None, max_length=250)


class MetricIn(_Body):
    """One metric value."""

    key: str = Key
    # JSON cannot spell NaN and the infinities as numbers: they come as these strings.
    value: StrictFloat | Literal["NaN", "Infinity", "-Infinity"]
    timestamp: Timestamp
    step: StrictInt = Field(default=0, ge=-INT64_MAX - 1, le=INT64_MAX)


class KeyValue(_Body):
    """A param or tag."""

    key: str = Key
    value: str = Field(max_length=65_000)


class LogBatch(_Body):
    """POST /runs/{run_id}/batch."""

    metrics: list[MetricIn] = Field(default_factory=list, max_length=10_000)
    params: list[KeyValue] = Field(default_factory=list, max_length=1_000)
    tags: list[KeyValue] = Field(default_factory=list, max_length=1_000)


class SearchRuns(_Body):
    """POST /runs/search."""

    experiment_ids: list[str] = Field(min_length=1, max_length=1000)
    filter: str | None = Field(default=None, max_length=10_000)
    view_type: str = "active_only"
    max_results: StrictInt = Field(default=1000, ge=1, le=50_000)
    order_by: list[str] = Field(default_factory=list, max_length=20)
    page_token: str | None = Field(default=None, max_length=1000)


class SearchTraces(_Body):
    """POST /traces/search."""

    experiment_ids: list[str] = Field(min_length=1, max_length=1000)
    filter: str | None = Field(default=None, max_length=10_000)
    max_results: StrictInt = Field(default=100, ge=1, le=50_000)
    order_by: list[str] = Field(default_factory=list, max_length=20)
    page_token: str | None = Field(default=None, max_length=1000)
    run_id: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$")


class DeleteTraces(_Body):
    """POST /traces/delete."""

    experiment_id: str = Field(pattern=r"^\d{1,18}$")
    max_timestamp_ms: Timestamp | None = None
    trace_ids: list[str] | None = Field(default=None, max_length=10_000)


class AssessmentIn(_Body):
    """POST /traces/{trace_id}/assessments."""

    name: str = Key
    kind: str = Field(pattern=r"^(feedback|expectation)$")
    value: Any = None
    rationale: str | None = None
    source_type: str = Field(default="HUMAN", pattern=r"^(HUMAN|LLM_JUDGE|CODE)$")
    source_id: str = Field(default="default", max_length=250)
    span_id: str | None = Field(default=None, pattern=r"^[0-9a-f]{16}$")
    error: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    run_id: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$")
    overrides: str | None = None


class AssessmentUpdate(_Body):
    """PATCH /traces/{trace_id}/assessments/{assessment_id}."""

    name: str | None = Field(default=None, min_length=1, max_length=250)
    value: Any = None
    rationale: str | None = None
    metadata: dict[str, str] | None = None
