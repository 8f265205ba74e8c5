"""The SQL store: experiments and runs on SQLite or PostgreSQL through SQLAlchemy Core."""

from __future__ import annotations

import math
import os
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, and_, bindparam, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DataError, IntegrityError, OperationalError

from tracemark.entities import Experiment, LifecycleStage, Metric, Param, Run, RunStatus, RunTag
from tracemark.exceptions import (
    AlreadyExistsError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    StoreError,
)
from tracemark.store import validation
from tracemark.store.artifacts import LocalArtifactRepository
from tracemark.store.base import ViewType
from tracemark.store.sql import schema as t
from tracemark.store.sql.datasets import DatasetStoreMixin
from tracemark.store.sql.engine import (
    WRITE,
    build_engine,
    normalize_url,
    sqlite_path,
    stop_checkpointer,
    unprepared,
    write_lock,
)
from tracemark.store.sql.migrate import ensure_schema
from tracemark.store.sql.model_registry import ModelRegistryStoreMixin
from tracemark.store.sql.registry import RegistryStoreMixin
from tracemark.store.sql.scorers import ScorerStoreMixin
from tracemark.store.sql.traces import TraceStoreMixin
from tracemark.store.sql.webhooks import WebhookStoreMixin

DEFAULT_EXPERIMENT_ID = "0"
DEFAULT_EXPERIMENT_NAME = "Default"


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def default_artifact_root(uri: str) -> str:
    """Return `tracemark-artifacts` beside a SQLite file, else in the working directory."""
    path = sqlite_path(normalize_url(uri))
    base = os.path.dirname(path) if path else os.getcwd()
    return os.path.join(base, "tracemark-artifacts")


