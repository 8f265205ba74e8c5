import base64

import pytest
from sqlalchemy import create_engine, event, func, insert, select, text

from tracemark.exceptions import InvalidFilterError, InvalidInputError
from tracemark.store.base import ViewType
from tracemark.store.filter_grammar import parse_filter, parse_order_by
from tracemark.store.sql.paging import decode_page_token, encode_page_token
from tracemark.store.sql.run_search import (
    build_run_select,
    experiment_filter_clause,
    experiment_order_clauses,
    run_filter_clause,
    run_order_clauses,
)
from tracemark.store.sql.schema import (
    experiment_tags,
    experiments,
    latest_metrics,
    metadata,
    params,
    run_tags,
    runs,
)
from tracemark.store.validation import MAX_RESULTS_LIMIT

INJECTION = "x'; DROP TABLE runs; --"


def _experiment(experiment_id, name, *, created, updated, stage="active"):
    return {
        "experiment_id": experiment_id,
        "name": name,
        "artifact_location": f"file:///artifacts/{experiment_id}",
        "lifecycle_stage": stage,
        "creation_time": created,
        "last_update_time": updated,
    }


def _run(run_id, name, status, start, end=None, *, experiment_id=1, stage="active", parent=None):
    return {
        "run_id": run_id,
        "experiment_id": experiment_id,
        "name": name,
        "status": status,
        "start_time": start,
        "end_time": end,
        "lifecycle_stage": stage,
        "artifact_uri": f"file:///artifacts/{run_id}",
        "parent_run_id": parent,
    }


def _metric(run_id, key, value, *, is_nan=False):
    return {
        "run_id": run_id,
        "key": key,
        "value": value,
        "is_nan": is_nan,
        "timestamp": 0,
        "step": 0,
    }


def _sqlite_engine():
    engine = create_engine("sqlite://")

    # The SQL store turns this on so LIKE is case-sensitive on SQLite as on PostgreSQL.
    @event.listens_for(engine, "connect")
    def _case_sensitive_like(dbapi_connection, _record):
        dbapi_connection.execute("PRAGMA case_sensitive_like = ON")

    metadata.create_all(engine)
    return engine


def _postgres_engine(uri):
    engine = create_engine(uri)
    metadata.create_all(engine)
    tables = ", ".join(f'"{table.name}"' for table in metadata.sorted_tables)
    with engine.begin() as conn:
        # The session's database is shared with other tests; start from empty tables.
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    return engine


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request):
    if request.param == "sqlite":
        engine = _sqlite_engine()
    else:
        engine = _postgres_engine(request.getfixturevalue("postgres_database"))
    with engine.begin() as conn:
        conn.execute(
            insert(experiments),
            [
                _experiment(1, "support-agent", created=100, updated=300),
                _experiment(2, "Vision", created=200, updated=200),
                _experiment(3, "old-agent", created=50, updated=400, stage="deleted"),
                _experiment(4, "o'brien", created=300, updated=100),
            ],
        )
        conn.execute(
            insert(experiment_tags),
            [
                {"experiment_id": 1, "key": "team", "value": "nlp"},
                {"experiment_id": 2, "key": "team", "value": "cv"},
                {"experiment_id": 3, "key": "team", "value": "nlp"},
            ],
        )
        conn.execute(
            insert(runs),
            [
                _run("run1", "baseline", "FINISHED", 1000, 2000),
                _run("run2", "prompt-v2", "FINISHED", 2000, 3000),
                _run("run3", "Prompt-v3", "RUNNING", 3000),
                _run("run4", "child", "FAILED", 3000, 3500, parent="run1"),
                _run("run5", "removed", "FINISHED", 4000, 4500, stage="deleted"),
                _run("run6", "vision", "FINISHED", 5000, 6000, experiment_id=2),
            ],
        )
        conn.execute(
            insert(params),
            [
                {"run_id": "run1", "key": "model", "value": "gpt-4o"},
                {"run_id": "run1", "key": "temperature", "value": "0.2"},
                {"run_id": "run2", "key": "model", "value": "gpt-4o-mini"},
                {"run_id": "run3", "key": "model", "value": INJECTION},
                {"run_id": "run6", "key": "model", "value": "gpt-4o"},
            ],
        )
        conn.execute(
            insert(run_tags),
            [
                {"run_id": "run1", "key": "env", "value": "prod"},
                {"run_id": "run1", "key": "mlflow.user", "value": "ana"},
                {"run_id": "run2", "key": "env", "value": "dev"},
                {"run_id": "run3", "key": "env", "value": "prod"},
                {"run_id": "run3", "key": "it's", "value": "quoted"},
            ],
        )
        conn.execute(
            insert(latest_metrics),
            [
                _metric("run1", "accuracy", 0.80),
                _metric("run1", "loss", 0.5),
                _metric("run2", "accuracy", 0.91),
                _metric("run2", "f1 score", 0.7),
                _metric("run3", "accuracy", 0.0, is_nan=True),
                _metric("run4", "accuracy", 0.95),
                _metric("run5", "accuracy", 0.99),
                _metric("run6", "accuracy", 0.5),
            ],
        )
    yield engine
    engine.dispose()


