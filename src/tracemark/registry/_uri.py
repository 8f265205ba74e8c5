"""Parse registry URIs.

``prompts:/name/3``, ``prompts:/name@alias``, ``models:/name/1``, ``models:/name@alias``
and ``runs:/<run_id>/<artifact path>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tracemark.exceptions import InvalidInputError

_NAMED = re.compile(
    r"^(?P<scheme>prompts|models):/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[^/@]+))$"
)
_RUN = re.compile(r"^runs:/(?P<run_id>[0-9a-f]{32})/(?P<path>.+)$")


@dataclass(frozen=True, slots=True)
class RegistryRef:
    """A parsed registry URI: a name and either a version or an alias."""

    name: str
    version: int | None = None
    alias: str | None = None


@dataclass(frozen=True, slots=True)
class RunRef:
    """A parsed ``runs:/<run_id>/<path>`` URI."""

    run_id: str
    path: str


def parse_registry_uri(uri: str, scheme: str) -> RegistryRef:
    """Parse ``<scheme>:/name/<version>`` or ``<scheme>:/name@<alias>``.

    Example:
        parse_registry_uri("prompts:/qa@production", "prompts")  # RegistryRef("qa", None, ...)
    """
    match = _NAMED.match(uri.strip()) if isinstance(uri, str) else None
    if match is None or match["scheme"] != scheme:
        raise InvalidInputError(
            f"invalid {scheme} URI {uri!r}: use {scheme}:/<name>/<version>, "
            f"{scheme}:/<name>@<alias> or {scheme}:/<name>@latest",
            field="uri",
        )
    if match["version"] is not None:
        return RegistryRef(match["name"], version=int(match["version"]))
    return RegistryRef(match["name"], alias=match["alias"])


def parse_run_uri(uri: str) -> RunRef:
    """Parse ``runs:/<run_id>/<artifact path>``."""
    match = _RUN.match(uri.strip()) if isinstance(uri, str) else None
    if match is None:
        raise InvalidInputError(
            f"invalid run URI {uri!r}: use runs:/<run_id>/<artifact path>", field="uri"
        )
    return RunRef(match["run_id"], match["path"].strip("/"))
