import json
import os
import subprocess
import sys
import textwrap

import pytest

from tracemark.exceptions import ConflictError, InvalidInputError, NotFoundError

AGENT = textwrap.dedent(
    """
    import tracemark as tm
    from helpers import shout

    config = tm.get_model_config()


    class Agent(tm.PythonModel):
        def predict(self, model_input, params=None):
            return shout(f"{config['greeting']}, {model_input}")

        def predict_stream(self, model_input, params=None):
            for word in self.predict(model_input).split():
                yield word


    tm.set_model(Agent())
    """
)


@pytest.fixture
def agent_dir(tmp_path):
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "agent.py").write_text(AGENT)
    (folder / "helpers.py").write_text("def shout(text):\n    return text.upper()\n")
    return folder


def _predict_in_fresh_process(tracking_uri: str, model_uri: str, cwd) -> dict:
    """Load and call the model in a new interpreter that never saw the model's code."""
    code = textwrap.dedent(
        f"""
        import json, sys
        import tracemark as tm
        tm.set_tracking_uri({tracking_uri!r})
        model = tm.load_model({model_uri!r})
        assert "agent" not in sys.modules and "helpers" in sys.modules
        print(json.dumps({{
            "predict": model.predict("world"),
            "stream": list(model.predict_stream("big world")),
            "config": model.model_config,
        }}))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_model_logged_from_a_file_loads_and_predicts_in_a_fresh_process(
    tracking, agent_dir, tmp_path
):
    tm = tracking
    with tm.start_run() as run:
        logged = tm.log_model(
            str(agent_dir / "agent.py"),
            name="agent",
            code_paths=[str(agent_dir / "helpers.py")],
            model_config={"greeting": "hello"},
            input_example="world",
        )
    assert logged.model_uri == f"runs:/{run.run_id}/agent"
    assert tm.TracemarkClient().get_logged_model(logged.model_id).run_id == run.run_id
    files = {f.path for f in tm.list_artifacts("agent", run_id=run.run_id)}
    assert {"agent/code", "agent/tracemark_model.json", "agent/requirements.txt"} <= files
    description = tm.load_dict("agent/tracemark_model.json", run_id=run.run_id)
    assert description["signature"] == {"inputs": "string"}
    requirements = tm.load_text("agent/requirements.txt", run_id=run.run_id)
    assert "tracemark==" in requirements

    version = tm.register_model(logged.model_uri, "greeter")
    assert (version.version, version.run_id, version.model_id) == (1, run.run_id, logged.model_id)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for uri in (logged.model_uri, "models:/greeter/1", "models:/greeter@latest"):
        result = _predict_in_fresh_process(tm.get_tracking_uri(), uri, elsewhere)
        assert result == {
            "predict": "HELLO, WORLD",
            "stream": ["HELLO,", "BIG", "WORLD"],
            "config": {"greeting": "hello"},
        }


def test_callable_and_python_model_objects_are_snapshotted_with_their_module(
    tracking, tmp_path, monkeypatch
):
    tm = tracking
    folder = tmp_path / "mods"
    folder.mkdir()
    (folder / "mymodels.py").write_text(
        textwrap.dedent(
            """
            import tracemark as tm

            def double(x):
                return x * 2

            class Counter(tm.PythonModel):
                def load_context(self, context):
                    self.step = context.model_config["step"]

                def predict(self, model_input, params=None):
                    return [model_input + i * self.step for i in range(3)]
            """
        )
    )
    monkeypatch.syspath_prepend(str(folder))
    import mymodels

    with tm.start_run():
        plain = tm.log_model(mymodels.double, name="double", pip_requirements=["numpy"])
        counter = tm.log_model(mymodels.Counter(), name="counter", model_config={"step": 5})
    assert tm.load_model(plain.model_uri).predict(21) == 42
    loaded = tm.load_model(counter.model_uri)
    assert loaded.predict(1) == [1, 6, 11]
    assert list(loaded.predict_stream(1)) == [[1, 6, 11]]

    code = (
        "import sys, tracemark as tm; "
        f"tm.set_tracking_uri({tm.get_tracking_uri()!r}); "
        f"print(tm.load_model({plain.model_uri!r}).predict(4))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "8"


def test_functions_that_cannot_be_snapshotted_are_refused(tracking):
    tm = tracking
    with tm.start_run():
        with pytest.raises(InvalidInputError, match="top level"):
            tm.log_model(lambda x: x, name="inline")
        with pytest.raises(InvalidInputError, match="not an existing .py file"):
            tm.log_model("missing.py", name="missing")
        with pytest.raises(InvalidInputError):
            tm.log_model(42, name="number")


def _logged(tm, agent_dir) -> str:
    with tm.start_run():
        return tm.log_model(
            str(agent_dir / "agent.py"),
            name="agent",
            code_paths=[str(agent_dir / "helpers.py")],
            model_config={"greeting": "hi"},
        ).model_uri


def test_aliases_move_between_versions_and_resolve_models_uris(tracking, client, agent_dir):
    tm = tracking
    uri = _logged(tm, agent_dir)
    for _ in range(3):
        tm.register_model(uri, "support-agent", tags={"stage": "candidate"})
    client.set_registered_model_alias("support-agent", "production", 1)
    assert client.get_model_version_by_alias("support-agent", "production").version == 1
    client.set_registered_model_alias("support-agent", "production", 3)
    production = client.get_model_version_by_alias("support-agent", "production")
    assert production.version == 3 and production.aliases == ["production"]
    assert client.get_registered_model("support-agent").aliases == {"production": 3}
    assert tm.load_model("models:/support-agent@production").predict("x") == "HI, X"
    client.delete_registered_model_alias("support-agent", "production")
    with pytest.raises(NotFoundError, match="alias 'production'"):
        tm.load_model("models:/support-agent@production")
    with pytest.raises(NotFoundError, match="version 9"):
        client.set_registered_model_alias("support-agent", "production", 9)
    with pytest.raises(InvalidInputError, match="reserved"):
        client.set_registered_model_alias("support-agent", "latest", 1)


def test_versions_carry_tags_and_descriptions_and_are_searchable(tracking, client, agent_dir):
    tm = tracking
    uri = _logged(tm, agent_dir)
    client.create_registered_model("bot-a", description="first bot", tags={"team": "care"})
    with pytest.raises(Exception, match="already exists"):
        client.create_registered_model("bot-a")
    tm.register_model(uri, "bot-a", description="baseline")
    tm.register_model(uri, "bot-b")
    client.set_model_version_tag("bot-a", 1, "quality", "good")
    client.update_model_version("bot-b", 1, "tuned")
    assert client.get_model_version("bot-b", 1).description == "tuned"
    assert client.get_model_version("bot-a", 1).tags == {"quality": "good"}
    assert client.update_registered_model("bot-b", "second").description == "second"

    assert [m.name for m in tm.search_registered_models()] == ["bot-a", "bot-b"]
    care = tm.search_registered_models(filter_string="tags.team = 'care'")
    assert [m.name for m in care] == ["bot-a"]
    versions = tm.search_model_versions(filter_string="name = 'bot-a'")
    assert [(v.name, v.version) for v in versions] == [("bot-a", 1)]
    good = tm.search_model_versions(filter_string="tags.quality = 'good'")
    assert [(v.name, v.version) for v in good] == [("bot-a", 1)]
    by_run = tm.search_model_versions(filter_string=f"run_id = '{versions[0].run_id}'")
    assert len(by_run) == 2
    page = tm.search_model_versions(max_results=1)
    assert len(page) == 1 and page.token
    with pytest.raises(InvalidInputError):
        tm.search_model_versions(filter_string="version = 'one'")


def test_a_version_an_alias_points_at_is_deleted_only_with_force(tracking, client, agent_dir):
    tm = tracking
    uri = _logged(tm, agent_dir)
    tm.register_model(uri, "bot")
    tm.register_model(uri, "bot")
    client.set_registered_model_alias("bot", "production", 1)
    with pytest.raises(ConflictError, match="production"):
        client.delete_model_version("bot", 1)
    client.delete_model_version("bot", 2)
    client.delete_model_version("bot", 1, force=True)
    with pytest.raises(NotFoundError):
        client.get_model_version("bot", 1)
    tm.register_model(uri, "bot")
    assert client.get_registered_model("bot").latest_version == 3  # numbers are never reused
    client.set_registered_model_alias("bot", "production", 3)
    with pytest.raises(ConflictError):
        client.delete_registered_model("bot")
    client.delete_registered_model("bot", force=True)
    with pytest.raises(NotFoundError):
        client.get_registered_model("bot")


def test_bad_model_uris_are_clear_errors(tracking):
    tm = tracking
    for uri in ("models:/x", "runs:/abc/model", "s3://bucket/model", "prompts:/x/1"):
        with pytest.raises(InvalidInputError):
            tm.load_model(uri)
    with pytest.raises(NotFoundError):
        tm.load_model("models:/nothing/1")
