"""Webhooks under /api/v1/webhooks: subscriptions, the delivery log, test deliveries."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field

from tracemark.server.routes.registry import MaxResults
from tracemark.server.schemas import _Body

router = APIRouter(prefix="/api/v1", tags=["webhooks"])


class CreateWebhook(_Body):
    """POST /webhooks."""

    name: str = Field(min_length=1, max_length=256)
    url: str = Field(min_length=1, max_length=2048)
    events: list[str] = Field(min_length=1, max_length=50)
    secret: str | None = Field(default=None, min_length=1, max_length=1000)
    description: str | None = Field(default=None, max_length=65_000)
    status: str = "ACTIVE"


class UpdateWebhook(_Body):
    """PATCH /webhooks/{webhook_id}."""

    name: str | None = Field(default=None, min_length=1, max_length=256)
    url: str | None = Field(default=None, min_length=1, max_length=2048)
    events: list[str] | None = Field(default=None, min_length=1, max_length=50)
    secret: str | None = Field(default=None, min_length=1, max_length=1000)
    description: str | None = Field(default=None, max_length=65_000)
    status: str | None = None


def _store(request: Request) -> Any:
    return request.app.state.store


@router.post("/webhooks")
def create_webhook(body: CreateWebhook, request: Request) -> dict[str, Any]:
    """Subscribe an http(s) endpoint to registry events."""
    hook = _store(request).create_webhook(
        body.name, body.url, body.events, body.secret, body.description, body.status
    )
    return hook.to_dict()


@router.get("/webhooks")
def list_webhooks(request: Request) -> dict[str, Any]:
    """List every webhook (secrets are never returned)."""
    return {"webhooks": [w.to_dict() for w in _store(request).list_webhooks()]}


@router.get("/webhooks/{webhook_id}")
def get_webhook(webhook_id: str, request: Request) -> dict[str, Any]:
    """Return one webhook."""
    return _store(request).get_webhook(webhook_id).to_dict()


@router.patch("/webhooks/{webhook_id}")
def update_webhook(webhook_id: str, body: UpdateWebhook, request: Request) -> dict[str, Any]:
    """Change a webhook's settings."""
    return _store(request).update_webhook(webhook_id, **body.model_dump()).to_dict()


@router.delete("/webhooks/{webhook_id}")
def delete_webhook(webhook_id: str, request: Request) -> dict[str, Any]:
    """Delete a webhook and its delivery log."""
    _store(request).delete_webhook(webhook_id)
    return {}


@router.get("/webhooks/{webhook_id}/deliveries")
def list_webhook_deliveries(
    webhook_id: str, request: Request, max_results: MaxResults = 100
) -> dict[str, Any]:
    """List a webhook's deliveries, newest first."""
    found = _store(request).list_webhook_deliveries(webhook_id, max_results)
    return {"deliveries": [d.to_dict() for d in found]}


@router.post("/webhooks/{webhook_id}/test")
def test_webhook(webhook_id: str, request: Request) -> dict[str, Any]:
    """Send a test event now and return the logged delivery."""
    return _store(request).test_webhook(webhook_id).to_dict()
