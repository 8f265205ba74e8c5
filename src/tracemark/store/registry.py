"""Find the store for a tracking URI through the `tracemark.stores` entry points.

The built-in stores register there too (see pyproject.toml), so a plugin store is
looked up exactly like SQLite or PostgreSQL: by the URI's scheme.
"""

from __future__ import annotations

import threading
from typing import Any

from tracemark.exceptions import InvalidInputError

_GROUP = "tracemark.stores"
_lock = threading.Lock()
_stores: dict[tuple[str, str | None], Any] = {}


def _scheme(uri: str) -> str:
    scheme = uri.split(":", 1)[0].split("+", 1)[0].lower() if ":" in uri else ""
    if not scheme:
        raise InvalidInputError(
            f"tracking URI {uri!r} has no scheme: use sqlite:///path.db, postgresql://..., "
            "or http://host:port",
            field="tracking_uri",
        )
    return scheme


def store_factory(scheme: str) -> Any:
    """Return the class registered for a URI scheme."""
    from importlib.metadata import entry_points

    found = [ep for ep in entry_points(group=_GROUP) if ep.name == scheme]
    if not found:
        known = sorted({ep.name for ep in entry_points(group=_GROUP)})
        raise InvalidInputError(
            f"no store for URI scheme {scheme!r}; known schemes: {', '.join(known)}",
            field="tracking_uri",
        )
    return found[0].load()


def get_store(uri: str, artifact_root: str | None = None) -> Any:
    """Return the store for a URI, opening it once per process and reusing it after."""
    key = (uri, artifact_root)
    store = _stores.get(key)
    if store is not None:
        return store
    with _lock:
        store = _stores.get(key)
        if store is None:
            store = store_factory(_scheme(uri))(uri, artifact_root=artifact_root)
            _stores[key] = store
    return store


def reset() -> None:
    """Close and forget every open store (tests use this between databases)."""
    with _lock:
        for store in _stores.values():
            close = getattr(store, "close", None)
            if close is not None:
                close()
        _stores.clear()
