"""Evaluation datasets: a named, versioned set of records (inputs, expectations, outputs).

A record is identified inside its dataset by the digest of its canonical inputs
(`record_key`), so merging the same inputs again updates that record instead of adding a
second one. A version's `digest` is computed from its records' content alone
(`content_digest`): two versions with equal content have equal digests, on every backend.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from tracemark.exceptions import InvalidInputError

_CANONICAL = orjson.OPT_SORT_KEYS
_JSONABLE = orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY
_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")

RECORD_FIELDS = ("inputs", "expectations", "outputs", "tags", "source_trace_id")
"""The keys a record may have; only ``inputs`` is required."""


def canonical_json(value: Any) -> bytes:
    """Return the canonical JSON of a JSON-ready value: sorted keys, no spaces."""
    return orjson.dumps(value, option=_CANONICAL)


def record_key(inputs: Mapping[str, Any]) -> str:
    """Return the key of a record inside its dataset: the sha256 of its canonical inputs."""
    return hashlib.sha256(canonical_json(inputs)).hexdigest()


def content_digest(records: Iterable[DatasetRecord]) -> str:
    """Return the sha256 over the sorted canonical content of `records` (order-independent)."""
    digest = hashlib.sha256()
    # Canonical JSON never holds a raw newline, so it separates records unambiguously.
    for line in sorted(canonical_json(r.content()) for r in records):
        digest.update(line)
        digest.update(b"\n")
    return digest.hexdigest()


EMPTY_DIGEST = content_digest(())
"""The digest of a dataset without records."""


def _jsonable(value: Any, index: int, name: str) -> Any:
    try:
        return orjson.loads(orjson.dumps(value, option=_JSONABLE))
    except TypeError as exc:
        raise InvalidInputError(
            f"record {index}: {name} is not JSON-serializable ({exc})",
            field=f"records[{index}].{name}",
        ) from exc


def check_record(raw: Any, index: int) -> dict[str, Any]:
    """Check one record to merge and return it as JSON-ready values.

    Raises:
        InvalidInputError: The record is malformed; the message names its index and field.
    """
    where = f"record {index}"
    if not isinstance(raw, Mapping):
        raise InvalidInputError(
            f"{where} must be a dict with 'inputs' (and optionally 'expectations', 'outputs', "
            f"'tags', 'source_trace_id'), got {type(raw).__name__}",
            field=f"records[{index}]",
        )
    unknown = sorted(str(k) for k in raw if k not in RECORD_FIELDS)
    if unknown:
        raise InvalidInputError(
            f"{where} has unknown field {unknown[0]!r}; use {', '.join(RECORD_FIELDS)}",
            field=f"records[{index}].{unknown[0]}",
        )
    record: dict[str, Any] = {}
    for name in ("inputs", "expectations", "tags"):
        value = raw.get(name)
        path = f"records[{index}].{name}"
        if name == "inputs" and value is None:
            raise InvalidInputError(f"{where} has no 'inputs'", field=path)
        if value is None:
            value = {}
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise InvalidInputError(
                f"{where}: {name} must be a dict with string keys, got {type(value).__name__}",
                field=path,
            )
        record[name] = _jsonable(dict(value), index, name)
    record["tags"] = {k: v if isinstance(v, str) else str(v) for k, v in record["tags"].items()}
    outputs = raw.get("outputs")
    record["outputs"] = None if outputs is None else _jsonable(outputs, index, "outputs")
    source = raw.get("source_trace_id")
    if source is not None and (not isinstance(source, str) or not _TRACE_ID.match(source)):
        raise InvalidInputError(
            f"{where}: source_trace_id must be 32 lowercase hex characters, got {source!r}",
            field=f"records[{index}].source_trace_id",
        )
    record["source_trace_id"] = source
    return record


@dataclass(slots=True)
class DatasetRecord:
    """One example of a dataset: what goes in, what should come out, and where it came from.

    Example:
        record = dataset.records[0]
        record.inputs  # {"question": "What is tracemark?"}
        record.expectations  # {"expected_response": "A tracing library"}
    """

    record_id: str
    inputs: dict[str, Any]
    expectations: dict[str, Any] = field(default_factory=dict)
    outputs: Any = None
    tags: dict[str, str] = field(default_factory=dict)
    source_trace_id: str | None = None
    creation_time: int = 0

    def content(self) -> dict[str, Any]:
        """Return what the record says (everything but its id and time), as hashed."""
        return {
            "inputs": self.inputs,
            "expectations": self.expectations,
            "outputs": self.outputs,
            "tags": self.tags,
            "source_trace_id": self.source_trace_id,
        }

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "record_id": self.record_id,
            "inputs": self.inputs,
            "expectations": self.expectations,
            "outputs": self.outputs,
            "tags": dict(self.tags),
            "source_trace_id": self.source_trace_id,
            "creation_time": self.creation_time,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetRecord:
        """Build a record from `to_dict` output."""
        return cls(
            record_id=data["record_id"],
            inputs=data["inputs"],
            expectations=dict(data.get("expectations") or {}),
            outputs=data.get("outputs"),
            tags=dict(data.get("tags") or {}),
            source_trace_id=data.get("source_trace_id"),
            creation_time=int(data.get("creation_time") or 0),
        )


@dataclass(slots=True)
class Dataset:
    """A dataset as of one version: its name, labels, and the digest of that version."""

    dataset_id: str
    name: str
    experiment_id: str | None = None
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    version: int = 0
    digest: str = EMPTY_DIGEST
    record_count: int = 0
    creation_time: int = 0
    last_updated_time: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "dataset_id": self.dataset_id,
            "name": self.name,
            "experiment_id": self.experiment_id,
            "description": self.description,
            "tags": dict(self.tags),
            "version": self.version,
            "digest": self.digest,
            "record_count": self.record_count,
            "creation_time": self.creation_time,
            "last_updated_time": self.last_updated_time,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Dataset:
        """Build a dataset from `to_dict` output."""
        return cls(**data)
