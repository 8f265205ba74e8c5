"""Registered scorers under /api/v1, and the scoring worker of `tracemark server --score`.

Settings live under ``/experiments/{experiment_id}/scorers/{name}``; what workers call
(lease, commit) under ``/scorers/{scorer_id}``. The server never imports a scorer unless
it scores itself (``--score``): registering only stores the spec.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Request
from pydantic import Field, StrictFloat

from tracemark.entities.trace import Assessment, AssessmentSource
from tracemark.server.schemas import Timestamp, _Body

router = APIRouter(prefix="/api/v1", tags=["scorers"])
logger = logging.getLogger("tracemark.server")

SampleRate = Annotated[StrictFloat, Field(ge=0, le=1)]
_STATUS = r"^(ACTIVE|STOPPED)$"


class CreateScorer(_Body):
    """POST /experiments/{experiment_id}/scorers."""

    name: str = Field(min_length=1, max_length=250)
    spec: dict[str, Any]
    sample_rate: SampleRate = 1.0
    filter_string: str | None = Field(default=None, max_length=10_000)
    status: str = Field(default="ACTIVE", pattern=_STATUS)


class UpdateScorer(_Body):
    """PATCH /experiments/{experiment_id}/scorers/{name}."""

    sample_rate: SampleRate | None = None
    filter_string: str | None = Field(default=None, max_length=10_000)
    status: str | None = Field(default=None, pattern=_STATUS)
    last_error: str | None = Field(default=None, max_length=10_000)


class Lease(_Body):
    """POST /scorers/{scorer_id}/lease."""

    owner: str = Field(min_length=1, max_length=128)
    lease_ms: int = Field(ge=0, le=86_400_000, strict=True)


class Release(_Body):
    """POST /scorers/{scorer_id}/lease/release."""

    owner: str = Field(min_length=1, max_length=128)


class Cursor(_Body):
    """Where a scorer has got: the last trace considered."""

    timestamp_ms: Timestamp
    trace_id: str | None = Field(default=None, max_length=32)


class ScoredFeedback(_Body):
    """One verdict of a committed batch."""

    trace_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    name: str = Field(min_length=1, max_length=250)
    value: Any = None
    rationale: str | None = None
    error: str | None = None
    source_type: str = Field(default="CODE", pattern=r"^(HUMAN|LLM_JUDGE|CODE)$")
    source_id: str = Field(default="default", max_length=250)
    span_id: str | None = Field(default=None, pattern=r"^[0-9a-f]{16}$")
    metadata: dict[str, str] = Field(default_factory=dict)


class CommitBatch(_Body):
    """POST /scorers/{scorer_id}/commit."""

    expected_cursor: Cursor | None = None
    new_cursor: Cursor
    assessments: list[ScoredFeedback] = Field(default_factory=list, max_length=10_000)


def _store(request: Request) -> Any:
    return request.app.state.store


@router.post("/experiments/{experiment_id}/scorers")
def create_scorer(experiment_id: str, body: CreateScorer, request: Request) -> dict[str, Any]:
    """Register a scorer on an experiment."""
    return (
        _store(request)
        .create_registered_scorer(
            experiment_id, body.name, body.spec, body.sample_rate, body.filter_string, body.status
        )
        .to_dict()
    )


@router.get("/experiments/{experiment_id}/scorers")
def list_experiment_scorers(experiment_id: str, request: Request) -> dict[str, Any]:
    """List an experiment's scorers."""
    found = _store(request).list_registered_scorers(experiment_id)
    return {"scorers": [s.to_dict() for s in found]}


@router.get("/scorers")
def list_scorers(request: Request) -> dict[str, Any]:
    """List the scorers of every experiment."""
    return {"scorers": [s.to_dict() for s in _store(request).list_registered_scorers(None)]}


@router.get("/experiments/{experiment_id}/scorers/{name:path}")
def get_scorer(experiment_id: str, name: str, request: Request) -> dict[str, Any]:
    """Return one registered scorer."""
    return _store(request).get_registered_scorer(experiment_id, name).to_dict()


@router.patch("/experiments/{experiment_id}/scorers/{name:path}")
def update_scorer(
    experiment_id: str, name: str, body: UpdateScorer, request: Request
) -> dict[str, Any]:
    """Change a scorer's sample rate, filter or status."""
    changed = _store(request).update_registered_scorer(experiment_id, name, **body.model_dump())
    return changed.to_dict()


@router.delete("/experiments/{experiment_id}/scorers/{name:path}")
def delete_scorer(experiment_id: str, name: str, request: Request) -> dict[str, Any]:
    """Unregister a scorer (its assessments stay)."""
    _store(request).delete_registered_scorer(experiment_id, name)
    return {}


@router.post("/scorers/{scorer_id}/lease")
def acquire_lease(scorer_id: str, body: Lease, request: Request) -> dict[str, Any]:
    """Take or renew a scorer for a worker; `scorer` is null while another holds it."""
    held = _store(request).acquire_scorer_lease(scorer_id, body.owner, body.lease_ms)
    return {"scorer": None if held is None else held.to_dict()}


@router.post("/scorers/{scorer_id}/lease/release")
def release_lease(scorer_id: str, body: Release, request: Request) -> dict[str, Any]:
    """Give a scorer back."""
    _store(request).release_scorer_lease(scorer_id, body.owner)
    return {}


@router.post("/scorers/{scorer_id}/commit")
def commit_batch(scorer_id: str, body: CommitBatch, request: Request) -> dict[str, Any]:
    """Move a scorer's cursor and store a batch's verdicts, unless another worker did first."""
    now = time.time_ns() // 1_000_000

    def cursor(c: Cursor | None) -> tuple[int, str | None] | None:
        return None if c is None else (c.timestamp_ms, c.trace_id)

    assessments = [
        Assessment(
            assessment_id="",
            trace_id=a.trace_id,
            name=a.name,
            kind=Assessment.FEEDBACK,
            value=a.value,
            source=AssessmentSource(a.source_type, a.source_id),
            created_time_ms=now,
            last_updated_time_ms=now,
            span_id=a.span_id,
            rationale=a.rationale,
            error=a.error,
            metadata=a.metadata,
        )
        for a in body.assessments
    ]
    committed = _store(request).commit_scorer_batch(
        scorer_id, cursor(body.expected_cursor), cursor(body.new_cursor), assessments
    )
    return {"committed": committed}


@asynccontextmanager
def _resume_webhooks(store: Any) -> None:
    """Send again the webhook deliveries a previous server process left pending."""
    resume = getattr(store, "resume_webhook_deliveries", None)
    if resume is None:
        return
    try:
        resume()
    except Exception:  # the server must start even if the delivery log cannot be read
        logger.exception("tracemark: could not resume pending webhook deliveries")


async def background_scoring(app: FastAPI) -> AsyncIterator[None]:
    """Start the server's background work: pending webhook deliveries, then scoring.

    Deliveries a previous process left pending are sent again; the scoring worker runs on
    a thread of this process when scoring is on.

    With several server processes each scores; the scorers' leases and the compare-and-set
    commit keep every trace scored once.
    """
    from tracemark.config import SERVER_SCORE

    _resume_webhooks(app.state.store)
    if not SERVER_SCORE.get():
        yield
        return
    from tracemark.evaluation.worker import ScoringWorker

    worker = ScoringWorker(store=app.state.store)
    thread = threading.Thread(target=worker.run_forever, name="tracemark-scoring", daemon=True)
    thread.start()
    logger.info("scoring registered scorers every %.3g s", worker.interval)
    try:
        yield
    finally:
        worker.stop()
        thread.join(timeout=30)
