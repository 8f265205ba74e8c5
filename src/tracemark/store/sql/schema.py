"""Table definitions of the SQL store (SQLAlchemy Core); migrations mirror them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

# The newest migration this code knows; checked on every open without importing Alembic.
HEAD_REVISION = "0005_evaluation"

# SQLite only auto-increments an INTEGER PRIMARY KEY, PostgreSQL wants a BIGINT.
AutoId = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

experiments = Table(
    "experiments",
    metadata,
    Column("experiment_id", AutoId, primary_key=True, autoincrement=True),
    Column("name", String(256), nullable=False, unique=True),
    Column("artifact_location", Text, nullable=False),
    Column("lifecycle_stage", String(32), nullable=False, default="active"),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_update_time", BigInteger, nullable=False),
)

experiment_tags = Table(
    "experiment_tags",
    metadata,
    Column(
        "experiment_id",
        AutoId,
        ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("key", String(250), nullable=False),
    Column("value", Text, nullable=False),
    PrimaryKeyConstraint("experiment_id", "key"),
)

runs = Table(
    "runs",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column(
        "experiment_id",
        AutoId,
        ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("name", String(250), nullable=False),
    Column("status", String(20), nullable=False),
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger, nullable=True),
    Column("lifecycle_stage", String(32), nullable=False, default="active"),
    Column("artifact_uri", Text, nullable=False),
    Column("parent_run_id", String(32), nullable=True),
    Index("ix_runs_experiment_start", "experiment_id", "start_time"),
    Index("ix_runs_parent_run_id", "parent_run_id"),
)


def _run_fk() -> ForeignKeyConstraint:
    return ForeignKeyConstraint(["run_id"], ["runs.run_id"], ondelete="CASCADE")


params = Table(
    "params",
    metadata,
    Column("run_id", String(32), nullable=False),
    Column("key", String(250), nullable=False),
    Column("value", Text, nullable=False),
    PrimaryKeyConstraint("run_id", "key"),
    _run_fk(),
)

run_tags = Table(
    "run_tags",
    metadata,
    Column("run_id", String(32), nullable=False),
    Column("key", String(250), nullable=False),
    Column("value", Text, nullable=False),
    PrimaryKeyConstraint("run_id", "key"),
    _run_fk(),
)

metrics = Table(
    "metrics",
    metadata,
    Column("id", AutoId, primary_key=True, autoincrement=True),
    Column("run_id", String(32), nullable=False),
    Column("key", String(250), nullable=False),
    # SQLite stores NaN as NULL, so NaN is kept as a flag with value 0.
    Column("value", Float(precision=53), nullable=False),
    Column("is_nan", Boolean, nullable=False, default=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("step", BigInteger, nullable=False, default=0),
    _run_fk(),
    Index("ix_metrics_run_key_step", "run_id", "key", "step"),
)

latest_metrics = Table(
    "latest_metrics",
    metadata,
    Column("run_id", String(32), nullable=False),
    Column("key", String(250), nullable=False),
    Column("value", Float(precision=53), nullable=False),
    Column("is_nan", Boolean, nullable=False, default=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("step", BigInteger, nullable=False),
    PrimaryKeyConstraint("run_id", "key"),
    _run_fk(),
    Index("ix_latest_metrics_key_value", "key", "value"),
)


# --- traces ---------------------------------------------------------------------------------


class JsonText(TypeDecorator[str]):
    """JSON held as text by Python: TEXT on SQLite, JSONB on PostgreSQL.

    Values are bound and read as already-serialized JSON text, never decoded and encoded
    again in Python: PostgreSQL receives ``%(x)s::JSONB`` and parses the text itself.
    Readers select ``CAST(column AS TEXT)`` on PostgreSQL to get text back.
    """

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        """Use JSONB on PostgreSQL and TEXT elsewhere."""
        if dialect.name == "postgresql":
            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(Text())

    def bind_processor(self, dialect: Dialect) -> None:
        """Pass the JSON text through unchanged (JSONB's processor would encode it again)."""
        return None

    def result_processor(self, dialect: Dialect, coltype: object) -> None:
        """Return what the driver returns; readers cast JSONB to text in the query."""
        return None


def _trace_fk() -> ForeignKeyConstraint:
    return ForeignKeyConstraint(["trace_id"], ["trace_info.trace_id"], ondelete="CASCADE")


trace_info = Table(
    "trace_info",
    metadata,
    Column("trace_id", String(32), primary_key=True),
    Column(
        "experiment_id",
        AutoId,
        ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        nullable=False,
    ),
    # No foreign key: traces arrive from a background exporter and must not fail on a run
    # that another process has not committed yet.
    Column("run_id", String(32), nullable=True),
    Column("name", Text, nullable=False, default=""),
    Column("timestamp_ms", BigInteger, nullable=False),
    Column("execution_time_ms", BigInteger, nullable=True),
    Column("status", String(20), nullable=False),
    Column("request_preview", Text, nullable=True),
    Column("response_preview", Text, nullable=True),
    Column("input_tokens", BigInteger, nullable=True),
    Column("output_tokens", BigInteger, nullable=True),
    Column("total_tokens", BigInteger, nullable=True),
    Column("cost", Float(precision=53), nullable=True),
    Column("span_count", Integer, nullable=False, default=0),
    Index("ix_trace_info_experiment_timestamp", "experiment_id", "timestamp_ms"),
    Index("ix_trace_info_status", "status"),
    Index("ix_trace_info_execution_time_ms", "execution_time_ms"),
    Index("ix_trace_info_run_id", "run_id"),
)


def _trace_key_value_table(name: str) -> Table:
    table = Table(
        name,
        metadata,
        Column("trace_id", String(32), nullable=False),
        Column("key", String(250), nullable=False),
        Column("value", Text, nullable=False),
        PrimaryKeyConstraint("trace_id", "key"),
        _trace_fk(),
    )
    # A B-tree entry in PostgreSQL is limited to about 2.7 KB, which a long value would
    # exceed and fail the whole batch; a hash index has no such limit and serves `=`/IN.
    Index(f"ix_{name}_key_value", table.c.key, table.c.value).ddl_if(dialect="sqlite")
    Index(f"ix_{name}_value", table.c.value, postgresql_using="hash").ddl_if(dialect="postgresql")
    return table


trace_tags = _trace_key_value_table("trace_tags")
# Write-once metadata: session_id, user_id, source, app version, prompt versions.
trace_metadata = _trace_key_value_table("trace_metadata")

spans = Table(
    "spans",
    metadata,
    Column("trace_id", String(32), nullable=False),
    Column("span_id", String(16), nullable=False),
    Column("parent_id", String(16), nullable=True),
    Column("name", Text, nullable=False),
    Column("span_type", Text, nullable=False),
    Column("start_time_ns", BigInteger, nullable=False),
    Column("end_time_ns", BigInteger, nullable=True),
    Column("status_code", String(10), nullable=False),
    Column("status_message", Text, nullable=False, default=""),
    Column("inputs", JsonText, nullable=True),
    Column("outputs", JsonText, nullable=True),
    # Payloads over the inline limit live compressed in the artifact store; these hold
    # their path relative to the artifact root.
    Column("inputs_ref", String(256), nullable=True),
    Column("outputs_ref", String(256), nullable=True),
    Column("attributes", JsonText, nullable=False),
    Column("events", JsonText, nullable=False),
    # The primary key's index serves lookups by trace_id; no second index is kept.
    PrimaryKeyConstraint("trace_id", "span_id"),
    _trace_fk(),
    Index("ix_spans_span_type", "span_type"),
)
# Same reason as for tag values: span names from OpenTelemetry can be arbitrarily long.
Index("ix_spans_name", spans.c.name).ddl_if(dialect="sqlite")
Index("ix_spans_name_hash", spans.c.name, postgresql_using="hash").ddl_if(dialect="postgresql")

assessments = Table(
    "assessments",
    metadata,
    Column("assessment_id", String(64), primary_key=True),
    Column("trace_id", String(32), nullable=False),
    Column("span_id", String(16), nullable=True),
    Column("name", String(250), nullable=False),
    Column("kind", String(20), nullable=False),
    # JSON text; plain TEXT on PostgreSQL too, because JSONB would rewrite 1e16 as an
    # integer and a verdict must come back with the type it was given.
    Column("value", Text, nullable=True),
    # Derived from `value` for filtering without JSON functions: its text form (a string
    # as is, true/false, other JSON as text) and, for numbers, its numeric value.
    Column("value_text", Text, nullable=True),
    Column("value_number", Float(precision=53), nullable=True),
    Column("rationale", Text, nullable=True),
    Column("source_type", String(20), nullable=False),
    Column("source_id", String(250), nullable=False),
    Column("error", Text, nullable=True),
    Column("metadata", Text, nullable=False),  # JSON text
    Column("run_id", String(32), nullable=True),
    Column("overrides", String(64), nullable=True),
    Column("valid", Boolean, nullable=False, default=True),
    Column("created_time_ms", BigInteger, nullable=False),
    Column("last_updated_time_ms", BigInteger, nullable=False),
    _trace_fk(),
    Index("ix_assessments_trace_id", "trace_id"),
    Index("ix_assessments_name", "name"),
)


# --- registry: prompts, registered models, logged models -----------------------------------


def _key_value_child(name: str, owner: str, owner_columns: tuple[str, ...]) -> Table:
    """A tag table keyed by its owner's primary key, deleted with it."""
    owner_types = {"name": String(256), "version": Integer()}
    return Table(
        name,
        metadata,
        *(Column(c, owner_types[c], nullable=False) for c in owner_columns),
        Column("key", String(250), nullable=False),
        Column("value", Text, nullable=False),
        PrimaryKeyConstraint(*owner_columns, "key"),
        ForeignKeyConstraint(
            list(owner_columns), [f"{owner}.{c}" for c in owner_columns], ondelete="CASCADE"
        ),
    )


prompts = Table(
    "prompts",
    metadata,
    Column("name", String(256), primary_key=True),
    Column("description", Text, nullable=True),
    # Bumped under the row lock by every new version, so concurrent writers never collide.
    Column("latest_version", Integer, nullable=False, default=0),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_updated_time", BigInteger, nullable=False),
)
prompt_tags = _key_value_child("prompt_tags", "prompts", ("name",))

prompt_versions = Table(
    "prompt_versions",
    metadata,
    Column("name", String(256), nullable=False),
    Column("version", Integer, nullable=False),
    # JSON text: a string (text template) or a list of chat messages.
    Column("template", Text, nullable=False),
    Column("commit_message", Text, nullable=True),
    Column("creation_time", BigInteger, nullable=False),
    PrimaryKeyConstraint("name", "version"),
    ForeignKeyConstraint(["name"], ["prompts.name"], ondelete="CASCADE"),
)
prompt_version_tags = _key_value_child(
    "prompt_version_tags", "prompt_versions", ("name", "version")
)

prompt_aliases = Table(
    "prompt_aliases",
    metadata,
    Column("name", String(256), nullable=False),
    Column("alias", String(256), nullable=False),
    Column("version", Integer, nullable=False),
    PrimaryKeyConstraint("name", "alias"),
    ForeignKeyConstraint(
        ["name", "version"],
        ["prompt_versions.name", "prompt_versions.version"],
        ondelete="CASCADE",
    ),
)

registered_models = Table(
    "registered_models",
    metadata,
    Column("name", String(256), primary_key=True),
    Column("description", Text, nullable=True),
    Column("latest_version", Integer, nullable=False, default=0),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_updated_time", BigInteger, nullable=False),
)
registered_model_tags = _key_value_child("registered_model_tags", "registered_models", ("name",))

model_versions = Table(
    "model_versions",
    metadata,
    Column("name", String(256), nullable=False),
    Column("version", Integer, nullable=False),
    Column("source", Text, nullable=False),
    Column("run_id", String(32), nullable=True),
    Column("model_id", String(32), nullable=True),
    Column("description", Text, nullable=True),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_updated_time", BigInteger, nullable=False),
    PrimaryKeyConstraint("name", "version"),
    ForeignKeyConstraint(["name"], ["registered_models.name"], ondelete="CASCADE"),
    Index("ix_model_versions_run_id", "run_id"),
)
model_version_tags = _key_value_child("model_version_tags", "model_versions", ("name", "version"))

registered_model_aliases = Table(
    "registered_model_aliases",
    metadata,
    Column("name", String(256), nullable=False),
    Column("alias", String(256), nullable=False),
    Column("version", Integer, nullable=False),
    PrimaryKeyConstraint("name", "alias"),
    ForeignKeyConstraint(
        ["name", "version"],
        ["model_versions.name", "model_versions.version"],
        ondelete="CASCADE",
    ),
)

logged_models = Table(
    "logged_models",
    metadata,
    Column("model_id", String(32), primary_key=True),
    Column("name", String(256), nullable=False),
    Column(
        "experiment_id",
        AutoId,
        ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("run_id", String(32), nullable=False),
    Column("artifact_path", String(256), nullable=False),
    Column("flavor", String(32), nullable=False),
    Column("creation_time", BigInteger, nullable=False),
    ForeignKeyConstraint(["run_id"], ["runs.run_id"], ondelete="CASCADE"),
    Index("ix_logged_models_run_id", "run_id"),
)


# --- webhooks ------------------------------------------------------------------------------

webhooks = Table(
    "webhooks",
    metadata,
    Column("webhook_id", String(32), primary_key=True),
    Column("name", String(256), nullable=False),
    Column("url", Text, nullable=False),
    Column("events", Text, nullable=False),  # JSON list of event names
    # Kept as given: signing needs the secret itself. It is never returned by the API.
    Column("secret", Text, nullable=True),
    Column("status", String(20), nullable=False),
    Column("description", Text, nullable=True),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_updated_time", BigInteger, nullable=False),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("delivery_id", String(32), primary_key=True),
    Column(
        "webhook_id",
        String(32),
        ForeignKey("webhooks.webhook_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("event", String(64), nullable=False),
    Column("payload", Text, nullable=False),  # the JSON body sent
    Column("status", String(20), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("response_status", Integer, nullable=True),
    Column("error", Text, nullable=True),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_attempt_time", BigInteger, nullable=True),
    Index("ix_webhook_deliveries_webhook_time", "webhook_id", "creation_time"),
)


# --- evaluation: datasets and registered (production) scorers --------------------------------

datasets = Table(
    "datasets",
    metadata,
    Column("dataset_id", String(32), primary_key=True),
    Column("name", String(256), nullable=False, unique=True),
    Column("experiment_id", BigInteger, nullable=True),
    Column("description", Text, nullable=True),
    Column("tags", Text, nullable=False),  # JSON object of strings
    Column("version", Integer, nullable=False),  # the newest version; 0 while empty
    Column("creation_time", BigInteger, nullable=False),
    Column("last_updated_time", BigInteger, nullable=False),
)

# One row per version: what merge_records produced, with the digest of its content.
dataset_versions = Table(
    "dataset_versions",
    metadata,
    Column(
        "dataset_id",
        String(32),
        ForeignKey("datasets.dataset_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("version", Integer, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("record_count", Integer, nullable=False),
    Column("creation_time", BigInteger, nullable=False),
    PrimaryKeyConstraint("dataset_id", "version"),
)

# Records are immutable rows valid from `first_version` to `last_version` (open when null):
# a merge that changes a record closes its row and adds a new one, so every version can be
# read back exactly.
dataset_records = Table(
    "dataset_records",
    metadata,
    Column("record_id", String(32), primary_key=True),
    Column(
        "dataset_id",
        String(32),
        ForeignKey("datasets.dataset_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("record_key", String(64), nullable=False),  # digest of the inputs
    Column("inputs", Text, nullable=False),  # JSON
    Column("outputs", Text, nullable=True),  # JSON
    Column("expectations", Text, nullable=False),  # JSON object
    Column("tags", Text, nullable=False),  # JSON object of strings
    Column("source_trace_id", String(32), nullable=True),
    Column("first_version", Integer, nullable=False),
    Column("last_version", Integer, nullable=True),
    Column("creation_time", BigInteger, nullable=False),
    Index("ix_dataset_records_dataset_key", "dataset_id", "record_key"),
)

# Scorers run by the server (or `tracemark score`) on new traces of an experiment.
registered_scorers = Table(
    "registered_scorers",
    metadata,
    Column("scorer_id", String(32), primary_key=True),
    Column(
        "experiment_id",
        BigInteger,
        ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("name", String(256), nullable=False),
    Column("spec", Text, nullable=False),  # JSON: how to rebuild the scorer
    Column("sample_rate", Float(precision=53), nullable=False),
    Column("filter_string", Text, nullable=True),
    Column("status", String(20), nullable=False),  # ACTIVE | STOPPED
    Column("last_error", Text, nullable=True),  # why the last pass could not load the scorer
    # How far the scorer has got: traces at or before this point were considered.
    Column("cursor_timestamp_ms", BigInteger, nullable=True),
    Column("cursor_trace_id", String(32), nullable=True),
    # The worker scoring it now; others skip the scorer until the lease expires.
    Column("lease_owner", String(128), nullable=True),
    Column("lease_expires_ms", BigInteger, nullable=True),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_updated_time", BigInteger, nullable=False),
    UniqueConstraint("experiment_id", "name"),
)
