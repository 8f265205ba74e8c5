"""Checks on registry input (names, aliases, versions, templates), naming the field at fault.

The SQL store applies them, so SQLite, PostgreSQL and the server refuse the same input
with the same message.
"""

from __future__ import annotations

import re
from typing import Any

from tracemark.exceptions import InvalidInputError

MAX_NAME_LENGTH = 256
LATEST = "latest"

# Names and aliases appear in URIs (prompts:/name/3, models:/name@alias): no '/' or '@'.
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
_ALIAS = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


def name(value: Any, kind: str) -> str:
    """Check a prompt or registered model name."""
    if not isinstance(value, str) or not value:
        raise InvalidInputError(
            f"{kind} name must be a non-empty string, got {value!r}", field="name"
        )
    if len(value) > MAX_NAME_LENGTH or not _NAME.match(value):
        raise InvalidInputError(
            f"invalid {kind} name {value[:80]!r}: use at most {MAX_NAME_LENGTH} letters, "
            "digits, '_', '-' or '.', starting with a letter, digit or '_'",
            field="name",
        )
    return value


def alias(value: Any) -> str:
    """Check an alias: a word that does not start with a digit; `latest` is reserved."""
    if not isinstance(value, str) or len(value) > MAX_NAME_LENGTH or not _ALIAS.match(value):
        raise InvalidInputError(
            f"invalid alias {value!r}: use letters, digits, '_' or '-', starting with a letter "
            "or '_'",
            field="alias",
        )
    if value.lower() == LATEST:
        raise InvalidInputError(
            "'latest' is reserved: it always means the newest version", field="alias"
        )
    return value


def version(value: Any) -> int:
    """Check a version number: a positive integer (or a string of digits)."""
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**31:
        raise InvalidInputError(
            f"version must be a positive integer, got {value!r}", field="version"
        )
    return value


def template(value: Any) -> str | list[dict[str, Any]]:
    """Check a prompt template: non-empty text, or a non-empty list of chat messages."""
    if isinstance(value, str):
        if not value:
            raise InvalidInputError("prompt template must not be empty", field="template")
        return value
    if not isinstance(value, (list, tuple)) or not value:
        raise InvalidInputError(
            "prompt template must be a string or a non-empty list of chat messages "
            f"({{'role': ..., 'content': ...}}), got {type(value).__name__}",
            field="template",
        )
    messages = []
    for i, message in enumerate(value):
        if (
            not isinstance(message, dict)
            or not isinstance(message.get("role"), str)
            or not message["role"]
            or "content" not in message
        ):
            raise InvalidInputError(
                f"template[{i}] must be a message with a 'role' and a 'content'",
                field=f"template[{i}]",
            )
        messages.append(dict(message))
    return messages


def page_offset(token: str | None) -> int:
    """Decode a page token of a registry search (an offset)."""
    if not token:
        return 0
    if not token.isdigit():
        raise InvalidInputError(f"invalid page token {token!r}", field="page_token")
    return int(token)
