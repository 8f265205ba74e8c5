"""Evaluation datasets of the SQL store: datasets, their versions and versioned records.

Record rows are immutable and valid from `first_version` to `last_version` (open while
current): a merge that changes a record closes its row and inserts a new one, so any
version reads back exactly. A merge is one transaction holding the dataset's row lock
(``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite writers start with ``BEGIN IMMEDIATE``
and queue anyway), so concurrent merges apply one after the other: none loses records and
no version number is taken twice.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson
from sqlalchemy import (
    ColumnElement,
    Connection,
    and_,
    cast,
    delete,
    false,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import IntegrityError

from tracemark.entities.dataset import (
    EMPTY_DIGEST,
    Dataset,
    DatasetRecord,
    canonical_json,
    check_record,
    content_digest,
    record_key,
)
from tracemark.exceptions import AlreadyExistsError, InvalidInputError, NotFoundError
from tracemark.store import registry_validation as check
from tracemark.store import validation
from tracemark.store.filter_grammar import Comparison
from tracemark.store.sql import schema as t
from tracemark.store.sql.registry import now_ms, page
from tracemark.store.sql.registry_search import NUMBER, STRING, RegistryFilter

_d, _v, _r = t.datasets.c, t.dataset_versions.c, t.dataset_records.c
_CHUNK = 500


@dataclass(frozen=True)
class _DatasetFilter(RegistryFilter):
    """The registry filter grammar, with ``tags.<key>`` read from the JSON tags column."""

    dialect: str = "sqlite"

    def _comparison(self, c: Comparison, source: str) -> ColumnElement[bool]:
        if c.prefix not in ("tags", "tag"):
            return super()._comparison(c, source)
        if '"' in c.key:  # no tag key holds one (see validation.key), and JSON paths can't
            return false()
        if self.dialect == "postgresql":
            value = cast(_d.tags, JSONB)[c.key].astext
        else:
            value = func.json_extract(_d.tags, f'$."{c.key}"')
        one_tag = RegistryFilter(self.kind, {c.key: (value, STRING)}, self.tags, self.owner)
        return one_tag._comparison(replace(c, prefix=None), source)


def _filter(dialect: str) -> _DatasetFilter:
    return _DatasetFilter(
        "datasets",
        {
            "name": (_d.name, STRING),
            "description": (_d.description, STRING),
            "version": (_d.version, NUMBER),
            "creation_time": (_d.creation_time, NUMBER),
            "last_updated_time": (_d.last_updated_time, NUMBER),
        },
        t.datasets,
        (_d.dataset_id,),
        dialect,
    )


def _dataset(row: Mapping[str, Any]) -> Dataset:
    """Build a dataset from a row of `_SELECT` (the dataset joined to its newest version)."""
    return Dataset(
        dataset_id=row["dataset_id"],
        name=row["name"],
        experiment_id=None if row["experiment_id"] is None else str(row["experiment_id"]),
        description=row["description"],
        tags=orjson.loads(row["tags"]),
        version=row["version"],
        digest=row["digest"] or EMPTY_DIGEST,
        record_count=row["record_count"] or 0,
        creation_time=row["creation_time"],
        last_updated_time=row["last_updated_time"],
    )


_SELECT = select(t.datasets, _v.digest, _v.record_count).select_from(
    t.datasets.outerjoin(
        t.dataset_versions, and_(_v.dataset_id == _d.dataset_id, _v.version == _d.version)
    )
)


def _record(row: Any) -> DatasetRecord:
    return DatasetRecord(
        record_id=row.record_id,
        inputs=orjson.loads(row.inputs),
        expectations=orjson.loads(row.expectations),
        outputs=None if row.outputs is None else orjson.loads(row.outputs),
        tags=orjson.loads(row.tags),
        source_trace_id=row.source_trace_id,
        creation_time=row.creation_time,
    )


def _merged(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """Merge a record into the one with the same inputs: new values win, None keeps old."""
    return {
        "inputs": old["inputs"],
        "expectations": {**old["expectations"], **new["expectations"]},
        "outputs": old["outputs"] if new["outputs"] is None else new["outputs"],
        "tags": {**old["tags"], **new["tags"]},
        "source_trace_id": new["source_trace_id"] or old["source_trace_id"],
    }


def _new_record_id(now: int, index: int, keep_position_of: str | None = None) -> str:
    # Ids sort in the order records were first added (time, then place in the merge); a
    # changed record keeps its old id's position so versions list records in one order.
    position = keep_position_of[:18] if keep_position_of else f"{now:012x}{index & 0xFFFFFF:06x}"
    return position + os.urandom(7).hex()


def _no_nul(value: str | None, field: str) -> None:
    # PostgreSQL text cannot hold NUL, and its JSON functions refuse an escaped one.
    if value is not None and "\x00" in value:
        raise InvalidInputError(f"dataset {field} must not contain NUL characters", field=field)


def _chunks(items: list[str]) -> Iterator[list[str]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


def _check_records(records: Any) -> dict[str, dict[str, Any]]:
    """Check records and key them by inputs; the same inputs twice merge in order."""
    if isinstance(records, (str, bytes, Mapping)) or not isinstance(records, Sequence):
        raise InvalidInputError(
            f"records must be a list of dicts, got {type(records).__name__}", field="records"
        )
    incoming: dict[str, dict[str, Any]] = {}
    for index, raw in enumerate(records):
        record = check_record(raw, index)
        key = record_key(record["inputs"])
        earlier = incoming.get(key)
        incoming[key] = record if earlier is None else _merged(earlier, record)
    return incoming


class DatasetStoreMixin:
    """Dataset methods of `SqlStore` (which provides `_read`, `_write`, `_experiment_id`)."""

    _read: Callable[..., Any]
    _write: Callable[..., Any]
    _experiment_id: Callable[[Any], int]
    dialect: str

    def create_dataset(
        self,
        name: str,
        experiment_id: str | None = None,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> Dataset:
        """Create an empty dataset (version 0); the name must be unused."""
        name = check.name(name, "dataset")
        if description is not None and not isinstance(description, str):
            raise InvalidInputError("dataset description must be a string", field="description")
        tag_items = validation.tags(tags)
        _no_nul(description, "description")
        for _, value in tag_items:
            _no_nul(value, "tags")
        eid = None if experiment_id is None else self._experiment_id(experiment_id)
        now = now_ms()
        row = {
            "dataset_id": uuid.uuid4().hex,
            "name": name,
            "experiment_id": eid,
            "description": description,
            "tags": orjson.dumps(dict(tag_items)).decode(),
            "version": 0,
            "creation_time": now,
            "last_updated_time": now,
        }
        try:
            with self._write() as conn:
                if eid is not None:
                    found = conn.execute(
                        select(t.experiments.c.experiment_id).where(
                            t.experiments.c.experiment_id == eid
                        )
                    ).first()
                    if found is None:
                        raise NotFoundError(f"experiment with id {experiment_id!r} does not exist")
                conn.execute(t.datasets.insert().values(**row))
        except IntegrityError as exc:
            raise AlreadyExistsError(f"dataset {name!r} already exists") from exc
        return _dataset({**row, "digest": None, "record_count": 0})

    def _dataset_row(self, conn: Connection, name: str, *, lock: bool = False) -> Any:
        stmt = select(t.datasets).where(_d.name == check.name(name, "dataset"))
        row = conn.execute(stmt.with_for_update() if lock else stmt).first()
        if row is None:
            raise NotFoundError(f"dataset {name!r} does not exist")
        return row

    def _version(self, conn: Connection, name: str, version: int | None) -> tuple[Any, int]:
        """Return the dataset's row and the version asked for (None: the newest)."""
        row = self._dataset_row(conn, name)
        if version is None:
            return row, row.version
        number = check.version(version)
        if number > row.version:
            raise NotFoundError(f"dataset {name!r} has no version {number}")
        return row, number

    def get_dataset(self, name: str, version: int | None = None) -> Dataset:
        """Return a dataset as of a version (None: the newest)."""
        with self._read() as conn:
            row, number = self._version(conn, name, version)
            found = conn.execute(
                select(_v.digest, _v.record_count).where(
                    _v.dataset_id == row.dataset_id, _v.version == number
                )
            ).first()
        # Version 0 (no merge yet) has no row: no records, the empty digest.
        extra = found._mapping if found is not None else {"digest": None, "record_count": 0}
        return _dataset({**row._mapping, **extra, "version": number})

    def get_dataset_records(self, name: str, version: int | None = None) -> list[DatasetRecord]:
        """Return exactly the records of a version (None: the newest), oldest first."""
        with self._read() as conn:
            row, number = self._version(conn, name, version)
            rows = conn.execute(
                select(t.dataset_records)
                .where(
                    _r.dataset_id == row.dataset_id,
                    _r.first_version <= number,
                    or_(_r.last_version.is_(None), _r.last_version >= number),
                )
                .order_by(_r.record_id)
            ).all()
        return [_record(r) for r in rows]

    def search_datasets(
        self,
        filter_string: str | None = None,
        experiment_ids: Sequence[str] | None = None,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> tuple[list[Dataset], str | None]:
        """Return one page of datasets by name, filtered like ``name LIKE 'qa%'``."""
        validation.max_results(max_results)
        offset = check.page_offset(page_token)
        _no_nul(filter_string, "filter_string")
        stmt = _SELECT
        where = _filter(self.dialect).clause(filter_string)
        if where is not None:
            stmt = stmt.where(where)
        if experiment_ids is not None:
            stmt = stmt.where(
                _d.experiment_id.in_([self._experiment_id(e) for e in experiment_ids])
            )
        stmt = stmt.order_by(_d.name).offset(offset).limit(max_results + 1)
        with self._read() as conn:
            rows, token = page(conn.execute(stmt).all(), offset, max_results)
        return [_dataset(r._mapping) for r in rows], token

    def delete_dataset(self, name: str) -> None:
        """Delete a dataset with every version and record."""
        with self._write() as conn:
            dataset_id = self._dataset_row(conn, name, lock=True).dataset_id
            conn.execute(delete(t.dataset_records).where(_r.dataset_id == dataset_id))
            conn.execute(delete(t.dataset_versions).where(_v.dataset_id == dataset_id))
            conn.execute(delete(t.datasets).where(_d.dataset_id == dataset_id))

    def merge_dataset_records(self, name: str, records: Sequence[Mapping[str, Any]]) -> Dataset:
        """Add records, or update those with the same inputs, as one new version.

        A merge that changes nothing adds no version. All records are written or none.
        """
        incoming = _check_records(records)
        now = now_ms()
        with self._write() as conn:
            row = self._dataset_row(conn, name, lock=True)
            current = {
                r.record_key: r
                for r in conn.execute(
                    select(t.dataset_records).where(
                        _r.dataset_id == row.dataset_id, _r.last_version.is_(None)
                    )
                )
            }
            state = {key: _record(r) for key, r in current.items()}
            version = row.version + 1
            closed: list[str] = []
            added: list[dict[str, Any]] = []
            for index, (key, record) in enumerate(incoming.items()):
                old = state.get(key)
                if old is not None:
                    record = _merged(old.content(), record)
                    if canonical_json(record) == canonical_json(old.content()):
                        continue
                    closed.append(old.record_id)
                new = DatasetRecord(
                    record_id=_new_record_id(now, index, old.record_id if old else None),
                    creation_time=now,
                    **record,
                )
                state[key] = new
                added.append(self._record_row(row.dataset_id, key, new, version))
            if not added:
                return self._newest(conn, row.dataset_id)
            for chunk in _chunks(closed):
                conn.execute(
                    update(t.dataset_records)
                    .where(_r.record_id.in_(chunk))
                    .values(last_version=row.version)
                )
            conn.execute(t.dataset_records.insert(), added)
            digest = content_digest(state.values())
            conn.execute(
                t.dataset_versions.insert().values(
                    dataset_id=row.dataset_id,
                    version=version,
                    digest=digest,
                    record_count=len(state),
                    creation_time=now,
                )
            )
            conn.execute(
                update(t.datasets)
                .where(_d.dataset_id == row.dataset_id)
                .values(version=version, last_updated_time=now)
            )
        return _dataset(
            {
                **row._mapping,
                "version": version,
                "last_updated_time": now,
                "digest": digest,
                "record_count": len(state),
            }
        )

    def _newest(self, conn: Connection, dataset_id: str) -> Dataset:
        return _dataset(conn.execute(_SELECT.where(_d.dataset_id == dataset_id)).one()._mapping)

    @staticmethod
    def _record_row(
        dataset_id: str, key: str, record: DatasetRecord, version: int
    ) -> dict[str, Any]:
        outputs = None if record.outputs is None else canonical_json(record.outputs).decode()
        return {
            "record_id": record.record_id,
            "dataset_id": dataset_id,
            "record_key": key,
            "inputs": canonical_json(record.inputs).decode(),
            "outputs": outputs,
            "expectations": canonical_json(record.expectations).decode(),
            "tags": canonical_json(record.tags).decode(),
            "source_trace_id": record.source_trace_id,
            "first_version": version,
            "last_version": None,
            "creation_time": record.creation_time,
        }
