"""Every 2xx means committed: a server killed with SIGKILL mid-ingest keeps what it acknowledged."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

pytestmark = [pytest.mark.server, pytest.mark.slow]

SPANS_PER_TRACE = 3
ACKS_BEFORE_KILL = 40


class Ingest(threading.Thread):
    """Sends one request at a time until the server goes away; records what was acknowledged."""

    def __init__(self, url: str, send) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.send = send
        self.acked: list = []
        self.unexpected: list[str] = []

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as http:
            for i in range(100_000):
                try:
                    item, response = self.send(http, i)
                except httpx.TransportError:
                    return  # the server is gone: this request was never acknowledged
                if response.status_code != 200:
                    self.unexpected.append(f"{response.status_code}: {response.text[:300]}")
                    return
                self.acked.append(item)


def trace_sender(make_trace):
    def send(http: httpx.Client, i: int):
        trace = make_trace(i, spans=SPANS_PER_TRACE).to_dict()
        return trace, http.post("/api/v1/traces", json={"traces": [trace]})

    return send


def metric_sender(run_id: str):
    def send(http: httpx.Client, i: int):
        body = {"metrics": [{"key": "loss", "value": 1 / (i + 1), "timestamp": i, "step": i}]}
        return i, http.post(f"/api/v1/runs/{run_id}/batch", json=body)

    return send


def wait_for(condition, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_sigkill_during_ingest_loses_nothing_acknowledged(store_uri, server_process, trace_factory):
    server = server_process(store_uri)
    with httpx.Client(base_url=server.url, timeout=10) as http:
        run_id = http.post("/api/v1/runs", json={"experiment_id": "0"}).json()["run_id"]
    traces = Ingest(server.url, trace_sender(trace_factory))
    metrics = Ingest(server.url, metric_sender(run_id))
    traces.start()
    metrics.start()
    wait_for(lambda: len(traces.acked) >= ACKS_BEFORE_KILL and len(metrics.acked) >= 10)

    server.kill()  # SIGKILL while both clients have requests in flight
    traces.join(30)
    metrics.join(30)
    assert not traces.is_alive() and not metrics.is_alive()
    assert traces.unexpected == [] and metrics.unexpected == []

    server = server_process(store_uri, port=server.port)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        stored = http.post(
            "/api/v1/traces/search", json={"experiment_ids": ["0"], "max_results": 50_000}
        ).json()["traces"]
        stored_ids = {t["trace_id"] for t in stored}
        missing = [
            t["info"]["trace_id"] for t in traces.acked if t["info"]["trace_id"] not in stored_ids
        ]
        assert missing == [], f"{len(missing)} of {len(traces.acked)} acknowledged traces lost"
        sent_by_id = {t["info"]["trace_id"]: t for t in traces.acked}
        # Every stored trace is whole, acknowledged or not: no half-written batch survives.
        for trace_id in stored_ids:
            got = http.get(f"/api/v1/traces/{trace_id}").json()
            assert len(got["spans"]) == SPANS_PER_TRACE == got["info"]["span_count"]
            sent = sent_by_id.get(trace_id)
            if sent is not None:
                assert {s["span_id"] for s in got["spans"]} == {s["span_id"] for s in sent["spans"]}
                root = next(s for s in got["spans"] if s["parent_id"] is None)
                assert (root["inputs"], root["outputs"]) == (
                    sent["spans"][0]["inputs"],
                    sent["spans"][0]["outputs"],
                )

        history = http.get(f"/api/v1/runs/{run_id}/metric-history", params={"key": "loss"}).json()
        steps = {m["step"] for m in history["metrics"]}
        assert set(metrics.acked) <= steps
        # Still writable after the crash.
        assert (
            http.post("/api/v1/traces", json={"traces": [trace_factory(-1).to_dict()]}).status_code
            == 200
        )