def fetch_page(conn, experiment_ids, *, max_results=1000, **kwargs):
    """Read one page the way the SQL store does: the extra row means another page follows."""
    stmt, next_token = build_run_select(experiment_ids, max_results=max_results, **kwargs)
    rows = conn.execute(stmt).all()
    return rows[:max_results], (next_token if len(rows) > max_results else None)


@pytest.fixture
def search(engine):
    """Return the run ids a search finds, in order (experiment 1 unless told otherwise)."""

    def search(filter_string=None, *, experiment_ids=("1",), **kwargs):
        with engine.connect() as conn:
            rows, _ = fetch_page(conn, experiment_ids, filter_string=filter_string, **kwargs)
        return [row.run_id for row in rows]

    return search


@pytest.fixture
def search_experiments(engine):
    """Return the names of matching experiments, composing the query as the store does."""

    def search_experiments(filter_string=None, *, order_by=None, stage="active"):
        stmt = select(experiments.c.name)
        if stage is not None:
            stmt = stmt.where(experiments.c.lifecycle_stage == stage)
        expr = parse_filter(filter_string)
        if expr is not None:
            stmt = stmt.where(experiment_filter_clause(expr, filter_string=filter_string))
        stmt = stmt.order_by(*experiment_order_clauses(parse_order_by(order_by)))
        with engine.connect() as conn:
            return conn.execute(stmt).scalars().all()

    return search_experiments


def filter_error(compile_filter, filter_string):
    with pytest.raises(InvalidFilterError) as info:
        compile_filter(parse_filter(filter_string), filter_string=filter_string)
    return info.value


# --- runs: default order, experiments, view types -----------------------------------------


def test_without_filter_newest_runs_come_first_and_run_id_breaks_ties(search):
    assert search() == ["run3", "run4", "run2", "run1"]


def test_search_spans_every_listed_experiment(search):
    assert search(experiment_ids=["1", "2"])[0] == "run6"
    assert search(experiment_ids=["2"]) == ["run6"]
    assert search(experiment_ids=[]) == []


@pytest.mark.parametrize(
    ("view_type", "expected"),
    [
        (ViewType.ACTIVE_ONLY, ["run3", "run4", "run2", "run1"]),
        (ViewType.DELETED_ONLY, ["run5"]),
        (ViewType.ALL, ["run5", "run3", "run4", "run2", "run1"]),
    ],
)
def test_view_type_selects_lifecycle_stages(search, view_type, expected):
    assert search(view_type=view_type) == expected


def test_select_returns_the_columns_of_runs_only():
    stmt, _ = build_run_select(["1"], "metrics.accuracy > 0 AND params.model = 'x'")
    assert [column.name for column in stmt.selected_columns] == [
        column.name for column in runs.columns
    ]


# --- metrics ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("metrics.accuracy > 0.85", ["run4", "run2"]),
        ("metrics.accuracy >= 0.91", ["run4", "run2"]),
        ("metrics.accuracy < 0.9", ["run1"]),
        ("metrics.accuracy <= 0.8", ["run1"]),
        ("metrics.accuracy = 0.8", ["run1"]),
        ("metrics.accuracy != 0.8", ["run4", "run2"]),
        ("metrics.accuracy > 0", ["run4", "run2", "run1"]),
        ("metrics.accuracy > -1e9", ["run4", "run2", "run1"]),
        ("metrics.loss < 1", ["run1"]),
        ("metrics.`f1 score` >= 0.7", ["run2"]),
        ('metrics."f1 score" = 0.7', ["run2"]),
        ("metric.accuracy > 0.9", ["run4", "run2"]),
        ("metrics.loss IS NULL", ["run3", "run4", "run2"]),
        ("metrics.loss IS NOT NULL", ["run1"]),
        ("metrics.accuracy > 99999999999999999999999", []),
    ],
)
def test_metrics_compare_the_latest_numeric_value(search, filter_string, expected):
    assert search(filter_string) == expected


