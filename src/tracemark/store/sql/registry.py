"""The prompt registry of the SQL store: prompts, immutable versions, tags and aliases.

A new version number is taken by bumping `prompts.latest_version` in the transaction
that inserts the version, so concurrent writers queue on that row and never collide.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, Table, delete, select, tuple_, update

from tracemark.entities.prompt import Prompt, PromptVersion
from tracemark.exceptions import ConflictError, NotFoundError
from tracemark.store import registry_validation as check
from tracemark.store import validation
from tracemark.store.sql import schema as t
from tracemark.store.sql.registry_search import NUMBER, STRING, RegistryFilter

_PROMPT_FILTER = RegistryFilter(
    "prompts",
    {
        "name": (t.prompts.c.name, STRING),
        "description": (t.prompts.c.description, STRING),
        "latest_version": (t.prompts.c.latest_version, NUMBER),
        "creation_time": (t.prompts.c.creation_time, NUMBER),
        "last_updated_time": (t.prompts.c.last_updated_time, NUMBER),
    },
    t.prompt_tags,
    (t.prompts.c.name,),
)


def tags_and_aliases(
    conn: Connection, tag_table: Table, alias_table: Table, names: Sequence[str]
) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, int]]]:
    """Load the tags and aliases of named prompts or models: one query each, not per name."""
    tags: dict[str, dict[str, str]] = defaultdict(dict)
    aliases: dict[str, dict[str, int]] = defaultdict(dict)
    if names:
        for tag in conn.execute(select(tag_table).where(tag_table.c.name.in_(names))):
            tags[tag.name][tag.key] = tag.value
        for alias in conn.execute(
            select(alias_table).where(alias_table.c.name.in_(names)).order_by(alias_table.c.alias)
        ):
            aliases[alias.name][alias.alias] = alias.version
    return tags, aliases


def now_ms() -> int:
    """Return the current time in integer milliseconds."""
    return time.time_ns() // 1_000_000


def page(rows: Sequence[Any], offset: int, max_results: int) -> tuple[Sequence[Any], str | None]:
    """Cut one page off rows fetched with `limit(max_results + 1)`; return it and the next token."""
    more = len(rows) > max_results
    return rows[:max_results], (str(offset + max_results) if more else None)


def upsert_tag(store: Any, table: Table, owner: Mapping[str, Any], key: str, value: str) -> Any:
    """Return the statement that sets one tag of a registry object."""
    ((key, value),) = validation.tags({key: value})
    stmt = store._insert(table).values(**owner, key=key, value=value)
    return stmt.on_conflict_do_update(
        index_elements=[*owner, "key"], set_={"value": stmt.excluded.value}
    )


class RegistryStoreMixin:
    """Prompt registry methods of `SqlStore` (which provides `_read`, `_write`, `_insert`)."""

    _read: Callable[..., Any]
    _write: Callable[..., Any]
    _insert: Callable[[Table], Any]

    # -- prompts --------------------------------------------------------------------

    def create_prompt_version(
        self,
        name: str,
        template: Any,
        commit_message: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> PromptVersion:
        """Store a new immutable version of a prompt, creating the prompt if new."""
        name = check.name(name, "prompt")
        template = check.template(template)
        tag_items = validation.tags(tags)
        now = now_ms()
        p = t.prompts.c
        with self._write() as conn:
            created = (
                conn.execute(
                    self._insert(t.prompts)
                    .values(
                        name=name,
                        description=None,
                        latest_version=0,
                        creation_time=now,
                        last_updated_time=now,
                    )
                    .on_conflict_do_nothing()
                    .returning(t.prompts.c.name)
                ).first()
                is not None
            )
            version = conn.execute(
                update(t.prompts)
                .where(p.name == name)
                .values(latest_version=p.latest_version + 1, last_updated_time=now)
                .returning(p.latest_version)
            ).scalar_one()
            conn.execute(
                t.prompt_versions.insert().values(
                    name=name,
                    version=version,
                    template=orjson.dumps(template).decode(),
                    commit_message=commit_message,
                    creation_time=now,
                )
            )
            if tag_items:
                conn.execute(
                    t.prompt_version_tags.insert(),
                    [
                        {"name": name, "version": version, "key": k, "value": v}
                        for k, v in tag_items
                    ],
                )
        result = PromptVersion(
            name=name,
            version=version,
            template=template,
            commit_message=commit_message,
            tags=dict(tag_items),
            creation_time=now,
        )
        if created:
            self._emit("prompt.created", {"name": name})
        self._emit("prompt_version.created", {"name": name, "version": version})
        return result

    def _prompt_row(self, conn: Connection, name: str) -> Any:
        row = conn.execute(select(t.prompts).where(t.prompts.c.name == name)).first()
        if row is None:
            raise NotFoundError(f"prompt {name!r} does not exist")
        return row

    def _load_prompt_versions(self, conn: Connection, rows: Sequence[Any]) -> list[PromptVersion]:
        keys = [(r.name, r.version) for r in rows]
        tags: dict[tuple[str, int], dict[str, str]] = defaultdict(dict)
        aliases: dict[tuple[str, int], list[str]] = defaultdict(list)
        if keys:
            vt, al = t.prompt_version_tags.c, t.prompt_aliases.c
            for tag in conn.execute(
                select(t.prompt_version_tags).where(tuple_(vt.name, vt.version).in_(keys))
            ):
                tags[(tag.name, tag.version)][tag.key] = tag.value
            for alias in conn.execute(
                select(t.prompt_aliases)
                .where(tuple_(al.name, al.version).in_(keys))
                .order_by(al.alias)
            ):
                aliases[(alias.name, alias.version)].append(alias.alias)
        return [
            PromptVersion(
                name=r.name,
                version=r.version,
                template=orjson.loads(r.template),
                commit_message=r.commit_message,
                tags=tags[(r.name, r.version)],
                aliases=aliases[(r.name, r.version)],
                creation_time=r.creation_time,
            )
            for r in rows
        ]

    def get_prompt_version(self, name: str, version: int) -> PromptVersion:
        """Return one version of a prompt."""
        version = check.version(version)
        v = t.prompt_versions.c
        with self._read() as conn:
            row = conn.execute(
                select(t.prompt_versions).where(v.name == name, v.version == version)
            ).first()
            if row is None:
                self._prompt_row(conn, name)
                raise NotFoundError(f"prompt {name!r} has no version {version}")
            return self._load_prompt_versions(conn, [row])[0]

    def get_prompt_version_by_alias(self, name: str, alias: str) -> PromptVersion:
        """Return the version an alias points at; ``latest`` is the newest version."""
        with self._read() as conn:
            if alias.lower() == check.LATEST:
                version = self._prompt_row(conn, name).latest_version
            else:
                al = t.prompt_aliases.c
                version = conn.execute(
                    select(al.version).where(al.name == name, al.alias == alias)
                ).scalar()
                if version is None:
                    self._prompt_row(conn, name)
                    raise NotFoundError(f"prompt {name!r} has no alias {alias!r}")
        return self.get_prompt_version(name, version)

    def _load_prompts(self, conn: Connection, rows: Sequence[Any]) -> list[Prompt]:
        tags, aliases = tags_and_aliases(
            conn, t.prompt_tags, t.prompt_aliases, [r.name for r in rows]
        )
        return [
            Prompt(
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

    def get_prompt(self, name: str) -> Prompt:
        """Return a prompt with its tags and aliases."""
        with self._read() as conn:
            return self._load_prompts(conn, [self._prompt_row(conn, name)])[0]

    def search_prompts(
        self,
        filter_string: str | None = None,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> tuple[list[Prompt], str | None]:
        """Return one page of prompts by name, filtered like ``name LIKE 'qa%'``."""
        validation.max_results(max_results)
        offset = check.page_offset(page_token)
        stmt = select(t.prompts)
        where = _PROMPT_FILTER.clause(filter_string)
        if where is not None:
            stmt = stmt.where(where)
        stmt = stmt.order_by(t.prompts.c.name).offset(offset).limit(max_results + 1)
        with self._read() as conn:
            rows, token = page(conn.execute(stmt).all(), offset, max_results)
            return self._load_prompts(conn, rows), token

    def search_prompt_versions(
        self, name: str, max_results: int = 100, page_token: str | None = None
    ) -> tuple[list[PromptVersion], str | None]:
        """Return one page of a prompt's versions, newest first."""
        validation.max_results(max_results)
        offset = check.page_offset(page_token)
        v = t.prompt_versions.c
        stmt = (
            select(t.prompt_versions)
            .where(v.name == name)
            .order_by(v.version.desc())
            .offset(offset)
            .limit(max_results + 1)
        )
        with self._read() as conn:
            self._prompt_row(conn, name)
            rows, token = page(conn.execute(stmt).all(), offset, max_results)
            return self._load_prompt_versions(conn, rows), token

    def set_prompt_alias(self, name: str, alias: str, version: int) -> None:
        """Point an alias at a version (moving it if it pointed elsewhere)."""
        alias = check.alias(alias)
        version = check.version(version)
        v = t.prompt_versions.c
        stmt = self._insert(t.prompt_aliases).values(name=name, alias=alias, version=version)
        stmt = stmt.on_conflict_do_update(
            index_elements=["name", "alias"], set_={"version": stmt.excluded.version}
        )
        with self._write() as conn:
            found = conn.execute(
                select(v.version).where(v.name == name, v.version == version)
            ).first()
            if found is None:
                self._prompt_row(conn, name)
                raise NotFoundError(f"prompt {name!r} has no version {version}")
            conn.execute(stmt)
            self._touch_prompt(conn, name)
        self._emit("prompt_alias.created", {"name": name, "alias": alias, "version": version})

    def delete_prompt_alias(self, name: str, alias: str) -> None:
        """Remove an alias from a prompt."""
        al = t.prompt_aliases.c
        with self._write() as conn:
            version = conn.execute(
                delete(t.prompt_aliases)
                .where(al.name == name, al.alias == alias)
                .returning(al.version)
            ).scalar()
            if version is None:
                self._prompt_row(conn, name)
                raise NotFoundError(f"prompt {name!r} has no alias {alias!r}")
            self._touch_prompt(conn, name)
        self._emit("prompt_alias.deleted", {"name": name, "alias": alias, "version": version})

    def _touch_prompt(self, conn: Connection, name: str) -> None:
        conn.execute(
            update(t.prompts).where(t.prompts.c.name == name).values(last_updated_time=now_ms())
        )

    def set_prompt_tag(self, name: str, key: str, value: str) -> None:
        """Set (or replace) a tag on a prompt."""
        with self._write() as conn:
            self._prompt_row(conn, name)
            conn.execute(upsert_tag(self, t.prompt_tags, {"name": name}, key, value))
            self._touch_prompt(conn, name)

    def delete_prompt_tag(self, name: str, key: str) -> None:
        """Remove a tag from a prompt."""
        tc = t.prompt_tags.c
        with self._write() as conn:
            if not conn.execute(
                delete(t.prompt_tags).where(tc.name == name, tc.key == key)
            ).rowcount:
                self._prompt_row(conn, name)
                raise NotFoundError(f"prompt {name!r} has no tag {key!r}")

    def delete_prompt_version(self, name: str, version: int, *, force: bool = False) -> None:
        """Delete a version; one an alias points at needs `force` (the alias goes too)."""
        version = check.version(version)
        v, al = t.prompt_versions.c, t.prompt_aliases.c
        with self._write() as conn:
            aliases = conn.execute(
                select(al.alias).where(al.name == name, al.version == version)
            ).scalars()
            refuse_aliased(f"version {version} of prompt {name!r}", list(aliases), force)
            conn.execute(delete(t.prompt_aliases).where(al.name == name, al.version == version))
            conn.execute(
                delete(t.prompt_version_tags).where(
                    t.prompt_version_tags.c.name == name, t.prompt_version_tags.c.version == version
                )
            )
            gone = conn.execute(
                delete(t.prompt_versions).where(v.name == name, v.version == version)
            ).rowcount
            if not gone:
                self._prompt_row(conn, name)
                raise NotFoundError(f"prompt {name!r} has no version {version}")

    def delete_prompt(self, name: str, *, force: bool = False) -> None:
        """Delete a prompt and all its versions; a prompt with aliases needs `force`."""
        al = t.prompt_aliases.c
        with self._write() as conn:
            self._prompt_row(conn, name)
            aliases = list(conn.execute(select(al.alias).where(al.name == name)).scalars())
            refuse_aliased(f"prompt {name!r}", aliases, force)
            for table in (
                t.prompt_aliases,
                t.prompt_version_tags,
                t.prompt_versions,
                t.prompt_tags,
            ):
                conn.execute(delete(table).where(table.c.name == name))
            conn.execute(delete(t.prompts).where(t.prompts.c.name == name))


def refuse_aliased(what: str, aliases: list[str], force: bool) -> None:
    """Raise ConflictError when aliases point at what is being deleted, unless forced."""
    if aliases and not force:
        raise ConflictError(
            f"{what} is used by alias(es) {', '.join(sorted(aliases))}: move or delete them "
            "first, or pass force=True to delete them too"
        )
