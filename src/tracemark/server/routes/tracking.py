"""Experiments, runs, params, metrics and tags under /api/v1."""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from tracemark.entities import Metric, Param, Run, RunTag
from tracemark.server.schemas import (
    CreateExperiment,
    CreateRun,
    LogBatch,
    RenameExperiment,
    SearchRuns,
    TagValue,
    UpdateRun,
)
from tracemark.store.base import Store
from tracemark.tracking.client import now_ms

router = APIRouter(prefix="/api/v1", tags=["tracking"])

# Digits that fit the 64-bit id column; anything else is refused before the store sees it.
ExperimentId = Annotated[str, Path(pattern=r"^\d{1,18}$")]


def _store(request: Request) -> Store:
    return request.app.state.store


def _ok() -> dict[str, Any]:
    return {}


def wire_float(value: float) -> float | str:
    """JSON has no NaN or infinity; send those as the strings float() reads back."""
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _run_out(run: Run) -> dict[str, Any]:
    data = run.to_dict()
    data["metrics"] = {k: wire_float(v) for k, v in run.metrics.items()}
    return data


@router.post("/experiments")
def create_experiment(body: CreateExperiment, request: Request) -> dict[str, Any]:
    """Create an experiment."""
    eid = _store(request).create_experiment(body.name, body.artifact_location, body.tags)
    return {"experiment_id": eid}


@router.get("/experiments")
def search_experiments(
    request: Request,
    view_type: str = "active_only",
    filter: Annotated[str | None, Query(max_length=10_000)] = None,
    max_results: Annotated[int, Query(ge=1, le=50_000)] = 1000,
    order_by: Annotated[list[str] | None, Query()] = None,
) -> dict[str, Any]:
    """List experiments, optionally filtered."""
    found = _store(request).search_experiments(view_type, filter, max_results, order_by or None)
    return {"experiments": [e.to_dict() for e in found]}


@router.get("/experiments/by-name")
def get_experiment_by_name(
    request: Request, name: Annotated[str, Query(min_length=1, max_length=256)]
) -> dict[str, Any]:
    """Return an experiment by name; `experiment` is null when none has that name."""
    found = _store(request).get_experiment_by_name(name)
    return {"experiment": None if found is None else found.to_dict()}


@router.get("/experiments/{experiment_id}")
def get_experiment(experiment_id: ExperimentId, request: Request) -> dict[str, Any]:
    """Return an experiment by id."""
    return _store(request).get_experiment(experiment_id).to_dict()


@router.patch("/experiments/{experiment_id}")
def rename_experiment(
    experiment_id: ExperimentId, body: RenameExperiment, request: Request
) -> dict[str, Any]:
    """Rename an experiment."""
    _store(request).rename_experiment(experiment_id, body.name)
    return _ok()


@router.delete("/experiments/{experiment_id}")
def delete_experiment(experiment_id: ExperimentId, request: Request) -> dict[str, Any]:
    """Soft-delete an experiment and its runs."""
    _store(request).delete_experiment(experiment_id)
    return _ok()


@router.post("/experiments/{experiment_id}/restore")
def restore_experiment(experiment_id: ExperimentId, request: Request) -> dict[str, Any]:
    """Restore a deleted experiment."""
    _store(request).restore_experiment(experiment_id)
    return _ok()


@router.put("/experiments/{experiment_id}/tags/{key:path}")
def set_experiment_tag(
    experiment_id: ExperimentId, key: str, body: TagValue, request: Request
) -> dict[str, Any]:
    """Set a tag on an experiment."""
    _store(request).set_experiment_tag(experiment_id, key, body.value)
    return _ok()


@router.delete("/experiments/{experiment_id}/tags/{key:path}")
def delete_experiment_tag(
    experiment_id: ExperimentId, key: str, request: Request
) -> dict[str, Any]:
    """Delete a tag from an experiment."""
    _store(request).delete_experiment_tag(experiment_id, key)
    return _ok()


@router.post("/runs")
def create_run(body: CreateRun, request: Request) -> dict[str, Any]:
    """Create a RUNNING run."""
    run = _store(request).create_run(
        body.experiment_id,
        body.run_name,
        body.start_time if body.start_time is not None else now_ms(),
        body.tags,
        body.parent_run_id,
    )
    return _run_out(run)


@router.post("/runs/search")
def search_runs(body: SearchRuns, request: Request) -> dict[str, Any]:
    """Search runs with the filter grammar; returns a page and the next page's token."""
    runs, token = _store(request).search_runs(
        body.experiment_ids,
        body.filter,
        body.view_type,
        body.max_results,
        body.order_by or None,
        body.page_token,
    )
    return {"runs": [_run_out(r) for r in runs], "next_page_token": token}


@router.get("/runs/{run_id}")
def get_run(run_id: str, request: Request) -> dict[str, Any]:
    """Return a run with params, tags and latest metrics."""
    return _run_out(_store(request).get_run(run_id))


@router.patch("/runs/{run_id}")
def update_run(run_id: str, body: UpdateRun, request: Request) -> dict[str, Any]:
    """Change a run's status, end time or name."""
    run = _store(request).update_run(
        run_id, status=body.status, end_time=body.end_time, run_name=body.run_name
    )
    return _run_out(run)


@router.delete("/runs/{run_id}")
def delete_run(run_id: str, request: Request) -> dict[str, Any]:
    """Soft-delete a run."""
    _store(request).delete_run(run_id)
    return _ok()


@router.post("/runs/{run_id}/restore")
def restore_run(run_id: str, request: Request) -> dict[str, Any]:
    """Restore a deleted run."""
    _store(request).restore_run(run_id)
    return _ok()


@router.post("/runs/{run_id}/batch")
def log_batch(run_id: str, body: LogBatch, request: Request) -> dict[str, Any]:
    """Log metrics, params and tags in one transaction."""
    _store(request).log_batch(
        run_id,
        [Metric(m.key, float(m.value), m.timestamp, m.step) for m in body.metrics],
        [Param(p.key, p.value) for p in body.params],
        [RunTag(t.key, t.value) for t in body.tags],
    )
    return _ok()


@router.delete("/runs/{run_id}/tags/{key:path}")
def delete_run_tag(run_id: str, key: str, request: Request) -> dict[str, Any]:
    """Delete a tag from a run."""
    _store(request).delete_tag(run_id, key)
    return _ok()


@router.get("/runs/{run_id}/metric-history")
def get_metric_history(
    run_id: str, request: Request, key: Annotated[str, Query(min_length=1, max_length=250)]
) -> dict[str, Any]:
    """Return every logged value of one metric."""
    history = _store(request).get_metric_history(run_id, key)
    return {"metrics": [{**m.to_dict(), "value": wire_float(m.value)} for m in history]}