def test_nan_metric_matches_no_comparison_but_counts_as_present(search):
    assert "run3" not in search("metrics.accuracy != 123")
    assert "run3" in search("metrics.accuracy IS NOT NULL")


@pytest.mark.parametrize(
    ("filter_string", "message", "position"),
    [
        ("metrics.accuracy > '0.9'", "metrics.accuracy: value must be a number, got '0.9'", 19),
        ("metrics.accuracy = true", "metrics.accuracy: value must be a number", 19),
        ("metrics.`f1 score` < 'x'", "metrics.`f1 score`: value must be a number", 21),
        ("metrics.accuracy LIKE '9%'", "operator 'LIKE' does not apply to metrics", 0),
        ("metrics.accuracy IN (1, 2)", "operator 'IN' does not apply to metrics", 0),
    ],
)
def test_bad_metric_comparisons_name_the_key(filter_string, message, position):
    error = filter_error(run_filter_clause, filter_string)
    assert message in error.message
    assert error.position == position


# --- params and tags ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("params.model = 'gpt-4o'", ["run1"]),
        ('params.model = "gpt-4o-mini"', ["run2"]),
        ("params.model != 'gpt-4o'", ["run3", "run2"]),
        ("params.model <> 'gpt-4o'", ["run3", "run2"]),
        ("params.model LIKE 'gpt-4o%'", ["run2", "run1"]),
        ("params.model LIKE 'GPT%'", []),
        ("params.model ILIKE 'GPT-4O%'", ["run2", "run1"]),
        ("params.model NOT LIKE 'gpt%'", ["run3"]),
        ("params.model NOT ILIKE '%MINI'", ["run3", "run1"]),
        ("params.model IN ('gpt-4o', 'claude')", ["run1"]),
        ("params.model NOT IN ('gpt-4o', 'claude')", ["run3", "run2"]),
        ("params.model IS NULL", ["run4"]),
        ("params.model IS NOT NULL", ["run3", "run2", "run1"]),
        ("params.temperature = '0.2'", ["run1"]),
        ("param.temperature = '0.2'", ["run1"]),
        ("params.missing = 'x'", []),
        ("tags.env = 'prod'", ["run3", "run1"]),
        ("tag.env = 'prod'", ["run3", "run1"]),
        ("tags.`mlflow.user` = 'ana'", ["run1"]),
        ("tags.mlflow.user = 'ana'", ["run1"]),
        ("tags.env IS NULL", ["run4"]),
        ("tags.env IN ('dev')", ["run2"]),
        ("tags.`it's` = 'quoted'", ["run3"]),
    ],
)
def test_params_and_tags_compare_as_strings(search, filter_string, expected):
    assert search(filter_string) == expected


@pytest.mark.parametrize(
    ("filter_string", "message", "position"),
    [
        ("params.temperature = 0.2", "params.temperature: value must be a quoted string", 21),
        ("params.temperature = 0.2", "params.temperature = '0.2'", 21),
        ("tags.flag = true", "tags.flag = 'true'", 12),
        ("tags.env IN ('prod', 1)", "tags.env: value must be a quoted string", 12),
        ("params.`my key` = 1", "params.`my key`: value must be a quoted string", 18),
        ("params.temperature > '0.1'", "operator '>' does not apply to strings", 0),
    ],
)
def test_bad_param_and_tag_comparisons_name_the_key(filter_string, message, position):
    error = filter_error(run_filter_clause, filter_string)
    assert message in error.message
    assert error.position == position


