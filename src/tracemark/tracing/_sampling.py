"""Head sampling: whether a new trace is recorded, decided once at its root span."""

from __future__ import annotations

import random

__all__ = ["should_sample"]


def should_sample(ratio: float) -> bool:
    """Return True for a fraction `ratio` of calls (always at 1.0, never at 0.0).

    Args:
        ratio: The fraction of traces to keep, between 0 and 1.
    """
    if ratio >= 1.0:
        return True
    if ratio <= 0.0:
        return False
    return random.random() < ratio
