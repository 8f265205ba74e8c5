"""Errors raised by tracemark.

Every error derives from `TracemarkError` and carries an `error_code` and the HTTP
status the server answers with when it reaches a client::

    TracemarkError (500, INTERNAL_ERROR)
    ├── InvalidInputError (400, INVALID_PARAMETER_VALUE)  also a ValueError
    │   ├── InvalidFilterError (400, INVALID_FILTER)
    │   └── InvalidArtifactPathError (400, INVALID_ARTIFACT_PATH)
    ├── NotFoundError (404, RESOURCE_DOES_NOT_EXIST)
    ├── AlreadyExistsError (409, RESOURCE_ALREADY_EXISTS)
    ├── ConflictError (409, CONFLICT)
    ├── UnauthorizedError (401, UNAUTHENTICATED)
    └── StoreError (500, STORE_ERROR)
        └── SchemaVersionError (500, SCHEMA_VERSION_MISMATCH)
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AlreadyExistsError",
    "ConflictError",
    "InvalidArtifactPathError",
    "InvalidFilterError",
    "InvalidInputError",
    "NotFoundError",
    "SchemaVersionError",
    "StoreError",
    "StoreUnavailableError",
    "TracemarkError",
    "UnauthorizedError",
]


class TracemarkError(Exception):
    """Root of every error tracemark raises on purpose."""

    error_code = "INTERNAL_ERROR"
    http_status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON body the server sends for this error."""
        return {"error_code": self.error_code, "message": self.message}


class InvalidInputError(TracemarkError, ValueError):
    """An argument, payload or path is malformed or out of range."""

    error_code = "INVALID_PARAMETER_VALUE"
    http_status = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON body, naming the offending field when known."""
        body = super().to_dict()
        if self.field:
            body["field"] = self.field
        return body


class InvalidFilterError(InvalidInputError):
    """A filter string does not parse; `position` points at the offending token."""

    error_code = "INVALID_FILTER"

    def __init__(
        self,
        message: str,
        *,
        filter_string: str = "",
        position: int = 0,
        field: str = "filter_string",
    ) -> None:
        if filter_string:
            pointer = " " * position + "^"
            message = f"{message}\n  {filter_string}\n  {pointer}"
        super().__init__(message, field=field)
        self.filter_string = filter_string
        self.position = position

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON body, with the position of the offending token."""
        body = super().to_dict()
        body["position"] = self.position
        return body


class InvalidArtifactPathError(InvalidInputError):
    """An artifact path would escape its root (``..``, absolute path, outward symlink)."""

    error_code = "INVALID_ARTIFACT_PATH"


class NotFoundError(TracemarkError):
    """The named experiment, run, trace or artifact does not exist."""

    error_code = "RESOURCE_DOES_NOT_EXIST"
    http_status = 404


class AlreadyExistsError(TracemarkError):
    """An object with that unique name already exists."""

    error_code = "RESOURCE_ALREADY_EXISTS"
    http_status = 409


class ConflictError(TracemarkError):
    """The request contradicts stored state (a param logged twice with different values)."""

    error_code = "CONFLICT"
    http_status = 409


class UnauthorizedError(TracemarkError):
    """Credentials are missing or wrong."""

    error_code = "UNAUTHENTICATED"
    http_status = 401


class StoreError(TracemarkError):
    """The backing store failed in a way the caller cannot fix by changing the input."""

    error_code = "STORE_ERROR"


class StoreUnavailableError(StoreError):
    """The store cannot be reached, or asked to be retried later: the same call may work soon.

    The trace exporter holds its batch and tries again when it gets this error.
    """

    error_code = "TEMPORARILY_UNAVAILABLE"
    http_status = 503


class SchemaVersionError(StoreError):
    """The database schema is older or newer than this version of tracemark expects."""

    error_code = "SCHEMA_VERSION_MISMATCH"
