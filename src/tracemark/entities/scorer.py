"""Registered scorers: scorers that a worker runs on the new traces of an experiment."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


class ScorerStatus:
    """Whether a worker runs a registered scorer."""

    ACTIVE = "ACTIVE"
    STOPPED = "STOPPED"
    ALL = (ACTIVE, STOPPED)


@dataclass(slots=True)
class RegisteredScorer:
    """A scorer stored with its experiment, how often it samples and how far it has got.

    Attributes:
        scorer_id: 32 hex characters.
        experiment_id: The experiment whose traces it scores.
        name: Unique in the experiment; the source id of the assessments it writes.
        spec: How a worker rebuilds the scorer (`Scorer.to_spec()`).
        sample_rate: The fraction of traces scored, from 0 to 1.
        filter_string: Only traces matching this trace filter are scored.
        status: `ScorerStatus.ACTIVE` or `ScorerStatus.STOPPED`.
        last_error: Why the last scoring pass could not load the scorer; None when it could.
        cursor_timestamp_ms: Traces started at or before this time (and, at this time, with
            an id up to `cursor_trace_id`) were considered already.
        cursor_trace_id: The last trace considered at `cursor_timestamp_ms`, if any.
        creation_time: Epoch milliseconds.
        last_updated_time: Epoch milliseconds of the last change of settings.
    """

    scorer_id: str
    experiment_id: str
    name: str
    spec: dict[str, Any] = field(default_factory=dict)
    sample_rate: float = 1.0
    filter_string: str | None = None
    status: str = ScorerStatus.ACTIVE
    last_error: str | None = None
    cursor_timestamp_ms: int | None = None
    cursor_trace_id: str | None = None
    creation_time: int = 0
    last_updated_time: int = 0

    @property
    def cursor(self) -> tuple[int, str | None] | None:
        """Where the scorer has got, as (timestamp_ms, trace_id); None before any trace."""
        if self.cursor_timestamp_ms is None:
            return None
        return (self.cursor_timestamp_ms, self.cursor_trace_id)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RegisteredScorer:
        """Build a registered scorer from `to_dict` output."""
        return cls(**data)
