"""Keep inline media (base64 images, audio, files) out of span payloads.

A chat message with a screenshot carries megabytes of base64; stored in every span it would
make traces slow to write and to read while telling a reader nothing. Each such string is
replaced by a short reference naming its media type, decoded size and SHA-256, so the same
image is still recognisable across spans and calls.

Only what is sent is rewritten, and only in the copy that goes to the span: the request
the library sends is never touched. Messages without list contents are returned as they
are, so plain text chats pay one type check per message.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

__all__ = ["media_reference", "scrub_media"]

_MIN_INLINE = 64  # shorter base64 strings are kept as they are
# Keys whose string value holds base64 data (OpenAI input_audio/file parts, Anthropic sources).
_BASE64_KEYS = frozenset({"data", "file_data", "image_base64"})


def media_reference(data: str, media_type: str | None = None) -> str:
    """Return a short reference for a base64 payload or `data:` URL.

    Example:
        >>> media_reference("data:image/png;base64,iVBORw0KGgo=")[:40]
        '[image/png base64: 8 bytes, sha256:4c4b6'

    Args:
        data: The base64 text, or a `data:<type>;base64,<text>` URL.
        media_type: The media type when `data` is bare base64.
    """
    payload = data
    if data.startswith("data:"):
        header, _, payload = data.partition(",")
        media_type = header[5:].split(";", 1)[0] or media_type
    try:
        raw = base64.b64decode(payload, validate=False)
    except (binascii.Error, ValueError):
        raw = payload.encode("utf-8", "replace")
    digest = hashlib.sha256(raw).hexdigest()
    return f"[{media_type or 'application/octet-stream'} base64: {len(raw)} bytes, sha256:{digest}]"


def _is_inline(value: Any) -> bool:
    return isinstance(value, str) and len(value) >= _MIN_INLINE


def _scrub(value: Any, media_type: str | None = None) -> Any:
    """Return `value` with inline media replaced, or `value` itself when there is none."""
    if isinstance(value, str):
        if value.startswith("data:") and ";base64," in value[:200]:
            return media_reference(value)
        return value
    if isinstance(value, dict):
        changed: dict[str, Any] | None = None
        local_type = value.get("media_type") or value.get("mime_type") or media_type
        fmt = value.get("format")
        if local_type is None and isinstance(fmt, str):
            local_type = f"audio/{fmt}"
        for key, item in value.items():
            if key in _BASE64_KEYS and _is_inline(item) and not item.startswith("data:"):
                new = media_reference(item, local_type if isinstance(local_type, str) else None)
            elif isinstance(item, (dict, list, str)):
                new = _scrub(item, local_type if isinstance(local_type, str) else None)
            else:
                continue
            if new is not item:
                if changed is None:
                    changed = dict(value)
                changed[key] = new
        return value if changed is None else changed
    if isinstance(value, (list, tuple)):
        items: list[Any] | None = None
        for i, item in enumerate(value):
            new = _scrub(item, media_type)
            if new is not item:
                if items is None:
                    items = list(value)
                items[i] = new
        return value if items is None else items
    return value


def scrub_media(messages: Any) -> Any:
    """Return `messages` with inline base64 media replaced by references (a copy if any).

    Args:
        messages: OpenAI or Anthropic style messages, or a Responses API `input`.
    """
    if isinstance(messages, str):
        return _scrub(messages)
    if not isinstance(messages, (list, tuple)):
        return messages
    for message in messages:
        # Only structured contents can hold media; plain text chats return at once.
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, str) or message.get("type") is not None:
            return _scrub(messages)
    return messages
