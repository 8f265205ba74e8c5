"""Paged results."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class PagedList(list):  # type: ignore[type-arg]
    """A page of results; `token` fetches the next page (None on the last one)."""

    def __init__(self, items: Sequence[Any], token: str | None) -> None:
        super().__init__(items)
        self.token = token
