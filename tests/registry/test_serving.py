import os
import socket
import subprocess
import sys
import textwrap
import time

import httpx
import openai
import pytest
from click.testing import CliRunner

from tracemark.cli import main
from tracemark.client import TracemarkClient
from tracemark.registry.active_model import clear_active_model

AGENT = textwrap.dedent(
    """
    import tracemark as tm


    class Chat(tm.PythonModel):
        @tm.trace(span_type="AGENT")
        def predict(self, model_input, params=None):
            if isinstance(model_input, dict) and "messages" in model_input:
                return "echo: " + model_input["messages"][-1]["content"]
            if model_input == "boom":
                raise RuntimeError("model exploded")
            suffix = (params or {}).get("suffix", "")
            return str(model_input).upper() + suffix

        def predict_stream(self, model_input, params=None):
            text = self.predict(model_input)
            if "fail-first" in text:
                raise RuntimeError("no stream today")
            for word in text.split():
                if word == "fail":
                    raise RuntimeError("stream broke")
                yield word + " "


    tm.set_model(Chat())
    """
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ModelServer:
    """`tracemark serve` in a real process on a loopback port."""

    def __init__(self, *args: str, tracking_uri: str | None = None, cwd=None, env=None) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "tracemark.cli"]
        if tracking_uri:
            command += ["--tracking-uri", tracking_uri]
        command += ["serve", *args, "--port", str(self.port)]
        self.process = subprocess.Popen(command, cwd=cwd, env=env or dict(os.environ))
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"tracemark serve exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("tracemark serve did not start within 60 s")
            time.sleep(0.1)

    def post(self, path: str, **kwargs) -> httpx.Response:
        return httpx.post(self.url + path, timeout=30, **kwargs)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def servers():
    started: list[ModelServer] = []

    def start(*args: str, **kwargs) -> ModelServer:
        server = ModelServer(*args, **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(autouse=True)
def no_active_model():
    yield
    clear_active_model()


@pytest.fixture
def agent(tracking, tmp_path):
    """The chat model, logged, registered as `chat` and aliased `production`."""
    tm = tracking
    path = tmp_path / "chat.py"
    path.write_text(AGENT)
    with tm.start_run():
        logged = tm.log_model(str(path), name="chat", registered_model_name="chat")
    tm.TracemarkClient().set_registered_model_alias("chat", "production", 1)
    return logged


def _wait_for_traces(tm, model, count: int) -> list:
    deadline = time.monotonic() + 30
    while True:
        traces = tm.TracemarkClient().search_model_traces(model)
        if len(traces) >= count or time.monotonic() > deadline:
            return list(traces)
        time.sleep(0.2)


def test_openai_client_chats_with_a_served_model_and_each_request_is_traced(
    tracking, tracking_uri, agent, servers
):
    tm = tracking
    server = servers("models:/chat@production", tracking_uri=tracking_uri)
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="not-needed", max_retries=0)
    messages = [{"role": "user", "content": "where is my parcel"}]

    answer = client.chat.completions.create(model="chat", messages=messages)
    assert answer.choices[0].message.role == "assistant"
    assert answer.choices[0].message.content == "echo: where is my parcel"
    assert answer.choices[0].finish_reason == "stop"

    chunks = list(client.chat.completions.create(model="chat", messages=messages, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "echo: where is my parcel "
    assert len(chunks) == 6  # four words, then an empty one that says why it stopped
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert len({c.id for c in chunks}) == 1

    scored = server.post("/invocations", json={"dataframe_records": ["a b", "c"]})
    assert scored.status_code == 200
    assert scored.json() == {"predictions": ["A B", "C"]}

    traces = _wait_for_traces(tm, agent, 3)
    assert sorted(t.name for t in traces) == ["chat.completions", "chat.completions", "invocations"]
    assert {t.metadata["tracemark.model_id"] for t in traces} == {agent.model_id}
    scoring = next(t for t in traces if t.name == "invocations")
    spans = tm.get_trace(scoring.trace_id).spans
    assert sorted(s.name for s in spans) == ["invocations", "predict", "predict"]
    assert all(s.parent_id for s in spans if s.name == "predict")  # the model's own spans nest


@pytest.mark.parametrize("tracking_uri", ["sqlite"], indirect=True)
def test_bad_requests_get_4xx_json_and_model_failures_500_while_serving_goes_on(
    tracking, tracking_uri, agent, servers
):
    server = servers("-m", "models:/chat/1", tracking_uri=tracking_uri)

    bad = {
        b"{not json": "not valid JSON",
        b"[1, 2]": "must be a JSON object",
        b'{"inputz": 1}': "unknown field 'inputz'",
        b'{"inputs": 1, "instances": [1]}': "exactly one of",
        b'{"dataframe_records": "x"}': "dataframe_records must be a list",
        b'{"instances": [1], "params": 3}': "params must be a JSON object",
        b'{"dataframe_split": {"columns": ["q"], "data": [[1, 2]]}}': "data[0] must be a list of 1",
    }
    for body, message in bad.items():
        response = server.post("/invocations", content=body)
        assert response.status_code == 400, body
        assert message in response.json()["message"]

    failed = server.post("/invocations", json={"inputs": "boom"})
    assert failed.status_code == 500
    assert failed.json() == {"error_code": "MODEL_ERROR", "message": "RuntimeError: model exploded"}

    split = {"dataframe_split": {"columns": ["q"], "data": [["x"]]}, "params": {"suffix": "!"}}
    assert server.post("/invocations", json=split).json() == {"predictions": ["{'Q': 'X'}!"]}
    assert server.post("/invocations", json={"instances": ["a", "b"]}).json() == {
        "predictions": ["A", "B"]
    }
    assert server.post("/invocations", json={"inputs": "whole"}).json() == {"predictions": "WHOLE"}

    chat_errors = {
        b'{"messages": []}': ("messages", "non-empty list"),
        b'{"messages": [{"content": "hi"}]}': ("messages", "must be an object with a role"),
        b'{"messages": [{"role": "user", "content": "x"}], "stream": "yes"}': ("stream", "true"),
    }
    for body, (param, message) in chat_errors.items():
        response = server.post("/v1/chat/completions", content=body)
        assert response.status_code == 400, body
        error = response.json()["error"]
        assert (error["param"], error["type"]) == (param, "invalid_request_error")
        assert message in error["message"]

    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="x", max_retries=0)
    with pytest.raises(openai.BadRequestError, match="non-empty list"):
        client.chat.completions.create(model="chat", messages=[])
    with pytest.raises(openai.APIError, match="stream broke"):
        for _ in client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "please fail now"}], stream=True
        ):
            pass
    with pytest.raises(openai.InternalServerError, match="RuntimeError: no stream today"):
        client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "fail-first"}], stream=True
        )
    assert httpx.get(f"{server.url}/health").json() == {"status": "ok"}
    version = httpx.get(f"{server.url}/version").json()
    assert (version["model_uri"], version["model_id"]) == ("models:/chat/1", agent.model_id)


