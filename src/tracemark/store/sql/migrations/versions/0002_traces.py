"""Traces: trace_info, trace_tags, trace_metadata, spans, assessments.

Revision ID: 0002_traces
Revises: 0001_tracking
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002_traces"
down_revision = "0001_tracking"
branch_labels = None
depends_on = None

_AUTO_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# JSON text on SQLite, JSONB on PostgreSQL (schema.JsonText); frozen here so later edits
# of the schema module cannot change what this revision creates.
_JSON = sa.Text().with_variant(JSONB(), "postgresql")


def _trace_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["trace_id"],
        ["trace_info.trace_id"],
        name=op.f(f"fk_{table}_trace_id_trace_info"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "trace_info",
        sa.Column("trace_id", sa.String(length=32), nullable=False),
        sa.Column("experiment_id", _AUTO_ID, nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("timestamp_ms", sa.BigInteger(), nullable=False),
        sa.Column("execution_time_ms", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("request_preview", sa.Text(), nullable=True),
        sa.Column("response_preview", sa.Text(), nullable=True),
        sa.Column("input_tokens", sa.BigInteger(), nullable=True),
        sa.Column("output_tokens", sa.BigInteger(), nullable=True),
        sa.Column("total_tokens", sa.BigInteger(), nullable=True),
        sa.Column("cost", sa.Float(precision=53), nullable=True),
        sa.Column("span_count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.experiment_id"],
            name=op.f("fk_trace_info_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("trace_id", name=op.f("pk_trace_info")),
    )
    op.create_index(
        "ix_trace_info_experiment_timestamp", "trace_info", ["experiment_id", "timestamp_ms"]
    )
    op.create_index("ix_trace_info_status", "trace_info", ["status"])
    op.create_index("ix_trace_info_execution_time_ms", "trace_info", ["execution_time_ms"])
    op.create_index("ix_trace_info_run_id", "trace_info", ["run_id"])

    for table in ("trace_tags", "trace_metadata"):
        op.create_table(
            table,
            sa.Column("trace_id", sa.String(length=32), nullable=False),
            sa.Column("key", sa.String(length=250), nullable=False),
            sa.Column("value", sa.Text(), nullable=False),
            _trace_fk(table),
            sa.PrimaryKeyConstraint("trace_id", "key", name=op.f(f"pk_{table}")),
        )
        # PostgreSQL's B-tree entries are limited to ~2.7 KB; a hash index has no limit.
        if postgres:
            op.create_index(f"ix_{table}_value", table, ["value"], postgresql_using="hash")
        else:
            op.create_index(f"ix_{table}_key_value", table, ["key", "value"])

    op.create_table(
        "spans",
        sa.Column("trace_id", sa.String(length=32), nullable=False),
        sa.Column("span_id", sa.String(length=16), nullable=False),
        sa.Column("parent_id", sa.String(length=16), nullable=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("span_type", sa.Text(), nullable=False),
        sa.Column("start_time_ns", sa.BigInteger(), nullable=False),
        sa.Column("end_time_ns", sa.BigInteger(), nullable=True),
        sa.Column("status_code", sa.String(length=10), nullable=False),
        sa.Column("status_message", sa.Text(), nullable=False),
        sa.Column("inputs", _JSON, nullable=True),
        sa.Column("outputs", _JSON, nullable=True),
        sa.Column("inputs_ref", sa.String(length=256), nullable=True),
        sa.Column("outputs_ref", sa.String(length=256), nullable=True),
        sa.Column("attributes", _JSON, nullable=False),
        sa.Column("events", _JSON, nullable=False),
        _trace_fk("spans"),
        sa.PrimaryKeyConstraint("trace_id", "span_id", name=op.f("pk_spans")),
    )
    op.create_index("ix_spans_span_type", "spans", ["span_type"])
    if postgres:
        op.create_index("ix_spans_name_hash", "spans", ["name"], postgresql_using="hash")
    else:
        op.create_index("ix_spans_name", "spans", ["name"])

    op.create_table(
        "assessments",
        sa.Column("assessment_id", sa.String(length=64), nullable=False),
        sa.Column("trace_id", sa.String(length=32), nullable=False),
        sa.Column("span_id", sa.String(length=16), nullable=True),
        sa.Column("name", sa.String(length=250), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("value_text", sa.Text(), nullable=True),
        sa.Column("value_number", sa.Float(precision=53), nullable=True),
        sa.Column("rationale", sa.Text(), nullable=True),
        sa.Column("source_type", sa.String(length=20), nullable=False),
        sa.Column("source_id", sa.String(length=250), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("metadata", sa.Text(), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=True),
        sa.Column("overrides", sa.String(length=64), nullable=True),
        sa.Column("valid", sa.Boolean(), nullable=False),
        sa.Column("created_time_ms", sa.BigInteger(), nullable=False),
        sa.Column("last_updated_time_ms", sa.BigInteger(), nullable=False),
        _trace_fk("assessments"),
        sa.PrimaryKeyConstraint("assessment_id", name=op.f("pk_assessments")),
    )
    op.create_index("ix_assessments_trace_id", "assessments", ["trace_id"])
    op.create_index("ix_assessments_name", "assessments", ["name"])


def downgrade() -> None:
    for table in ("assessments", "spans", "trace_metadata", "trace_tags", "trace_info"):
        op.drop_table(table)
