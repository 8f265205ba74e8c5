from __future__ import annotations

import datetime as dt
import enum
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import numpy as np
import orjson
import pydantic

from tracemark.tracing._serialize import dumps, to_jsonable


def loads(text: str) -> object:
    return orjson.loads(text)


class Color(enum.Enum):
    RED = "red"


class Doc(pydantic.BaseModel):
    page_content: str
    metadata: dict[str, str] = {}
    created: dt.datetime | None = None


@dataclass
class Node:
    name: str
    children: list[Node] = field(default_factory=list)
    parent: Node | None = None


def test_native_types_round_trip() -> None:
    value = {"s": "x", "i": 1, "f": 1.5, "b": True, "n": None, "l": [1, (2, 3)]}
    assert loads(dumps(value)) == {
        "s": "x",
        "i": 1,
        "f": 1.5,
        "b": True,
        "n": None,
        "l": [1, [2, 3]],
    }


def test_common_library_types_get_faithful_forms() -> None:
    when = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    uid = uuid.UUID(int=1)
    value = {
        "when": when,
        "uid": uid,
        "color": Color.RED,
        "price": Decimal("1.10"),
        "path": Path("/tmp/x"),
        "raw": b"hi",
        "tags": frozenset(["a"]),
        "doc": Doc(page_content="30 days", metadata={"src": "kb"}, created=when),
    }
    assert loads(dumps(value)) == {
        "when": "2024-01-02T03:04:05+00:00",
        "uid": "00000000-0000-0000-0000-000000000001",
        "color": "red",
        "price": "1.10",
        "path": "/tmp/x",
        "raw": "aGk=",
        "tags": ["a"],
        "doc": {
            "page_content": "30 days",
            "metadata": {"src": "kb"},
            "created": "2024-01-02T03:04:05+00:00",
        },
    }


def test_numpy_arrays_and_scalars() -> None:
    value = {
        "vec": np.arange(3, dtype=np.float32),
        "mat": np.arange(4).reshape(2, 2),
        "strided": np.arange(6)[::2],
        "scalar": np.int64(7),
        "objects": np.array([1, "a"], dtype=object),
    }
    assert loads(dumps(value)) == {
        "vec": [0.0, 1.0, 2.0],
        "mat": [[0, 1], [2, 3]],
        "strided": [0, 2, 4],
        "scalar": 7,
        "objects": [1, "a"],
    }


def test_non_string_keys_are_kept_as_strings() -> None:
    assert loads(dumps({1: "a", (1, 2): "b", None: "c"})) == {"1": "a", "(1, 2)": "b", "null": "c"}


def test_huge_integers_and_cycles_never_raise() -> None:
    root = Node("root")
    root.children.append(Node("child", parent=root))
    looped: list[object] = []
    looped.append(looped)
    out = loads(dumps({"big": 2**100, "tree": root, "loop": looped}))
    assert out["big"] == str(2**100)
    assert out["tree"]["children"][0]["name"] == "child"
    assert "<cycle>" in orjson.dumps(out).decode()


def test_arbitrary_objects_fall_back_to_repr() -> None:
    class Thing:
        def __repr__(self) -> str:
            return "Thing(1)"

    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    assert loads(dumps([Thing(), Broken(), len])) == [
        "Thing(1)",
        "<unrepresentable Broken>",
        "<built-in function len>",
    ]


def test_pydantic_model_with_unserializable_field() -> None:
    class Holder(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(arbitrary_types_allowed=True)
        payload: object

    class Opaque:
        def __repr__(self) -> str:
            return "<opaque>"

    assert loads(dumps(Holder(payload=Opaque()))) == {"payload": "<opaque>"}


def test_to_jsonable_snapshots_containers_and_keeps_primitives() -> None:
    data = {"a": [1, 2]}
    snap = to_jsonable(data)
    data["a"].append(3)
    assert snap == {"a": [1, 2]}
    text = "x"
    assert to_jsonable(text) is text
