"""Checks on what callers send to a store, with errors that name the field at fault.

Every backend validates with these functions, so SQLite, PostgreSQL and the server
reject the same inputs with the same messages.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Mapping, Sequence
from typing import Any

from tracemark.entities import Metric, Param, RunStatus, RunTag
from tracemark.exceptions import InvalidInputError

MAX_KEY_LENGTH = 250
MAX_PARAM_VALUE_LENGTH = 8000
MAX_TAG_VALUE_LENGTH = 65_000
MAX_EXPERIMENT_NAME_LENGTH = 256
MAX_RESULTS_LIMIT = 50_000

_KEY = re.compile(r"^[\w\-. /:]+$")
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")


def key(value: Any, kind: str) -> str:
    """Check a param, metric or tag key: non-empty, at most 250 chars, no path tricks."""
    if not isinstance(value, str) or not value:
        raise InvalidInputError(f"{kind} key must be a non-empty string, got {value!r}", field=kind)
    if len(value) > MAX_KEY_LENGTH:
        raise InvalidInputError(
            f"{kind} key {value[:40]!r}... is {len(value)} characters; the limit is "
            f"{MAX_KEY_LENGTH}",
            field=kind,
        )
    if not _KEY.match(value) or value.startswith("/") or ".." in value.split("/"):
        raise InvalidInputError(
            f"invalid {kind} key {value!r}: use letters, digits, '_', '-', '.', ' ', ':' or '/'",
            field=kind,
        )
    return value


def run_id(value: Any) -> str:
    """Check that a run id is 32 lowercase hex digits."""
    if not isinstance(value, str) or not _RUN_ID.match(value):
        raise InvalidInputError(
            f"run id must be 32 lowercase hex characters, got {value!r}", field="run_id"
        )
    return value


def experiment_name(value: Any) -> str:
    """Check an experiment name: a non-empty string of at most 256 characters."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(
            f"experiment name must be a non-empty string, got {value!r}", field="name"
        )
    if len(value) > MAX_EXPERIMENT_NAME_LENGTH:
        raise InvalidInputError(
            f"experiment name is {len(value)} characters; the limit is "
            f"{MAX_EXPERIMENT_NAME_LENGTH}",
            field="name",
        )
    return value


def run_name(value: Any) -> str:
    """Check a run name: a string of at most 250 characters."""
    if not isinstance(value, str) or len(value) > MAX_KEY_LENGTH:
        raise InvalidInputError(
            f"run name must be a string of at most {MAX_KEY_LENGTH} characters, got {value!r}",
            field="run_name",
        )
    return value


def run_status(value: Any) -> str:
    """Check a run status against RUNNING, FINISHED, FAILED, KILLED."""
    if value not in RunStatus.ALL:
        raise InvalidInputError(
            f"run status must be one of {', '.join(RunStatus.ALL)}, got {value!r}",
            field="status",
        )
    return value


def view_type(value: Any) -> str:
    """Check a search view type."""
    from tracemark.store.base import ViewType

    if value not in ViewType.VALUES:
        raise InvalidInputError(
            f"view_type must be one of {', '.join(ViewType.VALUES)}, got {value!r}",
            field="view_type",
        )
    return value


def max_results(value: Any) -> int:
    """Check a page size: a positive integer no larger than 50,000."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_RESULTS_LIMIT:
        raise InvalidInputError(
            f"max_results must be an integer from 1 to {MAX_RESULTS_LIMIT}, got {value!r}",
            field="max_results",
        )
    return value


def tags(items: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """Check tag keys and values; values become strings."""
    out = []
    for k, v in (items or {}).items():
        value = str(v)
        if len(value) > MAX_TAG_VALUE_LENGTH:
            raise InvalidInputError(
                f"tag {k!r} value is {len(value)} characters; the limit is {MAX_TAG_VALUE_LENGTH}",
                field="tags",
            )
        out.append((key(k, "tag"), value))
    return out


def metric_row(run: str, metric: Metric) -> dict[str, Any]:
    """Check one metric and return its row (NaN kept as a flag)."""
    key(metric.key, "metric")
    value = metric.value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidInputError(
            f"metric {metric.key!r} value must be a number, got {value!r}", field="metric"
        )
    value = float(value)
    for name in ("timestamp", "step"):
        number = getattr(metric, name)
        if isinstance(number, bool) or not isinstance(number, numbers.Integral):
            raise InvalidInputError(
                f"metric {metric.key!r} {name} must be an integer, got {number!r}", field=name
            )
    is_nan = math.isnan(value)
    return {
        "run_id": run,
        "key": metric.key,
        "value": 0.0 if is_nan else value,
        "is_nan": is_nan,
        "timestamp": int(metric.timestamp),
        "step": int(metric.step),
    }


def param_rows(run: str, params: Sequence[Param]) -> list[dict[str, Any]]:
    """Check params; the same key twice in one batch must carry the same value."""
    rows: dict[str, dict[str, Any]] = {}
    for param in params:
        key(param.key, "param")
        value = str(param.value)
        if len(value) > MAX_PARAM_VALUE_LENGTH:
            raise InvalidInputError(
                f"param {param.key!r} value is {len(value)} characters; the limit is "
                f"{MAX_PARAM_VALUE_LENGTH}",
                field="param",
            )
        seen = rows.get(param.key)
        if seen is not None and seen["value"] != value:
            raise InvalidInputError(
                f"param {param.key!r} appears twice in one batch with values "
                f"{seen['value']!r} and {value!r}",
                field="param",
            )
        rows[param.key] = {"run_id": run, "key": param.key, "value": value}
    return list(rows.values())


def tag_row(run: str, tag: RunTag) -> dict[str, Any]:
    """Check one run tag and return its row."""
    ((k, v),) = tags({tag.key: tag.value})
    return {"run_id": run, "key": k, "value": v}
