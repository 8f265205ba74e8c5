import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tracemark.exceptions import InvalidInputError, NotFoundError

SECRET = "s3cr3t-key"


class Receiver:
    """A real HTTP endpoint on 127.0.0.1 that checks signatures like a user's service would."""

    def __init__(self, *, fail_first: int = 0, status: int = 503) -> None:
        import tracemark as tm

        self.events: list[dict] = []
        self.verified: list[bool] = []
        self.headers: list[dict] = []
        self.fail_first = fail_first
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"]))
                receiver.headers.append(dict(self.headers))
                if receiver.fail_first > 0:
                    receiver.fail_first -= 1
                    self.send_response(status)
                    self.end_headers()
                    return
                receiver.verified.append(
                    tm.verify_webhook_signature(
                        SECRET,
                        body,
                        self.headers.get("X-Tracemark-Timestamp", ""),
                        self.headers.get("X-Tracemark-Signature", ""),
                    )
                )
                receiver.events.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = []

    def make(**kwargs):
        made.append(Receiver(**kwargs))
        return made[-1]

    yield make
    for r in made:
        r.stop()


@pytest.fixture(autouse=True)
def allow_loopback(monkeypatch):
    # Local stores send from this process; live servers get the same setting in conftest.
    monkeypatch.setenv("TRACEMARK_WEBHOOK_ALLOW_PRIVATE_URLS", "true")
    monkeypatch.setenv("TRACEMARK_WEBHOOK_RETRY_BACKOFF_S", "0.2")


def _settled(client, webhook_id, count, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        found = client.list_webhook_deliveries(webhook_id)
        if len(found) >= count and all(d.status != "PENDING" for d in found):
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"deliveries did not settle: {found}")
        time.sleep(0.1)


def test_registry_events_are_delivered_signed_and_logged(tracking, client, receiver, tmp_path):
    tm = tracking
    hook_receiver = receiver()
    hook = client.create_webhook(
        name="all",
        url=hook_receiver.url,
        events=[
            "prompt.created",
            "prompt_version.created",
            "prompt_alias.created",
            "prompt_alias.deleted",
            "registered_model.created",
            "model_version.created",
            "model_version_tag.set",
            "model_version_alias.created",
            "model_version_alias.deleted",
        ],
        secret=SECRET,
    )
    assert hook.has_secret and "secret" not in hook.to_dict()
    tm.register_prompt("qa", "Q: {{q}}")
    tm.register_prompt("qa", "Q2: {{q}}")
    tm.set_prompt_alias("qa", "production", 2)
    tm.delete_prompt_alias("qa", "production")
    (tmp_path / "m.py").write_text("import tracemark as tm\ntm.set_model(lambda x: x)\n")
    with tm.start_run():
        logged = tm.log_model(str(tmp_path / "m.py"), name="m")
    tm.register_model(logged.model_uri, "bot")
    client.set_model_version_tag("bot", 1, "eval", "passed")
    client.set_registered_model_alias("bot", "production", 1)
    client.delete_registered_model_alias("bot", "production")

    deliveries = _settled(client, hook.webhook_id, 10)
    assert {d.status for d in deliveries} == {"SUCCEEDED"}
    assert all(d.response_status == 204 and d.attempts == 1 for d in deliveries)
    received = sorted(hook_receiver.events, key=lambda e: e["timestamp"])
    assert [e["event"] for e in received] == [
        "prompt.created",
        "prompt_version.created",
        "prompt_version.created",
        "prompt_alias.created",
        "prompt_alias.deleted",
        "registered_model.created",
        "model_version.created",
        "model_version_tag.set",
        "model_version_alias.created",
        "model_version_alias.deleted",
    ]
    assert all(hook_receiver.verified)
    assert received[3]["data"] == {"name": "qa", "alias": "production", "version": 2}
    assert received[6]["data"]["name"] == "bot" and received[6]["data"]["version"] == 1
    logged_ids = {d.delivery_id for d in deliveries}
    assert {e["id"] for e in received} == logged_ids
    assert {h["X-Tracemark-Delivery"] for h in hook_receiver.headers} == logged_ids


