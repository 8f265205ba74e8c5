"""A token bucket shared by every thread of a scoring worker."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from tracemark.exceptions import InvalidInputError

__all__ = ["RateLimiter"]


class RateLimiter:
    """Let at most `rate` calls per second through on average, `burst` of them at once.

    Example:
        >>> limiter = RateLimiter(5.0)
        >>> limiter.acquire()  # waits when the bucket is empty
        True

    Args:
        rate: Calls per second, more than 0.
        burst: Calls allowed back to back after a quiet spell (1 by default, so calls are
            evenly spaced and any span of `t` seconds holds at most `1 + rate * t` calls).
        clock: Monotonic seconds (tests pass a fake one).
    """

    def __init__(
        self,
        rate: float,
        *,
        burst: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0:
            raise InvalidInputError(
                f"rate limit must be a positive number of calls per second, got {rate!r}",
                field="rate_limit",
            )
        if not burst >= 1:
            raise InvalidInputError("burst must be at least 1", field="burst")
        self.rate = float(rate)
        self.burst = float(burst)
        self._clock = clock
        self._tokens = self.burst
        self._last = clock()
        self._lock = threading.Lock()

    def try_acquire(self) -> float:
        """Take a token if one is there and return 0; else return the seconds to wait."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return 0.0
            return (1.0 - self._tokens) / self.rate

    def acquire(self, stop: threading.Event | None = None) -> bool:
        """Wait for a token; False if `stop` was set while waiting."""
        while True:
            wait = self.try_acquire()
            if wait <= 0.0:
                return True
            if stop is None:
                time.sleep(wait)
            elif stop.wait(wait):
                return False
