"""Reversible, idempotent patching of a library's methods, and patching on first import.

An `Instrumentation` holds the patches of one integration. Patching a method twice keeps one
wrapper; `unpatch` puts back exactly the attribute that was there (a function, a
staticmethod, an inherited method). A wrapper that another library has wrapped again since
cannot be taken out without dropping theirs, so it is left in place and turned into a
pass-through instead.

`when_imported` runs a callback once a module has been imported, right away when it already
is, so `tm.autolog()` patches a library only when the application imports it and never pays
for importing libraries the application does not use.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import logging
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Instrumentation", "cancel_when_imported", "when_imported"]

logger = logging.getLogger("tracemark.integrations")

_MISSING = object()
WRAPPED_MARK = "__tracemark_wrapped__"


@dataclass(slots=True)
class _Patch:
    owner: type
    attribute: str
    original: Any  # what owner.__dict__ held, or _MISSING when the method was inherited
    wrapper: Any


class Instrumentation:
    """The patches of one integration and its settings, read by its wrappers on every call.

    Args:
        name: The integration's name, e.g. `"openai"`.
        library: The module that must be importable, e.g. `"openai"`.
    """

    def __init__(self, name: str, library: str) -> None:
        self.name = name
        self.library = library
        self.log_traces = True
        self.silent = False
        self.enabled = False
        self._patches: list[_Patch] = []
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return (
            f"Instrumentation({self.name!r}, enabled={self.enabled}, patches={len(self._patches)})"
        )

    @property
    def recording(self) -> bool:
        """Whether wrappers record spans now (enabled and `log_traces`)."""
        return self.enabled and self.log_traces

    def autolog(
        self,
        install: Callable[[Any], None],
        *,
        package: str,
        disable: bool,
        log_traces: bool,
        silent: bool,
        remove: Callable[[], None] | None = None,
    ) -> None:
        """Do what every integration's `autolog` does: enable, or disable and undo.

        Enabling installs the integration (through `install`) when the library is imported,
        at once if it already is; disabling cancels that and undoes it.

        Args:
            install: Called with the library's module to patch it or register a hook.
            package: The distribution to name in the error when the library is missing.
            disable: Disable instead of enabling.
            log_traces: False keeps the integration installed but records nothing.
            silent: Do not log tracemark's own messages about this integration.
            remove: Undoes `install`; by default the patches made with `wrap` are removed.
        """
        self.log_traces, self.silent = log_traces, silent
        if disable:
            self.enabled = False
            cancel_when_imported(self.library, install)
            (remove or self.unpatch)()
            return
        try:
            found = importlib.util.find_spec(self.library) is not None
        except ModuleNotFoundError:  # not even the parent of a dotted name is installed
            found = False
        if not found:
            raise ModuleNotFoundError(
                f"tm.{self.name}.autolog() needs {package}: pip install {package}",
                name=self.library,
            )
        self.enabled = True
        from tracemark.integrations import _cost

        _cost.warm_up(silent=silent)
        when_imported(self.library, install)

    def wrap(self, owner: type, attribute: str, make_wrapper: Callable[[Any], Any]) -> None:
        """Replace `owner.attribute` by `make_wrapper(current)`, unless already wrapped by us.

        A method the installed version of the library does not have is skipped.

        Args:
            owner: The class holding the method.
            attribute: The method's name.
            make_wrapper: Given the current function, returns its replacement.
        """
        with self._lock:
            for patch in self._patches:
                if patch.owner is owner and patch.attribute == attribute:
                    return
            original = owner.__dict__.get(attribute, _MISSING)
            current = getattr(owner, attribute, None)
            if current is None or getattr(current, WRAPPED_MARK, None) is self:
                return
            wrapper = make_wrapper(current)
            setattr(wrapper, WRAPPED_MARK, self)
            setattr(owner, attribute, wrapper)
            self._patches.append(_Patch(owner, attribute, original, wrapper))

    def unpatch(self) -> None:
        """Restore every patched attribute (or leave a pass-through where it was re-wrapped)."""
        with self._lock:
            for patch in reversed(self._patches):
                if patch.owner.__dict__.get(patch.attribute) is not patch.wrapper:
                    # Someone wrapped our wrapper; removing it would drop theirs too. It stays
                    # and passes calls straight through because `enabled` is now False.
                    logger.debug(
                        "tracemark: %s.%s was re-wrapped by another library; left as a "
                        "pass-through",
                        patch.owner.__qualname__,
                        patch.attribute,
                    )
                    continue
                if patch.original is _MISSING:
                    delattr(patch.owner, patch.attribute)
                else:
                    setattr(patch.owner, patch.attribute, patch.original)
            self._patches.clear()

    @property
    def patched(self) -> list[tuple[type, str]]:
        """The `(class, attribute)` pairs currently patched."""
        return [(p.owner, p.attribute) for p in self._patches]


# -- running code when a module is first imported ------------------------------------------

_hooks: dict[str, list[Callable[[Any], None]]] = {}
_hooks_lock = threading.RLock()


class _PostImportFinder(importlib.abc.MetaPathFinder):
    """Finds nothing itself; wraps the loader of a hooked module to run its hooks after it."""

    def __init__(self) -> None:
        self._busy = threading.local()

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname not in _hooks:
            return None
        busy = self._busy.__dict__.setdefault("names", set())
        if fullname in busy:
            return None
        busy.add(fullname)
        try:
            spec = importlib.util.find_spec(fullname)  # the other finders, not this one
        finally:
            busy.discard(fullname)
        loader = getattr(spec, "loader", None)
        exec_module = getattr(loader, "exec_module", None)
        if exec_module is None:
            return spec

        def exec_then_run_hooks(module: Any) -> None:
            exec_module(module)
            _run_hooks(fullname, module)

        try:
            loader.exec_module = exec_then_run_hooks  # type: ignore[union-attr]
        except (AttributeError, TypeError):  # a loader without an instance dict
            return spec
        return spec


_finder = _PostImportFinder()


def _run_hooks(name: str, module: Any) -> None:
    with _hooks_lock:
        callbacks = _hooks.pop(name, [])
        if not _hooks and _finder in sys.meta_path:
            sys.meta_path.remove(_finder)
    for callback in callbacks:
        try:
            callback(module)
        except Exception:
            logger.warning("tracemark: patching %s failed", name, exc_info=True)


def when_imported(name: str, callback: Callable[[Any], None]) -> None:
    """Call `callback(module)` once `name` is imported: now if it already is, else right after.

    Args:
        name: A top-level module name, e.g. `"openai"`.
        callback: Receives the imported module.
    """
    module = sys.modules.get(name)
    if module is not None:
        callback(module)
        return
    with _hooks_lock:
        callbacks = _hooks.setdefault(name, [])
        if callback not in callbacks:
            callbacks.append(callback)
        if _finder not in sys.meta_path:
            sys.meta_path.insert(0, _finder)
    # Imported by another thread in the meantime: its loader ran before our hook existed.
    module = sys.modules.get(name)
    spec = getattr(module, "__spec__", None)
    if module is not None and not getattr(spec, "_initializing", False):
        _run_hooks(name, module)


def cancel_when_imported(name: str, callback: Callable[[Any], None]) -> None:
    """Forget a callback registered with `when_imported` that has not run yet."""
    with _hooks_lock:
        callbacks = _hooks.get(name)
        if callbacks and callback in callbacks:
            callbacks.remove(callback)
            if not callbacks:
                del _hooks[name]
        if not _hooks and _finder in sys.meta_path:
            sys.meta_path.remove(_finder)
