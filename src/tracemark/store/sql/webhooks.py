"""Webhooks of the SQL store: subscriptions, the delivery log, and sending registry events.

Registry writes call `_emit` after their transaction commits; each active webhook
subscribed to the event gets a delivery row (PENDING) and a job on the store's sender.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from sqlalchemy import Table, delete, func, select, update

from tracemark.entities.webhook import (
    DeliveryStatus,
    Webhook,
    WebhookDelivery,
    WebhookEvent,
    WebhookStatus,
)
from tracemark.exceptions import InvalidInputError, NotFoundError
from tracemark.store import validation
from tracemark.store.sql import schema as t
from tracemark.store.sql.registry import now_ms
from tracemark.store.webhooks import Attempt, Job, WebhookSender, check_url, logger

_wh, _wd = t.webhooks.c, t.webhook_deliveries.c
_SENDER_LOCK = threading.Lock()


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > 256:
        raise InvalidInputError(
            f"webhook name must be a non-empty string of at most 256 characters, got {name!r}",
            field="name",
        )
    return name


def _check_events(events: Any) -> list[str]:
    if isinstance(events, str) or not isinstance(events, Sequence) or not events:
        raise InvalidInputError(
            f"events must be a non-empty list of: {', '.join(WebhookEvent.ALL)}", field="events"
        )
    for event in events:
        if event not in WebhookEvent.ALL:
            raise InvalidInputError(
                f"unknown webhook event {event!r}; use one of: {', '.join(WebhookEvent.ALL)}",
                field="events",
            )
    return list(dict.fromkeys(events))


def _check_secret(secret: Any) -> str | None:
    if secret is not None and (not isinstance(secret, str) or not 0 < len(secret) <= 1000):
        raise InvalidInputError(
            "webhook secret must be a string of 1 to 1000 characters", field="secret"
        )
    return secret


def _check_id(webhook_id: Any) -> str:
    if not isinstance(webhook_id, str) or len(webhook_id) != 32:
        raise NotFoundError(f"webhook {webhook_id!r} does not exist")
    return webhook_id


def _webhook(row: Any) -> Webhook:
    return Webhook(
        webhook_id=row.webhook_id,
        name=row.name,
        url=row.url,
        events=orjson.loads(row.events),
        status=row.status,
        description=row.description,
        has_secret=bool(row.secret),
        creation_time=row.creation_time,
        last_updated_time=row.last_updated_time,
    )


def _delivery(row: Any) -> WebhookDelivery:
    return WebhookDelivery(
        delivery_id=row.delivery_id,
        webhook_id=row.webhook_id,
        event=row.event,
        payload=orjson.loads(row.payload),
        status=row.status,
        attempts=row.attempts,
        response_status=row.response_status,
        error=row.error,
        creation_time=row.creation_time,
        last_attempt_time=row.last_attempt_time,
    )


class WebhookStoreMixin:
    """Webhook methods of `SqlStore` (which provides `_read`, `_write`, `_insert`)."""

    _read: Callable[..., Any]
    _write: Callable[..., Any]
    _insert: Callable[[Table], Any]
    _webhook_sender: WebhookSender | None = None

    @property
    def webhooks(self) -> WebhookSender:
        """The background sender of this store's deliveries (started on first use)."""
        if self._webhook_sender is None:
            with _SENDER_LOCK:
                if self._webhook_sender is None:
                    self._webhook_sender = WebhookSender(self._record_attempt)
        return self._webhook_sender

    def create_webhook(
        self,
        name: str,
        url: str,
        events: Sequence[str],
        secret: str | None = None,
        description: str | None = None,
        status: str = WebhookStatus.ACTIVE,
    ) -> Webhook:
        """Subscribe an http(s) endpoint to registry events."""
        row = {
            "webhook_id": uuid.uuid4().hex,
            "name": _check_name(name),
            "url": check_url(url),
            "events": orjson.dumps(_check_events(events)).decode(),
            "secret": _check_secret(secret),
            "status": _check_status(status),
            "description": description,
            "creation_time": now_ms(),
        }
        row["last_updated_time"] = row["creation_time"]
        with self._write() as conn:
            conn.execute(t.webhooks.insert().values(**row))
        return self.get_webhook(row["webhook_id"])

    def get_webhook(self, webhook_id: str) -> Webhook:
        """Return a webhook (never its secret)."""
        with self._read() as conn:
            row = conn.execute(
                select(t.webhooks).where(_wh.webhook_id == _check_id(webhook_id))
            ).first()
        if row is None:
            raise NotFoundError(f"webhook {webhook_id!r} does not exist")
        return _webhook(row)

    def list_webhooks(self) -> list[Webhook]:
        """Return every webhook, oldest first."""
        with self._read() as conn:
            rows = conn.execute(
                select(t.webhooks).order_by(_wh.creation_time, _wh.webhook_id)
            ).all()
        return [_webhook(r) for r in rows]

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
        """Change some of a webhook's settings; None leaves one as it is."""
        values: dict[str, Any] = {"last_updated_time": now_ms()}
        if name is not None:
            values["name"] = _check_name(name)
        if url is not None:
            values["url"] = check_url(url)
        if events is not None:
            values["events"] = orjson.dumps(_check_events(events)).decode()
        if secret is not None:
            values["secret"] = _check_secret(secret)
        if description is not None:
            values["description"] = description
        if status is not None:
            values["status"] = _check_status(status)
        with self._write() as conn:
            result = conn.execute(
                update(t.webhooks).where(_wh.webhook_id == _check_id(webhook_id)).values(**values)
            )
            if not result.rowcount:
                raise NotFoundError(f"webhook {webhook_id!r} does not exist")
        return self.get_webhook(webhook_id)

    def delete_webhook(self, webhook_id: str) -> None:
        """Delete a webhook and its delivery log."""
        with self._write() as conn:
            conn.execute(delete(t.webhook_deliveries).where(_wd.webhook_id == webhook_id))
            result = conn.execute(delete(t.webhooks).where(_wh.webhook_id == _check_id(webhook_id)))
            if not result.rowcount:
                raise NotFoundError(f"webhook {webhook_id!r} does not exist")

    def list_webhook_deliveries(
        self, webhook_id: str, max_results: int = 100
    ) -> list[WebhookDelivery]:
        """Return a webhook's deliveries, newest first."""
        validation.max_results(max_results)
        self.get_webhook(webhook_id)
        with self._read() as conn:
            rows = conn.execute(
                select(t.webhook_deliveries)
                .where(_wd.webhook_id == webhook_id)
                .order_by(_wd.creation_time.desc(), _wd.delivery_id)
                .limit(max_results)
            ).all()
        return [_delivery(r) for r in rows]

    def test_webhook(self, webhook_id: str) -> WebhookDelivery:
        """Send a ``webhook.test`` event now, once, and return the logged delivery."""
        with self._read() as conn:
            row = conn.execute(
                select(t.webhooks).where(_wh.webhook_id == _check_id(webhook_id))
            ).first()
        if row is None:
            raise NotFoundError(f"webhook {webhook_id!r} does not exist")
        job = self._new_delivery(row, WebhookEvent.TEST, {"webhook_id": webhook_id})
        outcome = self.webhooks.attempt(job)
        self._record_attempt(job.delivery_id, outcome, 1, True)
        with self._read() as conn:
            found = conn.execute(
                select(t.webhook_deliveries).where(_wd.delivery_id == job.delivery_id)
            ).one()
        return _delivery(found)

    # -- sending --------------------------------------------------------------------

    def _emit(self, event: str, data: dict[str, Any]) -> None:
        """Queue a delivery of `event` to every active webhook subscribed to it.

        Called after the registry write committed: a failure here is logged, never raised.
        """
        try:
            with self._read() as conn:
                rows = conn.execute(
                    select(t.webhooks).where(_wh.status == WebhookStatus.ACTIVE)
                ).all()
            for row in rows:
                if event in orjson.loads(row.events):
                    self.webhooks.submit(self._new_delivery(row, event, data))
        except Exception:
            logger.exception("tracemark: could not queue webhook deliveries of %s", event)

    def _new_delivery(self, row: Any, event: str, data: dict[str, Any]) -> Job:
        delivery_id = uuid.uuid4().hex
        now = now_ms()
        body = orjson.dumps({"id": delivery_id, "event": event, "timestamp": now, "data": data})
        with self._write() as conn:
            conn.execute(
                t.webhook_deliveries.insert().values(
                    delivery_id=delivery_id,
                    webhook_id=row.webhook_id,
                    event=event,
                    payload=body.decode(),
                    status=DeliveryStatus.PENDING,
                    attempts=0,
                    creation_time=now,
                )
            )
        return Job(0.0, delivery_id, row.url, row.secret, event, body)

    def resume_webhook_deliveries(self, *, idle_ms: int = 60_000) -> int:
        """Queue again the deliveries left PENDING by a process that stopped; return how many.

        A delivery counts as left behind when its last attempt (or its creation) is older
        than `idle_ms`; each is claimed with a compare-and-set on its last attempt time, so
        several server processes starting together resume it once. Deliveries are
        at-least-once: a receiver recognises a repeat by its `X-Tracemark-Delivery` id.

        Args:
            idle_ms: How long a pending delivery must have been untouched.
        """
        cutoff = now_ms() - idle_ms
        touched = func.coalesce(_wd.last_attempt_time, _wd.creation_time)
        with self._read() as conn:
            rows = conn.execute(
                select(
                    _wd.delivery_id,
                    _wd.event,
                    _wd.payload,
                    _wd.attempts,
                    _wd.last_attempt_time,
                    _wh.url,
                    _wh.secret,
                )
                .join(t.webhooks, _wh.webhook_id == _wd.webhook_id)
                .where(
                    _wd.status == DeliveryStatus.PENDING,
                    _wh.status == WebhookStatus.ACTIVE,
                    touched < cutoff,
                )
                .order_by(_wd.creation_time)
            ).all()
        resumed = 0
        for row in rows:
            claim = (
                update(t.webhook_deliveries)
                .where(
                    _wd.delivery_id == row.delivery_id,
                    _wd.status == DeliveryStatus.PENDING,
                    _wd.last_attempt_time.is_(None)
                    if row.last_attempt_time is None
                    else _wd.last_attempt_time == row.last_attempt_time,
                )
                .values(last_attempt_time=now_ms())
            )
            with self._write() as conn:
                if conn.execute(claim).rowcount != 1:
                    continue  # another process took it
            job = Job(0.0, row.delivery_id, row.url, row.secret, row.event, row.payload.encode())
            job.attempts = row.attempts
            self.webhooks.submit(job)
            resumed += 1
        if resumed:
            logger.info("tracemark: resumed %d pending webhook deliveries", resumed)
        return resumed

    def _record_attempt(
        self, delivery_id: str, outcome: Attempt, attempts: int, final: bool
    ) -> None:
        if outcome.ok:
            status = DeliveryStatus.SUCCEEDED
        else:
            status = DeliveryStatus.FAILED if final else DeliveryStatus.PENDING
        with self._write() as conn:
            conn.execute(
                update(t.webhook_deliveries)
                .where(_wd.delivery_id == delivery_id)
                .values(
                    status=status,
                    attempts=attempts,
                    response_status=outcome.response_status,
                    error=outcome.error,
                    last_attempt_time=now_ms(),
                )
            )


def _check_status(status: Any) -> str:
    if status not in WebhookStatus.ALL:
        raise InvalidInputError(
            f"webhook status must be one of {', '.join(WebhookStatus.ALL)}, got {status!r}",
            field="status",
        )
    return status