@pytest.mark.parametrize("tracking_uri", ["sqlite"], indirect=True)
def test_auth_token_guards_predictions_but_not_health(tracking, tracking_uri, agent, servers):
    server = servers("models:/chat@production", "--auth-token", "s3cret", tracking_uri=tracking_uri)
    assert server.post("/invocations", json={"inputs": "a"}).status_code == 401
    assert httpx.get(f"{server.url}/health").status_code == 200
    ok = server.post(
        "/invocations", json={"inputs": "a"}, headers={"Authorization": "Bearer s3cret"}
    )
    assert ok.json() == {"predictions": "A"}
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="s3cret", max_retries=0)
    answer = client.chat.completions.create(
        model="chat", messages=[{"role": "user", "content": "x"}]
    )
    assert answer.choices[0].message.content == "echo: x"


@pytest.mark.parametrize("tracking_uri", ["sqlite"], indirect=True)
def test_several_workers_serve_and_trace_the_model(tracking, tracking_uri, agent, servers):
    server = servers("models:/chat@production", "--workers", "2", tracking_uri=tracking_uri)
    for word in ("a", "b", "c"):
        assert server.post("/invocations", json={"inputs": word}).json() == {
            "predictions": word.upper()
        }
    assert len(_wait_for_traces(tracking, agent, 3)) == 3


@pytest.mark.parametrize("tracking_uri", ["sqlite"], indirect=True)
def test_a_model_folder_serves_without_a_store_and_writes_no_database(
    tracking, agent, servers, tmp_path
):
    folder = TracemarkClient().download_artifacts(agent.run_id, "chat", str(tmp_path / "copy"))
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEMARK_TRACKING")}
    server = servers(f"file://{folder}", cwd=cwd, env=env)
    assert server.post("/invocations", json={"inputs": "a"}).json() == {"predictions": "A"}
    server.stop()
    assert list(cwd.iterdir()) == []


@pytest.mark.parametrize("tracking_uri", ["sqlite"], indirect=True)
def test_serve_refuses_unknown_models_and_exposed_hosts_without_a_token(tracking, agent):
    runner = CliRunner()
    missing = runner.invoke(main, ["serve", "models:/nope@production"])
    assert missing.exit_code == 1
    assert "nope" in missing.output
    not_a_folder = runner.invoke(main, ["serve", "/no/such/folder"])
    assert not_a_folder.exit_code == 2
    assert "neither a models:/ or runs:/ URI nor a model folder" in not_a_folder.output
    exposed = runner.invoke(main, ["serve", "models:/chat/1", "--host", "0.0.0.0"])
    assert exposed.exit_code == 2
    assert "--auth-token" in exposed.output
    nothing = runner.invoke(main, ["serve"])
    assert nothing.exit_code == 2
    assert "missing the model URI" in nothing.output
