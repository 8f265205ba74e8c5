"""Evaluation datasets under /api/v1/datasets: create, read a version, search, merge, delete."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import Field

from tracemark.server.routes.registry import Filter, MaxResults, PageToken
from tracemark.server.schemas import _Body

router = APIRouter(prefix="/api/v1", tags=["datasets"])

Version = Annotated[int | None, Query(ge=1, lt=2**31)]
ExperimentIds = Annotated[list[str] | None, Query(max_length=1000)]


class CreateDataset(_Body):
    """POST /datasets."""

    name: str = Field(min_length=1, max_length=256)
    experiment_id: str | None = Field(default=None, pattern=r"^\d{1,18}$")
    description: str | None = Field(default=None, max_length=65_000)
    tags: dict[str, str] = Field(default_factory=dict)


class MergeRecords(_Body):
    """POST /datasets/{name}/records.

    Each record is checked by the store, so a bad one is refused with the same message
    (naming its index and field) as on a local database.
    """

    records: list[Any]


def _store(request: Request) -> Any:
    return request.app.state.store


@router.post("/datasets")
def create_dataset(body: CreateDataset, request: Request) -> dict[str, Any]:
    """Create an empty dataset; 409 when the name is taken."""
    dataset = _store(request).create_dataset(
        body.name, body.experiment_id, body.description, body.tags
    )
    return dataset.to_dict()


@router.get("/datasets")
def search_datasets(
    request: Request,
    filter: Filter = None,
    experiment_ids: ExperimentIds = None,
    max_results: MaxResults = 100,
    page_token: PageToken = None,
) -> dict[str, Any]:
    """List datasets by name, optionally filtered (``name LIKE 'qa%'``, ``tags.team = 'x'``)."""
    found, token = _store(request).search_datasets(filter, experiment_ids, max_results, page_token)
    return {"datasets": [d.to_dict() for d in found], "next_page_token": token}


@router.get("/datasets/{name}")
def get_dataset(name: str, request: Request, version: Version = None) -> dict[str, Any]:
    """Return a dataset as of a version (the newest by default)."""
    return _store(request).get_dataset(name, version).to_dict()


@router.delete("/datasets/{name}")
def delete_dataset(name: str, request: Request) -> dict[str, Any]:
    """Delete a dataset with all its versions and records."""
    _store(request).delete_dataset(name)
    return {}


@router.get("/datasets/{name}/records")
def get_dataset_records(name: str, request: Request, version: Version = None) -> dict[str, Any]:
    """Return exactly the records of a version (the newest by default)."""
    records = _store(request).get_dataset_records(name, version)
    return {"records": [r.to_dict() for r in records]}


@router.post("/datasets/{name}/records")
def merge_dataset_records(name: str, body: MergeRecords, request: Request) -> dict[str, Any]:
    """Add or update records as one new version; returns the dataset as it now is."""
    return _store(request).merge_dataset_records(name, body.records).to_dict()