# --- attributes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("status = 'FINISHED'", ["run2", "run1"]),
        ("attributes.status = 'FINISHED'", ["run2", "run1"]),
        ("attribute.status != 'FINISHED'", ["run3", "run4"]),
        ("attributes.status IN ('RUNNING', 'FAILED')", ["run3", "run4"]),
        ("status NOT IN ('RUNNING', 'FAILED')", ["run2", "run1"]),
        ("run_name = 'baseline'", ["run1"]),
        ("attributes.name = 'baseline'", ["run1"]),
        ("run_name LIKE 'prompt%'", ["run2"]),
        ("run_name ILIKE 'prompt%'", ["run3", "run2"]),
        ("run_name NOT ILIKE 'prompt%'", ["run4", "run1"]),
        ("run_id = 'run2'", ["run2"]),
        ("run_id IN ('run1', 'run4', 'run6')", ["run4", "run1"]),
        ("start_time >= 2000", ["run3", "run4", "run2"]),
        ("attributes.start_time < 2000.5", ["run2", "run1"]),
        ("end_time IS NULL", ["run3"]),
        ("end_time IS NOT NULL", ["run4", "run2", "run1"]),
        ("end_time > 2500", ["run4", "run2"]),
        ("start_time IN (1000, 3000)", ["run3", "run4", "run1"]),
        ("parent_run_id = 'run1'", ["run4"]),
        ("parent_run_id IS NULL", ["run3", "run2", "run1"]),
        ("artifact_uri LIKE '%run2'", ["run2"]),
        ("experiment_id = '1'", ["run3", "run4", "run2", "run1"]),
        ("experiment_id = 2", []),
        ("experiment_id IN ('1', '2')", ["run3", "run4", "run2", "run1"]),
        ("lifecycle_stage = 'active'", ["run3", "run4", "run2", "run1"]),
        ("STATUS = 'FAILED'", ["run4"]),
        ("Attributes.status = 'FAILED'", ["run4"]),
    ],
)
def test_attributes_filter_run_columns(search, filter_string, expected):
    assert search(filter_string) == expected


def test_attribute_filter_and_view_type_combine(search):
    assert search("lifecycle_stage = 'deleted'", view_type=ViewType.ALL) == ["run5"]
    assert search("lifecycle_stage = 'deleted'") == []


@pytest.mark.parametrize(
    ("filter_string", "message", "position"),
    [
        ("start_time > '2000'", "start_time: value must be a number, got '2000'", 13),
        ("status = 1", "status: value must be a quoted string", 9),
        ("experiment_id = 'abc'", "experiment_id: value must be an experiment id", 16),
        ("experiment_id = 1.5", "experiment_id: value must be an experiment id", 16),
        ("experiment_id > '1'", "operator '>' does not apply to ids", 0),
        ("status > 'A'", "operator '>' does not apply to strings", 0),
        ("start_time LIKE '1%'", "operator 'LIKE' does not apply to numbers", 0),
    ],
)
def test_bad_attribute_comparisons_name_the_attribute(filter_string, message, position):
    error = filter_error(run_filter_clause, filter_string)
    assert message in error.message
    assert error.position == position


def test_unknown_attribute_lists_the_valid_ones_and_points_at_it():
    error = filter_error(run_filter_clause, "status = 'FAILED' AND attributes.colour = 'red'")
    assert "unknown attribute 'colour' at position 22" in error.message
    for name in ("status", "run_name", "run_id", "start_time", "end_time", "artifact_uri"):
        assert name in error.message
    assert error.position == 22


def test_unknown_prefix_lists_the_valid_ones_and_points_at_it():
    error = filter_error(run_filter_clause, "metrics.a > 1 OR feedback.helpful = true")
    assert error.message.startswith(
        "unknown key prefix 'feedback' at position 17; use one of metrics, params, tags, attributes"
    )
    assert error.position == 17
    assert error.field == "filter_string"


def test_filter_errors_surface_from_build_run_select():
    with pytest.raises(InvalidFilterError) as info:
        build_run_select(["1"], filter_string="span.name = 'x'")
    assert info.value.filter_string == "span.name = 'x'"


# --- boolean structure --------------------------------------------------------------------


def test_and_binds_tighter_than_or_in_sql(search):
    low_accuracy = "metrics.accuracy < 0.85"
    assert search(f"tags.env = 'dev' OR tags.env = 'prod' AND {low_accuracy}") == ["run2", "run1"]
    assert search(f"(tags.env = 'dev' OR tags.env = 'prod') AND {low_accuracy}") == ["run1"]


def test_conditions_on_different_kinds_combine(search):
    filter_string = (
        "params.model LIKE 'gpt%' AND metrics.accuracy > 0.5 AND status = 'FINISHED' "
        "AND (tags.env = 'dev' OR tags.`mlflow.user` IS NOT NULL)"
    )
    assert search(filter_string) == ["run2", "run1"]


