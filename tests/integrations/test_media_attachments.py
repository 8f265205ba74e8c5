"""Inline media kept as trace attachments: the real OpenAI SDK, the fake server, every store."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

import tracemark as tm
from tracemark.entities.trace import Attachment, Span, Trace, TraceInfo
from tracemark.exceptions import InvalidInputError, NotFoundError
from tracemark.integrations._media import scrub_media
from tracemark.testing import InMemoryExporter
from tracemark.testing.llm_server import FakeLLMServer
from tracemark.tracing._tracer import Tracer

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 300
URL = "data:image/png;base64," + base64.b64encode(PNG).decode()
SHA = hashlib.sha256(PNG).hexdigest()
REFERENCE = f"tracemark-attachment:sha256:{SHA}?type=image/png&size={len(PNG)}"


def _messages() -> list[dict]:
    return [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in this image?"},
                {"type": "image_url", "image_url": {"url": URL}},
            ],
        }
    ]


def _image_url(span: Span) -> str:
    return span.inputs["messages"][0]["content"][1]["image_url"]["url"]


@pytest.fixture
def llm(server: FakeLLMServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.openai_url, api_key="test", max_retries=0) as c:
        yield c


def _artifact_root(request: pytest.FixtureRequest, tracking_uri: str) -> Path:
    if tracking_uri.startswith("http"):
        name = "sqlite_server" if "sqlite" in request.node.callspec.id else "postgres_server"
        return Path(request.getfixturevalue(name).artifacts)
    from tracemark.tracking.fluent import DEFAULT_TRACKER

    return Path(DEFAULT_TRACKER.get_store().artifact_root)


def _stored_copies(root: Path) -> list[Path]:
    return [p for p in (root / "attachments").rglob("data") if SHA in str(p)]


def test_inline_image_round_trips_as_one_stored_attachment(
    autolog,
    tracking,
    llm: openai.OpenAI,
    server: FakeLLMServer,
    tracking_uri: str,
    request: pytest.FixtureRequest,
) -> None:
    client = tm.TracemarkClient()
    messages = _messages()

    @tm.trace(span_type="AGENT")
    def ask_twice() -> None:
        for _ in range(2):
            llm.chat.completions.create(model="gpt-4o-mini", messages=messages)

    ask_twice()
    first = tm.get_last_active_trace_id()
    llm.chat.completions.create(model="gpt-4o-mini", messages=messages)  # a trace of its own
    second = tm.get_last_active_trace_id()
    assert first != second

    # What the SDK sent, and the caller's list, are untouched.
    assert [r.body["messages"][0]["content"][1]["image_url"]["url"] for r in server.requests] == [
        URL
    ] * 3
    assert messages == _messages()

    trace = client.get_trace(first)
    spans = trace.search_spans(span_type="CHAT_MODEL")
    assert [_image_url(s) for s in spans] == [REFERENCE, REFERENCE]
    assert URL[30:200] not in spans[0].inputs_json
    assert len(spans[0].inputs_json) < 1000
    assert client.get_trace_attachment(first, REFERENCE) == PNG
    assert client.get_trace_attachment(first, SHA) == PNG
    assert _image_url(client.get_trace(second).root) == REFERENCE
    assert client.get_trace_attachment(second, REFERENCE) == PNG

    # Three calls in two traces: one stored copy.
    root = _artifact_root(request, tracking_uri)
    assert len(_stored_copies(root)) == 1

    # The copy stays while a trace still holds it, and goes with the last one.
    experiment_id = trace.info.experiment_id
    client.delete_traces(experiment_id, trace_ids=[first])
    with pytest.raises(NotFoundError):
        client.get_trace_attachment(first, SHA)
    assert client.get_trace_attachment(second, SHA) == PNG
    client.delete_traces(experiment_id, trace_ids=[second])
    assert _stored_copies(root) == []


def test_attachments_are_read_only_through_a_trace_holding_them(
    autolog, tracking, llm: openai.OpenAI
) -> None:
    client = tm.TracemarkClient()
    llm.chat.completions.create(model="gpt-4o-mini", messages=_messages())
    with_image = tm.get_last_active_trace_id()
    llm.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    without = tm.get_last_active_trace_id()
    assert client.get_trace_attachment(with_image, SHA) == PNG
    with pytest.raises(NotFoundError):
        client.get_trace_attachment(without, SHA)
    with pytest.raises(NotFoundError):
        client.get_trace_attachment(with_image, "0" * 64)
    with pytest.raises(InvalidInputError):
        client.get_trace_attachment(with_image, "not-a-reference")


# -- the tracer: bytes travel with the trace, the caller does no I/O ------------------------


@pytest.fixture
def exporter() -> InMemoryExporter:
    return InMemoryExporter()


@pytest.fixture
def tracer(exporter: InMemoryExporter) -> Iterator[Tracer]:
    t = Tracer(
        enabled=True,
        sampling_ratio=1.0,
        async_export=False,
        exporters=[exporter],
        experiment_resolver=lambda: ("0", None),
    )
    yield t
    t.shutdown(timeout=10)


def test_scrubbed_media_travels_with_the_trace_once_per_content(
    tracer: Tracer, exporter: InMemoryExporter
) -> None:
    audio = b"RIFF" + bytes(200)
    with tracer.start_span("agent") as agent:
        with tracer.start_span("llm", span_type="CHAT_MODEL") as llm_span:
            llm_span.set_inputs({"messages": scrub_media(_messages())})
        again = scrub_media(_messages(), span=agent)
        anthropic_style = scrub_media(
            [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "input_audio",
                            "input_audio": {
                                "data": base64.b64encode(audio).decode(),
                                "format": "wav",
                            },
                        }
                    ],
                }
            ]
        )
    (trace,) = exporter.traces
    assert again[0]["content"][1]["image_url"]["url"] == REFERENCE
    audio_ref = anthropic_style[0]["content"][0]["input_audio"]["data"]
    assert audio_ref.startswith("tracemark-attachment:sha256:")
    assert audio_ref.endswith(f"?type=audio/wav&size={len(audio)}")
    assert {(a.sha256, a.media_type, a.data) for a in trace.attachments} == {
        (SHA, "image/png", PNG),
        (hashlib.sha256(audio).hexdigest(), "audio/wav", audio),
    }


def test_traces_without_media_carry_no_attachments(
    tracer: Tracer, exporter: InMemoryExporter
) -> None:
    with tracer.start_span("agent") as span:
        span.set_inputs({"messages": scrub_media([{"role": "user", "content": "hi"}])})
    assert exporter.traces[0].attachments == []


def test_media_outside_a_trace_is_only_described() -> None:
    reference = scrub_media(_messages())[0]["content"][1]["image_url"]["url"]
    assert reference == f"[image/png base64: {len(PNG)} bytes, sha256:{SHA}]"


def test_text_under_a_data_key_that_is_not_base64_is_kept(tracer: Tracer) -> None:
    text = "not base64 at all, just a long sentence that happens to sit under data!" * 2
    with tracer.start_span("agent"):
        kept = scrub_media([{"role": "tool", "content": [{"type": "json", "data": text}]}])
    assert kept[0]["content"][0]["data"] == text


# -- the SQL store -------------------------------------------------------------------------


def _trace_with(attachment: Attachment, trace_id: str = "a" * 32) -> Trace:
    span = Span(trace_id, "b" * 16, None, "llm", "CHAT_MODEL", 1_000_000, 2_000_000, "OK")
    span.inputs_json = f'{{"image": "{attachment.reference}"}}'
    trace = Trace(TraceInfo(trace_id, "0", 1, 1, "OK", name="llm"), [span])
    trace.attachments = [attachment]
    return trace


def test_store_refuses_an_attachment_not_true_to_its_digest(store_uri: str, tmp_path) -> None:
    from tracemark.store.sql.store import SqlStore

    store = SqlStore(store_uri, artifact_root=str(tmp_path / "artifacts"))
    try:
        forged = Attachment(SHA, "image/png", b"something else")
        with pytest.raises(InvalidInputError, match="SHA-256"):
            store.log_traces([_trace_with(forged)])
        with pytest.raises(InvalidInputError, match="media type"):
            store.log_traces([_trace_with(Attachment(SHA, "<script>", PNG))])
        assert not (tmp_path / "artifacts" / "attachments").exists() or not any(
            (tmp_path / "artifacts" / "attachments").rglob("data")
        )
        store.log_traces([_trace_with(Attachment.from_bytes(PNG, "image/png"))])
        got = store.get_trace_attachment("a" * 32, SHA)
        assert (got.media_type, got.data) == ("image/png", PNG)
    finally:
        store.close()


def test_files_written_for_a_failed_batch_are_removed_but_held_bytes_stay(
    store_uri: str, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tracemark.store.sql import trace_attachments
    from tracemark.store.sql.store import SqlStore

    root = tmp_path / "artifacts"
    store = SqlStore(store_uri, artifact_root=str(root))
    try:
        store.log_traces([_trace_with(Attachment.from_bytes(PNG, "image/png"), "1" * 32)])
        before = sorted(p for p in root.rglob("*") if p.is_file())
        write = trace_attachments.AttachmentFiles.write
        calls = []

        def write_then_fail(self, trace_id, attachment, created):
            write(self, trace_id, attachment, created)
            calls.append(trace_id)
            if len(calls) == 2:
                raise OSError("disk full")

        monkeypatch.setattr(trace_attachments.AttachmentFiles, "write", write_then_fail)
        other = Attachment.from_bytes(b"GIF89a" + bytes(100), "image/gif")
        with pytest.raises(OSError, match="disk full"):
            store.log_traces(
                [
                    _trace_with(Attachment.from_bytes(PNG, "image/png"), "2" * 32),
                    _trace_with(other, "3" * 32),
                ]
            )
        assert sorted(p for p in root.rglob("*") if p.is_file()) == before
        assert store.get_trace_attachment("1" * 32, SHA).data == PNG
        with pytest.raises(NotFoundError):
            store.get_trace("2" * 32)
    finally:
        store.close()


# -- the REST endpoints --------------------------------------------------------------------


@pytest.fixture
def api(sqlite_server, clear_database) -> Iterator[httpx.Client]:
    clear_database(sqlite_server.db_uri)
    with httpx.Client(base_url=sqlite_server.url, timeout=30) as http:
        yield http


def _wire(trace_id: str, data: str, sha: str = SHA, media_type: str = "image/png") -> dict:
    span = Span(trace_id, "b" * 16, None, "llm", "CHAT_MODEL", 1_000_000, 2_000_000, "OK")
    body = Trace(TraceInfo(trace_id, "0", 1, 1, "OK", name="llm"), [span]).to_dict()
    body["attachments"] = [{"sha256": sha, "media_type": media_type, "data": data}]
    return {"traces": [body]}


def _error(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error_code"] == code
    assert body["message"]
    return body


@pytest.mark.server
def test_attachment_endpoint_serves_bytes_with_their_media_type(api: httpx.Client) -> None:
    trace_id = "c" * 32
    encoded = base64.b64encode(PNG).decode()
    assert api.post("/api/v1/traces", json=_wire(trace_id, encoded)).status_code == 200
    got = api.get(f"/api/v1/traces/{trace_id}/attachments/{SHA}")
    assert got.status_code == 200
    assert got.content == PNG
    assert got.headers["content-type"] == "image/png"
    assert got.headers["x-content-type-options"] == "nosniff"

    other = "d" * 32
    api.post("/api/v1/traces", json=_wire(other, encoded)).raise_for_status()
    api.post(
        "/api/v1/traces",
        json={
            "traces": [
                Trace(
                    TraceInfo("e" * 32, "0", 1, 1, "OK"),
                    [Span("e" * 32, "f" * 16, None, "x", "UNKNOWN", 1, 2, "OK")],
                ).to_dict()
            ]
        },
    ).raise_for_status()
    assert api.get(f"/api/v1/traces/{other}/attachments/{SHA}").content == PNG
    # Unknown digests, traces without it, and unknown traces: 404 as JSON.
    _error(
        api.get(f"/api/v1/traces/{trace_id}/attachments/{'0' * 64}"), 404, "RESOURCE_DOES_NOT_EXIST"
    )
    _error(api.get(f"/api/v1/traces/{'e' * 32}/attachments/{SHA}"), 404, "RESOURCE_DOES_NOT_EXIST")
    _error(api.get(f"/api/v1/traces/{'9' * 32}/attachments/{SHA}"), 404, "RESOURCE_DOES_NOT_EXIST")
    _error(api.get(f"/api/v1/traces/{trace_id}/attachments/nope"), 400, "INVALID_PARAMETER_VALUE")


@pytest.mark.server
def test_attachments_that_are_not_html_are_never_shown_inline(api: httpx.Client) -> None:
    page = b"<script>alert(1)</script>"
    sha = hashlib.sha256(page).hexdigest()
    body = _wire("c" * 32, base64.b64encode(page).decode(), sha=sha, media_type="text/html")
    api.post("/api/v1/traces", json=body).raise_for_status()
    got = api.get(f"/api/v1/traces/{'c' * 32}/attachments/{sha}")
    assert got.headers["content-disposition"].startswith("attachment")
    assert "sandbox" in got.headers["content-security-policy"]


@pytest.mark.server
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"data": "not base64!"}, "traces[0].attachments[0].data"),
        ({"data": 42}, "traces[0].attachments[0].data"),
        ({"sha256": None}, "traces[0].attachments[0]"),
        ({"sha256": "0" * 64}, "attachments.sha256"),
        ({"media_type": "no type"}, "attachments.media_type"),
    ],
)
def test_bad_attachments_are_refused_with_a_clear_error(
    api: httpx.Client, change: dict, field: str
) -> None:
    body = _wire("c" * 32, base64.b64encode(PNG).decode())
    body["traces"][0]["attachments"][0].update(change)
    error = _error(api.post("/api/v1/traces", json=body), 400, "INVALID_PARAMETER_VALUE")
    assert error["field"] == field
    _error(
        api.get(f"/api/v1/traces/{'c' * 32}"), 404, "RESOURCE_DOES_NOT_EXIST"
    )  # no partial write


@pytest.mark.server
def test_attachments_over_the_limit_or_not_objects_are_refused(api: httpx.Client) -> None:
    from tracemark.entities.trace import MAX_ATTACHMENT_BYTES

    big = _wire("c" * 32, "A" * (4 * (MAX_ATTACHMENT_BYTES // 3 + 2)))
    error = _error(api.post("/api/v1/traces", json=big), 400, "INVALID_PARAMETER_VALUE")
    assert str(MAX_ATTACHMENT_BYTES) in error["message"]
    assert error["field"] == "traces[0].attachments[0].data"
    body = _wire("c" * 32, base64.b64encode(PNG).decode())
    body["traces"][0]["attachments"].append("not an object")
    error = _error(api.post("/api/v1/traces", json=body), 400, "INVALID_PARAMETER_VALUE")
    assert error["field"] == "traces[0].attachments[1]"
    body["traces"][0]["attachments"] = {"sha256": SHA}
    error = _error(api.post("/api/v1/traces", json=body), 400, "INVALID_PARAMETER_VALUE")
    assert error["field"] == "traces[0].attachments"
