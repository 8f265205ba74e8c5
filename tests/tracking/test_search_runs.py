import pytest

from tracemark.exceptions import InvalidFilterError, InvalidInputError


@pytest.fixture
def runs(tracking):
    tm = tracking
    tm.set_experiment("search")
    made = {}
    for name, model, acc, env in [
        ("r1", "gpt-4o-mini", 0.95, "prod"),
        ("r2", "gpt-4o", 0.85, "dev"),
        ("r3", "claude-3", 0.91, "prod"),
        ("r4", "gpt-4o-mini", 0.70, "dev"),
    ]:
        with tm.start_run(run_name=name, tags={"env": env, "my tag": name}) as run:
            tm.log_param("model", model)
            tm.log_metric("accuracy", acc)
            tm.log_metric("f1 score", acc / 2)
        made[name] = run.run_id
    return made


def names(runs):
    return sorted(r.run_name for r in runs)


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("metrics.accuracy > 0.9", ["r1", "r3"]),
        ("metrics.accuracy > 0.9 AND params.model = 'gpt-4o-mini'", ["r1"]),
        ("tags.env != 'dev'", ["r1", "r3"]),
        ("attributes.status = 'FINISHED'", ["r1", "r2", "r3", "r4"]),
        ("params.model LIKE 'gpt%'", ["r1", "r2", "r4"]),
        ("params.model ILIKE 'GPT-4O%'", ["r1", "r2", "r4"]),
        ("params.model IN ('claude-3', 'gpt-4o')", ["r2", "r3"]),
        ("metrics.`f1 score` >= 0.45", ["r1", "r3"]),
        ("tags.`my tag` = 'r2'", ["r2"]),
        ("attributes.run_name = 'r4'", ["r4"]),
        ("metrics.missing > 0", []),
    ],
)
def test_filters(tracking, runs, filter_string, expected):
    assert names(tracking.search_runs(filter_string=filter_string)) == expected


def test_order_by_metric_and_paging(tracking, runs):
    tm = tracking
    first = tm.search_runs(order_by=["metrics.accuracy DESC"], max_results=3)
    assert [r.run_name for r in first] == ["r1", "r3", "r2"]
    assert first.token is not None
    rest = tm.search_runs(order_by=["metrics.accuracy DESC"], max_results=3, page_token=first.token)
    assert [r.run_name for r in rest] == ["r4"] and rest.token is None


def test_pandas_output(tracking, runs):
    frame = tracking.search_runs(output_format="pandas", order_by=["metrics.accuracy ASC"])
    assert list(frame["run_name"]) == [
        "r4",
        "r2",
        "r3",
        "r1",
    ]
    assert list(frame["params.model"])[0] == "gpt-4o-mini"
    assert frame["metrics.accuracy"].max() == 0.95


def test_bad_filter_points_at_the_token(tracking, runs):
    with pytest.raises(InvalidFilterError) as info:
        tracking.search_runs(filter_string="metrics.accuracy >> 0.9")
    assert info.value.position > 0
    with pytest.raises(InvalidFilterError):
        tracking.search_runs(filter_string="bogus.key = 'x'")


def test_injection_attempt_is_data(tracking, runs):
    hostile = "x' OR '1'='1"
    assert tracking.search_runs(filter_string=f'params.model = "{hostile}"') == []
    assert len(tracking.search_runs()) == 4


def test_bad_page_arguments(tracking, runs):
    with pytest.raises(InvalidInputError, match="page_token"):
        tracking.search_runs(page_token="garbage!!")
    with pytest.raises(InvalidInputError, match="max_results"):
        tracking.search_runs(max_results=0)
