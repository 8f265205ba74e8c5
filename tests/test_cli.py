"""The `tracemark` command line, run in-process with CliRunner on a real SQLite file."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from tracemark import __version__
from tracemark.cli import main
from tracemark.demo import CONFIGS, DEMO_EXPERIMENT
from tracemark.store import registry
from tracemark.tracking.fluent import DEFAULT_TRACKER


class Cli:
    """Invoke the CLI against one database, as `tracemark --tracking-uri URI ...`."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.runner = CliRunner()

    def __call__(self, *args: str) -> Result:
        return self.runner.invoke(main, ["--tracking-uri", self.uri, *args])

    def ok(self, *args: str) -> Result:
        result = self(*args)
        assert result.exit_code == 0, (result.output, result.stderr)
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json").stdout)


@pytest.fixture
def cli(tmp_path: Path, sqlite_template: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    """The CLI on a fresh SQLite file, leaving the fluent API as it found it."""
    path = tmp_path / "tracemark.db"
    shutil.copyfile(sqlite_template, path)
    monkeypatch.setenv("TRACEMARK_ARTIFACT_ROOT", str(tmp_path / "artifacts"))
    # The CLI sets the tracking URI and the demo the active experiment; undo both after.
    for attr in ("_tracking_uri", "_client", "_experiment_id"):
        monkeypatch.setattr(DEFAULT_TRACKER, attr, None)
    registry.reset()
    yield Cli(f"sqlite:///{path}")
    while DEFAULT_TRACKER.active_run() is not None:
        DEFAULT_TRACKER.end_run()
    DEFAULT_TRACKER._global_stack.clear()
    DEFAULT_TRACKER._stack.set(None)
    registry.reset()


@pytest.fixture
def demo_runs(cli: Cli) -> list[dict[str, Any]]:
    """The nested runs of one `tracemark demo`, as `runs list --json` returns them."""
    cli.ok("demo")
    runs = cli.json("runs", "list", "--experiment", DEMO_EXPERIMENT)["runs"]
    return [r for r in runs if r["parent_run_id"] is not None]


def test_version_prints_the_package_version():
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"tracemark, version {__version__}"


def test_installed_console_script_prints_the_version():
    script = shutil.which("tracemark", path=str(Path(sys.executable).parent))
    assert script is not None, "the project is not installed in this environment"
    done = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"tracemark, version {__version__}"


def test_importing_the_cli_leaves_the_store_and_rich_unloaded():
    # What `tracemark --version` and `--help` import; the commands load the rest.
    code = "import sys, tracemark.cli; print(sorted(m for m in sys.modules if m.split('.')[0] in "
    code += "('sqlalchemy', 'rich', 'alembic', 'pandas')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_demo_prints_the_runs_it_logged_and_where(cli: Cli, tmp_path: Path):
    result = cli.ok("demo")
    for config in CONFIGS:
        assert config.run_name in result.stdout
    assert "FAILED" in result.stdout
    assert str(tmp_path / "tracemark.db") in result.stdout
    assert str(tmp_path / "artifacts") in result.stdout
    assert "runs list --experiment 'demo: support-bot prompt comparison'" in result.stdout


def test_demo_runs_are_listed_with_params_and_metrics(cli: Cli, demo_runs: list[dict[str, Any]]):
    assert sorted(r["run_name"] for r in demo_runs) == sorted(c.run_name for c in CONFIGS)
    by_name = {r["run_name"]: r for r in demo_runs}
    baseline = by_name["baseline"]
    assert baseline["status"] == "FINISHED"
    assert baseline["params"]["model"] == "gpt-4o-mini"
    assert baseline["params"]["prompt_template"] == "concise-v1"
    assert set(baseline["metrics"]) == {"accuracy", "faithfulness", "latency_p50_ms", "cost_usd"}
    assert 0 <= baseline["metrics"]["accuracy"] <= 1
    failed = [r for r in demo_runs if r["status"] == "FAILED"]
    assert [r["run_name"] for r in failed] == ["grounded-llama"]
    assert "context window exceeded" in failed[0]["tags"]["error"]


def test_demo_twice_adds_a_second_sweep_with_the_same_numbers(cli: Cli):
    first = json.loads(cli.ok("demo", "--json").stdout)
    second = json.loads(cli.ok("demo", "--json").stdout)
    assert first["experiment"]["experiment_id"] == second["experiment"]["experiment_id"]
    assert first["parent_run"]["run_id"] != second["parent_run"]["run_id"]
    assert [r["metrics"] for r in first["runs"]] == [r["metrics"] for r in second["runs"]]
    listed = cli.json("runs", "list", "--experiment", DEMO_EXPERIMENT)["runs"]
    # Each demo: the sweep's parent, one run per configuration, two evaluation runs.
    assert len(listed) == 2 * (len(CONFIGS) + 1 + 2)
    evaluations = [r for r in listed if r["tags"].get("tracemark.run_type") == "evaluation"]
    assert sorted(r["run_name"] for r in evaluations) == ["faq-bot v1", "faq-bot v1"] + [
        "faq-bot v2",
        "faq-bot v2",
    ]


def test_demo_runs_option_limits_the_configurations(cli: Cli):
    logged = json.loads(cli.ok("demo", "--runs", "2", "--json").stdout)
    assert [r["run_name"] for r in logged["runs"]] == ["baseline", "grounded-mini"]


def test_runs_list_filters_orders_and_shows_the_compared_columns(
    cli: Cli, demo_runs: list[dict[str, Any]]
):
    found = cli.json(
        "runs",
        "list",
        "--filter",
        "params.prompt_template = 'grounded-v2' AND attributes.status = 'FINISHED'",
        "--order-by",
        "metrics.cost_usd ASC",
    )["runs"]
    assert [r["run_name"] for r in found] == ["grounded-mini", "grounded-haiku", "grounded-4o"]
    assert found[0]["metrics"]["cost_usd"] < found[-1]["metrics"]["cost_usd"]
    table = cli.ok("runs", "list", "--experiment", DEMO_EXPERIMENT).stdout
    header = table.splitlines()[0].split()
    for column in ("id", "status", "model", "temperature", "prompt_template", "accuracy"):
        assert column in header
    assert "dataset" not in header  # the same in every run, so it says nothing
    assert demo_runs[0]["run_id"] in table


def test_runs_list_shows_the_keys_the_query_names_first(cli: Cli, demo_runs: list[dict[str, Any]]):
    table = cli.ok(
        "runs",
        "list",
        "--filter",
        "params.dataset LIKE 'acme%'",
        "--order-by",
        "metrics.`cost_usd`",
    ).stdout
    header = table.splitlines()[0].split()
    assert header.index("dataset") < header.index("model")
    assert header.index("cost_usd") < header.index("accuracy")


def test_runs_list_max_results_pages(cli: Cli, demo_runs: list[dict[str, Any]]):
    page = cli.json("runs", "list", "--max-results", "2")
    assert len(page["runs"]) == 2
    rest = cli.json("runs", "list", "--page-token", page["next_page_token"])
    seen = [r["run_id"] for r in page["runs"] + rest["runs"]]
    assert len(seen) == len(set(seen)) == len(CONFIGS) + 1 + 2  # + two evaluation runs


def test_runs_show_gives_info_params_metrics_tags_and_artifacts(
    cli: Cli, demo_runs: list[dict[str, Any]]
):
    run_id = next(r["run_id"] for r in demo_runs if r["run_name"] == "grounded-4o")
    shown = cli.json("runs", "show", run_id)
    assert shown["run"]["run_id"] == run_id
    assert shown["experiment"]["name"] == DEMO_EXPERIMENT
    assert shown["run"]["params"]["model"] == "gpt-4o"
    accuracy = next(m for m in shown["metrics"] if m["key"] == "accuracy")
    assert accuracy["step"] == accuracy["history_length"] == 4  # one point per batch
    paths = {a["path"] for a in shown["artifacts"]}
    assert paths == {"eval_config.yaml", "predictions.json", "prompts/grounded-v2.txt"}
    assert all(a["file_size"] > 0 for a in shown["artifacts"])

    table = cli.ok("runs", "show", run_id).stdout
    for text in (run_id, "gpt-4o", "accuracy", "prompts/grounded-v2.txt", "prompt-exploration"):
        assert text in table


def test_experiments_create_list_delete_restore(cli: Cli):
    created = cli.json("experiments", "create", "rag-eval", "--tag", "team=search")
    assert created["name"] == "rag-eval"
    assert created["tags"] == {"team": "search"}
    eid = created["experiment_id"]

    names = [e["name"] for e in cli.json("experiments", "list")["experiments"]]
    assert "rag-eval" in names
    assert "rag-eval" in cli.ok("experiments", "list").stdout

    assert "Deleted experiment 'rag-eval'" in cli.ok("experiments", "delete", "rag-eval").stdout
    assert "rag-eval" not in [e["name"] for e in cli.json("experiments", "list")["experiments"]]
    deleted = cli.json("experiments", "list", "--view", "deleted")["experiments"]
    assert [(e["experiment_id"], e["lifecycle_stage"]) for e in deleted] == [(eid, "deleted")]

    assert "Restored" in cli.ok("experiments", "restore", eid).stdout
    active = cli.json("experiments", "list", "--filter", "name LIKE 'rag%'")["experiments"]
    assert [e["experiment_id"] for e in active] == [eid]


def test_experiments_create_twice_is_an_error(cli: Cli):
    cli.ok("experiments", "create", "dup")
    result = cli("experiments", "create", "dup")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ")
    assert "dup" in result.stderr


def test_experiment_tag_without_equals_is_a_usage_error(cli: Cli):
    result = cli("experiments", "create", "x", "--tag", "novalue")
    assert result.exit_code == 2
    assert "KEY=VALUE" in result.stderr


def test_db_upgrade_creates_the_schema_then_is_up_to_date(tmp_path: Path):
    from tracemark.store.sql.schema import HEAD_REVISION

    uri = f"sqlite:///{tmp_path / 'fresh' / 'new.db'}"
    first = CliRunner().invoke(main, ["db", "upgrade", uri])
    assert first.exit_code == 0, first.output
    assert f"from schema revision none to {HEAD_REVISION}" in first.stdout
    again = CliRunner().invoke(main, ["db", "upgrade", uri])
    assert again.exit_code == 0, again.output
    assert "already up to date" in again.stdout


def test_unknown_run_id_is_a_one_line_error(cli: Cli):
    run_id = "0" * 32
    result = cli("runs", "show", run_id)
    assert result.exit_code == 1
    assert result.stderr == f"Error: run {run_id!r} does not exist\n"
    assert "Traceback" not in result.output


def test_malformed_run_id_is_an_error_naming_it(cli: Cli):
    result = cli("runs", "show", "not-a-run")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ")
    assert "not-a-run" in result.stderr


def test_bad_filter_is_an_error_pointing_at_the_token(cli: Cli):
    result = cli("runs", "list", "--filter", "metrics.accuracy >>> 0.9")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ")
    assert "'>>>'" in result.stderr
    assert "metrics.accuracy >>> 0.9" in result.stderr


def test_unknown_experiment_is_an_error(cli: Cli):
    result = cli("runs", "list", "--experiment", "no-such-experiment")
    assert result.exit_code == 1
    assert result.stderr == "Error: no experiment has the id or name 'no-such-experiment'\n"


def test_unknown_command_is_a_usage_error():
    result = CliRunner().invoke(main, ["nope"])
    assert result.exit_code == 2


def bash_blocks(text: str) -> list[str]:
    """Return the ```bash blocks of a Markdown page, without those fenced ```bash no-run."""
    blocks = re.findall(r"^```bash([^\n]*)\n(.*?)^```$", text, flags=re.M | re.S)
    return [source for info, source in blocks if "no-run" not in info.split()]


@pytest.mark.slow
def test_docs_cli_examples_run(tmp_path: Path):
    page = Path(__file__).resolve().parent.parent / "docs" / "cli.md"
    script = "\n".join(bash_blocks(page.read_text(encoding="utf-8")))
    assert "tracemark demo" in script
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEMARK_")}
    # `tracemark` and `python` are this environment's, as after activating the venv.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"{done.stderr}\n--- stdout ---\n{done.stdout[-4000:]}"
    assert "exit status 1" in done.stdout
    assert (tmp_path / "tracemark.db").exists() and (tmp_path / "archive" / "2024.db").exists()
