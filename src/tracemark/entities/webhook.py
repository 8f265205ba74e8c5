"""Webhooks: HTTP endpoints told about registry events, and the log of each delivery."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


class WebhookEvent:
    """The registry events a webhook can subscribe to."""

    REGISTERED_MODEL_CREATED = "registered_model.created"
    MODEL_VERSION_CREATED = "model_version.created"
    MODEL_VERSION_TAG_SET = "model_version_tag.set"
    MODEL_VERSION_ALIAS_CREATED = "model_version_alias.created"
    MODEL_VERSION_ALIAS_DELETED = "model_version_alias.deleted"
    PROMPT_CREATED = "prompt.created"
    PROMPT_VERSION_CREATED = "prompt_version.created"
    PROMPT_ALIAS_CREATED = "prompt_alias.created"
    PROMPT_ALIAS_DELETED = "prompt_alias.deleted"
    ALL = (
        REGISTERED_MODEL_CREATED,
        MODEL_VERSION_CREATED,
        MODEL_VERSION_TAG_SET,
        MODEL_VERSION_ALIAS_CREATED,
        MODEL_VERSION_ALIAS_DELETED,
        PROMPT_CREATED,
        PROMPT_VERSION_CREATED,
        PROMPT_ALIAS_CREATED,
        PROMPT_ALIAS_DELETED,
    )
    TEST = "webhook.test"  # sent by test_webhook only


class WebhookStatus:
    """Whether a webhook receives events."""

    ACTIVE = "ACTIVE"
    DISABLED = "DISABLED"
    ALL = (ACTIVE, DISABLED)


class DeliveryStatus:
    """Where one delivery stands."""

    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


@dataclass(slots=True)
class Webhook:
    """An endpoint subscribed to registry events; its secret is never read back."""

    webhook_id: str
    name: str
    url: str
    events: list[str]
    status: str = WebhookStatus.ACTIVE
    description: str | None = None
    has_secret: bool = False
    creation_time: int = 0
    last_updated_time: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Webhook:
        """Build a webhook from `to_dict` output."""
        return cls(**data)


@dataclass(slots=True)
class WebhookDelivery:
    """One event sent (or being sent) to one webhook, with the outcome of the last attempt."""

    delivery_id: str
    webhook_id: str
    event: str
    payload: dict[str, Any] = field(default_factory=dict)
    status: str = DeliveryStatus.PENDING
    attempts: int = 0
    response_status: int | None = None
    error: str | None = None
    creation_time: int = 0
    last_attempt_time: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WebhookDelivery:
        """Build a delivery from `to_dict` output."""
        return cls(**data)
