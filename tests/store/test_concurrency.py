"""Concurrent writers lose nothing: threads on one run, processes on one SQLite file."""

import subprocess
import sys
import threading

import tracemark as tm

WORKER = """
import sys
import tracemark as tm
client = tm.TracemarkClient(sys.argv[1])
for i in range(int(sys.argv[3])):
    client.log_metric(sys.argv[2], "proc_" + sys.argv[4], float(i), step=i)
"""


def test_eight_threads_log_metrics_to_one_run(tracking, client):
    run = client.create_run("0")
    per_thread = 100

    def work(n: int) -> None:
        for i in range(per_thread):
            client.log_metric(run.run_id, f"thread_{n}", float(i), step=i)
            client.log_metric(run.run_id, "shared", float(n * per_thread + i), step=i)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for n in range(8):
        assert len(client.get_metric_history(run.run_id, f"thread_{n}")) == per_thread
    assert len(client.get_metric_history(run.run_id, "shared")) == 8 * per_thread
    assert set(client.get_run(run.run_id).metrics) == {f"thread_{n}" for n in range(8)} | {"shared"}


def test_two_processes_log_to_one_sqlite_file(tmp_path, sqlite_template):
    import shutil

    path = tmp_path / "shared.db"
    shutil.copyfile(sqlite_template, path)
    uri = f"sqlite:///{path}"
    client = tm.TracemarkClient(uri)
    run = client.create_run("0")
    count = 300
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER, uri, run.run_id, str(count), str(n)])
        for n in range(2)
    ]
    for p in procs:
        assert p.wait(timeout=120) == 0
    for n in range(2):
        history = client.get_metric_history(run.run_id, f"proc_{n}")
        assert [m.step for m in history] == list(range(count))


def test_sqlite_wal_is_checkpointed_in_the_background_not_inside_commits(tmp_path):
    import os
    import time

    from tracemark.entities.run import RunTag
    from tracemark.store.sql.store import SqlStore

    path = tmp_path / "wal.db"
    store = SqlStore(f"sqlite:///{path}")
    try:
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
        experiment_id = store.create_experiment("wal")
        run = store.create_run(experiment_id, "r", 0)
        before = os.path.getsize(path)
        # About 1 MB committed: with no checkpoint inside commits it lands in the WAL, and
        # only the background checkpointer copies it into the database file.
        tags = [RunTag(f"t{i}", "x" * 5000) for i in range(200)]
        store.log_batch(run.run_id, tags=tags)
        deadline = time.monotonic() + 10
        while os.path.getsize(path) < before + 500_000 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert os.path.getsize(path) >= before + 500_000
        checkpointer = store.engine.__dict__["_tracemark_checkpointer"]
        assert checkpointer._thread.is_alive()
    finally:
        store.close()
    assert not checkpointer._thread.is_alive()


def test_sqlite_writers_of_one_process_queue_on_a_lock_not_on_sqlite(tmp_path, monkeypatch):
    # SQLite's busy handler sleeps 1, 2, 5, 10... ms between looks; writers of one process
    # wait on a lock instead, which also bounds the wait (here 0.3 s, not busy_timeout's 60).
    import pytest

    from tracemark.exceptions import StoreError
    from tracemark.store.sql import engine as engine_module
    from tracemark.store.sql.store import SqlStore

    monkeypatch.setattr(engine_module, "WRITE_WAIT_S", 0.3)
    store = SqlStore(f"sqlite:///{tmp_path / 'lock.db'}")
    holding, release = threading.Event(), threading.Event()

    def hold_a_write() -> None:
        with store._write():
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold_a_write)
    holder.start()
    try:
        assert holding.wait(10)
        with pytest.raises(StoreError, match="stayed busy for 0.3 s"):
            store.create_experiment("refused")
        waiter = threading.Thread(target=store.create_experiment, args=("queued",))
        monkeypatch.setattr(engine_module, "WRITE_WAIT_S", 30.0)
        waiter.start()
        waiter.join(0.2)
        assert waiter.is_alive()  # queued behind the open write transaction
    finally:
        release.set()
        holder.join(10)
    waiter.join(10)
    names = {e.name for e in store.search_experiments()}
    assert "queued" in names and "refused" not in names
    store.close()
