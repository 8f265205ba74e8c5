import math

import pytest

from tracemark.exceptions import (
    AlreadyExistsError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
)


def test_run_context_manager_finishes_and_records_everything(tracking):
    tm = tracking
    tm.set_experiment("prompt-comparison")
    with tm.start_run(run_name="baseline", tags={"env": "dev"}, description="first try") as run:
        tm.log_param("model", "gpt-4o-mini")
        tm.log_params({"temperature": 0.2, "max_tokens": 256})
        tm.log_metric("accuracy", 0.5, step=0)
        tm.log_metric("accuracy", 0.8, step=1)
        tm.log_metrics({"latency_ms": 120.5, "cost": 0.002})
        tm.set_tag("owner", "ana")
        tm.set_tags({"stage": "eval"})
        assert tm.active_run().run_id == run.run_id
    assert tm.active_run() is None
    stored = tm.get_run(run.run_id)
    assert stored.status == "FINISHED"
    assert stored.end_time is not None and stored.end_time >= stored.start_time
    assert stored.run_name == "baseline"
    assert stored.params == {"model": "gpt-4o-mini", "temperature": "0.2", "max_tokens": "256"}
    assert stored.metrics == {"accuracy": 0.8, "latency_ms": 120.5, "cost": 0.002}
    assert stored.tags["env"] == "dev" and stored.tags["owner"] == "ana"
    assert stored.tags["stage"] == "eval"
    assert stored.description == "first try"
    assert stored.experiment_id == tm.get_experiment_by_name("prompt-comparison").experiment_id


def test_run_fails_when_block_raises(tracking):
    tm = tracking
    with pytest.raises(RuntimeError), tm.start_run() as run:
        raise RuntimeError("boom")
    assert tm.get_run(run.run_id).status == "FAILED"


def test_nested_runs_need_nested_flag_and_link_parent(tracking):
    tm = tracking
    with tm.start_run(run_name="parent") as parent:
        with pytest.raises(InvalidInputError, match="nested=True"):
            tm.start_run()
        with tm.start_run(run_name="child", nested=True) as child:
            assert tm.active_run().run_id == child.run_id
        assert tm.active_run().run_id == parent.run_id
    assert tm.get_run(child.run_id).parent_run_id == parent.run_id


def test_end_run_with_status(tracking):
    tm = tracking
    run = tm.start_run()
    tm.end_run(status="KILLED")
    assert tm.get_run(run.run_id).status == "KILLED"
    assert tm.active_run() is None


def test_param_is_write_once_with_message_naming_key_and_values(tracking):
    tm = tracking
    with tm.start_run():
        tm.log_param("model", "a")
        tm.log_param("model", "a")  # same value again is fine
        with pytest.raises(ConflictError) as info:
            tm.log_param("model", "b")
    message = str(info.value)
    assert "'model'" in message and "'a'" in message and "'b'" in message


def test_conflicting_batch_writes_nothing(tracking, client):
    tm = tracking
    with tm.start_run() as run:
        tm.log_param("model", "a")
        with pytest.raises(ConflictError):
            tm.log_params({"fresh": "1", "model": "b"})
    assert tm.get_run(run.run_id).params == {"model": "a"}


def test_metric_history_is_kept_in_step_order(tracking, client):
    tm = tracking
    with tm.start_run() as run:
        for step, value in [(2, 0.3), (0, 0.1), (1, 0.2), (1, 0.25)]:
            tm.log_metric("loss", value, step=step, timestamp=1000 + step)
    history = client.get_metric_history(run.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(0, 0.1), (1, 0.2), (1, 0.25), (2, 0.3)]
    assert tm.get_run(run.run_id).metrics["loss"] == 0.3


def test_nan_and_infinite_metrics_round_trip(tracking, client):
    tm = tracking
    with tm.start_run() as run:
        tm.log_metric("nan", float("nan"))
        tm.log_metric("inf", float("inf"))
    history = client.get_metric_history(run.run_id, "nan")
    assert math.isnan(history[0].value)
    assert client.get_metric_history(run.run_id, "inf")[0].value == float("inf")
    assert math.isnan(tm.get_run(run.run_id).metrics["nan"])


@pytest.mark.parametrize(
    ("key", "value"),
    [("", 1.0), ("a" * 251, 1.0), ("../x", 1.0), ("ok", "not a number"), ("ok", None)],
)
def test_bad_metrics_are_rejected_with_clear_errors(tracking, key, value):
    tm = tracking
    with tm.start_run(), pytest.raises(InvalidInputError):
        tm.log_metric(key, value)


