"""The UI's server side: static files with SPA fallback, sessions, overview, assessment names."""

from __future__ import annotations

import orjson
import pytest
from starlette.testclient import TestClient

import tracemark as tm
from tracemark.server import static
from tracemark.server.app import create_app
from tracemark.store import registry


@pytest.fixture
def demo_client(tmp_path, sqlite_template, monkeypatch):
    import shutil

    db = tmp_path / "ui.db"
    shutil.copyfile(sqlite_template, db)
    uri = f"sqlite:///{db}"
    monkeypatch.setenv("TRACEMARK_ARTIFACT_ROOT", str(tmp_path / "artifacts"))
    registry.reset()
    tm.set_tracking_uri(uri)
    tm.set_experiment("agent")
    from tracemark.demo._traces import log_demo_traces

    logged = log_demo_traces(seed=1)
    store = registry.get_store(uri)
    experiment_id = tm.get_experiment_by_name("agent").experiment_id
    client = TestClient(create_app(store=store), base_url="http://127.0.0.1")
    yield client, experiment_id, logged
    registry.reset()


def test_sessions_group_traces_by_session_id(demo_client):
    client, eid, logged = demo_client
    body = client.get(f"/api/v1/experiments/{eid}/sessions").json()
    sessions = {s["session_id"]: s for s in body["sessions"]}
    assert set(sessions) == set(logged.sessions)
    chen = sessions["sess-warranty-chen"]
    assert chen["trace_count"] == 3
    assert chen["error_count"] == 1
    assert chen["user_ids"] == ["u-chen"]
    assert "zipper" in chen["first_request_preview"]
    assert body["sessions"][0]["last_timestamp_ms"] >= body["sessions"][-1]["last_timestamp_ms"]

    page = client.get(f"/api/v1/experiments/{eid}/sessions", params={"max_results": 2}).json()
    assert len(page["sessions"]) == 2 and page["next_page_token"]
    errors = client.get(
        f"/api/v1/experiments/{eid}/sessions", params={"filter": "status = 'ERROR'"}
    ).json()
    assert [s["session_id"] for s in errors["sessions"]] == ["sess-warranty-chen"]


def test_overview_buckets_counts_errors_latency_and_tokens(demo_client):
    client, eid, logged = demo_client
    body = client.get(f"/api/v1/experiments/{eid}/overview", params={"buckets": 6}).json()
    totals = body["totals"]
    assert totals["count"] == len(logged.trace_ids)
    assert totals["errors"] == 1
    assert totals["latency_p50_ms"] <= totals["latency_p95_ms"]
    assert totals["total_tokens"] > 0
    assert sum(b["count"] for b in body["buckets"]) == totals["count"]
    starts = [b["start_ms"] for b in body["buckets"]]
    assert starts == sorted(starts) and all(s % body["bucket_ms"] == 0 for s in starts)


def test_overview_rejects_a_bad_filter_with_its_position(demo_client):
    client, eid, _ = demo_client
    response = client.get(f"/api/v1/experiments/{eid}/overview", params={"filter": "status ="})
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_FILTER"
    assert response.json()["position"] == 8


def test_assessment_names_by_kind(demo_client):
    client, eid, _ = demo_client
    names = client.get(f"/api/v1/experiments/{eid}/assessment-names").json()
    assert names == {
        "feedback": ["groundedness", "helpful", "resolved"],
        "expectation": ["expected_answer"],
    }


def test_unknown_experiment_is_a_json_404(demo_client):
    client, _, _ = demo_client
    response = client.get("/api/v1/experiments/999/sessions")
    assert response.status_code == 404
    assert response.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_ui_is_served_with_a_fallback_for_deep_links(tmp_path, monkeypatch):
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<html>app</html>")
    (tmp_path / "assets" / "app-1.js").write_text("console.log(1)")
    monkeypatch.setattr(static, "STATIC_DIR", tmp_path)
    from tracemark.store.sql.store import SqlStore

    store = SqlStore(f"sqlite:///{tmp_path / 'x.db'}", artifact_root=str(tmp_path / "a"))
    client = TestClient(create_app(store=store), base_url="http://127.0.0.1")
    try:
        deep = client.get("/experiments/1/traces/" + "a" * 32, params={"span": "b" * 16})
        assert deep.status_code == 200 and deep.text == "<html>app</html>"
        assert deep.headers["cache-control"] == "no-cache"
        asset = client.get("/assets/app-1.js")
        assert "immutable" in asset.headers["cache-control"]
        assert client.get("/assets/gone.js").status_code == 404
        assert client.get("/../../etc/passwd").text == "<html>app</html>"
        missing = client.get("/api/v1/nothing-here")
        assert missing.status_code == 404
        assert missing.json()["error_code"] == "ENDPOINT_NOT_FOUND"
        assert client.put("/api/v1/experiments").status_code == 405
        assert client.post("/experiments/1").status_code == 405
    finally:
        store.close()


def test_a_missing_build_explains_itself(tmp_path, monkeypatch):
    monkeypatch.setattr(static, "STATIC_DIR", tmp_path / "nothing")
    from tracemark.store.sql.store import SqlStore

    store = SqlStore(f"sqlite:///{tmp_path / 'x.db'}", artifact_root=str(tmp_path / "a"))
    try:
        response = TestClient(create_app(store=store), base_url="http://127.0.0.1").get("/")
        assert response.status_code == 503
        assert "make ui" in response.text
    finally:
        store.close()


def test_trace_without_payloads_then_one_span_with_them(demo_client):
    client, _, logged = demo_client
    trace_id = logged.trace_ids[0]
    full = client.get(f"/api/v1/traces/{trace_id}").json()
    light = client.get(f"/api/v1/traces/{trace_id}", params={"payloads": "false"}).json()

    assert light["info"] == full["info"]
    assert [s["span_id"] for s in light["spans"]] == [s["span_id"] for s in full["spans"]]
    for light_span, full_span in zip(light["spans"], full["spans"], strict=True):
        assert light_span["inputs"] is None and light_span["outputs"] is None
        assert light_span["attributes"] == full_span["attributes"]
        assert light_span["events"] == full_span["events"]
        one = client.get(f"/api/v1/traces/{trace_id}/spans/{full_span['span_id']}").json()
        assert one == full_span
        for key in ("inputs", "outputs"):
            raw = None if one[key] is None else len(orjson.dumps(one[key]))
            assert light_span.get(f"{key}_size") == raw