# --- ordering -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("order_by", "expected"),
    [
        (["metrics.accuracy DESC"], ["run4", "run2", "run1", "run3"]),
        (["metrics.accuracy ASC"], ["run1", "run2", "run4", "run3"]),
        (["metrics.loss"], ["run1", "run3", "run4", "run2"]),
        (["metrics.loss DESC"], ["run1", "run3", "run4", "run2"]),
        (["params.model"], ["run1", "run2", "run3", "run4"]),
        (["params.model DESC"], ["run3", "run2", "run1", "run4"]),
        (["tags.env", "run_name DESC"], ["run2", "run1", "run3", "run4"]),
        (["attributes.start_time"], ["run1", "run2", "run3", "run4"]),
        (["start_time DESC", "run_id DESC"], ["run4", "run3", "run2", "run1"]),
        (["run_name"], ["run3", "run1", "run4", "run2"]),
        (["end_time DESC"], ["run4", "run2", "run1", "run3"]),
        (["end_time ASC"], ["run1", "run2", "run4", "run3"]),
        (["status", "metrics.accuracy DESC"], ["run4", "run2", "run1", "run3"]),
    ],
)
def test_order_by(search, order_by, expected):
    assert search(order_by=order_by) == expected


@pytest.mark.parametrize(
    ("order_by", "message"),
    [
        (["attributes.colour"], "order_by: unknown attribute in 'attributes.colour'"),
        (["span.name"], "order_by: unknown key prefix in 'span.name'"),
        (["metrics.acc DOWN"], "unexpected token 'DOWN'"),
    ],
)
def test_invalid_order_by_names_the_field(order_by, message):
    with pytest.raises(InvalidFilterError) as info:
        build_run_select(["1"], order_by=order_by)
    assert message in info.value.message
    assert info.value.field == "order_by"


# --- paging and arguments -----------------------------------------------------------------


@pytest.mark.parametrize("page_size", [1, 2, 4, 5, 6])
def test_pages_walk_every_run_once_in_order(engine, page_size):
    with engine.connect() as conn:
        everything, last_token = fetch_page(conn, ["1", "2"], view_type=ViewType.ALL)
        assert last_token is None
        seen, token, pages = [], None, 0
        while True:
            rows, token = fetch_page(
                conn, ["1", "2"], view_type=ViewType.ALL, max_results=page_size, page_token=token
            )
            seen.extend(rows)
            pages += 1
            if token is None:
                break
    assert [row.run_id for row in seen] == [row.run_id for row in everything]
    assert len(seen) == 6
    assert pages == -(-6 // page_size)


def test_build_run_select_accepts_positional_arguments_like_the_store_protocol():
    stmt, next_token = build_run_select(
        ["1"], "status = 'FINISHED'", ViewType.ALL, ["start_time"], 10, encode_page_token(20)
    )
    assert decode_page_token(next_token) == 30
    params = stmt.compile().params
    assert 11 in params.values() and 20 in params.values()


def test_page_token_round_trips_an_offset():
    assert decode_page_token(encode_page_token(0)) == 0
    assert decode_page_token(encode_page_token(1234)) == 1234
    assert decode_page_token(None) == 0
    assert decode_page_token("") == 0


def _b64(text):
    return base64.urlsafe_b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "page_token",
    [
        "not a token!",
        "é",
        _b64("not json"),
        _b64("[1, 2]"),
        _b64('{"start": 3}'),
        _b64('{"offset": -1}'),
        _b64('{"offset": "3"}'),
        _b64('{"offset": 1.5}'),
        _b64('{"offset": true}'),
        _b64("\xff\xfe"),
    ],
)
def test_malformed_page_token_is_rejected(page_token):
    with pytest.raises(InvalidInputError) as info:
        build_run_select(["1"], page_token=page_token)
    assert info.value.field == "page_token"
    assert "page_token" in info.value.message


@pytest.mark.parametrize("max_results", [0, -1, MAX_RESULTS_LIMIT + 1, True, 1.5, "10", None])
def test_max_results_must_be_in_range(max_results):
    with pytest.raises(InvalidInputError) as info:
        build_run_select(["1"], max_results=max_results)
    assert info.value.field == "max_results"


def test_max_results_accepts_its_bounds(search):
    assert search(max_results=1) == ["run3"]
    assert len(search(max_results=MAX_RESULTS_LIMIT)) == 4


@pytest.mark.parametrize("view_type", ["ACTIVE", "", None])
def test_unknown_view_type_is_rejected(view_type):
    with pytest.raises(InvalidInputError) as info:
        build_run_select(["1"], view_type=view_type)
    assert info.value.field == "view_type"


@pytest.mark.parametrize("experiment_ids", ["1", ["abc"], ["1", "-2"], ["1 OR 1=1"]])
def test_experiment_ids_must_be_ids(experiment_ids):
    with pytest.raises(InvalidInputError) as info:
        build_run_select(experiment_ids)
    assert info.value.field == "experiment_ids"