def test_a_failed_delivery_is_retried_with_back_off(tracking, client, receiver):
    tm = tracking
    flaky = receiver(fail_first=1)
    hook = client.create_webhook(
        name="flaky", url=flaky.url, events=["prompt_version.created"], secret=SECRET
    )
    tm.register_prompt("qa", "x")
    (delivery,) = _settled(client, hook.webhook_id, 1)
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("SUCCEEDED", 2, 204)
    assert [e["event"] for e in flaky.events] == ["prompt_version.created"]
    assert flaky.verified == [True]


def test_a_client_error_is_not_retried_and_only_subscribed_events_are_sent(
    tracking, client, receiver
):
    tm = tracking
    refusing = receiver(fail_first=10, status=401)
    hook = client.create_webhook(name="no", url=refusing.url, events=["prompt_alias.created"])
    tm.register_prompt("qa", "x")  # not subscribed
    tm.set_prompt_alias("qa", "prod", 1)
    (delivery,) = _settled(client, hook.webhook_id, 1)
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("FAILED", 1, 401)
    assert "X-Tracemark-Signature" not in refusing.headers[0]  # no secret, no signature

    client.update_webhook(hook.webhook_id, status="DISABLED")
    tm.set_prompt_alias("qa", "prod", 1)
    time.sleep(0.5)
    assert len(client.list_webhook_deliveries(hook.webhook_id)) == 1


def test_test_webhook_sends_now_and_logs_the_outcome(tracking, client, receiver):
    ok = receiver()
    hook = client.create_webhook(
        name="t", url=ok.url, events=["model_version.created"], secret=SECRET
    )
    delivery = client.test_webhook(hook.webhook_id)
    assert (delivery.event, delivery.status, delivery.response_status) == (
        "webhook.test",
        "SUCCEEDED",
        204,
    )
    assert ok.verified == [True]
    assert client.list_webhook_deliveries(hook.webhook_id)[0].delivery_id == delivery.delivery_id
    assert [w.webhook_id for w in client.list_webhooks()] == [hook.webhook_id]
    client.delete_webhook(hook.webhook_id)
    with pytest.raises(NotFoundError):
        client.get_webhook(hook.webhook_id)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"url": "ftp://example.com/x"}, "url"),
        ({"url": "file:///etc/passwd"}, "url"),
        ({"url": "http://user:pw@example.com/"}, "url"),
        ({"events": ["model.deleted"]}, "events"),
        ({"events": []}, "events"),
        ({"name": ""}, "name"),
    ],
)
def test_bad_webhooks_are_refused(tracking, client, kwargs, field):
    args = {"name": "x", "url": "http://127.0.0.1:9/x", "events": ["prompt.created"], **kwargs}
    with pytest.raises(InvalidInputError):
        client.create_webhook(**args)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/x",
        "http://localhost/x",
        "http://10.1.2.3/x",
        "http://[::1]/x",
        "http://169.254.169.254/latest/meta-data",
    ],
)
def test_private_targets_are_refused_unless_allowed(store_uri, monkeypatch, url):
    from tracemark.store.sql.store import SqlStore

    monkeypatch.delenv("TRACEMARK_WEBHOOK_ALLOW_PRIVATE_URLS")
    store = SqlStore(store_uri)
    try:
        with pytest.raises(InvalidInputError, match="non-public address") as caught:
            store.create_webhook("x", url, ["prompt.created"])
        assert caught.value.field == "url"
    finally:
        store.close()


