"""Webhook deliveries: URL checks, HMAC-SHA256 signatures, and a background sender.

Each delivery is a JSON POST with these headers::

    X-Tracemark-Event: model_version.created
    X-Tracemark-Delivery: <delivery id>
    X-Tracemark-Timestamp: <unix seconds of this attempt>
    X-Tracemark-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" keyed by the secret>

A receiver recomputes the signature over the timestamp header, a dot and the raw body,
compares in constant time, and rejects timestamps older than a few minutes (replays).
Failed attempts (network errors, 408, 429, 5xx) are retried with exponential back-off on
one background thread per store; every attempt is written to the delivery log.
"""

from __future__ import annotations

import atexit
import hashlib
import heapq
import hmac
import ipaddress
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from tracemark import config
from tracemark._version import __version__
from tracemark.exceptions import InvalidInputError

logger = logging.getLogger("tracemark.webhooks")

SIGNATURE_HEADER = "X-Tracemark-Signature"
TIMESTAMP_HEADER = "X-Tracemark-Timestamp"
EVENT_HEADER = "X-Tracemark-Event"
DELIVERY_HEADER = "X-Tracemark-Delivery"
REQUEST_TIMEOUT_S = 10.0
_RETRY_STATUS = {408, 429}


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Return the signature header value for a body sent at `timestamp` (unix seconds)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify_signature(
    secret: str,
    body: bytes,
    timestamp: str,
    signature: str,
    *,
    tolerance_s: float = 300.0,
    now: float | None = None,
) -> bool:
    """Tell whether a delivery is authentic and fresh (for receivers).

    Example:
        ok = tm.verify_webhook_signature(secret, request.body, request.headers[
            "X-Tracemark-Timestamp"], request.headers["X-Tracemark-Signature"])

    Args:
        secret: the secret the webhook was created with.
        body: the raw request body, byte for byte.
        timestamp: the ``X-Tracemark-Timestamp`` header.
        signature: the ``X-Tracemark-Signature`` header.
        tolerance_s: how old a delivery may be; older ones are refused as replays.
        now: the current unix time (tests).
    """
    try:
        sent = int(timestamp)
    except (TypeError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - sent) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature or "")


def check_url(url: Any, *, allow_private: bool | None = None) -> str:
    """Check a webhook URL: http(s), a host, and a public address unless private ones are allowed.

    Raises:
        InvalidInputError: naming what is wrong with the URL.
    """
    if not isinstance(url, str) or len(url) > 2048:
        raise InvalidInputError(
            "webhook url must be a string of at most 2048 characters", field="url"
        )
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise InvalidInputError(
            f"webhook url must start with http:// or https://, got {url[:80]!r}", field="url"
        )
    if not parts.hostname or parts.username or parts.password:
        raise InvalidInputError(
            f"webhook url {url[:80]!r} needs a host and no user:password@", field="url"
        )
    allowed = config.WEBHOOK_ALLOW_PRIVATE_URLS.get(allow_private)
    if not allowed:
        for address in _addresses(parts.hostname, parts.port):
            if _is_private(address):
                raise InvalidInputError(
                    f"webhook url {url[:80]!r} points at the non-public address {address}; "
                    "set TRACEMARK_WEBHOOK_ALLOW_PRIVATE_URLS=true where the server runs to "
                    "allow loopback and private networks",
                    field="url",
                )
    return url


def _addresses(host: str, port: int | None) -> list[str]:
    try:
        return [ipaddress.ip_address(host).compressed]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port or 443, proto=socket.IPPROTO_TCP)
    except OSError as error:
        raise InvalidInputError(
            f"cannot resolve webhook host {host!r}: {error}", field="url"
        ) from None
    return sorted({str(info[4][0]) for info in infos})


def _is_private(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


@dataclass(order=True)
class Job:
    """One delivery waiting for its next attempt."""

    due: float
    delivery_id: str = field(compare=False)
    url: str = field(compare=False)
    secret: str | None = field(compare=False)
    event: str = field(compare=False)
    body: bytes = field(compare=False)
    attempts: int = field(default=0, compare=False)


@dataclass(slots=True)
class Attempt:
    """The outcome of one attempt."""

    ok: bool
    retry: bool
    response_status: int | None = None
    error: str | None = None


RecordAttempt = Callable[[str, Attempt, int, bool], None]
"""Writes an attempt to the delivery log: (delivery id, outcome, attempts so far, final)."""


class WebhookSender:
    """Sends deliveries on one background thread, retrying failures with back-off."""

    def __init__(self, record: RecordAttempt) -> None:
        self._record = record
        self._jobs: list[Job] = []
        self._busy = 0
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._http: Any = None

    def _client(self) -> Any:
        if self._http is None:
            import httpx

            self._http = httpx.Client(timeout=REQUEST_TIMEOUT_S, follow_redirects=False)
        return self._http

    def submit(self, job: Job) -> None:
        """Queue a delivery for its first attempt now."""
        with self._cond:
            heapq.heappush(self._jobs, job)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="tracemark-webhooks", daemon=True
                )
                self._thread.start()
                atexit.register(self.flush, 10.0)
            self._cond.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued delivery succeeded or failed for good; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._jobs or self._busy:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def attempt(self, job: Job) -> Attempt:
        """Make one attempt at a delivery (no retry)."""
        try:
            check_url(job.url)
            timestamp = str(int(time.time()))
            headers = {
                "content-type": "application/json",
                "user-agent": f"tracemark-webhooks/{__version__}",
                EVENT_HEADER: job.event,
                DELIVERY_HEADER: job.delivery_id,
                TIMESTAMP_HEADER: timestamp,
            }
            if job.secret:
                headers[SIGNATURE_HEADER] = sign(job.secret, timestamp, job.body)
            response = self._client().post(job.url, content=job.body, headers=headers)
        except InvalidInputError as error:
            return Attempt(ok=False, retry=False, error=error.message)
        except Exception as error:  # any network failure is retried
            return Attempt(ok=False, retry=True, error=f"{type(error).__name__}: {error}")
        status = response.status_code
        if 200 <= status < 300:
            return Attempt(ok=True, retry=False, response_status=status)
        return Attempt(
            ok=False,
            retry=status >= 500 or status in _RETRY_STATUS,
            response_status=status,
            error=f"HTTP {status}: {response.text[:200]}",
        )

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._jobs or self._jobs[0].due > time.monotonic():
                    wait = self._jobs[0].due - time.monotonic() if self._jobs else None
                    self._cond.wait(wait)
                job = heapq.heappop(self._jobs)
                self._busy += 1
            try:
                self._step(job)
            except Exception:
                logger.exception("tracemark: webhook delivery %s failed", job.delivery_id)
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()

    def _step(self, job: Job) -> None:
        outcome = self.attempt(job)
        job.attempts += 1
        final = outcome.ok or not outcome.retry or job.attempts >= config.WEBHOOK_MAX_ATTEMPTS.get()
        self._record(job.delivery_id, outcome, job.attempts, final)
        if not final:
            delay = config.WEBHOOK_RETRY_BACKOFF_S.get() * 2 ** (job.attempts - 1)
            job.due = time.monotonic() + delay
            with self._cond:
                heapq.heappush(self._jobs, job)
                self._cond.notify_all()

    def close(self) -> None:
        """Close the HTTP connection pool (queued deliveries are not waited for)."""
        if self._http is not None:
            self._http.close()
