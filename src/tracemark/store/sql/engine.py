"""Engine creation: URL normalisation and the per-connection settings each database needs."""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError

from tracemark.exceptions import InvalidInputError

WRITE = "tracemark_write"


def normalize_url(uri: str) -> URL:
    """Parse a tracking URI into a SQLAlchemy URL with our drivers (pysqlite, psycopg 3)."""
    try:
        url = make_url(uri)
    except ArgumentError as exc:
        raise InvalidInputError(f"not a database URI: {uri!r}", field="tracking_uri") from exc
    backend = url.get_backend_name()
    if backend == "postgres" or (
        backend == "postgresql" and url.get_driver_name() in ("", "psycopg2")
    ):
        url = url.set(drivername="postgresql+psycopg")
    elif backend != "sqlite" and backend != "postgresql":
        raise InvalidInputError(
            f"unsupported database {backend!r} in {uri!r}: use sqlite:///path.db or "
            "postgresql://user@host/db",
            field="tracking_uri",
        )
    return url


def sqlite_path(url: URL) -> str | None:
    """Return the file path of a file-backed SQLite URL, else None."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return os.path.abspath(url.database)


def build_engine(uri: str) -> Engine:
    """Create an engine for a tracking URI, creating the SQLite file's folder if needed."""
    url = normalize_url(uri)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def _sqlite_engine(url: URL) -> Engine:
    path = sqlite_path(url)
    if path is not None:
        os.makedirs(os.path.dirname(path), exist_ok=True)
    engine = create_engine(url, pool_size=16, max_overflow=16, pool_timeout=60)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Transactions are begun explicitly (below) so writers can take the lock up front.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "journal_mode=WAL",
            "busy_timeout=60000",
            "foreign_keys=ON",
            "synchronous=NORMAL",
            "case_sensitive_like=ON",
            # Fewer, larger WAL checkpoints: commits stop paying for one every 1,000 pages.
            "wal_autocheckpoint=10000",
            "cache_size=-65536",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # A deferred transaction that later writes can fail with SQLITE_BUSY without waiting
        # for the busy timeout; writers therefore start with BEGIN IMMEDIATE.
        write = connection.get_execution_options().get(WRITE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine
