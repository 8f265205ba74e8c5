"""Page tokens of the SQL store's searches: opaque to callers, a row offset inside.

Runs, traces and sessions page the same way: a search fetches one row more than the page
holds, and only when that row exists does it return the token of the next page.
"""

from __future__ import annotations

import base64
import binascii
import json

from tracemark.exceptions import InvalidInputError

__all__ = ["decode_page_token", "encode_page_token"]


def encode_page_token(offset: int) -> str:
    """Return the opaque token of the page that starts at `offset`.

    Example::

        decode_page_token(encode_page_token(100))  # 100

    Args:
        offset: How many rows earlier pages held.
    """
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_page_token(page_token: str | None) -> int:
    """Return the row offset a page token stands for; no token means the first page.

    Example::

        decode_page_token(None)  # 0

    Args:
        page_token: A token from `encode_page_token`, or None.

    Raises:
        InvalidInputError: The token was not made by `encode_page_token`.
    """
    if page_token is None or page_token == "":
        return 0
    try:
        payload = json.loads(base64.urlsafe_b64decode(page_token.encode("ascii")))
        offset = payload["offset"]
    except (AttributeError, binascii.Error, UnicodeError, ValueError, KeyError, TypeError):
        offset = None
    if type(offset) is not int or offset < 0:
        raise InvalidInputError(
            f"page_token {page_token!r} is malformed; pass the token the previous page returned",
            field="page_token",
        )
    return offset
