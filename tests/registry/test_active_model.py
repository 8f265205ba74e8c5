import asyncio
import textwrap
import threading

import pytest

from tracemark.exceptions import InvalidInputError, NotFoundError
from tracemark.registry.active_model import (
    clear_active_model,
    get_active_model_id,
    set_active_model,
)
from tracemark.registry.fluent import search_model_runs, search_model_traces

SQLITE_ONLY = pytest.mark.parametrize("tracking_uri", ["sqlite"], indirect=True)

AGENT = textwrap.dedent(
    """
    import tracemark as tm


    class Agent(tm.PythonModel):
        @tm.trace(span_type="AGENT")
        def predict(self, model_input, params=None):
            return f"answer to {model_input}"

        @tm.trace(span_type="AGENT")
        def predict_stream(self, model_input, params=None):
            yield "answer "
            yield f"to {model_input}"


    tm.set_model(Agent())
    """
)


@pytest.fixture(autouse=True)
def no_active_model():
    clear_active_model()
    yield
    clear_active_model()


@pytest.fixture
def agent_file(tmp_path):
    path = tmp_path / "agent.py"
    path.write_text(AGENT)
    return str(path)


def _model_ids(tm, trace_ids):
    return [tm.get_trace(t).info.metadata.get("tracemark.model_id") for t in trace_ids]


def _traced(tm):
    @tm.trace
    def handle(question):
        return question.upper()

    return handle


def test_traces_after_set_active_model_carry_its_id_and_are_found_by_it(tracking, agent_file):
    tm = tracking
    handle = _traced(tm)
    handle("before")
    before = tm.get_last_active_trace_id()
    with tm.start_run():
        logged = tm.log_model(agent_file, name="agent", registered_model_name="agent")
    active = set_active_model(model_id=logged.model_id)
    assert active.model_id == logged.model_id == get_active_model_id()
    handle("after")
    after = tm.get_last_active_trace_id()

    assert _model_ids(tm, [before, after]) == [None, logged.model_id]
    for filter_string in (
        f"metadata.`tracemark.model_id` = '{logged.model_id}'",
        f"metadata.tracemark.model_id = '{logged.model_id}'",
    ):
        assert [t.trace_id for t in tm.search_traces(filter_string=filter_string)] == [after]
    for model in (logged, logged.model_id, logged.model_uri, "models:/agent/1"):
        assert [t.trace_id for t in search_model_traces(model)] == [after]
    assert search_model_traces(logged, filter_string="status = 'ERROR'") == []


def test_set_active_model_by_name_creates_the_model_once_then_reuses_it(tracking):
    tm = tracking
    first = set_active_model(name="support-agent-v2")
    again = set_active_model(name="support-agent-v2")
    other = set_active_model(name="support-agent-v3")

    assert first.model_id == again.model_id != other.model_id
    stored = tm.TracemarkClient().get_logged_model(first.model_id)
    assert (stored.name, stored.flavor) == ("support-agent-v2", "external")
    run = tm.TracemarkClient().get_run(stored.run_id)
    assert run.tags["tracemark.run_type"] == "model"
    assert run.run_name == "support-agent-v2"


@SQLITE_ONLY
def test_set_active_model_by_name_uses_the_newest_model_logged_under_that_name(
    tracking, agent_file
):
    tm = tracking
    with tm.start_run():
        tm.log_model(agent_file, name="agent")
    with tm.start_run():
        newest = tm.log_model(agent_file, name="agent")
        # Inside a run, a new name is recorded in that run, not in a run of its own.
        fresh = set_active_model(name="brand-new")
        assert tm.TracemarkClient().get_logged_model(fresh.model_id).run_id == newest.run_id

    assert set_active_model(name="agent").model_id == newest.model_id


@SQLITE_ONLY
def test_set_active_model_as_a_context_manager_restores_the_previous_model(tracking):
    outer = set_active_model(name="outer")
    with set_active_model(name="inner") as inner:
        assert get_active_model_id() == inner.model_id
    assert get_active_model_id() == outer.model_id
    clear_active_model()
    assert get_active_model_id() is None


@SQLITE_ONLY
def test_active_model_reaches_new_threads_and_asyncio_tasks(tracking):
    tm = tracking
    active = set_active_model(name="agent")
    handle = _traced(tm)
    seen = []

    worker = threading.Thread(target=lambda: seen.append((handle("thread"), get_active_model_id())))
    worker.start()
    worker.join()

    async def task():
        return handle("task"), get_active_model_id()

    seen.append(asyncio.run(task()))
    assert [s[1] for s in seen] == [active.model_id, active.model_id]
    traces = search_model_traces(active.model_id)
    assert len(traces) == 2


@SQLITE_ONLY
def test_a_loaded_model_links_the_traces_of_its_predictions_to_itself(tracking, agent_file):
    tm = tracking
    with tm.start_run():
        logged = tm.log_model(agent_file, name="agent")
    app = set_active_model(name="app")
    model = tm.load_model(logged.model_uri)

    assert model.predict("q1") == "answer to q1"
    predicted = tm.get_last_active_trace_id()
    assert "".join(model.predict_stream("q2")) == "answer to q2"
    streamed = tm.get_last_active_trace_id()

    assert _model_ids(tm, [predicted, streamed]) == [logged.model_id, logged.model_id]
    assert get_active_model_id() == app.model_id
    with tm.start_span("outer"):  # an enclosing trace keeps the model it started with
        model.predict("q3")
    assert _model_ids(tm, [tm.get_last_active_trace_id()]) == [app.model_id]


def test_search_model_runs_lists_the_logging_run_then_the_evaluation_runs(tracking, agent_file):
    tm = tracking
    with tm.start_run(run_name="build") as build:
        logged = tm.log_model(agent_file, name="agent")
    handle = _traced(tm)
    set_active_model(model_id=logged.model_id)
    for name, accuracy in (("eval-1", 0.7), ("eval-2", 0.9)):
        with tm.start_run(run_name=name):
            for question in ("a", "b", "c"):
                handle(question)
            tm.log_metric("accuracy", accuracy)
    clear_active_model()
    with tm.start_run(run_name="unrelated"):
        handle("d")

    runs = search_model_runs("runs:/" + build.run_id + "/agent")
    assert [r.run_name for r in runs][0] == "build"
    assert sorted((r.run_name, r.metrics.get("accuracy")) for r in runs[1:]) == [
        ("eval-1", 0.7),
        ("eval-2", 0.9),
    ]


@SQLITE_ONLY
def test_set_active_model_rejects_bad_arguments(tracking, agent_file):
    tm = tracking
    with pytest.raises(InvalidInputError, match="name or a model_id"):
        set_active_model()
    with pytest.raises(NotFoundError, match="0123"):
        set_active_model(model_id="0123" * 8)
    with pytest.raises(InvalidInputError, match="invalid model name"):
        set_active_model(name="not a name!")
    with tm.start_run():
        logged = tm.log_model(agent_file, name="agent")
    with pytest.raises(InvalidInputError, match="is named 'agent', not 'other'"):
        set_active_model(name="other", model_id=logged.model_id)
    with pytest.raises(InvalidInputError, match="expected a model id"):
        search_model_traces(None)
    assert get_active_model_id() is None
