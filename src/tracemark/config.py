"""Every tracemark setting, defined once: name, environment variable, type, default.

Resolution order is always: explicit argument, then environment variable, then default,
and `resolve` is the one function that applies it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from tracemark.exceptions import InvalidInputError

T = TypeVar("T")

__all__ = ["SETTINGS", "Setting", "resolve"]


def _parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {raw!r}")


def _parse_ratio(raw: str) -> float:
    value = float(raw)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"expected a number between 0 and 1, got {raw!r}")
    return value


def _parse_positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError(f"expected a positive integer, got {raw!r}")
    return value


def _parse_positive_float(raw: str) -> float:
    value = float(raw)
    if not value > 0:
        raise ValueError(f"expected a positive number, got {raw!r}")
    return value


def _parse_non_negative_int(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError(f"expected zero or a positive integer, got {raw!r}")
    return value


@dataclass(frozen=True, slots=True)
class Setting(Generic[T]):
    """One configuration value: where it comes from and how it is read."""

    env: str
    default: T
    parse: Callable[[str], T]
    doc: str

    def get(self, explicit: T | None = None) -> T:
        """Return the explicit value, else the parsed environment variable, else the default."""
        if explicit is not None:
            return explicit
        raw = os.environ.get(self.env)
        if raw is None or raw == "":
            return self.default
        try:
            return self.parse(raw)
        except ValueError as exc:
            raise InvalidInputError(
                f"environment variable {self.env}: {exc}", field=self.env
            ) from exc


TRACKING_URI: Setting[str] = Setting(
    "TRACEMARK_TRACKING_URI",
    "sqlite:///tracemark.db",
    str,
    "Where runs and traces are stored: sqlite:///path.db, postgresql://..., http://host:port.",
)
ARTIFACT_ROOT: Setting[str | None] = Setting(
    "TRACEMARK_ARTIFACT_ROOT",
    None,
    str,
    "Root folder for artifacts; default: `tracemark-artifacts` beside the SQLite file "
    "(or in the working directory for other stores).",
)
EXPERIMENT_NAME: Setting[str | None] = Setting(
    "TRACEMARK_EXPERIMENT_NAME",
    None,
    str,
    "Experiment used when none is set in code; created if missing.",
)
EXPERIMENT_ID: Setting[str | None] = Setting(
    "TRACEMARK_EXPERIMENT_ID", None, str, "Experiment id used when none is set in code."
)
TRACING_ENABLED: Setting[bool] = Setting(
    "TRACEMARK_TRACING_ENABLED", True, _parse_bool, "Set to false to turn tracing off entirely."
)
TRACE_SAMPLING_RATIO: Setting[float] = Setting(
    "TRACEMARK_TRACE_SAMPLING_RATIO",
    1.0,
    _parse_ratio,
    "Fraction of traces kept, between 0 and 1; decided once per trace at its root span.",
)
TRACE_QUEUE_SIZE: Setting[int] = Setting(
    "TRACEMARK_TRACE_QUEUE_SIZE",
    10_000,
    _parse_positive_int,
    "Finished traces waiting for export at most; beyond it new traces are dropped and counted.",
)
TRACE_BATCH_SIZE: Setting[int] = Setting(
    "TRACEMARK_TRACE_BATCH_SIZE",
    500,
    _parse_positive_int,
    "Traces written in one transaction by the background exporter at most.",
)
TRACE_EXPORT_RETRY_S: Setting[float] = Setting(
    "TRACEMARK_TRACE_EXPORT_RETRY_S",
    300.0,
    _parse_positive_float,
    "Seconds the exporter keeps retrying a batch while the store is unreachable or busy "
    "(new traces wait in the queue meanwhile); after that the batch counts as failed.",
)
ASYNC_EXPORT: Setting[bool] = Setting(
    "TRACEMARK_ASYNC_EXPORT",
    True,
    _parse_bool,
    "Export traces on a background thread; false writes each trace before the root span returns.",
)
WEBHOOK_ALLOW_PRIVATE_URLS: Setting[bool] = Setting(
    "TRACEMARK_WEBHOOK_ALLOW_PRIVATE_URLS",
    False,
    _parse_bool,
    "Let webhooks target loopback, private and link-local addresses (refused by default).",
)
WEBHOOK_MAX_ATTEMPTS: Setting[int] = Setting(
    "TRACEMARK_WEBHOOK_MAX_ATTEMPTS",
    5,
    _parse_positive_int,
    "Attempts per webhook delivery before it is logged as FAILED.",
)
WEBHOOK_RETRY_BACKOFF_S: Setting[float] = Setting(
    "TRACEMARK_WEBHOOK_RETRY_BACKOFF_S",
    1.0,
    _parse_positive_float,
    "Seconds before the first retry of a failed delivery; doubled for each later one.",
)

JUDGE_MODEL: Setting[str] = Setting(
    "TRACEMARK_JUDGE_MODEL",
    "openai:/gpt-4o-mini",
    str,
    "The model LLM judges use when none is given: `openai:/<model>` or `anthropic:/<model>`.",
)
JUDGE_TIMEOUT_S: Setting[float] = Setting(
    "TRACEMARK_JUDGE_TIMEOUT_S",
    60.0,
    _parse_positive_float,
    "Seconds one judge model request may take before it is abandoned (and retried).",
)
JUDGE_MAX_RETRIES: Setting[int] = Setting(
    "TRACEMARK_JUDGE_MAX_RETRIES",
    4,
    _parse_non_negative_int,
    "Retries of a judge model request after a rate limit, server error, timeout or "
    "connection error.",
)
JUDGE_MAX_CONCURRENCY: Setting[int] = Setting(
    "TRACEMARK_JUDGE_MAX_CONCURRENCY",
    16,
    _parse_positive_int,
    "Judge model requests in flight at once per model and endpoint.",
)


def _non_negative_float(raw: str) -> float:
    value = float(raw)
    if not value >= 0:
        raise ValueError(f"expected a number of at least 0, got {raw!r}")
    return value


SCORE_INTERVAL_S: Setting[float] = Setting(
    "TRACEMARK_SCORE_INTERVAL_S",
    5.0,
    _non_negative_float,
    "Seconds a scoring worker waits between passes over the registered scorers.",
)
SCORE_RATE_LIMIT: Setting[float | None] = Setting(
    "TRACEMARK_SCORE_RATE_LIMIT",
    None,
    float,
    "Scorer runs per second a scoring worker starts at most, over all scorers; unset: no limit.",
)
SERVER_SCORE: Setting[bool] = Setting(
    "TRACEMARK_SERVER_SCORE",
    False,
    _parse_bool,
    "Run the scoring worker in the background of each server process (`server --score`).",
)
SCORE_SETTLE_S: Setting[float] = Setting(
    "TRACEMARK_SCORE_SETTLE_S",
    60.0,
    _non_negative_float,
    "A trace is scored once it started this many seconds ago (it may still be arriving).",
)


SETTINGS: dict[str, Setting[Any]] = {
    s.env: s
    for s in (
        TRACKING_URI,
        ARTIFACT_ROOT,
        EXPERIMENT_NAME,
        EXPERIMENT_ID,
        TRACING_ENABLED,
        TRACE_SAMPLING_RATIO,
        TRACE_QUEUE_SIZE,
        TRACE_BATCH_SIZE,
        TRACE_EXPORT_RETRY_S,
        ASYNC_EXPORT,
        WEBHOOK_ALLOW_PRIVATE_URLS,
        WEBHOOK_MAX_ATTEMPTS,
        WEBHOOK_RETRY_BACKOFF_S,
        JUDGE_MODEL,
        JUDGE_TIMEOUT_S,
        JUDGE_MAX_RETRIES,
        JUDGE_MAX_CONCURRENCY,
        SCORE_INTERVAL_S,
        SCORE_RATE_LIMIT,
        SCORE_SETTLE_S,
        SERVER_SCORE,
    )
}


def resolve(setting: Setting[T], explicit: T | None = None) -> T:
    """Resolve one setting: argument, then environment, then default."""
    return setting.get(explicit)
