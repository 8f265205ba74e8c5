"""The model registry of the SQL store: registered models, versions, tags and aliases.

Also the logged models (application snapshots) that versions point at.

Like prompts, a version number is taken by bumping `registered_models.latest_version` in
the transaction that inserts the version.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table, delete, select, tuple_, update

from tracemark.entities.model import LoggedModel, ModelVersion, RegisteredModel
from tracemark.exceptions import AlreadyExistsError, InvalidInputError, NotFoundError
from tracemark.store import registry_validation as check
from tracemark.store import validation
from tracemark.store.sql import schema as t
from tracemark.store.sql.registry import (
    now_ms,
    page,
    refuse_aliased,
    tags_and_aliases,
    upsert_tag,
)
from tracemark.store.sql.registry_search import NUMBER, STRING, RegistryFilter

_rm, _mv = t.registered_models.c, t.model_versions.c

_MODEL_FILTER = RegistryFilter(
    "registered models",
    {
        "name": (_rm.name, STRING),
        "description": (_rm.description, STRING),
        "latest_version": (_rm.latest_version, NUMBER),
        "creation_time": (_rm.creation_time, NUMBER),
        "last_updated_time": (_rm.last_updated_time, NUMBER),
    },
    t.registered_model_tags,
    (_rm.name,),
)
_VERSION_FILTER = RegistryFilter(
    "model versions",
    {
        "name": (_mv.name, STRING),
        "version": (_mv.version, NUMBER),
        "source": (_mv.source, STRING),
        "run_id": (_mv.run_id, STRING),
        "model_id": (_mv.model_id, STRING),
        "description": (_mv.description, STRING),
        "creation_time": (_mv.creation_time, NUMBER),
        "last_updated_time": (_mv.last_updated_time, NUMBER),
    },
    t.model_version_tags,
    (_mv.name, _mv.version),
)


class ModelRegistryStoreMixin:
    """Model registry methods of `SqlStore` (which provides `_read`, `_write`, `_insert`)."""

    _read: Callable[..., Any]
    _write: Callable[..., Any]
    _insert: Callable[[Table], Any]
    _emit: Callable[[str, dict[str, Any]], None]

    # -- registered models ----------------------------------------------------------

    def _insert_registered_model(
        self, conn: Connection, name: str, description: str | None, now: int
    ) -> bool:
        stmt = self._insert(t.registered_models).values(
            name=name,
            description=description,
            latest_version=0,
            creation_time=now,
            last_updated_time=now,
        )
        # rowcount is unreliable for ON CONFLICT DO NOTHING on PostgreSQL; RETURNING is not.
        inserted = conn.execute(stmt.on_conflict_do_nothing().returning(stmt.table.c.name))
        return inserted.first() is not None

    def create_registered_model(
        self,
        name: str,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> RegisteredModel:
        """Create a registered model; the name must be unused."""
        name = check.name(name, "registered model")
        tag_items = validation.tags(tags)
        now = now_ms()
        with self._write() as conn:
            if not self._insert_registered_model(conn, name, description, now):
                raise AlreadyExistsError(f"registered model {name!r} already exists")
            if tag_items:
                conn.execute(
                    t.registered_model_tags.insert(),
                    [{"name": name, "key": k, "value": v} for k, v in tag_items],
                )
        self._emit("registered_model.created", {"name": name})
        return RegisteredModel(
            name=name,
            description=description,
            tags=dict(tag_items),
            creation_time=now,
            last_updated_time=now,
        )

    def _model_row(self, conn: Connection, name: str) -> Any:
        row = conn.execute(select(t.registered_models).where(_rm.name == name)).first()
        if row is None:
            raise NotFoundError(f"registered model {name!r} does not exist")
        return row

    def _load_models(self, conn: Connection, rows: Sequence[Any]) -> list[RegisteredModel]:
        tags, aliases = tags_and_aliases(
            conn, t.registered_model_tags, t.registered_model_aliases, [r.name for r in rows]
        )
        return [
            RegisteredModel(
                name=r.name,
                latest_version=r.latest_version,
                description=r.description,
                tags=tags[r.name],
                aliases=aliases[r.name],
                creation_time=r.creation_time,
                last_updated_time=r.last_updated_time,
            )
            for r in rows
        ]

    def get_registered_model(self, name: str) -> RegisteredModel:
        """Return a registered model with its tags and aliases."""
        with self._read() as conn:
            return self._load_models(conn, [self._model_row(conn, name)])[0]

    def search_registered_models(
        self,
        filter_string: str | None = None,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> tuple[list[RegisteredModel], str | None]:
        """Return one page of registered models by name, filtered like ``name LIKE 'bot%'``."""
        validation.max_results(max_results)
        offset = check.page_offset(page_token)
        stmt = select(t.registered_models)
        where = _MODEL_FILTER.clause(filter_string)
        if where is not None:
            stmt = stmt.where(where)
        stmt = stmt.order_by(_rm.name).offset(offset).limit(max_results + 1)
        with self._read() as conn:
            rows, token = page(conn.execute(stmt).all(), offset, max_results)
            return self._load_models(conn, rows), token

    def update_registered_model(self, name: str, description: str | None) -> RegisteredModel:
        """Change a registered model's description."""
        with self._write() as conn:
            result = conn.execute(
                update(t.registered_models)
                .where(_rm.name == name)
                .values(description=description, last_updated_time=now_ms())
            )
            if not result.rowcount:
                raise NotFoundError(f"registered model {name!r} does not exist")
        return self.get_registered_model(name)

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        """Set (or replace) a tag on a registered model."""
        with self._write() as conn:
            self._model_row(conn, name)
            conn.execute(upsert_tag(self, t.registered_model_tags, {"name": name}, key, value))

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        """Remove a tag from a registered model."""
        tt = t.registered_model_tags.c
        with self._write() as conn:
            if not conn.execute(
                delete(t.registered_model_tags).where(tt.name == name, tt.key == key)
            ).rowcount:
                self._model_row(conn, name)
                raise NotFoundError(f"registered model {name!r} has no tag {key!r}")

    def delete_registered_model(self, name: str, *, force: bool = False) -> None:
        """Delete a registered model and its versions; one with aliases needs `force`."""
        al = t.registered_model_aliases.c
        with self._write() as conn:
            self._model_row(conn, name)
            aliases = list(conn.execute(select(al.alias).where(al.name == name)).scalars())
            refuse_aliased(f"registered model {name!r}", aliases, force)
            for table in (
                t.registered_model_aliases,
                t.model_version_tags,
                t.model_versions,
                t.registered_model_tags,
            ):
                conn.execute(delete(table).where(table.c.name == name))
            conn.execute(delete(t.registered_models).where(_rm.name == name))

    # -- model versions -------------------------------------------------------------

    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None = None,
        model_id: str | None = None,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> ModelVersion:
        """Add a version pointing at `source`; the registered model is created if new."""
        name = check.name(name, "registered model")
        if not isinstance(source, str) or not source:
            raise InvalidInputError(
                f"a model version needs a source URI (runs:/<run_id>/<path>), got {source!r}",
                field="source",
            )
        if run_id is not None:
            validation.run_id(run_id)
        tag_items = validation.tags(tags)
        now = now_ms()
        with self._write() as conn:
            created = self._insert_registered_model(conn, name, None, now)
            version = conn.execute(
                update(t.registered_models)
                .where(_rm.name == name)
                .values(latest_version=_rm.latest_version + 1, last_updated_time=now)
                .returning(_rm.latest_version)
            ).scalar_one()
            conn.execute(
                t.model_versions.insert().values(
                    name=name,
                    version=version,
                    source=source,
                    run_id=run_id,
                    model_id=model_id,
                    description=description,
                    creation_time=now,
                    last_updated_time=now,
                )
            )
            if tag_items:
                conn.execute(
                    t.model_version_tags.insert(),
                    [
                        {"name": name, "version": version, "key": k, "value": v}
                        for k, v in tag_items
                    ],
                )
        if created:
            self._emit("registered_model.created", {"name": name})
        self._emit(
            "model_version.created",
            {"name": name, "version": version, "source": source, "run_id": run_id},
        )
        return ModelVersion(
            name=name,
            version=version,
            source=source,
            run_id=run_id,
            model_id=model_id,
            description=description,
            tags=dict(tag_items),
            creation_time=now,
            last_updated_time=now,
        )

    def _load_versions(self, conn: Connection, rows: Sequence[Any]) -> list[ModelVersion]:
        keys = [(r.name, r.version) for r in rows]
        tags: dict[tuple[str, int], dict[str, str]] = defaultdict(dict)
        aliases: dict[tuple[str, int], list[str]] = defaultdict(list)
        if keys:
            vt, al = t.model_version_tags.c, t.registered_model_aliases.c
            for tag in conn.execute(
                select(t.model_version_tags).where(tuple_(vt.name, vt.version).in_(keys))
            ):
                tags[(tag.name, tag.version)][tag.key] = tag.value
            for alias in conn.execute(
                select(t.registered_model_aliases)
                .where(tuple_(al.name, al.version).in_(keys))
                .order_by(al.alias)
            ):
                aliases[(alias.name, alias.version)].append(alias.alias)
        return [
            ModelVersion(
                name=r.name,
                version=r.version,
                source=r.source,
                run_id=r.run_id,
                model_id=r.model_id,
                description=r.description,
                tags=tags[(r.name, r.version)],
                aliases=aliases[(r.name, r.version)],
                creation_time=r.creation_time,
                last_updated_time=r.last_updated_time,
            )
            for r in rows
        ]

    def _version_row(self, conn: Connection, name: str, version: int) -> Any:
        row = conn.execute(
            select(t.model_versions).where(_mv.name == name, _mv.version == version)
        ).first()
        if row is None:
            self._model_row(conn, name)
            raise NotFoundError(f"registered model {name!r} has no version {version}")
        return row

    def get_model_version(self, name: str, version: int) -> ModelVersion:
        """Return one version of a registered model."""
        version = check.version(version)
        with self._read() as conn:
            return self._load_versions(conn, [self._version_row(conn, name, version)])[0]

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """Return the version an alias points at; ``latest`` is the newest version."""
        with self._read() as conn:
            if alias.lower() == check.LATEST:
                version = self._model_row(conn, name).latest_version
                if not version:
                    raise NotFoundError(f"registered model {name!r} has no versions")
            else:
                al = t.registered_model_aliases.c
                version = conn.execute(
                    select(al.version).where(al.name == name, al.alias == alias)
                ).scalar()
                if version is None:
                    self._model_row(conn, name)
                    raise NotFoundError(f"registered model {name!r} has no alias {alias!r}")
            return self._load_versions(conn, [self._version_row(conn, name, version)])[0]

    def search_model_versions(
        self,
        filter_string: str | None = None,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> tuple[list[ModelVersion], str | None]:
        """Return one page of versions (by name, newest first), filtered like ``name = 'bot'``."""
        validation.max_results(max_results)
        offset = check.page_offset(page_token)
        stmt = select(t.model_versions)
        where = _VERSION_FILTER.clause(filter_string)
        if where is not None:
            stmt = stmt.where(where)
        stmt = stmt.order_by(_mv.name, _mv.version.desc()).offset(offset).limit(max_results + 1)
        with self._read() as conn:
            rows, token = page(conn.execute(stmt).all(), offset, max_results)
            return self._load_versions(conn, rows), token

    def update_model_version(
        self, name: str, version: int, description: str | None
    ) -> ModelVersion:
        """Change a version's description."""
        version = check.version(version)
        with self._write() as conn:
            self._version_row(conn, name, version)
            conn.execute(
                update(t.model_versions)
                .where(_mv.name == name, _mv.version == version)
                .values(description=description, last_updated_time=now_ms())
            )
        return self.get_model_version(name, version)

    def set_model_version_tag(self, name: str, version: int, key: str, value: str) -> None:
        """Set (or replace) a tag on a model version."""
        version = check.version(version)
        owner = {"name": name, "version": version}
        with self._write() as conn:
            self._version_row(conn, name, version)
            conn.execute(upsert_tag(self, t.model_version_tags, owner, key, value))
        self._emit("model_version_tag.set", {**owner, "key": key, "value": value})

    def delete_model_version_tag(self, name: str, version: int, key: str) -> None:
        """Remove a tag from a model version."""
        version = check.version(version)
        vt = t.model_version_tags.c
        with self._write() as conn:
            gone = conn.execute(
                delete(t.model_version_tags).where(
                    vt.name == name, vt.version == version, vt.key == key
                )
            ).rowcount
            if not gone:
                self._version_row(conn, name, version)
                raise NotFoundError(
                    f"version {version} of registered model {name!r} has no tag {key!r}"
                )

    def set_registered_model_alias(self, name: str, alias: str, version: int) -> None:
        """Point an alias at a version (moving it if it pointed elsewhere)."""
        alias = check.alias(alias)
        version = check.version(version)
        stmt = self._insert(t.registered_model_aliases).values(
            name=name, alias=alias, version=version
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["name", "alias"], set_={"version": stmt.excluded.version}
        )
        with self._write() as conn:
            self._version_row(conn, name, version)
            conn.execute(stmt)
        self._emit(
            "model_version_alias.created", {"name": name, "alias": alias, "version": version}
        )

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        """Remove an alias from a registered model."""
        al = t.registered_model_aliases.c
        with self._write() as conn:
            version = conn.execute(
                delete(t.registered_model_aliases)
                .where(al.name == name, al.alias == alias)
                .returning(al.version)
            ).scalar()
            if version is None:
                self._model_row(conn, name)
                raise NotFoundError(f"registered model {name!r} has no alias {alias!r}")
        self._emit(
            "model_version_alias.deleted", {"name": name, "alias": alias, "version": version}
        )

    def delete_model_version(self, name: str, version: int, *, force: bool = False) -> None:
        """Delete a version; one an alias points at needs `force` (the aliases go too)."""
        version = check.version(version)
        al, vt = t.registered_model_aliases.c, t.model_version_tags.c
        with self._write() as conn:
            self._version_row(conn, name, version)
            aliases = list(
                conn.execute(
                    select(al.alias).where(al.name == name, al.version == version)
                ).scalars()
            )
            refuse_aliased(f"version {version} of registered model {name!r}", aliases, force)
            conn.execute(
                delete(t.registered_model_aliases).where(al.name == name, al.version == version)
            )
            conn.execute(delete(t.model_version_tags).where(vt.name == name, vt.version == version))
            conn.execute(delete(t.model_versions).where(_mv.name == name, _mv.version == version))

    # -- logged models --------------------------------------------------------------

    def create_logged_model(self, model: LoggedModel) -> LoggedModel:
        """Record a model whose files were written under a run's artifacts."""
        validation.run_id(model.run_id)
        with self._write() as conn:
            run = conn.execute(
                select(t.runs.c.experiment_id).where(t.runs.c.run_id == model.run_id)
            ).first()
            if run is None:
                raise NotFoundError(f"run {model.run_id!r} does not exist")
            exists = conn.execute(
                select(t.logged_models.c.model_id).where(
                    t.logged_models.c.model_id == model.model_id
                )
            ).first()
            if exists is not None:
                raise AlreadyExistsError(f"logged model {model.model_id!r} already exists")
            conn.execute(
                t.logged_models.insert().values(
                    model_id=model.model_id,
                    name=model.name,
                    experiment_id=run.experiment_id,  # the run's, whatever the caller says
                    run_id=model.run_id,
                    artifact_path=model.artifact_path,
                    flavor=model.flavor,
                    creation_time=model.creation_time or now_ms(),
                )
            )
        return self.get_logged_model(model.model_id)

    def get_logged_model(self, model_id: str) -> LoggedModel:
        """Return a logged model by id."""
        with self._read() as conn:
            row = conn.execute(
                select(t.logged_models).where(t.logged_models.c.model_id == model_id)
            ).first()
        if row is None:
            raise NotFoundError(f"logged model {model_id!r} does not exist")
        return _logged_model(row)

    def search_logged_models(self, run_id: str) -> list[LoggedModel]:
        """Return the models logged by a run, oldest first."""
        lm = t.logged_models.c
        with self._read() as conn:
            rows = conn.execute(
                select(t.logged_models)
                .where(lm.run_id == run_id)
                .order_by(lm.creation_time, lm.model_id)
            ).all()
        return [_logged_model(r) for r in rows]


def _logged_model(row: Any) -> LoggedModel:
    return LoggedModel(
        model_id=row.model_id,
        name=row.name,
        experiment_id=str(row.experiment_id),
        run_id=row.run_id,
        artifact_path=row.artifact_path,
        flavor=row.flavor,
        creation_time=row.creation_time,
    )
