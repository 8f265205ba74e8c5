"""The prompt registry under /api/v1/prompts: versions, aliases, tags, search."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import Field

from tracemark.server.schemas import TagValue, _Body

router = APIRouter(prefix="/api/v1", tags=["registry"])

MaxResults = Annotated[int, Query(ge=1, le=50_000)]
PageToken = Annotated[str | None, Query(max_length=1000)]
Filter = Annotated[str | None, Query(max_length=10_000)]


class CreatePromptVersion(_Body):
    """POST /prompts/{name}/versions."""

    template: str | list[dict[str, Any]]
    commit_message: str | None = Field(default=None, max_length=65_000)
    tags: dict[str, str] = Field(default_factory=dict)


class AliasTarget(_Body):
    """PUT .../aliases/{alias}."""

    version: int = Field(ge=1, lt=2**31)


def _store(request: Request) -> Any:
    return request.app.state.store


@router.post("/prompts/{name}/versions")
def create_prompt_version(name: str, body: CreatePromptVersion, request: Request) -> dict[str, Any]:
    """Store a new version of a prompt (creating the prompt if new)."""
    version = _store(request).create_prompt_version(
        name, body.template, body.commit_message, body.tags
    )
    return version.to_dict()


@router.get("/prompts")
def search_prompts(
    request: Request,
    filter: Filter = None,
    max_results: MaxResults = 100,
    page_token: PageToken = None,
) -> dict[str, Any]:
    """List prompts by name, optionally filtered (``name LIKE 'qa%'``, ``tags.team = 'x'``)."""
    found, token = _store(request).search_prompts(filter, max_results, page_token)
    return {"prompts": [p.to_dict() for p in found], "next_page_token": token}


@router.get("/prompts/{name}")
def get_prompt(name: str, request: Request) -> dict[str, Any]:
    """Return a prompt with its tags and aliases."""
    return _store(request).get_prompt(name).to_dict()


@router.delete("/prompts/{name}")
def delete_prompt(name: str, request: Request, force: bool = False) -> dict[str, Any]:
    """Delete a prompt and its versions; with aliases only when `force` is true."""
    _store(request).delete_prompt(name, force=force)
    return {}


@router.get("/prompts/{name}/versions")
def search_prompt_versions(
    name: str, request: Request, max_results: MaxResults = 100, page_token: PageToken = None
) -> dict[str, Any]:
    """List a prompt's versions, newest first."""
    found, token = _store(request).search_prompt_versions(name, max_results, page_token)
    return {"versions": [v.to_dict() for v in found], "next_page_token": token}


@router.get("/prompts/{name}/versions/{version}")
def get_prompt_version(name: str, version: int, request: Request) -> dict[str, Any]:
    """Return one version of a prompt."""
    return _store(request).get_prompt_version(name, version).to_dict()


@router.delete("/prompts/{name}/versions/{version}")
def delete_prompt_version(
    name: str, version: int, request: Request, force: bool = False
) -> dict[str, Any]:
    """Delete one version; one an alias points at only when `force` is true."""
    _store(request).delete_prompt_version(name, version, force=force)
    return {}


@router.get("/prompts/{name}/aliases/{alias}")
def get_prompt_version_by_alias(name: str, alias: str, request: Request) -> dict[str, Any]:
    """Return the version an alias points at (``latest``: the newest)."""
    return _store(request).get_prompt_version_by_alias(name, alias).to_dict()


@router.put("/prompts/{name}/aliases/{alias}")
def set_prompt_alias(name: str, alias: str, body: AliasTarget, request: Request) -> dict[str, Any]:
    """Point an alias at a version."""
    _store(request).set_prompt_alias(name, alias, body.version)
    return {}


@router.delete("/prompts/{name}/aliases/{alias}")
def delete_prompt_alias(name: str, alias: str, request: Request) -> dict[str, Any]:
    """Remove an alias."""
    _store(request).delete_prompt_alias(name, alias)
    return {}


@router.put("/prompts/{name}/tags/{key:path}")
def set_prompt_tag(name: str, key: str, body: TagValue, request: Request) -> dict[str, Any]:
    """Set a tag on a prompt."""
    _store(request).set_prompt_tag(name, key, body.value)
    return {}


@router.delete("/prompts/{name}/tags/{key:path}")
def delete_prompt_tag(name: str, key: str, request: Request) -> dict[str, Any]:
    """Remove a tag from a prompt."""
    _store(request).delete_prompt_tag(name, key)
    return {}
