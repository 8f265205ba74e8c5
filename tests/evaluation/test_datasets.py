"""Evaluation datasets end to end on SQLite, PostgreSQL and a live server over each."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tracemark.entities.dataset import EMPTY_DIGEST
from tracemark.evaluation import datasets
from tracemark.exceptions import AlreadyExistsError, InvalidInputError, NotFoundError
from tracemark.tracing import DEFAULT_TRACER

QA = [
    {"inputs": {"question": "2+2"}, "expectations": {"answer": "4"}, "tags": {"topic": "math"}},
    {"inputs": {"question": "capital of France"}, "expectations": {"answer": "Paris"}},
]


@pytest.fixture
def traced(tracking: Any) -> Iterator[Any]:
    """`tm` on a fresh store, with its default tracer exporting in the background."""
    saved = DEFAULT_TRACER._config_snapshot()
    DEFAULT_TRACER.configure(
        enabled=True, sampling_ratio=1.0, async_export=True, mask=None, exporters=None
    )
    yield tracking
    assert DEFAULT_TRACER.flush(timeout=60)
    DEFAULT_TRACER.configure(**saved)


def contents(dataset: datasets.EvaluationDataset) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.to_dict().items() if k != "record_id"} for r in dataset.records]


def test_create_get_search_and_delete(tracking):
    experiment_id = tracking.create_experiment("support")
    created = datasets.create_dataset(
        "support-qa", experiment_id=experiment_id, description="golden set", tags={"team": 7}
    )
    datasets.create_dataset("chit-chat", tags={"team": "fun"})
    assert (created.name, created.version, len(created), created.records) == (
        "support-qa",
        0,
        0,
        [],
    )
    assert created.digest == EMPTY_DIGEST
    loaded = datasets.get_dataset("support-qa")
    assert loaded.dataset == created.dataset
    assert (loaded.experiment_id, loaded.description, loaded.tags) == (
        experiment_id,
        "golden set",
        {"team": "7"},
    )

    assert [d.name for d in datasets.search_datasets()] == ["chit-chat", "support-qa"]
    assert [d.name for d in datasets.search_datasets("name LIKE 'support%'")] == ["support-qa"]
    assert [d.name for d in datasets.search_datasets("tags.team = 'fun'")] == ["chit-chat"]
    assert [d.name for d in datasets.search_datasets(experiment_ids=[experiment_id])] == [
        "support-qa"
    ]
    first = datasets.search_datasets(max_results=1)
    assert [d.name for d in first] == ["chit-chat"]
    rest = datasets.search_datasets(max_results=1, page_token=first.token)
    assert [d.name for d in rest] == ["support-qa"] and rest.token is None

    datasets.delete_dataset("support-qa")
    with pytest.raises(NotFoundError, match="'support-qa'"):
        datasets.get_dataset("support-qa")
    with pytest.raises(NotFoundError):
        datasets.delete_dataset("support-qa")
    assert [d.name for d in datasets.search_datasets()] == ["chit-chat"]


def test_a_name_is_taken_once_and_unknown_things_are_not_found(tracking):
    dataset = datasets.create_dataset("qa")
    with pytest.raises(AlreadyExistsError, match="'qa'"):
        datasets.create_dataset("qa")
    with pytest.raises(InvalidInputError):
        datasets.create_dataset("bad/name")
    with pytest.raises(InvalidInputError, match="NUL") as caught:
        datasets.create_dataset("nul", description="a\x00b")
    assert caught.value.field == "description"
    with pytest.raises(NotFoundError):
        datasets.create_dataset("orphan", experiment_id="12345")
    with pytest.raises(NotFoundError, match="version 3"):
        datasets.get_dataset("qa", version=3)
    with pytest.raises(NotFoundError, match="'nope'"):
        datasets.get_dataset("nope")
    datasets.delete_dataset("qa")
    with pytest.raises(NotFoundError):
        dataset.merge_records(QA)


def test_merging_dicts_adds_records_and_updates_those_with_the_same_inputs(tracking):
    dataset = datasets.create_dataset("qa")
    assert dataset.merge_records(QA) is dataset
    assert (dataset.version, len(dataset)) == (1, 2)
    dataset.merge_records(
        [
            {
                "inputs": {"question": "2+2"},
                "expectations": {"explanation": "arithmetic"},
                "outputs": "4",
                "tags": {"reviewed": True},
            },
            {"inputs": {"question": "new"}},
        ]
    )
    assert (dataset.version, len(dataset)) == (2, 3)
    assert contents(datasets.get_dataset("qa"))[:2] == [
        {
            "inputs": {"question": "2+2"},
            "expectations": {"answer": "4", "explanation": "arithmetic"},
            "outputs": "4",
            "tags": {"topic": "math", "reviewed": "True"},
            "source_trace_id": None,
            "creation_time": dataset.records[0].creation_time,
        },
        {
            "inputs": {"question": "capital of France"},
            "expectations": {"answer": "Paris"},
            "outputs": None,
            "tags": {},
            "source_trace_id": None,
            "creation_time": dataset.records[1].creation_time,
        },
    ]
    # Records keep the order they were first added in, across versions.
    assert [r.inputs["question"] for r in dataset.records] == ["2+2", "capital of France", "new"]


def test_each_version_reads_back_exactly_and_its_digest_follows_content(tracking):
    dataset = datasets.create_dataset("qa")
    v1 = dataset.merge_records(QA[:1]).digest
    unread = datasets.get_dataset("qa")  # its records are read later, after version 2
    dataset.merge_records([{**QA[0], "expectations": {"answer": "four"}}, QA[1]])
    v2 = dataset.digest
    assert dataset.version == 2 and v2 != v1

    first = datasets.get_dataset("qa", version=1)
    assert (first.version, first.digest, len(first)) == (1, v1, 1)
    assert [(r.inputs, r.expectations) for r in first.records] == [
        ({"question": "2+2"}, {"answer": "4"})
    ]
    second = datasets.get_dataset("qa", version=2)
    assert [r.expectations for r in second.records] == [{"answer": "four"}, {"answer": "Paris"}]
    assert datasets.get_dataset("qa").digest == v2
    assert (unread.version, [r.expectations for r in unread.records]) == (1, [{"answer": "4"}])

    # Equal content, merged in another order and in two steps, has the same digest.
    twin = datasets.create_dataset("qa-twin")
    twin.merge_records([QA[1]])
    twin.merge_records([{**QA[0], "expectations": {"answer": "four"}}])
    assert twin.digest == v2 and twin.version == 2


def test_a_merge_that_changes_nothing_keeps_the_version(tracking):
    dataset = datasets.create_dataset("qa").merge_records(QA)
    before = (dataset.version, dataset.digest)
    dataset.merge_records(QA)
    dataset.merge_records([{"inputs": {"question": "2+2"}, "expectations": {"answer": "4"}}])
    dataset.merge_records([])
    assert (dataset.version, dataset.digest) == before
    assert datasets.get_dataset("qa").version == 1


@pytest.mark.parametrize(
    ("bad", "field", "message"),
    [
        ({"expectations": {"answer": "x"}}, "records[1].inputs", "record 1 has no 'inputs'"),
        ({"inputs": "2+2"}, "records[1].inputs", "inputs must be a dict"),
        ({"inputs": {"q": 1}, "expectation": {}}, "records[1].expectation", "'expectation'"),
        ({"inputs": {"q": 1}, "tags": ["x"]}, "records[1].tags", "tags must be a dict"),
        ({"inputs": {"q": object()}}, "records[1].inputs", "not JSON-serializable"),
        ({"inputs": {"q": 1}, "source_trace_id": "t-1"}, "records[1].source_trace_id", "hex"),
        (42, "records[1]", "record 1 must be a dict"),
        ("just text", "records[1]", "record 1 is a string but not a trace id"),
    ],
)
def test_a_bad_record_is_refused_by_index_and_field_and_nothing_is_written(
    tracking, bad, field, message
):
    dataset = datasets.create_dataset("qa")
    with pytest.raises(InvalidInputError, match=message) as caught:
        dataset.merge_records([{"inputs": {"question": "fine"}}, bad])
    assert caught.value.field == field
    assert (dataset.version, len(dataset)) == (0, 0)
    assert datasets.get_dataset("qa").records == []


def test_records_must_be_a_list(tracking):
    dataset = datasets.create_dataset("qa")
    with pytest.raises(InvalidInputError, match="list of dicts") as caught:
        dataset.merge_records({"inputs": {"question": "x"}})
    assert caught.value.field == "records"


def test_traces_become_records_with_their_root_io_and_expectations(traced):
    tm = traced

    @tm.trace
    def answer(question: str) -> str:
        with tm.start_span("lookup") as span:
            span.set_inputs({"ignored": True})
        return "Paris" if "France" in question else "4"

    answer("capital of France")
    by_id = tm.get_last_active_trace_id()
    answer("2+2")
    as_trace = tm.get_last_active_trace_id()
    with tm.start_span("root") as span:
        span.set_inputs({"question": "by info"})
        span.set_outputs({"text": "ok"})
    as_info = tm.get_last_active_trace_id()
    tm.flush()
    tm.log_expectation(trace_id=by_id, name="answer", value="Paris")
    tm.log_expectation(trace_id=by_id, name="facts", value=["capital", "France"])
    tm.log_feedback(trace_id=by_id, name="helpful", value=True)
    info = next(i for i in tm.search_traces() if i.trace_id == as_info)

    dataset = datasets.create_dataset("from-traces")
    dataset.merge_records([by_id, tm.get_trace(as_trace), info])
    assert [r.to_dict() | {"record_id": None, "creation_time": 0} for r in dataset.records] == [
        {
            "record_id": None,
            "inputs": {"question": "capital of France"},
            "expectations": {"answer": "Paris", "facts": ["capital", "France"]},
            "outputs": "Paris",
            "tags": {},
            "source_trace_id": by_id,
            "creation_time": 0,
        },
        {
            "record_id": None,
            "inputs": {"question": "2+2"},
            "expectations": {},
            "outputs": "4",
            "tags": {},
            "source_trace_id": as_trace,
            "creation_time": 0,
        },
        {
            "record_id": None,
            "inputs": {"question": "by info"},
            "expectations": {},
            "outputs": {"text": "ok"},
            "tags": {},
            "source_trace_id": as_info,
            "creation_time": 0,
        },
    ]
    # Merging the same traces again changes nothing.
    dataset.merge_records([by_id, as_trace, as_info])
    assert dataset.version == 1

    with pytest.raises(NotFoundError):
        dataset.merge_records(["0" * 32])


def test_a_trace_whose_root_has_no_dict_inputs_is_refused(traced):
    tm = traced
    with tm.start_span("no inputs"):
        pass
    trace_id = tm.get_last_active_trace_id()
    tm.flush()
    dataset = datasets.create_dataset("qa")
    with pytest.raises(InvalidInputError, match="has no inputs") as caught:
        dataset.merge_records([{"inputs": {"q": 1}}, trace_id])
    assert caught.value.field == "records[1].inputs"
    assert datasets.get_dataset("qa").version == 0


def test_dataframes_go_in_and_come_out(tracking):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(
        {
            "inputs": [{"question": "2+2"}, {"question": "3+3"}],
            "expectations": [{"answer": "4"}, None],
            "outputs": ["4", float("nan")],
        }
    )
    dataset = datasets.create_dataset("qa").merge_records(frame)
    out = dataset.to_df()
    assert list(out.columns) == [
        "record_id",
        "inputs",
        "expectations",
        "outputs",
        "tags",
        "source_trace_id",
    ]
    assert out["inputs"].tolist() == [{"question": "2+2"}, {"question": "3+3"}]
    assert out["expectations"].tolist() == [{"answer": "4"}, {}]
    assert out.at[0, "outputs"] == "4" and pd.isna(out.at[1, "outputs"])
    # A frame read out merges back unchanged; an edited one makes the next version.
    assert dataset.merge_records(out).version == 1
    out.at[1, "expectations"] = {"answer": "6"}
    dataset.merge_records(out)
    assert dataset.version == 2
    assert [r.expectations for r in dataset.records] == [{"answer": "4"}, {"answer": "6"}]


def test_iteration_and_eval_rows_feed_evaluate(tracking):
    dataset = datasets.create_dataset("qa").merge_records([{**QA[0], "outputs": "4"}, QA[1]])
    assert list(dataset) == [
        {"inputs": {"question": "2+2"}, "expectations": {"answer": "4"}, "outputs": "4"},
        {"inputs": {"question": "capital of France"}, "expectations": {"answer": "Paris"}},
    ]
    assert dataset.to_eval_rows() == [
        {
            "inputs": {"question": "2+2"},
            "expectations": {"answer": "4"},
            "outputs": "4",
            "tags": {"topic": "math"},
            "source_trace_id": None,
        },
        {
            "inputs": {"question": "capital of France"},
            "expectations": {"answer": "Paris"},
            "tags": {},
            "source_trace_id": None,
        },
    ]
    assert "qa" in repr(dataset) and "version=1" in repr(dataset)


def test_concurrent_merges_lose_no_records_and_take_each_version_once(tracking):
    datasets.create_dataset("shared")
    threads_count, per_thread = 6, 5
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            handle = datasets.get_dataset("shared")
            for i in range(per_thread):
                handle.merge_records([{"inputs": {"thread": n, "i": i}}])
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    total = threads_count * per_thread
    final = datasets.get_dataset("shared")
    assert (final.version, len(final), len(final.records)) == (total, total, total)
    # Every merge added one record on top of the one before: version k holds k records.
    assert [len(datasets.get_dataset("shared", version=k)) for k in range(1, total + 1)] == list(
        range(1, total + 1)
    )


@pytest.mark.server
def test_the_rest_api_answers_with_error_bodies(sqlite_server, clear_database):
    clear_database(sqlite_server.db_uri)
    base = f"{sqlite_server.url}/api/v1/datasets"
    created = httpx.post(base, json={"name": "qa", "tags": {"a": "b"}})
    assert created.status_code == 200 and created.json()["version"] == 0
    again = httpx.post(base, json={"name": "qa"})
    assert again.status_code == 409
    assert again.json()["error_code"] == "RESOURCE_ALREADY_EXISTS"
    missing = httpx.get(f"{base}/nope")
    assert missing.status_code == 404
    assert missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    bad = httpx.post(f"{base}/qa/records", json={"records": [{"inputs": {"q": 1}}, {"x": 1}]})
    assert bad.status_code == 400
    assert bad.json()["field"] == "records[1].x"
    merged = httpx.post(f"{base}/qa/records", json={"records": [{"inputs": {"q": 1}}]})
    assert merged.status_code == 200 and merged.json()["version"] == 1
    records = httpx.get(f"{base}/qa/records", params={"version": 1}).json()["records"]
    assert [r["inputs"] for r in records] == [{"q": 1}]
    assert httpx.get(f"{base}/qa", params={"version": 0}).status_code == 422
    assert httpx.delete(f"{base}/qa").status_code == 200
