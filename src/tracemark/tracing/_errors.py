"""The one place where tracing's own failures are caught, so they never reach user code.

In production an internal error is logged and tracing carries on; under tests
(`TRACEMARK_TESTING=1`) it is re-raised so bugs cannot hide behind the log.
"""

from __future__ import annotations

import logging
import os
from types import TracebackType

__all__ = ["handle_internal_errors", "internal_errors_raise", "log_internal_error", "logger"]

logger = logging.getLogger("tracemark.tracing")


def internal_errors_raise() -> bool:
    """Return True when internal errors should propagate (the test suite sets this)."""
    return os.environ.get("TRACEMARK_TESTING", "").lower() in ("1", "true", "yes", "on")


def log_internal_error() -> None:
    """Log the exception being handled, or re-raise it under tests.

    For hot paths, where a bare `try`/`except Exception: log_internal_error()` costs
    nothing until something fails; elsewhere use `with handle_internal_errors:`.
    """
    if internal_errors_raise():
        raise  # re-raises the exception the caller is handling
    logger.warning("tracemark: internal tracing error (ignored)", exc_info=True)


class _InternalErrorHandler:
    """Context manager suppressing and logging `Exception`s raised by tracing code.

    Stateless, so one shared instance serves every call site::

        with handle_internal_errors:
            return self._start(...)
        return NON_RECORDING  # reached only after a suppressed error
    """

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if exc_type is None or not issubclass(exc_type, Exception):
            return False
        if internal_errors_raise():
            return False
        logger.warning("tracemark: internal tracing error (ignored)", exc_info=(exc_type, exc, tb))
        return True


handle_internal_errors = _InternalErrorHandler()
