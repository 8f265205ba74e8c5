"""Serialize span payloads to JSON once, on the caller's thread, without ever raising.

orjson handles the common types natively (dicts, lists, str, numbers, datetimes, UUIDs,
enums, dataclasses, numpy arrays); `_default` gives everything else a faithful readable
form: pydantic models dump their fields, bytes become base64, sets become lists, and any
other object becomes its `repr`.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Mapping
from decimal import Decimal
from pathlib import PurePath
from typing import Any

import orjson

__all__ = ["dumps", "dumps_bytes", "to_jsonable"]

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY
# OPT_NON_STR_KEYS doubles the cost of large dicts, so it is only used on the retry taken
# when a payload really has non-string keys.
_OPTIONS_NON_STR_KEYS = _OPTIONS | orjson.OPT_NON_STR_KEYS
_MAX_DEPTH = 200


def _default(obj: Any) -> Any:
    """Convert an object orjson cannot serialize into something it can."""
    try:
        model_dump = getattr(obj, "model_dump", None)
        if model_dump is not None and not isinstance(obj, type):
            return model_dump()  # pydantic v2 (and look-alikes)
        if isinstance(obj, (bytes, bytearray, memoryview)):
            return base64.b64encode(bytes(obj)).decode("ascii")
        if isinstance(obj, (set, frozenset)):
            return list(obj)
        if isinstance(obj, (Decimal, PurePath)):
            return str(obj)
        tolist = getattr(obj, "tolist", None)  # numpy arrays orjson declined, numpy scalars
        if tolist is not None and not isinstance(obj, type):
            return tolist()
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            return {f.name: getattr(obj, f.name, None) for f in dataclasses.fields(obj)}
        if isinstance(obj, Mapping):
            return dict(obj)
        dict_method = getattr(obj, "dict", None)  # pydantic v1
        if callable(dict_method) and hasattr(obj, "__fields__"):
            return dict_method()
    except Exception:  # noqa: S110 - a failing converter falls back to repr below
        pass
    return _safe_repr(obj)


def _safe_repr(obj: Any) -> str:
    try:
        return repr(obj)
    except Exception:
        return f"<unrepresentable {type(obj).__name__}>"


def dumps(value: Any) -> str:
    """Serialize `value` to JSON text; never raises.

    Example:
        >>> dumps({"q": "hi", "ids": {1, 2}})
        '{"q":"hi","ids":[1,2]}'

    Args:
        value: Any Python object.
    """
    return dumps_bytes(value).decode()


def dumps_bytes(value: Any) -> bytes:
    """Serialize `value` to UTF-8 JSON bytes; never raises.

    The hot path keeps payloads as these bytes and the exporter thread decodes them, so
    the caller does not pay for copying a large payload into a `str`.

    Example:
        >>> dumps_bytes([1, "a"])
        b'[1,"a"]'

    Args:
        value: Any Python object.
    """
    try:
        return orjson.dumps(value, default=_default, option=_OPTIONS)
    except orjson.JSONEncodeError:
        pass
    try:
        return orjson.dumps(value, default=_default, option=_OPTIONS_NON_STR_KEYS)
    except orjson.JSONEncodeError:
        pass
    # Integers over 64 bits, cycles or very deep nesting: walk it once in Python.
    try:
        return orjson.dumps(_sanitize(value, 0, set()), option=_OPTIONS_NON_STR_KEYS)
    except Exception:
        return orjson.dumps(_safe_repr(value))


def _sanitize(value: Any, depth: int, seen: set[int]) -> Any:
    if value is None or isinstance(value, (str, bool, float)):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**64 else str(value)
    if depth > _MAX_DEPTH:
        return _safe_repr(value)
    if id(value) in seen:
        return "<cycle>"
    if isinstance(value, (dict, list, tuple)) or dataclasses.is_dataclass(value):
        seen = seen | {id(value)}
    if isinstance(value, dict):
        return {_key(k): _sanitize(v, depth + 1, seen) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_sanitize(v, depth + 1, seen) for v in value]
    try:
        orjson.dumps(value, option=_OPTIONS)
        return value
    except orjson.JSONEncodeError:
        converted = _default(value)
        if isinstance(converted, str) or converted is value:
            return converted
        return _sanitize(converted, depth + 1, seen | {id(value)})


def _key(key: Any) -> str:
    # The same spelling orjson's OPT_NON_STR_KEYS gives the keys it supports.
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, bool):
        return orjson.dumps(key).decode()
    return str(key)


def to_jsonable(value: Any) -> Any:
    """Return `value` as plain JSON data (dict, list, str, number, bool, None).

    Primitives come back as they are; anything else goes through `dumps` and back, so
    the result is a snapshot that later mutation of `value` does not change.

    Args:
        value: Any Python object.
    """
    if value is None or value.__class__ in (str, int, float, bool):
        return value
    return orjson.loads(dumps(value))