def test_signature_verification_rejects_tampering_and_replays():
    import tracemark as tm
    from tracemark.store.webhooks import sign

    body = b'{"event":"prompt.created"}'
    now = time.time()
    stamp = str(int(now))
    signature = sign(SECRET, stamp, body)
    assert tm.verify_webhook_signature(SECRET, body, stamp, signature, now=now)
    assert not tm.verify_webhook_signature(SECRET, body + b" ", stamp, signature, now=now)
    assert not tm.verify_webhook_signature("other", body, stamp, signature, now=now)
    assert not tm.verify_webhook_signature(SECRET, body, stamp, signature, now=now + 3600)
    assert not tm.verify_webhook_signature(SECRET, body, "soon", signature, now=now)


def test_pending_deliveries_are_resumed_once_after_a_restart(store_uri, receiver, monkeypatch):
    from tracemark.store.sql.store import SqlStore

    # The first attempt fails and the next one is an hour away: then the process "stops".
    monkeypatch.setenv("TRACEMARK_WEBHOOK_RETRY_BACKOFF_S", "3600")
    target = receiver(fail_first=1)
    before = SqlStore(store_uri)
    hook = before.create_webhook("h", target.url, ["prompt_version.created"], secret=SECRET)
    before.create_prompt_version("qa", "x")
    # The attempt is recorded once its answer is back: wait for the record, not the request.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        (pending,) = before.list_webhook_deliveries(hook.webhook_id)
        if pending.attempts:
            break
        time.sleep(0.02)
    assert len(target.headers) == 1
    assert (pending.status, pending.attempts) == ("PENDING", 1)
    # Two minutes pass (the log is aged by hand), then the process is gone.
    from sqlalchemy import update

    from tracemark.store.sql import schema

    with before.engine.begin() as conn:
        conn.execute(
            update(schema.webhook_deliveries).values(
                last_attempt_time=schema.webhook_deliveries.c.last_attempt_time - 120_000
            )
        )
    before.close()

    # Two processes start together on the same database: the delivery is sent once.
    first, second = SqlStore(store_uri), SqlStore(store_uri)
    try:
        assert first.resume_webhook_deliveries(idle_ms=600_000) == 0  # not idle that long
        assert first.resume_webhook_deliveries() + second.resume_webhook_deliveries() == 1
        first.webhooks.flush(10)
        second.webhooks.flush(10)
        (done,) = first.list_webhook_deliveries(hook.webhook_id)
        assert (done.status, done.attempts, done.response_status) == ("SUCCEEDED", 2, 204)
        assert [e["id"] for e in target.events] == [done.delivery_id]
        assert target.verified == [True]
        assert first.resume_webhook_deliveries() == 0
    finally:
        first.close()
        second.close()


def test_a_starting_server_resumes_the_deliveries_left_pending(
    tmp_path, receiver, monkeypatch, start_server
):
    from sqlalchemy import update

    from tracemark.store.sql import schema
    from tracemark.store.sql.store import SqlStore

    monkeypatch.setenv("TRACEMARK_WEBHOOK_RETRY_BACKOFF_S", "3600")
    target = receiver(fail_first=1)
    uri = f"sqlite:///{tmp_path / 'hooks.db'}"
    store = SqlStore(uri)
    hook = store.create_webhook("h", target.url, ["prompt.created"], secret=SECRET)
    store.create_prompt_version("qa", "x")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # until the failed first attempt is recorded
        (pending,) = store.list_webhook_deliveries(hook.webhook_id)
        if pending.attempts:
            break
        time.sleep(0.02)
    assert pending.attempts == 1
    with store.engine.begin() as conn:
        conn.execute(
            update(schema.webhook_deliveries).values(
                last_attempt_time=schema.webhook_deliveries.c.last_attempt_time - 120_000
            )
        )
    store.close()

    start_server(db_uri=uri)
    deadline = time.monotonic() + 20
    while not target.events and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [e["event"] for e in target.events] == ["prompt.created"]
    assert target.verified == [True]
    reader = SqlStore(uri)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # the server logs the attempt after sending it
            (done,) = reader.list_webhook_deliveries(hook.webhook_id)
            if done.status != "PENDING":
                break
            time.sleep(0.05)
        assert (done.status, done.attempts) == ("SUCCEEDED", 2)
    finally:
        reader.close()
