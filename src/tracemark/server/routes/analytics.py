"""Aggregates for the UI under /api/v1: sessions and trace metrics over time."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from tracemark.store.sql import analytics

router = APIRouter(prefix="/api/v1", tags=["analytics"])

Filter = Annotated[str | None, Query(max_length=10_000)]


@router.get("/experiments/{experiment_id}/sessions")
def list_sessions(
    experiment_id: str,
    request: Request,
    filter: Filter = None,
    max_results: Annotated[int, Query(ge=1, le=50_000)] = 50,
    page_token: Annotated[str | None, Query(max_length=1000)] = None,
) -> dict[str, Any]:
    """List conversations (traces grouped by `metadata.session_id`), latest first."""
    store = request.app.state.store
    store.get_experiment(experiment_id)
    sessions, token = analytics.list_sessions(
        store,
        [experiment_id],
        filter_string=filter,
        max_results=max_results,
        page_token=page_token,
    )
    return {"sessions": [s.to_dict() for s in sessions], "next_page_token": token}


@router.get("/experiments/{experiment_id}/overview")
def trace_overview(
    experiment_id: str,
    request: Request,
    filter: Filter = None,
    start_ms: Annotated[int | None, Query(ge=0)] = None,
    end_ms: Annotated[int | None, Query(ge=0)] = None,
    buckets: Annotated[int, Query(ge=1, le=1000)] = 48,
) -> dict[str, Any]:
    """Trace count, error rate, latency p50/p95, tokens and cost per time bucket."""
    store = request.app.state.store
    store.get_experiment(experiment_id)
    return analytics.trace_overview(
        store,
        [experiment_id],
        filter_string=filter,
        start_ms=start_ms,
        end_ms=end_ms,
        buckets=buckets,
    )


@router.get("/experiments/{experiment_id}/assessment-names")
def assessment_names(experiment_id: str, request: Request) -> dict[str, Any]:
    """The names of feedback and expectations on the experiment's traces, by kind."""
    store = request.app.state.store
    store.get_experiment(experiment_id)
    return analytics.assessment_names(store, [experiment_id])
