"""Engine creation: URL normalisation and the per-connection settings each database needs."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import weakref
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError

from tracemark.exceptions import InvalidInputError, StoreUnavailableError

WRITE = "tracemark_write"

logger = logging.getLogger("tracemark.store")

# Seconds between the background WAL checkpoints of a SQLite database.
CHECKPOINT_INTERVAL_S = 0.5
# Seconds a SQLite writer waits for the others before it gives up (SQLite's busy_timeout).
WRITE_WAIT_S = 60.0


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


def stop_checkpointer(engine: Engine) -> None:
    """Stop the background WAL checkpointer of a SQLite engine (before disposing it)."""
    checkpointer = engine.__dict__.pop("_tracemark_checkpointer", None)
    if checkpointer is not None:
        checkpointer.stop()


class _Checkpointer:
    """Checkpoints a SQLite database's WAL from a background thread.

    With SQLite's automatic checkpoints, the commit that crosses the threshold copies the
    whole WAL into the database file before it returns, and that request waits. Here the
    connections of the engine never checkpoint (`wal_autocheckpoint=0`); this thread runs
    a PASSIVE checkpoint (which never waits for readers or writers) twice a second on its
    own connection, so commits stay short and the WAL stays small.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="tracemark-sqlite-checkpoint", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        connection: sqlite3.Connection | None = None
        try:
            while not self._stop.wait(CHECKPOINT_INTERVAL_S):
                if not os.path.exists(self.path + "-wal"):
                    continue
                if connection is None:
                    connection = sqlite3.connect(self.path, timeout=1, check_same_thread=False)
                    connection.execute("PRAGMA busy_timeout=1000")
                connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except Exception:  # the database went away: checkpoints are an optimisation
            logger.debug("tracemark: WAL checkpointer stopped", exc_info=True)
        finally:
            if connection is not None:
                connection.close()


@contextmanager
def unprepared(conn: Connection) -> Iterator[None]:
    """Run the statements inside without server-side prepared statements (PostgreSQL).

    psycopg prepares a statement once it has run five times, and PostgreSQL may then keep
    one generic plan, costed for the tables as they were at that moment. Tables that start
    empty get a plan that scans them whole, and it stays until the next ANALYZE (never,
    with autovacuum off): ingest's lookup of stored trace ids took 12 ms at 20,000 traces.
    Unprepared, each execution is planned for its own parameters. Reads and lookups use
    this; the bulk inserts, whose plan does not depend on the data, stay prepared.
    """
    if conn.dialect.name != "postgresql":
        yield
        return
    driver = conn.connection.driver_connection
    threshold = driver.prepare_threshold
    driver.prepare_threshold = None
    try:
        yield
    finally:
        driver.prepare_threshold = threshold


def write_lock(engine: Engine) -> AbstractContextManager[Any]:
    """Return what a write transaction holds: the SQLite engine's writer lock, else nothing."""
    return engine.__dict__.get("_tracemark_write_lock") or nullcontext()


class _WriteLock:
    """Queues this process's SQLite writers on a lock instead of SQLite's busy handler.

    A writer that finds the database locked sleeps 1, 2, 5, 10, 15, 20... ms between
    looks, so it waits 18 ms for a transaction that ends in 3: at two concurrent ingest
    requests that was most of the p99. Waiters on this lock wake as soon as it is released.
    Writers in other processes still meet the busy handler. Reentrant, as a nested write
    transaction was allowed before (it waits on SQLite then).
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()

    def __enter__(self) -> None:
        if not self._lock.acquire(timeout=WRITE_WAIT_S):
            raise StoreUnavailableError(
                f"the database stayed busy for {WRITE_WAIT_S:g} s: another write held it"
            )

    def __exit__(self, *exc_info: object) -> None:
        self._lock.release()


def _sqlite_engine(url: URL) -> Engine:
    path = sqlite_path(url)
    if path is not None:
        os.makedirs(os.path.dirname(path), exist_ok=True)
    engine = create_engine(url, pool_size=16, max_overflow=16, pool_timeout=60)
    engine.__dict__["_tracemark_write_lock"] = _WriteLock()
    checkpointer = _Checkpointer(path) if path is not None else None
    if checkpointer is not None:
        engine.__dict__["_tracemark_checkpointer"] = checkpointer
        weakref.finalize(engine, checkpointer.stop)

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
            # Checkpoints run on a background thread (_Checkpointer), not inside commits;
            # an in-memory database has no WAL and keeps SQLite's default.
            "wal_autocheckpoint=0" if checkpointer is not None else "wal_autocheckpoint=1000",
            "cache_size=-65536",
            # A WAL that grew during a burst is cut back to 64 MB when it restarts.
            "journal_size_limit=67108864",
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
