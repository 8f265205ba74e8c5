"""What one server process needs to know, resolved once at start-up."""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """Configuration of the HTTP app; the CLI builds it from flags and environment."""

    backend_store_uri: str = "sqlite:///tracemark.db"
    artifacts_destination: str | None = None
    auth_token: str | None = None
    allowed_hosts: tuple[str, ...] = ()
    cors_origins: tuple[str, ...] = ()
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    extra: dict[str, str] = field(default_factory=dict)
