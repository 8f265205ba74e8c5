"""The REST API of a real server process: answers, error bodies and guards."""

import gzip

import httpx
import pytest

from tracemark.exceptions import InvalidInputError
from tracemark.server.run import is_loopback, settings_for

pytestmark = pytest.mark.server


@pytest.fixture
def api(sqlite_server, clear_database):
    clear_database(sqlite_server.db_uri)
    with httpx.Client(base_url=sqlite_server.url, timeout=30) as http:
        yield http


def _error(response, status, code):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error_code"] == code
    assert body["message"]
    return body


def test_health_version_and_openapi(api):
    assert api.get("/health").json() == {"status": "ok"}
    assert "version" in api.get("/version").json()
    spec = api.get("/openapi.json").json()
    assert "/api/v1/runs/search" in spec["paths"]


def test_experiment_and_run_round_trip(api):
    eid = api.post("/api/v1/experiments", json={"name": "e1", "tags": {"a": "b"}}).json()
    eid = eid["experiment_id"]
    run = api.post("/api/v1/runs", json={"experiment_id": eid, "run_name": "r"}).json()
    batch = {
        "metrics": [{"key": "acc", "value": 0.5, "timestamp": 1, "step": 0}],
        "params": [{"key": "model", "value": "m"}],
        "tags": [{"key": "t", "value": "v"}],
    }
    assert api.post(f"/api/v1/runs/{run['run_id']}/batch", json=batch).status_code == 200
    got = api.get(f"/api/v1/runs/{run['run_id']}").json()
    assert got["metrics"] == {"acc": 0.5} and got["params"] == {"model": "m"}
    found = api.post(
        "/api/v1/runs/search", json={"experiment_ids": [eid], "filter": "params.model = 'm'"}
    ).json()
    assert [r["run_id"] for r in found["runs"]] == [run["run_id"]]


def test_errors_are_json_with_the_right_status(api):
    _error(api.get("/api/v1/experiments/424242"), 404, "RESOURCE_DOES_NOT_EXIST")
    api.post("/api/v1/experiments", json={"name": "dup"})
    _error(api.post("/api/v1/experiments", json={"name": "dup"}), 409, "RESOURCE_ALREADY_EXISTS")
    run = api.post("/api/v1/runs", json={"experiment_id": "0"}).json()
    path = f"/api/v1/runs/{run['run_id']}/batch"
    api.post(path, json={"params": [{"key": "p", "value": "1"}]})
    body = _error(api.post(path, json={"params": [{"key": "p", "value": "2"}]}), 409, "CONFLICT")
    assert "'p'" in body["message"]
    body = _error(
        api.post("/api/v1/runs/search", json={"experiment_ids": ["0"], "filter": "metrics.a >> 1"}),
        400,
        "INVALID_FILTER",
    )
    assert body["field"] == "filter_string"
    body = _error(api.post("/api/v1/runs", json={"experiment_id": "x"}), 422, "INVALID_SCHEMA")
    assert body["field"] == "experiment_id"
    _error(api.post("/api/v1/runs", content=b"{not json"), 422, "INVALID_SCHEMA")
    _error(api.get("/api/v1/nothing-here"), 404, "ENDPOINT_NOT_FOUND")
    _error(api.get("/api/v1/runs/not-a-run"), 400, "INVALID_PARAMETER_VALUE")


@pytest.mark.parametrize("path", ["..%2F..%2Fx.txt", "%2e%2e/%2e%2e/x.txt", "a/../../x", "%2Fetc"])
def test_artifact_paths_never_leave_their_root(api, path, tmp_path):
    run = api.post("/api/v1/runs", json={"experiment_id": "0"}).json()
    response = api.put(f"/api/v1/runs/{run['run_id']}/artifacts/{path}", content=b"x")
    assert response.status_code in (400, 404), response.text
    assert response.json()["error_code"] in ("INVALID_ARTIFACT_PATH", "ENDPOINT_NOT_FOUND")


def test_host_header_is_checked(api):
    _error(api.get("/health", headers={"host": "evil.example"}), 400, "INVALID_HOST")
    assert api.get("/health", headers={"host": "localhost:5000"}).status_code == 200