class SqlStore(
    TraceStoreMixin,
    RegistryStoreMixin,
    ModelRegistryStoreMixin,
    WebhookStoreMixin,
    DatasetStoreMixin,
    ScorerStoreMixin,
):
    """Store experiments, runs and traces in SQLite or PostgreSQL.

    A new database is created and migrated on first use; an older or newer schema is
    refused with a message that says what to do.
    """

    def __init__(self, uri: str, artifact_root: str | None = None) -> None:
        self.uri = uri
        self.engine = build_engine(uri)
        self.dialect = self.engine.dialect.name
        self.artifact_root = os.path.abspath(artifact_root or default_artifact_root(uri))
        try:
            ensure_schema(self.engine)
        except OperationalError as exc:
            raise StoreError(f"cannot open the database {self._safe_uri()}: {exc.orig}") from exc
        self._build_statements()
        self._build_trace_statements()
        self._ensure_default_experiment()

    def _build_statements(self) -> None:
        """Build the hot statements once; SQLAlchemy then reuses their compiled form."""
        self._select_run = select(t.runs.c.run_id, t.runs.c.lifecycle_stage).where(
            t.runs.c.run_id == bindparam("rid")
        )
        self._insert_metric = t.metrics.insert()
        latest = self._insert(t.latest_metrics)
        old, new = t.latest_metrics.c, latest.excluded
        self._upsert_latest = latest.on_conflict_do_update(
            index_elements=["run_id", "key"],
            set_={
                "value": new.value,
                "is_nan": new.is_nan,
                "timestamp": new.timestamp,
                "step": new.step,
            },
            where=or_(
                new.step > old.step, and_(new.step == old.step, new.timestamp >= old.timestamp)
            ),
        )
        self._insert_params_stmt = self._insert(t.params).on_conflict_do_nothing()
        tag = self._insert(t.run_tags)
        self._upsert_tag = tag.on_conflict_do_update(
            index_elements=["run_id", "key"], set_={"value": tag.excluded.value}
        )

    def _safe_uri(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        """Release every pooled connection (and stop the SQLite WAL checkpointer)."""
        stop_checkpointer(self.engine)
        self.engine.dispose()

    # -- transactions ---------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with _refused_values(), self.engine.connect() as conn, write_lock(self.engine):
            conn.execution_options(**{WRITE: True})
            with conn.begin():
                yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with _refused_values(), self.engine.connect() as conn, conn.begin(), unprepared(conn):
            yield conn

    def _insert(self, table: Any) -> Any:
        dialect = postgresql if self.dialect == "postgresql" else sqlite
        return dialect.insert(table)

    # -- experiments ----------------------------------------------------------------

    def _ensure_default_experiment(self) -> None:
        with self._read() as conn:
            found = conn.execute(
                select(t.experiments.c.experiment_id).where(t.experiments.c.experiment_id == 0)
            ).first()
        if found is not None:
            return
        now = _now_ms()
        stmt = (
            self._insert(t.experiments)
            .values(
                experiment_id=0,
                name=DEFAULT_EXPERIMENT_NAME,
                artifact_location=os.path.join(self.artifact_root, DEFAULT_EXPERIMENT_ID),
                lifecycle_stage=LifecycleStage.ACTIVE,
                creation_time=now,
                last_update_time=now,
            )
            .on_conflict_do_nothing()
        )
        with self._write() as conn:
            conn.execute(stmt)

    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: dict[str, str] | None = None
    ) -> str:
        """Create an experiment and return its id; the name must be unused."""
        name = validation.experiment_name(name)
        tag_items = validation.tags(tags)
        now = _now_ms()
        try:
            with self._write() as conn:
                experiment_id = conn.execute(
                    t.experiments.insert()
                    .values(
                        name=name,
                        artifact_location=artifact_location or "",
                        lifecycle_stage=LifecycleStage.ACTIVE,
                        creation_time=now,
                        last_update_time=now,
                    )
                    .returning(t.experiments.c.experiment_id)
                ).scalar_one()
                if not artifact_location:
                    conn.execute(
                        update(t.experiments)
                        .where(t.experiments.c.experiment_id == experiment_id)
                        .values(
                            artifact_location=os.path.join(self.artifact_root, str(experiment_id))
                        )
                    )
                if tag_items:
                    conn.execute(
                        t.experiment_tags.insert(),
                        [
                            {"experiment_id": experiment_id, "key": k, "value": v}
                            for k, v in tag_items
                        ],
                    )
        except IntegrityError as exc:
            raise AlreadyExistsError(f"experiment {name!r} already exists") from exc
        return str(experiment_id)

    def _experiment_id(self, experiment_id: str | int) -> int:
        try:
            value = int(experiment_id)
        except (TypeError, ValueError):
            value = -1
        if isinstance(experiment_id, bool) or not 0 <= value < 2**63:
            raise InvalidInputError(
                f"experiment id must be a string of digits below 2**63, got {experiment_id!r}",
                field="experiment_id",
            )
        return value

    def _load_experiments(self, conn: Connection, rows: Sequence[Any]) -> list[Experiment]:
        ids = [r.experiment_id for r in rows]
        tags: dict[int, dict[str, str]] = defaultdict(dict)
        if ids:
            for tag in conn.execute(
                select(t.experiment_tags).where(t.experiment_tags.c.experiment_id.in_(ids))
            ):
                tags[tag.experiment_id][tag.key] = tag.value
        return [
            Experiment(
                experiment_id=str(r.experiment_id),
                name=r.name,
                artifact_location=r.artifact_location,
                lifecycle_stage=r.lifecycle_stage,
                tags=tags[r.experiment_id],
                creation_time=r.creation_time,
                last_update_time=r.last_update_time,
            )
            for r in rows
        ]

    def get_experiment(self, experiment_id: str) -> Experiment:
        """Return the experiment with this id (deleted ones included)."""
        eid = self._experiment_id(experiment_id)
        with self._read() as conn:
            row = conn.execute(
                select(t.experiments).where(t.experiments.c.experiment_id == eid)
            ).first()
            if row is None:
                raise NotFoundError(f"experiment with id {experiment_id!r} does not exist")
            return self._load_experiments(conn, [row])[0]

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        """Return the experiment with this name, or None."""
        with self._read() as conn:
            row = conn.execute(select(t.experiments).where(t.experiments.c.name == name)).first()
            return None if row is None else self._load_experiments(conn, [row])[0]

    def search_experiments(
        self,
        view_type: str = ViewType.ACTIVE_ONLY,
        filter_string: str | None = None,
        max_results: int = 1000,
        order_by: Sequence[str] | None = None,
    ) -> list[Experiment]:
        """Return experiments matching a filter such as ``name LIKE 'chat%'``."""
        from tracemark.store.filter_grammar import parse_filter, parse_order_by
        from tracemark.store.sql.run_search import (
            experiment_filter_clause,
            experiment_order_clauses,
            lifecycle_condition,
        )

        validation.view_type(view_type)
        validation.max_results(max_results)
        stmt = select(t.experiments)
        stage = lifecycle_condition(t.experiments.c.lifecycle_stage, view_type)
        if stage is not None:
            stmt = stmt.where(stage)
        expr = parse_filter(filter_string)
        if expr is not None:
            stmt = stmt.where(experiment_filter_clause(expr, filter_string=filter_string or ""))
        stmt = stmt.order_by(*experiment_order_clauses(parse_order_by(order_by)))
        with self._read() as conn:
            rows = conn.execute(stmt.limit(max_results)).all()
            return self._load_experiments(conn, rows)

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        """Give an experiment a new, unused name."""
        new_name = validation.experiment_name(new_name)
        try:
            self._update_experiment(experiment_id, name=new_name)
        except IntegrityError as exc:
            raise AlreadyExistsError(f"experiment {new_name!r} already exists") from exc

    def delete_experiment(self, experiment_id: str) -> None:
        """Mark an experiment and its runs deleted; `restore_experiment` undoes it."""
        if str(experiment_id) == DEFAULT_EXPERIMENT_ID:
            raise InvalidInputError(
                "the default experiment cannot be deleted", field="experiment_id"
            )
        self._set_experiment_lifecycle(experiment_id, LifecycleStage.DELETED)

    def restore_experiment(self, experiment_id: str) -> None:
        """Bring back a deleted experiment and its runs."""
        self._set_experiment_lifecycle(experiment_id, LifecycleStage.ACTIVE)

    def _set_experiment_lifecycle(self, experiment_id: str, stage: str) -> None:
        eid = self._experiment_id(experiment_id)
        with self._write() as conn:
            self._update_experiment(experiment_id, conn=conn, lifecycle_stage=stage)
            conn.execute(
                update(t.runs).where(t.runs.c.experiment_id == eid).values(lifecycle_stage=stage)
            )

    def _update_experiment(
        self, experiment_id: str, conn: Connection | None = None, **values: Any
    ) -> None:
        eid = self._experiment_id(experiment_id)
        stmt = (
            update(t.experiments)
            .where(t.experiments.c.experiment_id == eid)
            .values(last_update_time=_now_ms(), **values)
        )
        if conn is None:
            with self._write() as own:
                result = own.execute(stmt)
        else:
            result = conn.execute(stmt)
        if result.rowcount == 0:
            raise NotFoundError(f"experiment with id {experiment_id!r} does not exist")

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        """Set (or replace) a tag on an experiment."""
        ((key, value),) = validation.tags({key: value})
        eid = self._experiment_id(experiment_id)
        stmt = self._insert(t.experiment_tags).values(experiment_id=eid, key=key, value=value)
        stmt = stmt.on_conflict_do_update(
            index_elements=["experiment_id", "key"], set_={"value": stmt.excluded.value}
        )
        with self._write() as conn:
            self._update_experiment(experiment_id, conn=conn)
            conn.execute(stmt)

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        """Remove a tag from an experiment."""
        eid = self._experiment_id(experiment_id)
        with self._write() as conn:
            result = conn.execute(
                delete(t.experiment_tags).where(
                    t.experiment_tags.c.experiment_id == eid, t.experiment_tags.c.key == key
                )
            )
            if result.rowcount == 0:
                raise NotFoundError(f"experiment {experiment_id!r} has no tag {key!r}")

    # -- runs -----------------------------------------------------------------------

    def create_run(
        self,
        experiment_id: str,
        run_name: str | None,
        start_time: int,
        tags: dict[str, str] | None = None,
        parent_run_id: str | None = None,
    ) -> Run:
        """Start a run in an active experiment."""
        experiment = self.get_experiment(experiment_id)
        if experiment.lifecycle_stage != LifecycleStage.ACTIVE:
            raise InvalidInputError(
                f"experiment {experiment.name!r} is deleted; restore it before starting runs",
                field="experiment_id",
            )
        run_id = uuid.uuid4().hex
        name = validation.run_name(run_name) if run_name else _generated_run_name(run_id)
        tag_items = validation.tags(tags)
        artifact_uri = os.path.join(experiment.artifact_location, run_id, "artifacts")
        with self._write() as conn:
            if parent_run_id is not None:
                self._require_run(conn, parent_run_id)
            conn.execute(
                t.runs.insert().values(
                    run_id=run_id,
                    experiment_id=int(experiment.experiment_id),
                    name=name,
                    status=RunStatus.RUNNING,
                    start_time=start_time,
                    end_time=None,
                    lifecycle_stage=LifecycleStage.ACTIVE,
                    artifact_uri=artifact_uri,
                    parent_run_id=parent_run_id,
                )
            )
            if tag_items:
                conn.execute(
                    t.run_tags.insert(),
                    [{"run_id": run_id, "key": k, "value": v} for k, v in tag_items],
                )
        return Run(
            run_id=run_id,
            experiment_id=experiment.experiment_id,
            run_name=name,
            status=RunStatus.RUNNING,
            start_time=start_time,
            end_time=None,
            artifact_uri=artifact_uri,
            parent_run_id=parent_run_id,
            tags=dict(tag_items),
        )

    def _require_run(self, conn: Connection, run_id: str, *, active: bool = False) -> Any:
        row = conn.execute(self._select_run, {"rid": run_id}).first()
        if row is None:
            raise NotFoundError(f"run {run_id!r} does not exist")
        if active and row.lifecycle_stage != LifecycleStage.ACTIVE:
            raise InvalidInputError(f"run {run_id!r} is deleted; restore it first", field="run_id")
        return row

    def get_run(self, run_id: str) -> Run:
        """Return a run with its params, tags and latest metrics."""
        validation.run_id(run_id)
        with self._read() as conn:
            row = conn.execute(select(t.runs).where(t.runs.c.run_id == run_id)).first()
            if row is None:
                raise NotFoundError(f"run {run_id!r} does not exist")
            return self._load_runs(conn, [row])[0]

    def _load_runs(self, conn: Connection, rows: Sequence[Any]) -> list[Run]:
        ids = [r.run_id for r in rows]
        params: dict[str, dict[str, str]] = defaultdict(dict)
        tags: dict[str, dict[str, str]] = defaultdict(dict)
        metrics: dict[str, dict[str, float]] = defaultdict(dict)
        # One query per child table for the whole page of runs, never one per run.
        for chunk in _chunks(ids, 500):
            for p in conn.execute(select(t.params).where(t.params.c.run_id.in_(chunk))):
                params[p.run_id][p.key] = p.value
            for g in conn.execute(select(t.run_tags).where(t.run_tags.c.run_id.in_(chunk))):
                tags[g.run_id][g.key] = g.value
            for m in conn.execute(
                select(t.latest_metrics).where(t.latest_metrics.c.run_id.in_(chunk))
            ):
                metrics[m.run_id][m.key] = math.nan if m.is_nan else m.value
        return [
            Run(
                run_id=r.run_id,
                experiment_id=str(r.experiment_id),
                run_name=r.name,
                status=r.status,
                start_time=r.start_time,
                end_time=r.end_time,
                artifact_uri=r.artifact_uri,
                lifecycle_stage=r.lifecycle_stage,
                parent_run_id=r.parent_run_id,
                params=params[r.run_id],
                metrics=metrics[r.run_id],
                tags=tags[r.run_id],
            )
            for r in rows
        ]

    def update_run(
        self,
        run_id: str,
        *,
        status: str | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> Run:
        """Change a run's status, end time or name and return the updated run."""
        values: dict[str, Any] = {}
        if status is not None:
            values["status"] = validation.run_status(status)
        if end_time is not None:
            values["end_time"] = end_time
        if run_name is not None:
            values["name"] = validation.run_name(run_name)
        validation.run_id(run_id)
        with self._write() as conn:
            self._require_run(conn, run_id)
            if values:
                conn.execute(update(t.runs).where(t.runs.c.run_id == run_id).values(**values))
        return self.get_run(run_id)

    def delete_run(self, run_id: str) -> None:
        """Mark a run deleted; `restore_run` undoes it."""
        self._set_run_lifecycle(run_id, LifecycleStage.DELETED)

    def restore_run(self, run_id: str) -> None:
        """Bring back a deleted run."""
        self._set_run_lifecycle(run_id, LifecycleStage.ACTIVE)

    def _set_run_lifecycle(self, run_id: str, stage: str) -> None:
        validation.run_id(run_id)
        with self._write() as conn:
            result = conn.execute(
                update(t.runs).where(t.runs.c.run_id == run_id).values(lifecycle_stage=stage)
            )
            if result.rowcount == 0:
                raise NotFoundError(f"run {run_id!r} does not exist")

    def artifact_repository(self, run: Run) -> LocalArtifactRepository:
        """Return the repository holding a run's artifacts (a local folder)."""
        return LocalArtifactRepository(run.artifact_uri)

    def log_metric(self, run_id: str, metric: Metric) -> None:
        """Append one metric value to a run's history."""
        self.log_batch(run_id, metrics=(metric,))

    def log_param(self, run_id: str, param: Param) -> None:
        """Log a write-once param; the same value again is fine, a different one conflicts."""
        self.log_batch(run_id, params=(param,))

    def set_tag(self, run_id: str, tag: RunTag) -> None:
        """Set (or replace) a tag on a run."""
        self.log_batch(run_id, tags=(tag,))

    def delete_tag(self, run_id: str, key: str) -> None:
        """Remove a tag from a run."""
        validation.run_id(run_id)
        with self._write() as conn:
            self._require_run(conn, run_id, active=True)
            result = conn.execute(
                delete(t.run_tags).where(t.run_tags.c.run_id == run_id, t.run_tags.c.key == key)
            )
            if result.rowcount == 0:
                raise NotFoundError(f"run {run_id!r} has no tag {key!r}")

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None:
        """Log metrics, params and tags in one transaction: all of them or none."""
        validation.run_id(run_id)
        metric_rows = [validation.metric_row(run_id, m) for m in metrics]
        param_rows = validation.param_rows(run_id, params)
        tag_rows = [validation.tag_row(run_id, g) for g in tags]
        with self._write() as conn:
            self._require_run(conn, run_id, active=True)
            if param_rows:
                self._insert_params(conn, run_id, param_rows)
            if metric_rows:
                conn.execute(self._insert_metric, metric_rows)
                self._update_latest_metrics(conn, metric_rows)
            if tag_rows:
                conn.execute(self._upsert_tag, tag_rows)

    def _insert_params(self, conn: Connection, run_id: str, rows: list[dict[str, Any]]) -> None:
        conn.execute(self._insert_params_stmt, rows)
        keys = [r["key"] for r in rows]
        stored = dict(
            conn.execute(
                select(t.params.c.key, t.params.c.value).where(
                    t.params.c.run_id == run_id, t.params.c.key.in_(keys)
                )
            ).all()
        )
        for row in rows:
            if stored.get(row["key"]) != row["value"]:
                raise ConflictError(
                    f"param {row['key']!r} of run {run_id!r} was already logged with value "
                    f"{stored.get(row['key'])!r}; it cannot change to {row['value']!r} "
                    "(params are write-once)"
                )

    def _update_latest_metrics(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        latest: dict[str, dict[str, Any]] = {}
        for row in rows:
            best = latest.get(row["key"])
            if best is None or (row["step"], row["timestamp"]) >= (best["step"], best["timestamp"]):
                latest[row["key"]] = row
        conn.execute(self._upsert_latest, list(latest.values()))

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Return every value logged for a metric, in step then time order."""
        validation.run_id(run_id)
        m = t.metrics.c
        with self._read() as conn:
            self._require_run(conn, run_id)
            rows = conn.execute(
                select(m.key, m.value, m.is_nan, m.timestamp, m.step)
                .where(m.run_id == run_id, m.key == key)
                .order_by(m.step, m.timestamp, m.id)
            ).all()
        return [Metric(r.key, math.nan if r.is_nan else r.value, r.timestamp, r.step) for r in rows]

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        view_type: str = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> tuple[list[Run], str | None]:
        """Return one page of runs matching a filter, and the token of the next page."""
        from tracemark.store.sql.run_search import build_run_select

        ids = [self._experiment_id(e) for e in experiment_ids]
        stmt, next_token = build_run_select(
            ids, filter_string, view_type, order_by, max_results, page_token
        )
        with self._read() as conn:
            rows = conn.execute(stmt).all()
            more = len(rows) > max_results
            runs = self._load_runs(conn, rows[:max_results])
        return runs, (next_token if more else None)


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


_ADJECTIVES = ("amber", "bold", "calm", "deft", "eager", "fair", "glad", "keen", "lucid", "merry")
_NOUNS = ("otter", "finch", "maple", "comet", "delta", "falcon", "harbor", "lynx", "quartz", "wren")


def _generated_run_name(run_id: str) -> str:
    n = int(run_id[:8], 16)
    return f"{_ADJECTIVES[n % 10]}-{_NOUNS[(n // 10) % 10]}-{n % 1000}"


@contextmanager
def _refused_values() -> Iterator[None]:
    """Turn a value the database refuses into an InvalidInputError (the caller's input).

    PostgreSQL refuses a NUL character in text and numbers out of a column's range.
    """
    try:
        yield
    except DataError as exc:
        reason = " ".join(str(getattr(exc, "orig", None) or exc).split())
        if "0x00" in reason or "NUL" in reason:
            reason = "text contains a NUL character (\\x00), which the database cannot store"
        raise InvalidInputError(f"the database refused a value: {reason}") from exc