# --- injection ----------------------------------------------------------------------------


def test_user_text_is_bound_never_spliced_into_sql(search, engine):
    filter_string = f'params.model = "{INJECTION}" AND tags.`{INJECTION}` IS NULL'
    stmt, _ = build_run_select(["1"], filter_string, order_by=[f"tags.`{INJECTION}`"])
    sql = str(stmt)
    assert "DROP TABLE" not in sql
    assert "x'" not in sql
    assert search(filter_string) == ["run3"]
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(runs)).scalar() == 6


def test_sql_syntax_in_values_is_matched_literally(search):
    assert search("params.model = 'x'' OR ''1''=''1'") == []
    with pytest.raises(InvalidFilterError):
        search("run_name = 'baseline' OR 1 = 1")


def test_quotes_in_values_match_stored_quotes(search):
    assert search("params.model LIKE 'x''; DROP%'") == ["run3"]
    assert search(r"params.model = 'x\'; DROP TABLE runs; --'") == ["run3"]


# --- experiments --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("name = 'support-agent'", ["support-agent"]),
        ("attributes.name = 'Vision'", ["Vision"]),
        ("name != 'Vision'", ["support-agent", "o'brien"]),
        ("name LIKE 'v%'", []),
        ("name ILIKE 'v%'", ["Vision"]),
        ("name NOT LIKE '%agent'", ["Vision", "o'brien"]),
        ("name IN ('Vision', 'nope')", ["Vision"]),
        ("name = 'o''brien'", ["o'brien"]),
        ("creation_time >= 200", ["Vision", "o'brien"]),
        ("last_update_time < 250", ["Vision", "o'brien"]),
        ("experiment_id = '2'", ["Vision"]),
        ("experiment_id IN (1, '4')", ["support-agent", "o'brien"]),
        ("tags.team = 'nlp'", ["support-agent"]),
        ("tags.team IS NULL", ["o'brien"]),
        ("tags.team = 'cv' OR name LIKE 'o%'", ["Vision", "o'brien"]),
    ],
)
def test_experiment_filters(search_experiments, filter_string, expected):
    assert search_experiments(filter_string) == expected


def test_experiments_default_to_most_recently_updated_first(search_experiments):
    assert search_experiments() == ["support-agent", "Vision", "o'brien"]
    assert search_experiments(stage=None) == ["old-agent", "support-agent", "Vision", "o'brien"]


@pytest.mark.parametrize(
    ("order_by", "expected"),
    [
        (["name"], ["Vision", "o'brien", "support-agent"]),
        (["name DESC"], ["support-agent", "o'brien", "Vision"]),
        (["creation_time"], ["support-agent", "Vision", "o'brien"]),
        (["attributes.experiment_id DESC"], ["o'brien", "Vision", "support-agent"]),
        (["tags.team DESC"], ["support-agent", "Vision", "o'brien"]),
    ],
)
def test_experiment_order_by(search_experiments, order_by, expected):
    assert search_experiments(order_by=order_by) == expected


@pytest.mark.parametrize(
    ("filter_string", "message"),
    [
        (
            "metrics.accuracy > 1",
            "unknown key prefix 'metrics' at position 0; use one of tags, attributes",
        ),
        ("status = 'x'", "unknown attribute 'status' at position 0"),
        ("creation_time > 'yesterday'", "creation_time: value must be a number"),
        ("tags.team = 1", "tags.team: value must be a quoted string"),
    ],
)
def test_bad_experiment_filters_are_explained(filter_string, message):
    error = filter_error(experiment_filter_clause, filter_string)
    assert message in error.message


@pytest.mark.parametrize(
    ("order_by", "message"),
    [
        (["status"], "order_by: unknown attribute in 'status'"),
        (["metrics.accuracy"], "order_by: unknown key prefix in 'metrics.accuracy'"),
    ],
)
def test_experiment_order_by_errors_name_the_field(order_by, message):
    with pytest.raises(InvalidFilterError) as info:
        experiment_order_clauses(parse_order_by(order_by))
    assert message in info.value.message
    assert info.value.field == "order_by"


def test_order_clauses_compose_with_a_hand_written_select(engine):
    stmt = select(runs.c.run_id).order_by(*run_order_clauses(parse_order_by(["params.model"])))
    with engine.connect() as conn:
        run_ids = conn.execute(stmt).scalars().all()
    # Equal models fall back to newest first: run6 before run1, run5 before run4.
    assert run_ids == ["run6", "run1", "run2", "run3", "run5", "run4"]
