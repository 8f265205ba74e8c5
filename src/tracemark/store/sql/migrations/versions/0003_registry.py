"""Registry: prompts, prompt versions and aliases; registered models; logged models.

Revision ID: 0003_registry
Revises: 0002_traces
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_registry"
down_revision = "0002_traces"
branch_labels = None
depends_on = None

_AUTO_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_OWNER_TYPES = {"name": sa.String(length=256), "version": sa.Integer()}


def _tags(table: str, owner: str, columns: tuple[str, ...]) -> None:
    op.create_table(
        table,
        *(sa.Column(c, _OWNER_TYPES[c], nullable=False) for c in columns),
        sa.Column("key", sa.String(length=250), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            list(columns),
            [f"{owner}.{c}" for c in columns],
            name=op.f(f"fk_{table}_{columns[0]}_{owner}"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(*columns, "key", name=op.f(f"pk_{table}")),
    )


def _named(table: str) -> None:
    """A registry entry point: prompts and registered models share this shape."""
    op.create_table(
        table,
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("latest_version", sa.Integer(), nullable=False),
        sa.Column("creation_time", sa.BigInteger(), nullable=False),
        sa.Column("last_updated_time", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f(f"pk_{table}")),
    )


def _aliases(table: str, versions: str) -> None:
    op.create_table(
        table,
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("alias", sa.String(length=256), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["name", "version"],
            [f"{versions}.name", f"{versions}.version"],
            name=op.f(f"fk_{table}_name_{versions}"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("name", "alias", name=op.f(f"pk_{table}")),
    )


def upgrade() -> None:
    _named("prompts")
    _tags("prompt_tags", "prompts", ("name",))
    op.create_table(
        "prompt_versions",
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("template", sa.Text(), nullable=False),
        sa.Column("commit_message", sa.Text(), nullable=True),
        sa.Column("creation_time", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["name"],
            ["prompts.name"],
            name=op.f("fk_prompt_versions_name_prompts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("name", "version", name=op.f("pk_prompt_versions")),
    )
    _tags("prompt_version_tags", "prompt_versions", ("name", "version"))
    _aliases("prompt_aliases", "prompt_versions")

    _named("registered_models")
    _tags("registered_model_tags", "registered_models", ("name",))
    op.create_table(
        "model_versions",
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=True),
        sa.Column("model_id", sa.String(length=32), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("creation_time", sa.BigInteger(), nullable=False),
        sa.Column("last_updated_time", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["name"],
            ["registered_models.name"],
            name=op.f("fk_model_versions_name_registered_models"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("name", "version", name=op.f("pk_model_versions")),
    )
    op.create_index("ix_model_versions_run_id", "model_versions", ["run_id"])
    _tags("model_version_tags", "model_versions", ("name", "version"))
    _aliases("registered_model_aliases", "model_versions")

    op.create_table(
        "logged_models",
        sa.Column("model_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("experiment_id", _AUTO_ID, nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("artifact_path", sa.String(length=256), nullable=False),
        sa.Column("flavor", sa.String(length=32), nullable=False),
        sa.Column("creation_time", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.experiment_id"],
            name=op.f("fk_logged_models_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["runs.run_id"],
            name=op.f("fk_logged_models_run_id_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("model_id", name=op.f("pk_logged_models")),
    )
    op.create_index("ix_logged_models_run_id", "logged_models", ["run_id"])


def downgrade() -> None:
    for table in (
        "logged_models",
        "registered_model_aliases",
        "model_version_tags",
        "model_versions",
        "registered_model_tags",
        "registered_models",
        "prompt_aliases",
        "prompt_version_tags",
        "prompt_versions",
        "prompt_tags",
        "prompts",
    ):
        op.drop_table(table)
