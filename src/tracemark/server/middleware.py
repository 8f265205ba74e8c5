"""ASGI middleware for what every request must pass: host check, auth, body size bound.

Each rejection is a JSON body `{"error_code", "message"}` with a 4xx status, like every
other error of the API.
"""

from __future__ import annotations

import hmac
import zlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import unquote

import orjson

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_OPEN_PATHS = ("/health", "/version")
# Only the API needs credentials; the UI's static shell is public and asks for the token.
_PROTECTED_PREFIXES = ("/api/", "/v1/", "/openapi.json", "/docs")
TOKEN_COOKIE = "tracemark_token"


async def send_error(send: Send, status: int, code: str, message: str) -> None:
    """Answer a request with a JSON error."""
    body = orjson.dumps({"error_code": code, "message": message})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


class GuardMiddleware:
    """Check the Host header, the bearer token and the request size before the app runs."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        allowed_hosts: tuple[str, ...],
        auth_token: str | None,
        max_body_bytes: int,
    ) -> None:
        self.app = app
        self.allowed_hosts = {h.lower() for h in allowed_hosts}
        self.auth_token = auth_token
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Reject a request that fails a guard; pass the others on."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.allowed_hosts and "*" not in self.allowed_hosts:
            host = _host_name(_header(scope, b"host") or "")
            if host not in self.allowed_hosts:
                await send_error(
                    send, 400, "INVALID_HOST", f"Host header {host!r} is not an allowed host"
                )
                return
        if (
            self.auth_token
            and _needs_auth(scope["path"])
            and not hmac.compare_digest(_credential(scope).encode(), self.auth_token.encode())
        ):
            await send_error(
                send, 401, "UNAUTHENTICATED", "a valid 'Authorization: Bearer <token>' is needed"
            )
            return
        length = _header(scope, b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                await send_error(send, 400, "INVALID_PARAMETER_VALUE", "bad Content-Length")
                return
            if declared > self.max_body_bytes:
                await send_error(send, 413, "REQUEST_TOO_LARGE", self._too_large())
                return
        receive = self._bounded(receive)
        if (_header(scope, b"content-encoding") or "").lower() == "gzip":
            try:
                body = await self._gunzip(receive)
            except BodyTooLarge as error:
                await send_error(send, 413, "REQUEST_TOO_LARGE", str(error))
                return
            except (zlib.error, EOFError):
                await send_error(
                    send, 400, "INVALID_PARAMETER_VALUE", "request body is not valid gzip"
                )
                return
            scope = dict(scope)
            scope["headers"] = [
                (k, v)
                for k, v in scope["headers"]
                if k not in (b"content-encoding", b"content-length")
            ] + [(b"content-length", str(len(body)).encode())]
            receive = _replay(body)
        await self.app(scope, receive, send)

    async def _gunzip(self, receive: Receive) -> bytes:
        """Read the whole gzip body and inflate it, never past the size bound."""
        chunks = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        body = inflater.decompress(b"".join(chunks), self.max_body_bytes + 1)
        if len(body) > self.max_body_bytes or inflater.unconsumed_tail:
            raise BodyTooLarge(f"{self._too_large()} once decompressed")
        if not inflater.eof:
            raise EOFError("truncated gzip body")
        return body

    def _too_large(self) -> str:
        return f"request body exceeds the limit of {self.max_body_bytes} bytes"

    def _bounded(self, receive: Receive) -> Receive:
        seen = 0
        limit = self.max_body_bytes

        async def wrapped() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(self._too_large())
            return message

        return wrapped


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


class BodyTooLarge(Exception):
    """A streamed body passed the size bound; the app answers 413."""


def _needs_auth(path: str) -> bool:
    return path not in _OPEN_PATHS and path.startswith(_PROTECTED_PREFIXES)


def _credential(scope: Scope) -> str:
    """The bearer token of the request, else the UI's token cookie (SameSite=Strict)."""
    scheme, _, token = (_header(scope, b"authorization") or "").partition(" ")
    if scheme.lower() == "bearer":
        return token.strip()
    for part in (_header(scope, b"cookie") or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == TOKEN_COOKIE:
            return unquote(value)
    return ""


def _host_name(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host
