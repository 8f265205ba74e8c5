"""Production scoring: registered scorers, the scoring worker, `tracemark score`, `server --score`.

Tests taking `tracking` run on SQLite, PostgreSQL and a live server over each. Traces are
logged straight into the store with chosen start times, so cursors and ties are exact.
The scorers live in `scorer_fixtures`, which worker subprocesses import through PYTHONPATH.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from typing import Any

import orjson
import pytest
import scorer_fixtures as fx

import tracemark as tm
from tracemark.entities.scorer import RegisteredScorer, ScorerStatus
from tracemark.entities.trace import Assessment, AssessmentSource, Span, Trace, TraceInfo
from tracemark.evaluation import production
from tracemark.evaluation.scorers import scorer
from tracemark.evaluation.worker import RateLimiter, ScoringWorker, is_sampled
from tracemark.exceptions import (
    AlreadyExistsError,
    InvalidFilterError,
    InvalidInputError,
    NotFoundError,
)

DEADLINE_S = 60


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def log_traces(
    store: Any,
    experiment_id: str,
    outputs: list[Any],
    *,
    start_ms: int | None = None,
    tags: dict[str, str] | None = None,
    status: str = "OK",
    ids: list[str] | None = None,
) -> list[str]:
    """Store one-span traces answering `outputs`, all started at `start_ms` (now)."""
    start_ms = now_ms() if start_ms is None else start_ms
    ids = ids or [uuid.uuid4().hex for _ in outputs]
    traces = []
    for i, (trace_id, output) in enumerate(zip(ids, outputs, strict=True)):
        t0 = start_ms * 1_000_000
        root = Span(
            trace_id,
            uuid.uuid4().hex[:16],
            None,
            "answer",
            "CHAIN",
            t0,
            t0 + 5_000_000,
            "OK",
            "",
            orjson.dumps({"question": f"q{i}"}).decode(),
            orjson.dumps(output).decode(),
        )
        info = TraceInfo(trace_id, experiment_id, start_ms, 5, status, "answer", tags=tags or {})
        traces.append(Trace(info, [root]))
    store.log_traces(traces)
    return ids


def verdicts(store: Any, trace_id: str, scorer_name: str | None = None) -> list[Assessment]:
    found = store.get_trace(trace_id).info.assessments
    return [a for a in found if scorer_name is None or a.source.source_id == scorer_name]


def worker(client: Any, **kwargs: Any) -> ScoringWorker:
    kwargs.setdefault("settle_s", 0)
    return ScoringWorker(client=client, **kwargs)


@pytest.fixture
def experiment(client: Any) -> str:
    return client.create_experiment("support-agent")


# -- registration -----------------------------------------------------------------------------


def test_registered_scorer_keeps_its_spec_and_settings(client, experiment):
    reg = production.ScorersClient.register_scorer(
        client,
        fx.is_short,
        experiment_id=experiment,
        sample_rate=0.25,
        filter_string="tags.env = 'prod'",
    )
    assert isinstance(reg, RegisteredScorer)
    assert (reg.name, reg.experiment_id, reg.sample_rate) == ("is_short", experiment, 0.25)
    assert reg.spec == {"kind": "function", "path": "scorer_fixtures:is_short", "name": "is_short"}
    assert (reg.filter_string, reg.status, reg.last_error) == (
        "tags.env = 'prod'",
        ScorerStatus.ACTIVE,
        None,
    )
    assert reg.cursor_timestamp_ms == reg.creation_time - 1  # only traces from now on
    assert client.store.get_registered_scorer(experiment, "is_short") == reg
    judge = production.ScorersClient.register_scorer(
        client, fx.FakeJudge(), name="judge", experiment_id=experiment
    )
    assert judge.spec["kind"] == "class" and judge.spec["path"] == "scorer_fixtures:FakeJudge"
    listed = production.ScorersClient.list_scorers(client, experiment)
    assert [s.name for s in listed] == ["is_short", "judge"]


def test_module_functions_use_the_current_experiment(tracking, client):
    tracking.set_experiment("current-one")
    eid = tracking.get_experiment_by_name("current-one").experiment_id
    reg = production.register_scorer(fx.is_short)
    assert reg.experiment_id == eid
    assert production.get_scorer("is_short").scorer_id == reg.scorer_id
    assert [s.name for s in production.list_scorers()] == ["is_short"]
    assert production.update_scorer("is_short", sample_rate=0.5).sample_rate == 0.5
    production.delete_scorer("is_short")
    assert production.list_scorers() == []


def test_scorers_a_worker_cannot_import_are_refused(client, experiment):
    register = production.ScorersClient.register_scorer

    def local(outputs):
        return True

    for bad in (scorer(lambda outputs: True), scorer(local)):
        with pytest.raises(InvalidInputError, match="import"):
            register(client, bad, experiment_id=experiment)
    with pytest.raises(InvalidInputError, match="not a scorer"):
        register(client, 42, experiment_id=experiment)
    with pytest.raises(InvalidInputError, match="no installed scorer plugin named 'nope'"):
        register(client, "nope", experiment_id=experiment)
    assert client.store.list_registered_scorers(experiment) == []


@pytest.mark.parametrize("rate", [-0.1, 1.5, float("nan"), True, "0.5"])
def test_sample_rate_must_be_between_0_and_1(client, experiment, rate):
    with pytest.raises(InvalidInputError, match="sample_rate") as caught:
        production.ScorersClient.register_scorer(
            client, fx.is_short, experiment_id=experiment, sample_rate=rate
        )
    assert caught.value.field == "sample_rate"


@pytest.mark.parametrize(
    ("filter_string", "message"),
    [("status = ", "value"), ("nope.key = 'x'", "nope"), ("timestamp_ms = 'soon'", "number")],
)
def test_filter_must_be_a_valid_trace_filter(client, experiment, filter_string, message):
    with pytest.raises(InvalidFilterError, match=message):
        production.ScorersClient.register_scorer(
            client, fx.is_short, experiment_id=experiment, filter_string=filter_string
        )


def test_names_are_unique_per_experiment(client, experiment):
    register = production.ScorersClient.register_scorer
    register(client, fx.is_short, experiment_id=experiment)
    with pytest.raises(AlreadyExistsError, match="is_short"):
        register(client, fx.is_short, experiment_id=experiment)
    other = client.create_experiment("other")
    register(client, fx.is_short, experiment_id=other)
    register(client, fx.is_short, name="is_short_again", experiment_id=experiment)
    assert len(client.store.list_registered_scorers(None)) == 3
    with pytest.raises(NotFoundError):
        register(client, fx.is_short, experiment_id="987654")


def test_update_stop_start_and_delete(client, experiment):
    api = production.ScorersClient
    api.register_scorer(client, fx.is_short, experiment_id=experiment, filter_string="name = 'a'")
    changed = api.update_scorer(
        client, "is_short", experiment_id=experiment, sample_rate=0.1, status="STOPPED"
    )
    assert (changed.sample_rate, changed.status, changed.filter_string) == (
        0.1,
        "STOPPED",
        "name = 'a'",
    )
    assert api.update_scorer(client, "is_short", experiment_id=experiment, filter_string="")
    assert api.get_scorer(client, "is_short", experiment_id=experiment).filter_string is None
    with pytest.raises(InvalidInputError, match="status"):
        api.update_scorer(client, "is_short", experiment_id=experiment, status="PAUSED")
    with pytest.raises(InvalidFilterError):
        api.update_scorer(client, "is_short", experiment_id=experiment, filter_string="x ==")
    with pytest.raises(NotFoundError, match="ghost"):
        api.update_scorer(client, "ghost", experiment_id=experiment, sample_rate=0.5)
    api.delete_scorer(client, "is_short", experiment_id=experiment)
    with pytest.raises(NotFoundError):
        api.get_scorer(client, "is_short", experiment_id=experiment)
    with pytest.raises(NotFoundError):
        api.delete_scorer(client, "is_short", experiment_id=experiment)


def test_names_may_hold_slashes_and_spaces(client, experiment):
    api = production.ScorersClient
    api.register_scorer(client, fx.is_short, name="team/is short", experiment_id=experiment)
    assert api.get_scorer(client, "team/is short", experiment_id=experiment).name == "team/is short"
    api.update_scorer(
        client, "team/is short", experiment_id=experiment, filter_string="name = 'answer'"
    )
    (trace_id,) = log_traces(client.store, experiment, ["x"])
    assert worker(client).run_once().scored == 1
    assert verdicts(client.store, trace_id)[0].name == "team/is short"
    api.delete_scorer(client, "team/is short", experiment_id=experiment)
    with pytest.raises(InvalidInputError, match="name"):
        api.register_scorer(client, fx.is_short, name="x" * 251, experiment_id=experiment)


def test_a_lease_keeps_other_workers_off_until_released_or_expired(client, experiment):
    store = client.store
    reg = production.ScorersClient.register_scorer(client, fx.is_short, experiment_id=experiment)
    assert store.acquire_scorer_lease(reg.scorer_id, "a", 60_000).name == "is_short"
    assert store.acquire_scorer_lease(reg.scorer_id, "b", 60_000) is None
    assert store.acquire_scorer_lease(reg.scorer_id, "a", 60_000) is not None  # renewed
    store.release_scorer_lease(reg.scorer_id, "b")  # not the holder: no effect
    assert store.acquire_scorer_lease(reg.scorer_id, "b", 60_000) is None
    store.release_scorer_lease(reg.scorer_id, "a")
    assert store.acquire_scorer_lease(reg.scorer_id, "b", 0) is not None
    assert store.acquire_scorer_lease(reg.scorer_id, "a", 60_000) is not None  # b's expired
    with pytest.raises(NotFoundError):
        store.acquire_scorer_lease("0" * 32, "a", 1000)


def test_commit_is_a_compare_and_set_on_the_cursor(client, experiment):
    store = client.store
    reg = production.ScorersClient.register_scorer(client, fx.is_short, experiment_id=experiment)
    (trace_id,) = log_traces(store, experiment, ["ok"])

    def feedback(value: Any) -> Assessment:
        return Assessment(
            "", trace_id, "is_short", "feedback", value, AssessmentSource("CODE"), 0, 0
        )

    new = (now_ms(), trace_id)
    assert store.commit_scorer_batch(reg.scorer_id, reg.cursor, new, [feedback(True)])
    # A second worker that read the same cursor loses, and writes nothing.
    assert not store.commit_scorer_batch(reg.scorer_id, reg.cursor, new, [feedback(False)])
    assert [a.value for a in verdicts(store, trace_id)] == [True]
    assert store.get_registered_scorer(experiment, "is_short").cursor == new


# -- the worker -------------------------------------------------------------------------------


def test_worker_scores_each_new_trace_once(client, experiment):
    api = production.ScorersClient
    api.register_scorer(client, fx.is_short, experiment_id=experiment)
    api.register_scorer(client, fx.sees_the_trace, experiment_id=experiment)
    outputs = ["yes", "a much longer answer than twenty characters", "no"]
    ids = log_traces(client.store, experiment, outputs)
    first = worker(client).run_once()
    assert (first.considered, first.sampled, first.scored, first.errors) == (6, 6, 6, 0)
    for trace_id, output in zip(ids, outputs, strict=True):
        (short,) = verdicts(client.store, trace_id, "is_short")
        assert (short.name, short.value, short.kind) == ("is_short", len(output) <= 20, "feedback")
        assert short.source == AssessmentSource("CODE", "is_short")
        assert short.metadata == {"tracemark.scorer": "is_short"}
        (spans,) = verdicts(client.store, trace_id, "sees_the_trace")
        root = client.store.get_trace(trace_id).root
        assert (spans.value, spans.span_id) == (1, root.span_id)
        assert spans.metadata == {"k": "1", "tracemark.scorer": "sees_the_trace"}
    again = worker(client).run_once()
    assert (again.considered, again.scored) == (0, 0)
    (later,) = log_traces(client.store, experiment, ["new"])
    assert worker(client).run_once().scored == 2
    assert all(len(verdicts(client.store, t)) == 2 for t in [*ids, later])


def test_traces_before_registration_and_unfinished_ones_are_not_scored(client, experiment):
    old = log_traces(client.store, experiment, ["old"], start_ms=now_ms() - 60_000)
    production.ScorersClient.register_scorer(client, fx.is_short, experiment_id=experiment)
    running = log_traces(client.store, experiment, ["running"], status="IN_PROGRESS")
    failed = log_traces(client.store, experiment, ["failed"], status="ERROR")
    assert worker(client).run_once().scored == 1
    assert verdicts(client.store, old[0]) == verdicts(client.store, running[0]) == []
    assert len(verdicts(client.store, failed[0])) == 1


def test_traces_are_left_to_settle_before_scoring(client, experiment):
    production.ScorersClient.register_scorer(client, fx.is_short, experiment_id=experiment)
    (trace_id,) = log_traces(client.store, experiment, ["fresh"])
    assert worker(client, settle_s=60).run_once().considered == 0
    assert worker(client, settle_s=0).run_once().scored == 1


def test_batches_move_the_cursor_through_traces_started_in_the_same_millisecond(client, experiment):
    production.ScorersClient.register_scorer(client, fx.is_short, experiment_id=experiment)
    ids = log_traces(client.store, experiment, [f"a{i}" for i in range(10)])
    result = worker(client, batch_size=3, threads=1).run_once()
    assert result.scored == 10
    assert all(len(verdicts(client.store, t)) == 1 for t in ids)
    reg = client.store.get_registered_scorer(experiment, "is_short")
    assert reg.cursor_trace_id == max(ids)


def test_sampling_is_deterministic_and_close_to_the_rate(store_uri, tmp_path):
    from tracemark.store.sql.store import SqlStore

    store = SqlStore(store_uri, artifact_root=str(tmp_path / "artifacts"))
    eid = store.create_experiment("sampled")
    store.create_registered_scorer(eid, "is_short", fx.is_short.to_spec(), sample_rate=0.3)
    ids = [f"{n:032x}" for n in range(1, 401)]
    log_traces(store, eid, ["x"] * len(ids), ids=ids)
    result = ScoringWorker(store=store, settle_s=0).run_once()
    infos, _ = store.search_traces([eid], max_results=1000)
    scored = {i.trace_id for i in infos if i.assessments}
    assert scored == {t for t in ids if is_sampled(t, "is_short", 0.3)}
    assert (result.considered, result.sampled, result.scored) == (400, len(scored), len(scored))
    assert 90 <= len(scored) <= 150  # 120 expected
    # Another scorer samples independently; the same scorer picks the same traces again.
    other = {t for t in ids if is_sampled(t, "other", 0.3)}
    assert other != scored and 90 <= len(other) <= 150
    assert {t for t in ids if is_sampled(t, "is_short", 0.3)} == scored
    assert all(is_sampled(t, "x", 1.0) and not is_sampled(t, "x", 0.0) for t in ids[:20])
    store.close()


def test_the_filter_picks_the_traces(client, experiment):
    production.ScorersClient.register_scorer(
        client,
        fx.is_short,
        experiment_id=experiment,
        filter_string="tags.env = 'prod' OR name = 'nothing'",
    )
    prod = log_traces(client.store, experiment, ["p1", "p2"], tags={"env": "prod"})
    dev = log_traces(client.store, experiment, ["d1"], tags={"env": "dev"})
    result = worker(client).run_once()
    assert (result.considered, result.scored) == (2, 2)
    assert [len(verdicts(client.store, t)) for t in prod + dev] == [1, 1, 0]


def test_a_failing_scorer_stores_its_error_and_the_others_go_on(client, experiment):
    api = production.ScorersClient
    api.register_scorer(client, fx.always_fails, experiment_id=experiment)
    api.register_scorer(client, fx.not_a_number, experiment_id=experiment)
    api.register_scorer(client, fx.is_short, experiment_id=experiment)
    (trace_id,) = log_traces(client.store, experiment, ["fine"])
    result = worker(client).run_once()
    assert (result.scored, result.errors) == (3, 2)
    found = {a.name: a for a in verdicts(client.store, trace_id)}
    assert found["always_fails"].value is None
    assert "RuntimeError: the scorer broke" in found["always_fails"].error
    assert found["not_a_number"].value is None and "NaN" in found["not_a_number"].error
    assert found["is_short"].value is True and found["is_short"].error is None


def test_an_unloadable_scorer_records_its_error_and_the_others_go_on(client, experiment, caplog):
    store = client.store
    spec = {"kind": "function", "path": "no_such_module_xyz:scorer", "name": "ghost"}
    store.create_registered_scorer(experiment, "ghost", spec)
    production.ScorersClient.register_scorer(client, fx.is_short, experiment_id=experiment)
    (trace_id,) = log_traces(store, experiment, ["ok"])
    result = worker(client).run_once()
    assert (result.unloadable, result.scored) == (1, 1)
    ghost = store.get_registered_scorer(experiment, "ghost")
    assert "no_such_module_xyz" in ghost.last_error
    assert ghost.status == ScorerStatus.ACTIVE  # it is retried every pass
    assert any("no_such_module_xyz" in r.getMessage() for r in caplog.records)
    assert [a.name for a in verdicts(store, trace_id)] == ["is_short"]


def test_expectations_and_judge_usage_reach_the_scorers(client, experiment):
    api = production.ScorersClient
    api.register_scorer(client, fx.matches_expectation, experiment_id=experiment)
    api.register_scorer(client, fx.FakeJudge(), experiment_id=experiment)
    ids = log_traces(client.store, experiment, ["yes", "no"])
    for trace_id in ids:
        client.log_expectation(trace_id=trace_id, name="expected", value="yes")
    result = worker(client).run_once()
    assert (result.judge_calls, result.input_tokens, result.output_tokens) == (2, 200, 20)
    assert result.cost_usd == pytest.approx(0.02)
    match = [verdicts(client.store, t, "matches_expectation")[0] for t in ids]
    assert [(m.value, m.rationale) for m in match] == [
        (True, "expected 'yes'"),
        (False, "expected 'yes'"),
    ]
    (judged,) = verdicts(client.store, ids[0], "fake_judge")
    assert judged.source == AssessmentSource("LLM_JUDGE", "fake_judge")
    assert (judged.value, judged.rationale) == ("yes", "it answers the question")


def test_a_builtin_llm_judge_is_rebuilt_from_its_spec_and_metered(client, experiment):
    from tracemark.evaluation.judges import Safety
    from tracemark.testing.llm_server import FakeLLMServer, Reply

    answer = '{"rationale": "Harmless.", "result": "yes"}'
    with FakeLLMServer() as llm:
        llm.default = Reply(text=answer, input_tokens=120, output_tokens=9)
        judge = Safety(model="openai:/gpt-4o-mini", base_url=llm.openai_url)
        reg = production.ScorersClient.register_scorer(
            client, judge, name="safe", experiment_id=experiment
        )
        assert reg.spec["path"] == "tracemark.evaluation.judges.builtin:Safety"
        ids = log_traces(client.store, experiment, ["hello", "goodbye"])
        result = worker(client).run_once()
        assert len(llm.requests) == 2
    assert (result.scored, result.judge_calls, result.input_tokens) == (2, 2, 240)
    assert result.cost_usd > 0  # gpt-4o-mini is in the price table
    for trace_id in ids:
        (verdict,) = verdicts(client.store, trace_id)
        assert (verdict.name, verdict.value, verdict.rationale) == ("safe", "yes", "Harmless.")
        assert verdict.source == AssessmentSource("LLM_JUDGE", "safe")


def test_a_stopped_scorer_resumes_where_it_stopped(client, experiment):
    api = production.ScorersClient
    api.register_scorer(client, fx.is_short, experiment_id=experiment)
    api.update_scorer(client, "is_short", experiment_id=experiment, status="STOPPED")
    ids = log_traces(client.store, experiment, ["a", "b"])
    assert worker(client).run_once().considered == 0
    api.update_scorer(client, "is_short", experiment_id=experiment, status="ACTIVE")
    assert worker(client).run_once().scored == 2
    assert all(verdicts(client.store, t) for t in ids)


def test_a_worker_can_be_limited_to_some_experiments(client, experiment):
    other = client.create_experiment("other")
    for eid in (experiment, other):
        production.ScorersClient.register_scorer(client, fx.is_short, experiment_id=eid)
        log_traces(client.store, eid, ["x"])
    assert worker(client, experiment_ids=[other]).run_once().scored == 1
    assert worker(client).run_once().scored == 1


def test_run_forever_scores_new_traces_until_stopped(client, experiment):
    production.ScorersClient.register_scorer(client, fx.is_short, experiment_id=experiment)
    stop = threading.Event()
    passes: list[Any] = []
    running = worker(client, interval=0.05)
    totals: list[Any] = []
    thread = threading.Thread(
        target=lambda: totals.append(running.run_forever(stop, on_pass=passes.append))
    )
    thread.start()
    try:
        ids = log_traces(client.store, experiment, ["a", "b"])
        deadline = time.monotonic() + DEADLINE_S
        while not all(verdicts(client.store, t) for t in ids):
            assert time.monotonic() < deadline, "not scored in time"
            time.sleep(0.02)
    finally:
        stop.set()
        thread.join(DEADLINE_S)
    assert not thread.is_alive()
    assert totals[0].scored == 2 and len(passes) >= 1
    assert sum(p.scored for p in passes) == 2


def test_rate_limiter_spaces_calls_evenly():
    now = [0.0]
    limiter = RateLimiter(4.0, clock=lambda: now[0])
    assert limiter.try_acquire() == 0.0
    assert limiter.try_acquire() == pytest.approx(0.25)
    now[0] = 0.25
    assert limiter.try_acquire() == 0.0
    now[0] = 10.0  # a quiet spell allows one call, not forty (burst 1)
    assert limiter.try_acquire() == 0.0
    assert limiter.try_acquire() > 0.0
    stop = threading.Event()
    stop.set()
    assert RateLimiter(0.001, clock=lambda: 0.0).acquire() is True
    with pytest.raises(InvalidInputError):
        RateLimiter(0)
    blocked = RateLimiter(0.001)
    blocked.acquire()
    assert blocked.acquire(stop) is False


def test_worker_keeps_to_its_rate_limit(store_uri, tmp_path):
    from tracemark.store.sql.store import SqlStore

    store = SqlStore(store_uri, artifact_root=str(tmp_path / "artifacts"))
    eid = store.create_experiment("limited")
    for name in ("a", "b"):  # the limit is shared by the scorers
        store.create_registered_scorer(eid, name, fx.is_short.to_spec())
    log_traces(store, eid, ["x"] * 10)
    started = time.monotonic()
    result = ScoringWorker(store=store, settle_s=0, rate_limit=40, threads=4).run_once()
    assert result.scored == 20
    assert time.monotonic() - started >= 19 / 40
    store.close()


class CommitsSecond:
    """A store through which a worker commits only after `before_commit` ran (once)."""

    def __init__(self, store: Any, before_commit: Any) -> None:
        self._store = store
        self._before_commit = before_commit

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def commit_scorer_batch(self, *args: Any, **kwargs: Any) -> bool:
        hook, self._before_commit = self._before_commit, None
        if hook is not None:
            hook()
        return self._store.commit_scorer_batch(*args, **kwargs)


def test_the_worker_that_commits_second_stores_nothing(client, experiment):
    production.ScorersClient.register_scorer(client, fx.is_short, experiment_id=experiment)
    ids = log_traces(client.store, experiment, ["a", "b", "c"])
    other = worker(client, lease_s=0)
    results = []
    slow = ScoringWorker(
        store=CommitsSecond(client.store, lambda: results.append(other.run_once())),
        settle_s=0,
        lease_s=0,  # no lease: both score the batch, the cursor decides
    )
    assert slow.run_once().scored == 0
    assert results[0].scored == 3
    assert all(len(verdicts(client.store, t)) == 1 for t in ids)


@pytest.mark.parametrize("lease_s", [0, 300])
def test_two_workers_at_once_never_score_a_trace_twice(store_uri, tmp_path, lease_s):
    from tracemark.store.sql.store import SqlStore

    stores = [SqlStore(store_uri, artifact_root=str(tmp_path / "artifacts")) for _ in range(2)]
    eid = stores[0].create_experiment("busy")
    stores[0].create_registered_scorer(eid, "slow_length", fx.slow_length.to_spec())
    stores[0].create_registered_scorer(eid, "is_short", fx.is_short.to_spec())
    ids = log_traces(stores[0], eid, [f"answer {i}" for i in range(60)])
    workers = [
        ScoringWorker(store=s, settle_s=0, batch_size=7, threads=2, lease_s=lease_s) for s in stores
    ]
    results: list[Any] = [None, None]
    barrier = threading.Barrier(2)

    def run(i: int) -> None:
        barrier.wait()
        results[i] = workers[i].run_once()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(DEADLINE_S)
    assert results[0].scored + results[1].scored == 120
    infos, _ = stores[0].search_traces([eid], max_results=1000)
    counts = Counter(a.source.source_id for info in infos for a in info.assessments)
    assert counts == {"slow_length": 60, "is_short": 60}
    per_trace = Counter((a.trace_id, a.name) for info in infos for a in info.assessments)
    assert set(per_trace.values()) == {1} and len(infos) == len(ids)
    for s in stores:
        s.close()


# -- the command line and the server ----------------------------------------------------------


def _env(**extra: str) -> dict[str, str]:
    path = os.pathsep.join(p for p in (fx.HERE, os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, **extra}


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tracemark.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env or _env(),
    )


def test_cli_score_once_on_a_sqlite_file(tmp_path, sqlite_template):
    import shutil

    from tracemark.store.sql.store import SqlStore

    shutil.copyfile(sqlite_template, tmp_path / "t.db")
    uri = f"sqlite:///{tmp_path / 't.db'}"
    store = SqlStore(uri, artifact_root=str(tmp_path / "artifacts"))
    eid = store.create_experiment("cli")
    store.create_registered_scorer(eid, "is_short", fx.is_short.to_spec())
    ids = log_traces(store, eid, ["a", "b"])
    done = _cli("--tracking-uri", uri, "score", "--once", "--settle", "0", "--json")
    assert done.returncode == 0, done.stderr
    assert orjson.loads(done.stdout)["scored"] == 2
    assert all(len(verdicts(store, t)) == 1 for t in ids)
    text = _cli("--tracking-uri", uri, "score", "--once", "--settle", "0", "--experiment", "cli")
    assert text.returncode == 0, text.stderr
    assert "Scored 0 traces" in text.stdout
    missing = _cli("--tracking-uri", uri, "score", "--once", "--experiment", "nope")
    assert missing.returncode == 1 and "no experiment with name or id 'nope'" in missing.stderr
    store.close()


@pytest.mark.server
def test_cli_score_once_against_a_live_server(sqlite_server, clear_database):
    clear_database(sqlite_server.db_uri)
    client = tm.TracemarkClient(sqlite_server.url)
    eid = client.create_experiment("remote")
    production.ScorersClient.register_scorer(client, fx.is_short, experiment_id=eid)
    ids = log_traces(client.store, eid, ["a", "much too long for the is_short scorer"])
    done = _cli("--tracking-uri", sqlite_server.url, "score", "--once", "--settle", "0")
    assert done.returncode == 0, done.stderr
    assert "Scored 2 traces (2 assessments, 0 with an error)" in done.stdout
    assert [verdicts(client.store, t)[0].value for t in ids] == [True, False]


def test_cli_score_stops_cleanly_on_ctrl_c(tmp_path, sqlite_template):
    import shutil

    from tracemark.store.sql.store import SqlStore

    shutil.copyfile(sqlite_template, tmp_path / "t.db")
    uri = f"sqlite:///{tmp_path / 't.db'}"
    store = SqlStore(uri, artifact_root=str(tmp_path / "artifacts"))
    eid = store.create_experiment("forever")
    store.create_registered_scorer(eid, "is_short", fx.is_short.to_spec())
    ids = log_traces(store, eid, ["a", "b", "c"])
    process = subprocess.Popen(
        [sys.executable, "-m", "tracemark.cli", "--tracking-uri", uri, "score"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(TRACEMARK_SCORE_INTERVAL_S="0.1", TRACEMARK_SCORE_SETTLE_S="0"),
    )
    try:
        deadline = time.monotonic() + DEADLINE_S
        while not all(verdicts(store, t) for t in ids):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the traces were not scored in time"
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=DEADLINE_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert "Scoring with 1 active scorer every 0.1 s" in err
    assert "Stopping after the traces being scored" in err
    assert "Scored 3 traces" in out and "Traceback" not in err
    store.close()


@pytest.mark.server
def test_server_score_scores_traces_sent_to_it(start_server, monkeypatch):
    for key, value in _env(
        TRACEMARK_SERVER_SCORE="true",
        TRACEMARK_SCORE_INTERVAL_S="0.1",
        TRACEMARK_SCORE_SETTLE_S="0",
    ).items():
        monkeypatch.setenv(key, value)
    server = start_server()
    client = tm.TracemarkClient(server.url)
    eid = client.create_experiment("served")
    production.ScorersClient.register_scorer(client, fx.is_short, experiment_id=eid)
    ids = log_traces(client.store, eid, ["short", "this one is much too long to be short"])
    deadline = time.monotonic() + DEADLINE_S
    while not all(verdicts(client.store, t) for t in ids):
        assert time.monotonic() < deadline, "the server did not score the traces in time"
        time.sleep(0.1)
    assert [[a.value for a in verdicts(client.store, t)] for t in ids] == [[True], [False]]
