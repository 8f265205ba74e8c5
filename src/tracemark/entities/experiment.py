"""Experiments group runs and traces of one application or study."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class LifecycleStage:
    """Soft-delete state of an experiment or run."""

    ACTIVE = "active"
    DELETED = "deleted"


@dataclass(slots=True)
class Experiment:
    """An experiment: a named container for runs and traces."""

    experiment_id: str
    name: str
    artifact_location: str
    lifecycle_stage: str = LifecycleStage.ACTIVE
    tags: dict[str, str] = field(default_factory=dict)
    creation_time: int = 0
    last_update_time: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "experiment_id": self.experiment_id,
            "name": self.name,
            "artifact_location": self.artifact_location,
            "lifecycle_stage": self.lifecycle_stage,
            "tags": dict(self.tags),
            "creation_time": self.creation_time,
            "last_update_time": self.last_update_time,
        }