def test_body_size_is_bounded(api):
    big = b"x" * (64 * 1024 * 1024 + 1)
    _error(api.post("/api/v1/traces", content=big), 413, "REQUEST_TOO_LARGE")
    bomb = gzip.compress(b"0" * (65 * 1024 * 1024))
    _error(
        api.post("/api/v1/traces", content=bomb, headers={"content-encoding": "gzip"}),
        413,
        "REQUEST_TOO_LARGE",
    )
    _error(
        api.post("/api/v1/traces", content=b"not gzip", headers={"content-encoding": "gzip"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )


def test_exposed_binding_needs_auth():
    common = dict(
        port=5000,
        backend_store_uri="sqlite:///x.db",
        artifacts_destination=None,
    )
    with pytest.raises(InvalidInputError, match="auth token"):
        settings_for(host="0.0.0.0", auth_token=None, insecure_no_auth=False, **common)
    assert settings_for(host="0.0.0.0", auth_token="s3cret", insecure_no_auth=False, **common)
    assert settings_for(host="0.0.0.0", auth_token=None, insecure_no_auth=True, **common)
    loopback = settings_for(host="127.0.0.1", auth_token=None, insecure_no_auth=False, **common)
    assert "localhost" in loopback.allowed_hosts
    assert is_loopback("::1") and not is_loopback("10.1.2.3")


def test_bearer_token_is_required_when_configured(start_server):
    server = start_server(token="s3cret")
    with httpx.Client(base_url=server.url) as http:
        assert http.get("/health").status_code == 200
        _error(http.get("/api/v1/experiments"), 401, "UNAUTHENTICATED")
        bad = {"authorization": "Bearer nope"}
        _error(http.get("/api/v1/experiments", headers=bad), 401, "UNAUTHENTICATED")
        good = {"authorization": "Bearer s3cret"}
        assert http.get("/api/v1/experiments", headers=good).status_code == 200
        # The UI sends the token as a cookie; its static shell itself needs no token.
        cookie = {"cookie": "tracemark_token=s3cret"}
        assert http.get("/api/v1/experiments", headers=cookie).status_code == 200
        wrong = {"cookie": "tracemark_token=nope"}
        _error(http.get("/api/v1/experiments", headers=wrong), 401, "UNAUTHENTICATED")
        _error(http.get("/openapi.json"), 401, "UNAUTHENTICATED")
        assert http.get("/experiments/0/traces").status_code in (200, 503)
    import tracemark as tm
    from tracemark.exceptions import UnauthorizedError

    client = tm.TracemarkClient(server.url)
    try:
        with pytest.raises(UnauthorizedError):
            client.search_experiments()
    finally:
        client.store.close()


def test_trace_opens_without_payloads_and_fetches_a_span_whole(api, sqlite_server, trace_factory):
    from tracemark.store.rest import RestStore

    trace = trace_factory(1, spans=3)
    root, child = trace.spans[0], trace.spans[1]
    # Compact JSON, as the server stores what it decoded from the request.
    root.inputs_json = '{"i":1}'
    big = '{"document":"' + "x" * (300 * 1024) + '"}'
    child.inputs_json = big
    store = RestStore(sqlite_server.url)
    try:
        store.log_traces([trace])
        base = f"/api/v1/traces/{trace.trace_id}"

        light = api.get(base, params={"payloads": "false"}).json()
        spans = {s["span_id"]: s for s in light["spans"]}
        assert all(s["inputs"] is None and s["outputs"] is None for s in spans.values())
        assert spans[root.span_id]["inputs_size"] == len(root.inputs_json)
        assert spans[child.span_id]["inputs_size"] == len(big)
        assert spans[child.span_id]["outputs_size"] is None
        assert "inputs_size" not in spans[trace.spans[2].span_id]  # nothing was left out
        full = api.get(base).json()
        assert {s["span_id"]: s["inputs"] for s in full["spans"]}[root.span_id] == {"i": 1}
        assert "inputs_size" not in full["spans"][0]

        one = api.get(f"{base}/spans/{child.span_id}").json()
        assert one["inputs"] == {"document": "x" * (300 * 1024)}
        assert one["parent_id"] == root.span_id
        _error(api.get(f"{base}/spans/{'f' * 16}"), 404, "RESOURCE_DOES_NOT_EXIST")
        _error(api.get(f"{base}/spans/nope"), 400, "INVALID_PARAMETER_VALUE")
        _error(api.get(base, params={"payloads": "perhaps"}), 422, "INVALID_SCHEMA")

        # The REST store speaks both endpoints.
        lazy = store.get_trace(trace.trace_id, include_payloads=False)
        assert lazy.root.inputs_json is None and lazy.root.inputs_size == len(root.inputs_json)
        assert store.get_span(trace.trace_id, child.span_id).inputs_json == big
        assert store.get_trace(trace.trace_id).root.inputs == {"i": 1}
    finally:
        store.close()


def test_trace_read_from_a_server_renders_as_the_servers_view(api, sqlite_server):
    import tracemark as tm
    from tracemark.entities.trace import Span, Trace, TraceInfo

    trace_id = "c" * 32
    span = Span(trace_id, "d" * 16, None, "agent", "AGENT", 1_000_000, 2_000_000, "OK")
    body = {"traces": [Trace(TraceInfo(trace_id, "0", 1, 1, "OK", name="agent"), [span]).to_dict()]}
    assert api.post("/api/v1/traces", json=body).status_code == 200
    got = tm.TracemarkClient(sqlite_server.url).get_trace(trace_id)
    assert got.ui_url == f"{sqlite_server.url}/experiments/0/traces/{trace_id}"
    assert got._repr_html_().startswith("<iframe")
    assert api.get(got.ui_url.removeprefix(sqlite_server.url)).status_code == 200
