import pytest
from sqlalchemy import create_engine, text

from tracemark.exceptions import InvalidInputError, SchemaVersionError
from tracemark.store.sql import migrate
from tracemark.store.sql.schema import HEAD_REVISION
from tracemark.store.sql.store import SqlStore


def test_head_revision_constant_matches_the_migrations():
    assert migrate.known_revisions()[-1] == HEAD_REVISION


def test_new_database_is_created_with_default_experiment(tmp_path):
    store = SqlStore(f"sqlite:///{tmp_path}/sub/dir/new.db")
    assert store.get_experiment("0").name == "Default"
    with store.engine.connect() as conn:
        assert migrate.current_revision(conn) == HEAD_REVISION
        mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
    assert mode == "wal"
    store.close()


def test_newer_database_is_refused(tmp_path, sqlite_template):
    import shutil

    path = tmp_path / "newer.db"
    shutil.copyfile(sqlite_template, path)
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    engine.dispose()
    with pytest.raises(SchemaVersionError, match="newer tracemark"):
        SqlStore(f"sqlite:///{path}")


def test_older_database_asks_for_upgrade_then_upgrades(tmp_path):
    from alembic import command
    from sqlalchemy import inspect

    first, *later = migrate.known_revisions()
    assert later, "needs a second revision to upgrade to"
    path = tmp_path / "old.db"
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        command.upgrade(migrate._config(conn), first)
    assert not inspect(engine).has_table("trace_info")
    with pytest.raises(SchemaVersionError, match="tracemark db upgrade"):
        SqlStore(f"sqlite:///{path}")
    before, after = migrate.upgrade(engine)
    assert (before, after) == (first, HEAD_REVISION)
    assert {"trace_info", "trace_tags", "trace_metadata", "spans", "assessments"} <= set(
        inspect(engine).get_table_names()
    )
    engine.dispose()
    store = SqlStore(f"sqlite:///{path}")
    assert store.search_traces(["0"]) == ([], None)
    store.close()


@pytest.mark.parametrize("uri", ["mysql://x/y", "not a uri", "sqlite-ish:///x"])
def test_unsupported_uris_are_clear_errors(uri):
    import tracemark as tm

    with pytest.raises(InvalidInputError):
        _ = tm.TracemarkClient(uri).store
