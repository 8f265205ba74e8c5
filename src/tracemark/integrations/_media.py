"""Keep inline media (base64 images, audio, files) out of span payloads, as attachments.

A chat message with a screenshot carries megabytes of base64; stored in every span it would
make traces slow to write and to read. Each such string is decoded once and kept with the
trace being recorded as an `Attachment` (its bytes travel with the finished trace to the
exporter, which stores them once per content), and the span payload holds a short reference
in its place: ``tracemark-attachment:sha256:<hex>?type=image/png&size=<bytes>``.

The media goes with the trace of the span given (`span=`, or `keep_media_with` around the
code building a span's inputs), else with the trace of the current span. Outside any trace,
or when the media is over `MAX_ATTACHMENT_BYTES`, the reference only describes the media:
``[image/png base64: <bytes> bytes, sha256:<hex>]``.

Only what is sent is rewritten, and only in the copy that goes to the span: the request
the library sends is never touched. Messages without list contents are returned as they
are, so plain text chats pay one type check per message.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from contextvars import ContextVar, Token
from typing import Any

from tracemark.entities.trace import MAX_ATTACHMENT_BYTES, Attachment
from tracemark.tracing._context import CURRENT_SPAN

__all__ = ["keep_media_with", "media_reference", "scrub_media"]

_MIN_INLINE = 64  # shorter base64 strings are kept as they are
# Keys whose string value holds base64 data (OpenAI input_audio/file parts, Anthropic sources).
_BASE64_KEYS = frozenset({"data", "file_data", "image_base64"})

_MEDIA_SPAN: ContextVar[Any] = ContextVar("tracemark_media_span", default=None)


class _MediaScope:
    __slots__ = ("_span", "_token")

    def __init__(self, span: Any) -> None:
        self._span = span
        self._token: Token[Any] | None = None

    def __enter__(self) -> None:
        self._token = _MEDIA_SPAN.set(self._span)

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _MEDIA_SPAN.reset(self._token)


def keep_media_with(span: Any) -> _MediaScope:
    """Return a context in which media scrubbed without `span=` goes with `span`'s trace.

    Example:
        >>> with keep_media_with(span):
        ...     span.set_inputs(call.inputs())

    Args:
        span: The span whose inputs are being built (it need not be current).
    """
    return _MediaScope(span)


def _keep(raw: bytes, media_type: str | None, span: Any) -> str | None:
    """Keep `raw` with the trace of `span` (or the current one); its reference, or None."""
    if span is None:
        span = _MEDIA_SPAN.get() or CURRENT_SPAN.get()
    buffer = getattr(span, "_buffer", None) if span is not None else None
    if buffer is None or len(raw) > MAX_ATTACHMENT_BYTES:
        return None
    attachment = Attachment.from_bytes(raw, media_type)
    return attachment.reference if buffer.add_attachment(attachment) else None


def _b64decode(text: str) -> bytes | None:
    """Decode strict base64 (line breaks allowed); None when `text` is not base64."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        pass
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        return None


def _describe(raw: bytes, media_type: str | None) -> str:
    digest = hashlib.sha256(raw).hexdigest()
    return f"[{media_type or 'application/octet-stream'} base64: {len(raw)} bytes, sha256:{digest}]"


def media_reference(data: str, media_type: str | None = None, *, span: Any = None) -> str:
    """Return the reference replacing a base64 payload or `data:` URL, keeping its bytes.

    Example:
        >>> media_reference("data:image/png;base64,iVBORw0KGgo=")[:40]
        '[image/png base64: 8 bytes, sha256:4c4b6'

    Args:
        data: The base64 text, or a `data:<type>;base64,<text>` URL.
        media_type: The media type when `data` is bare base64.
        span: The span whose trace keeps the bytes; by default the current span's.
    """
    payload = data
    if data.startswith("data:"):
        header, _, payload = data.partition(",")
        media_type = header[5:].split(";", 1)[0] or media_type
    raw = _b64decode(payload)
    if raw is None:
        return _describe(payload.encode("utf-8", "replace"), media_type)
    return _keep(raw, media_type, span) or _describe(raw, media_type)


def _is_inline(value: Any) -> bool:
    return isinstance(value, str) and len(value) >= _MIN_INLINE


def _scrub(value: Any, media_type: str | None, span: Any) -> Any:
    """Return `value` with inline media replaced, or `value` itself when there is none."""
    if isinstance(value, str):
        if value.startswith("data:") and ";base64," in value[:200]:
            return media_reference(value, span=span)
        return value
    if isinstance(value, dict):
        changed: dict[str, Any] | None = None
        local_type = value.get("media_type") or value.get("mime_type") or media_type
        fmt = value.get("format")
        if local_type is None and isinstance(fmt, str):
            local_type = f"audio/{fmt}"
        for key, item in value.items():
            kind = local_type if isinstance(local_type, str) else None
            if key in _BASE64_KEYS and _is_inline(item) and not item.startswith("data:"):
                raw = _b64decode(item)
                if raw is None:  # text that is not base64 is no media
                    continue
                new = _keep(raw, kind, span) or _describe(raw, kind)
            elif isinstance(item, (dict, list, str)):
                new = _scrub(item, kind, span)
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
            new = _scrub(item, media_type, span)
            if new is not item:
                if items is None:
                    items = list(value)
                items[i] = new
        return value if items is None else items
    return value


def scrub_media(messages: Any, *, span: Any = None) -> Any:
    """Return `messages` with inline base64 media replaced by references (a copy if any).

    Args:
        messages: OpenAI or Anthropic style messages, or a Responses API `input`.
        span: The span whose trace keeps the media; by default the one `keep_media_with`
            names, else the current span.
    """
    if isinstance(messages, str):
        return _scrub(messages, None, span)
    if not isinstance(messages, (list, tuple)):
        return messages
    for message in messages:
        # Only structured contents can hold media; plain text chats return at once.
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, str) or message.get("type") is not None:
            return _scrub(messages, None, span)
    return messages