def test_delete_tag_and_missing_tag(tracking):
    tm = tracking
    with tm.start_run() as run:
        tm.set_tag("x", "1")
        tm.delete_tag("x")
        with pytest.raises(NotFoundError, match="'x'"):
            tm.delete_tag("x")
    assert "x" not in tm.get_run(run.run_id).tags


def test_log_batch_in_one_call(tracking, client):
    from tracemark import Metric, Param, RunTag

    run = client.create_run("0", run_name="batch")
    client.log_batch(
        run.run_id,
        metrics=[Metric("m", float(i), 1000 + i, i) for i in range(50)],
        params=[Param("p", "v")],
        tags=[RunTag("t", "x")],
    )
    stored = client.get_run(run.run_id)
    assert stored.metrics == {"m": 49.0} and stored.params == {"p": "v"}
    assert stored.tags == {"t": "x"}
    assert len(client.get_metric_history(run.run_id, "m")) == 50


def test_experiments_create_get_search_delete_restore(tracking):
    tm = tracking
    eid = tm.create_experiment("qa-bot", tags={"team": "search"})
    assert tm.get_experiment(eid).name == "qa-bot"
    assert tm.get_experiment(eid).tags == {"team": "search"}
    with pytest.raises(AlreadyExistsError, match="qa-bot"):
        tm.create_experiment("qa-bot")
    names = {e.name for e in tm.search_experiments()}
    assert {"Default", "qa-bot"} <= names
    tm.delete_experiment(eid)
    assert "qa-bot" not in {e.name for e in tm.search_experiments()}
    assert "qa-bot" in {e.name for e in tm.search_experiments(view_type="deleted_only")}
    with pytest.raises(InvalidInputError, match="deleted"):
        tm.set_experiment("qa-bot")
    tm.restore_experiment(eid)
    assert tm.set_experiment("qa-bot").experiment_id == eid


def test_missing_objects_raise_not_found_naming_them(tracking):
    tm = tracking
    with pytest.raises(NotFoundError, match="12345"):
        tm.get_experiment("12345")
    with pytest.raises(NotFoundError, match="0" * 32):
        tm.get_run("0" * 32)
    with pytest.raises(InvalidInputError, match="run id"):
        tm.get_run("not-a-run-id")
    for bad in ("9" * 19, "-1", "x"):
        with pytest.raises(InvalidInputError, match="experiment.id"):
            tm.get_experiment(bad)


def test_delete_run_hides_it_from_search(tracking):
    tm = tracking
    with tm.start_run() as run:
        pass
    tm.delete_run(run.run_id)
    assert tm.search_runs() == []
    assert [r.run_id for r in tm.search_runs(run_view_type="deleted_only")] == [run.run_id]


def test_logging_without_a_run_starts_one(tracking):
    tm = tracking
    tm.log_metric("x", 1.0)
    run = tm.active_run()
    assert run is not None
    tm.end_run()
    assert tm.get_run(run.run_id).metrics == {"x": 1.0}


def test_worker_threads_log_to_the_callers_run(tracking):
    import threading

    tm = tracking
    with tm.start_run() as run:
        worker = threading.Thread(target=lambda: tm.log_metric("from_thread", 1.0))
        worker.start()
        worker.join()
    assert tm.get_run(run.run_id).metrics == {"from_thread": 1.0}


def test_resume_run_by_id(tracking):
    tm = tracking
    with tm.start_run() as run:
        tm.log_metric("a", 1)
    with tm.start_run(run_id=run.run_id):
        tm.log_metric("b", 2)
    stored = tm.get_run(run.run_id)
    assert stored.metrics == {"a": 1, "b": 2} and stored.status == "FINISHED"


def test_a_nul_character_is_bad_input_on_postgresql_never_a_store_failure(tracking, request):
    tm = tracking
    from tracemark.exceptions import InvalidInputError

    if "postgresql" not in request.node.callspec.params["tracking_uri"]:
        tm.create_experiment("bad\x00name")  # SQLite keeps the text as given
        assert tm.get_experiment_by_name("bad\x00name") is not None
        return
    with pytest.raises(InvalidInputError, match="NUL character"):
        tm.create_experiment("bad\x00name")
    with tm.start_run(), pytest.raises(InvalidInputError, match="NUL character"):
        tm.set_tag("note", "a\x00b")
    assert [e.name for e in tm.search_experiments() if "bad" in e.name] == []
