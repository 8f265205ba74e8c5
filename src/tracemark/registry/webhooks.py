"""Webhooks in the client: tell an HTTP endpoint about registry events, signed.

The store sends the deliveries (the server's process, for a server); see
`tracemark.store.webhooks` for the headers and the signature.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from tracemark.entities.webhook import Webhook, WebhookDelivery, WebhookStatus
from tracemark.store.webhooks import verify_signature as verify_webhook_signature

if TYPE_CHECKING:
    from tracemark.store.base import Store

__all__ = ["WebhooksClient", "verify_webhook_signature"]


class WebhooksClient:
    """Webhook methods of `TracemarkClient`."""

    store: Store

    def create_webhook(
        self,
        name: str,
        url: str,
        events: Sequence[str],
        secret: str | None = None,
        *,
        description: str | None = None,
        status: str = WebhookStatus.ACTIVE,
    ) -> Webhook:
        """Subscribe an http(s) endpoint to registry events.

        Example:
            hook = client.create_webhook(
                name="deploy", url="https://ci.example.com/hooks/tracemark",
                events=["model_version_alias.created"], secret="s3cr3t")

        Args:
            name: a label for people.
            url: an http(s) URL; loopback and private addresses are refused unless the
                process that sends (the server) sets TRACEMARK_WEBHOOK_ALLOW_PRIVATE_URLS=true.
            events: event names, such as ``model_version.created``; see `tm.WebhookEvent`.
            secret: signs every delivery (``X-Tracemark-Signature``); never read back.
            description: a note.
            status: ``ACTIVE`` or ``DISABLED``.
        """
        return self.store.create_webhook(name, url, events, secret, description, status)

    def get_webhook(self, webhook_id: str) -> Webhook:
        """Return a webhook (without its secret)."""
        return self.store.get_webhook(webhook_id)

    def list_webhooks(self) -> list[Webhook]:
        """Return every webhook."""
        return self.store.list_webhooks()

    def update_webhook(
        self,
        webhook_id: str,
        *,
        name: str | None = None,
        url: str | None = None,
        events: Sequence[str] | None = None,
        secret: str | None = None,
        description: str | None = None,
        status: str | None = None,
    ) -> Webhook:
        """Change a webhook's settings (``status="DISABLED"`` pauses it)."""
        return self.store.update_webhook(
            webhook_id,
            name=name,
            url=url,
            events=events,
            secret=secret,
            description=description,
            status=status,
        )

    def delete_webhook(self, webhook_id: str) -> None:
        """Delete a webhook and its delivery log."""
        self.store.delete_webhook(webhook_id)

    def list_webhook_deliveries(
        self, webhook_id: str, max_results: int = 100
    ) -> list[WebhookDelivery]:
        """Return a webhook's deliveries, newest first, with status, attempts and response."""
        return self.store.list_webhook_deliveries(webhook_id, max_results)

    def test_webhook(self, webhook_id: str) -> WebhookDelivery:
        """Send a ``webhook.test`` event now (one attempt) and return its logged delivery."""
        return self.store.test_webhook(webhook_id)
