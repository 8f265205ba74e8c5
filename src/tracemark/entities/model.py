"""Application versions: logged models, registered models, their versions and aliases.

A `LoggedModel` is one application snapshot (code, requirements, config) stored as
artifacts of a run. A `RegisteredModel` is a name whose numbered `ModelVersion`s each
point at such a snapshot; aliases (``production``) point at one version and can move.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(slots=True)
class LoggedModel:
    """A model logged by `tm.log_model`: files under `artifact_path` of run `run_id`."""

    model_id: str
    name: str
    experiment_id: str
    run_id: str
    artifact_path: str
    flavor: str = "python"
    creation_time: int = 0

    @property
    def model_uri(self) -> str:
        """The URI that loads this model: ``runs:/<run_id>/<artifact_path>``."""
        return f"runs:/{self.run_id}/{self.artifact_path}"

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoggedModel:
        """Build a logged model from `to_dict` output."""
        return cls(**data)


@dataclass(slots=True)
class ModelVersion:
    """One numbered version of a registered model, pointing at a model by URI."""

    name: str
    version: int
    source: str
    run_id: str | None = None
    model_id: str | None = None
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)
    creation_time: int = 0
    last_updated_time: int = 0

    @property
    def uri(self) -> str:
        """The URI that loads exactly this version: ``models:/name/version``."""
        return f"models:/{self.name}/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelVersion:
        """Build a version from `to_dict` output."""
        return cls(**data)


@dataclass(slots=True)
class RegisteredModel:
    """A registered model name: its description, tags, aliases and newest version."""

    name: str
    latest_version: int = 0
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, int] = field(default_factory=dict)
    creation_time: int = 0
    last_updated_time: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RegisteredModel:
        """Build a registered model from `to_dict` output."""
        return cls(**data)
