"""Trace and span ids, and the clock: the defaults and the protocol tests can replace."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Protocol

__all__ = ["Clock", "IdGenerator", "RandomIdGenerator", "system_clock"]

Clock = Callable[[], int]
"""Returns the current time in integer nanoseconds since the epoch."""

system_clock: Clock = time.time_ns


class IdGenerator(Protocol):
    """Makes OpenTelemetry-shaped ids: 32 lowercase hex chars for traces, 16 for spans."""

    def trace_id(self) -> str:
        """Return a new 32-hex-digit trace id."""
        ...

    def span_id(self) -> str:
        """Return a new 16-hex-digit span id."""
        ...


class RandomIdGenerator:
    """Random non-zero ids from `random.getrandbits`, which is reseeded after `fork`."""

    __slots__ = ()

    def trace_id(self) -> str:
        """Return a new random 32-hex-digit trace id."""
        return (random.getrandbits(128) or 1).to_bytes(16, "big").hex()

    def span_id(self) -> str:
        """Return a new random 16-hex-digit span id."""
        return (random.getrandbits(64) or 1).to_bytes(8, "big").hex()
