"""Masking: a user hook applied to inputs, outputs and attributes before export.

Masking runs on the exporter thread, on decoded data, so it costs the caller nothing.
`redact_secrets` is the built-in mask: `tm.tracing.configure(mask=tm.tracing.redact_secrets)`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson

from tracemark.entities.trace import Span
from tracemark.tracing._errors import logger
from tracemark.tracing._serialize import dumps

__all__ = ["REDACTED", "Mask", "mask_span", "redact_secrets"]

Mask = Callable[[Any], Any]
REDACTED = "[REDACTED]"
MASK_FAILED = "[MASK FAILED]"

_SECRET_KEY = re.compile(
    r"(?i)^(?:.*[_-])?(?:api[_-]?key|apikey|secret|client[_-]?secret|password|passwd|pwd|"
    r"token|access[_-]?token|refresh[_-]?token|auth|authorization|cookie|set[_-]cookie|"
    r"private[_-]?key|session[_-]?key|credentials?)$"
)
_SECRET_TEXT = re.compile(
    "|".join(
        (
            r"\bsk-(?:ant-|proj-)?[A-Za-z0-9_\-]{16,}",  # OpenAI, Anthropic
            r"\bAKIA[0-9A-Z]{16}\b",  # AWS access key id
            r"\bgh[pousr]_[A-Za-z0-9]{30,}\b",  # GitHub
            r"\bgithub_pat_[A-Za-z0-9_]{30,}\b",
            r"\bxox[abprs]-[A-Za-z0-9-]{10,}",  # Slack
            r"\bAIza[0-9A-Za-z_\-]{35}\b",  # Google
            r"\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}",  # JWT
            r"\b(?i:bearer)\s+[A-Za-z0-9._~+/=\-]{8,}",  # Authorization: Bearer ...
        )
    )
)
_EMAIL = re.compile(r"\b[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}\b")


def redact_secrets(value: Any) -> Any:
    """Return `value` with API keys, bearer tokens, JWTs and email addresses redacted.

    Strings are scanned for well-known secret shapes; values under keys such as
    `api_key`, `password`, `token` or `authorization` are replaced whole.

    Example:
        >>> redact_secrets({"api_key": "abc", "q": "mail bob@example.com"})
        {'api_key': '[REDACTED]', 'q': 'mail [REDACTED]'}

    Args:
        value: Decoded JSON data (dicts, lists, strings, numbers).
    """
    if isinstance(value, str):
        return _EMAIL.sub(REDACTED, _SECRET_TEXT.sub(REDACTED, value))
    if isinstance(value, dict):
        return {
            k: (
                REDACTED
                if isinstance(k, str) and _SECRET_KEY.match(k) and _is_scalar(v)
                else redact_secrets(v)
            )
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [redact_secrets(v) for v in value]
    return value


def _is_scalar(value: Any) -> bool:
    return value is not None and not isinstance(value, (dict, list, tuple, bool))


def mask_span(span: Span, mask: Mask) -> None:
    """Apply `mask` to a finished span's inputs, outputs, attributes and event attributes.

    A mask that raises must not leak what it was meant to hide, so the value it failed on
    is replaced by a marker and the failure is logged.
    """
    if span.inputs_json is not None:
        span.inputs_json = dumps(_apply(mask, orjson.loads(span.inputs_json), span))
    if span.outputs_json is not None:
        span.outputs_json = dumps(_apply(mask, orjson.loads(span.outputs_json), span))
    if span.attributes:
        span.attributes = _as_dict(_apply(mask, span.attributes, span))
    for event in span.events:
        if event.attributes:
            event.attributes = _as_dict(_apply(mask, event.attributes, span))


def _apply(mask: Mask, value: Any, span: Span) -> Any:
    try:
        return mask(value)
    except Exception:
        logger.warning(
            "tracemark: the mask function failed on span %r; the value is withheld",
            span.name,
            exc_info=True,
        )
        return MASK_FAILED


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {"masked": value}
