"""The model registry under /api/v1: registered models, versions, aliases, logged models."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import Field

from tracemark.entities.model import LoggedModel
from tracemark.server.routes.registry import AliasTarget, Filter, MaxResults, PageToken
from tracemark.server.schemas import TagValue, _Body

router = APIRouter(prefix="/api/v1", tags=["models"])

RunId = Field(default=None, pattern=r"^[0-9a-f]{32}$")


class CreateRegisteredModel(_Body):
    """POST /registered-models."""

    name: str = Field(min_length=1, max_length=256)
    description: str | None = Field(default=None, max_length=65_000)
    tags: dict[str, str] = Field(default_factory=dict)


class Description(_Body):
    """PATCH a registered model or version."""

    description: str | None = Field(default=None, max_length=65_000)


class CreateModelVersion(_Body):
    """POST /registered-models/{name}/versions."""

    source: str = Field(min_length=1, max_length=10_000)
    run_id: str | None = RunId
    model_id: str | None = Field(default=None, max_length=32)
    description: str | None = Field(default=None, max_length=65_000)
    tags: dict[str, str] = Field(default_factory=dict)


class LoggedModelIn(_Body):
    """POST /logged-models."""

    model_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    name: str = Field(min_length=1, max_length=256)
    experiment_id: str = Field(pattern=r"^\d{1,18}$")
    run_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    artifact_path: str = Field(min_length=1, max_length=256)
    flavor: str = Field(default="python", max_length=32)
    creation_time: int = Field(default=0, ge=0, le=2**63 - 1)


def _store(request: Request) -> Any:
    return request.app.state.store


@router.post("/registered-models")
def create_registered_model(body: CreateRegisteredModel, request: Request) -> dict[str, Any]:
    """Create a registered model."""
    model = _store(request).create_registered_model(body.name, body.description, body.tags)
    return model.to_dict()


@router.get("/registered-models")
def search_registered_models(
    request: Request,
    filter: Filter = None,
    max_results: MaxResults = 100,
    page_token: PageToken = None,
) -> dict[str, Any]:
    """List registered models by name, optionally filtered."""
    found, token = _store(request).search_registered_models(filter, max_results, page_token)
    return {"registered_models": [m.to_dict() for m in found], "next_page_token": token}


@router.get("/registered-models/{name}")
def get_registered_model(name: str, request: Request) -> dict[str, Any]:
    """Return a registered model with its tags and aliases."""
    return _store(request).get_registered_model(name).to_dict()


@router.patch("/registered-models/{name}")
def update_registered_model(name: str, body: Description, request: Request) -> dict[str, Any]:
    """Change a registered model's description."""
    return _store(request).update_registered_model(name, body.description).to_dict()


@router.delete("/registered-models/{name}")
def delete_registered_model(name: str, request: Request, force: bool = False) -> dict[str, Any]:
    """Delete a registered model and its versions; with aliases only when `force` is true."""
    _store(request).delete_registered_model(name, force=force)
    return {}


@router.put("/registered-models/{name}/tags/{key:path}")
def set_registered_model_tag(
    name: str, key: str, body: TagValue, request: Request
) -> dict[str, Any]:
    """Set a tag on a registered model."""
    _store(request).set_registered_model_tag(name, key, body.value)
    return {}


@router.delete("/registered-models/{name}/tags/{key:path}")
def delete_registered_model_tag(name: str, key: str, request: Request) -> dict[str, Any]:
    """Remove a tag from a registered model."""
    _store(request).delete_registered_model_tag(name, key)
    return {}


@router.post("/registered-models/{name}/versions")
def create_model_version(name: str, body: CreateModelVersion, request: Request) -> dict[str, Any]:
    """Add a version (creating the registered model if new)."""
    version = _store(request).create_model_version(
        name, body.source, body.run_id, body.model_id, body.description, body.tags
    )
    return version.to_dict()


@router.get("/model-versions")
def search_model_versions(
    request: Request,
    filter: Filter = None,
    max_results: MaxResults = 100,
    page_token: PageToken = None,
) -> dict[str, Any]:
    """List model versions (by name, newest first), optionally filtered."""
    found, token = _store(request).search_model_versions(filter, max_results, page_token)
    return {"model_versions": [v.to_dict() for v in found], "next_page_token": token}


@router.get("/registered-models/{name}/versions/{version}")
def get_model_version(name: str, version: int, request: Request) -> dict[str, Any]:
    """Return one version."""
    return _store(request).get_model_version(name, version).to_dict()


@router.patch("/registered-models/{name}/versions/{version}")
def update_model_version(
    name: str, version: int, body: Description, request: Request
) -> dict[str, Any]:
    """Change a version's description."""
    return _store(request).update_model_version(name, version, body.description).to_dict()


@router.delete("/registered-models/{name}/versions/{version}")
def delete_model_version(
    name: str, version: int, request: Request, force: bool = False
) -> dict[str, Any]:
    """Delete a version; one an alias points at only when `force` is true."""
    _store(request).delete_model_version(name, version, force=force)
    return {}


@router.put("/registered-models/{name}/versions/{version}/tags/{key:path}")
def set_model_version_tag(
    name: str, version: int, key: str, body: TagValue, request: Request
) -> dict[str, Any]:
    """Set a tag on a version."""
    _store(request).set_model_version_tag(name, version, key, body.value)
    return {}


@router.delete("/registered-models/{name}/versions/{version}/tags/{key:path}")
def delete_model_version_tag(name: str, version: int, key: str, request: Request) -> dict[str, Any]:
    """Remove a tag from a version."""
    _store(request).delete_model_version_tag(name, version, key)
    return {}


@router.get("/registered-models/{name}/aliases/{alias}")
def get_model_version_by_alias(name: str, alias: str, request: Request) -> dict[str, Any]:
    """Return the version an alias points at (``latest``: the newest)."""
    return _store(request).get_model_version_by_alias(name, alias).to_dict()


@router.put("/registered-models/{name}/aliases/{alias}")
def set_registered_model_alias(
    name: str, alias: str, body: AliasTarget, request: Request
) -> dict[str, Any]:
    """Point an alias at a version."""
    _store(request).set_registered_model_alias(name, alias, body.version)
    return {}


@router.delete("/registered-models/{name}/aliases/{alias}")
def delete_registered_model_alias(name: str, alias: str, request: Request) -> dict[str, Any]:
    """Remove an alias."""
    _store(request).delete_registered_model_alias(name, alias)
    return {}


@router.post("/logged-models")
def create_logged_model(body: LoggedModelIn, request: Request) -> dict[str, Any]:
    """Record a model whose files are already among a run's artifacts."""
    return _store(request).create_logged_model(LoggedModel(**body.model_dump())).to_dict()


@router.get("/logged-models")
def search_logged_models(
    request: Request, run_id: Annotated[str, Query(pattern=r"^[0-9a-f]{32}$")]
) -> dict[str, Any]:
    """List the models a run logged."""
    return {"logged_models": [m.to_dict() for m in _store(request).search_logged_models(run_id)]}


@router.get("/logged-models/{model_id}")
def get_logged_model(model_id: str, request: Request) -> dict[str, Any]:
    """Return a logged model."""
    return _store(request).get_logged_model(model_id).to_dict()
