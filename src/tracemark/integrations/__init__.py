"""Autolog integrations: one line traces a library's LLM calls, with tokens and cost.

Example:
    import tracemark as tm

    tm.autolog()            # every integration whose library is installed
    tm.openai.autolog()     # or one at a time

Every integration, the built-in ones included, is registered under the `tracemark.integrations`
entry-point group (see pyproject.toml), so a plugin integrates exactly like ours::

    [project.entry-points."tracemark.integrations"]
    mylib = "tracemark_mylib.autolog"

The contract of the module an entry point names (`tracemark.integrations.openai` is one):

- `LIBRARY`: the name of the module it instruments (`"openai"`); `tm.autolog()` skips the
  integration when that module cannot be imported;
- `autolog(*, disable=False, log_traces=True, silent=False)`: enabling twice is harmless,
  `disable=True` restores the library's own behaviour, `log_traces=False` records nothing.

An integration imports its library lazily and patches it when the application imports it,
so `tm.autolog()` costs nothing for libraries the application never uses.
"""

from __future__ import annotations

import importlib.util
import logging
from typing import Any

__all__ = ["GROUP", "autolog", "get", "names"]

GROUP = "tracemark.integrations"
logger = logging.getLogger("tracemark.integrations")

_loaded: dict[str, Any] = {}


def _entry_points() -> dict[str, Any]:
    from importlib.metadata import entry_points

    found: dict[str, Any] = {}
    for ep in entry_points(group=GROUP):
        found.setdefault(ep.name, ep)
    return found


def names() -> list[str]:
    """Return the names of the registered integrations, sorted.

    Example:
        >>> import tracemark.integrations
        >>> "openai" in tracemark.integrations.names()
        True
    """
    return sorted(_entry_points())


def get(name: str) -> Any:
    """Return the integration module registered as `name`.

    Example:
        >>> import tracemark.integrations
        >>> tracemark.integrations.get("openai").LIBRARY
        'openai'

    Args:
        name: The entry-point name, e.g. `"openai"`.

    Raises:
        KeyError: No integration is registered under that name.
    """
    module = _loaded.get(name)
    if module is None:
        ep = _entry_points().get(name)
        if ep is None:
            raise KeyError(f"no tracemark integration named {name!r}; known: {', '.join(names())}")
        module = _loaded[name] = ep.load()
    return module


def _importable(module_name: str) -> bool:
    try:
        return importlib.util.find_spec(module_name) is not None
    except (ImportError, ValueError):
        return False


def autolog(*, disable: bool = False, log_traces: bool = True, silent: bool = False) -> list[str]:
    """Enable (or disable) every integration whose library is installed.

    Each library is patched when the application imports it, so this is cheap to call
    first thing, before the libraries are imported.

    Example:
        >>> import tracemark as tm
        >>> enabled = tm.autolog()

    Args:
        disable: Disable every integration instead, restoring the libraries' own methods.
        log_traces: False keeps the patches but records nothing.
        silent: Do not log tracemark's own messages (such as a missing price table).

    Returns:
        The names of the integrations enabled (or disabled).
    """
    done: list[str] = []
    for name in names():
        try:
            module = get(name)
            library = getattr(module, "LIBRARY", name)
            if not _importable(library):
                continue
            module.autolog(disable=disable, log_traces=log_traces, silent=silent)
        except Exception:
            if not silent:
                logger.warning(
                    "tracemark: the %r integration could not be set up", name, exc_info=True
                )
            continue
        done.append(name)
    return done
