"""Runs and what is logged to them: params, metrics, tags, artifacts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class RunStatus:
    """The states of a run."""

    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"
    ALL = ("RUNNING", "FINISHED", "FAILED", "KILLED")
    TERMINAL = ("FINISHED", "FAILED", "KILLED")


@dataclass(slots=True, frozen=True)
class Metric:
    """One metric value at one step; a run keeps the whole history."""

    key: str
    value: float
    timestamp: int
    step: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "key": self.key,
            "value": self.value,
            "timestamp": self.timestamp,
            "step": self.step,
        }


@dataclass(slots=True, frozen=True)
class Param:
    """A write-once run parameter; values are stored as strings."""

    key: str
    value: str


@dataclass(slots=True, frozen=True)
class RunTag:
    """A mutable key/value label on a run."""

    key: str
    value: str


@dataclass(slots=True, frozen=True)
class FileInfo:
    """One entry of an artifact listing."""

    path: str
    is_dir: bool
    file_size: int | None = None


@dataclass(slots=True)
class Run:
    """A run: one execution of an experiment, with its logged data.

    `metrics` holds the latest value of each metric (by step, then timestamp);
    the full history is read with `TracemarkClient.get_metric_history`.
    """

    run_id: str
    experiment_id: str
    run_name: str
    status: str
    start_time: int
    end_time: int | None
    artifact_uri: str
    lifecycle_stage: str = "active"
    parent_run_id: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def description(self) -> str | None:
        """The run's description, kept as the `tracemark.note.content` tag."""
        return self.tags.get("tracemark.note.content")

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "run_id": self.run_id,
            "experiment_id": self.experiment_id,
            "run_name": self.run_name,
            "status": self.status,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "artifact_uri": self.artifact_uri,
            "lifecycle_stage": self.lifecycle_stage,
            "parent_run_id": self.parent_run_id,
            "params": dict(self.params),
            "metrics": dict(self.metrics),
            "tags": dict(self.tags),
        }
