"""Scorer plugins: scorers another package installs in the `tracemark.scorers` entry points.

A real installed distribution is made in a temporary folder (a `*.dist-info` with METADATA
and entry_points.txt, beside its module); putting the folder on sys.path (or PYTHONPATH for
a worker subprocess) installs it, exactly as pip's site-packages would.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest

from tracemark.entities.trace import AssessmentSource, Span, Trace, TraceInfo
from tracemark.evaluation import production
from tracemark.evaluation.scorers import FunctionScorer, Scorer, from_spec, load_scorer_plugins
from tracemark.evaluation.worker import ScoringWorker
from tracemark.exceptions import InvalidInputError

PLUGIN_MODULE = '''
"""Guardrail scorers of the (pretend) package tm-guardrails."""

import re

from tracemark.evaluation.scorers import Feedback, Scorer

_SSN = r"\\b\\d{3}-\\d{2}-\\d{4}\\b"
_EMAIL = r"[\\w.+-]+@[\\w-]+\\.[\\w.]+"


class NoPII(Scorer):
    """Passes when the answer holds no social security number (or e-mail address)."""

    name = "no_pii"

    def __init__(self, patterns=(), block_emails=True):
        self.patterns = [_SSN, *patterns] + ([_EMAIL] if block_emails else [])

    def score(self, outputs):
        found = [p for p in self.patterns if re.search(p, str(outputs))]
        return Feedback(
            value=not found,
            rationale="no personal data" if not found else f"matches {found}",
            metadata={"checked_patterns": len(self.patterns)},
        )


def is_polite(outputs):
    return "please" in str(outputs).lower()
'''

ENTRY_POINTS = """
[tracemark.scorers]
no_pii = tm_guardrails:NoPII
polite = tm_guardrails:is_polite
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the installed distribution tm-guardrails 1.0."""
    folder = tmp_path_factory.mktemp("site")
    (folder / "tm_guardrails.py").write_text(textwrap.dedent(PLUGIN_MODULE))
    dist = folder / "tm_guardrails-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tm-guardrails\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(ENTRY_POINTS)
    return folder


@pytest.fixture
def installed(site: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The plugin package installed in this process for one test."""
    monkeypatch.syspath_prepend(str(site))
    return site


def log_trace(store: Any, experiment_id: str, output: str) -> str:
    trace_id = uuid.uuid4().hex
    start_ms = time.time_ns() // 1_000_000
    root = Span(
        trace_id,
        uuid.uuid4().hex[:16],
        None,
        "answer",
        "CHAIN",
        start_ms * 1_000_000,
        start_ms * 1_000_000 + 1_000,
        "OK",
        "",
        orjson.dumps({"q": "?"}).decode(),
        orjson.dumps(output).decode(),
    )
    store.log_traces([Trace(TraceInfo(trace_id, experiment_id, start_ms, 1, "OK"), [root])])
    return trace_id


def test_installed_plugins_are_found_and_usable_by_name(installed):
    plugins = load_scorer_plugins()
    assert {"no_pii", "polite"} <= set(plugins)
    guard = from_spec({"kind": "plugin", "plugin": "no_pii", "config": {"block_emails": False}})
    assert isinstance(guard, Scorer) and guard.name == "no_pii"
    assert guard.run(outputs="write to ana@example.com")[0].value is True
    (leak,) = guard.run(outputs="my SSN is 123-45-6789")
    assert leak.value is False and "matches" in leak.rationale
    polite = from_spec({"kind": "plugin", "plugin": "polite", "name": "polite"})
    assert isinstance(polite, FunctionScorer)
    assert polite.run(outputs="Please wait")[0].value is True


def test_plugins_are_not_found_when_not_installed():
    assert "no_pii" not in load_scorer_plugins()
    with pytest.raises(InvalidInputError, match="no installed scorer plugin named 'no_pii'"):
        from_spec({"kind": "plugin", "plugin": "no_pii"})


def test_a_plugin_is_registered_by_name_and_scored_by_the_worker(installed, client):
    eid = client.create_experiment("guarded")
    reg = production.ScorersClient.register_scorer(
        client, "no_pii", experiment_id=eid, config={"patterns": [r"\bACCT-\d+\b"]}
    )
    assert reg.spec == {
        "kind": "plugin",
        "plugin": "no_pii",
        "config": {"patterns": [r"\bACCT-\d+\b"]},
        "name": "no_pii",
    }
    production.ScorersClient.register_scorer(client, "polite", name="politeness", experiment_id=eid)
    clean = log_trace(client.store, eid, "Please find the policy attached.")
    leaky = log_trace(client.store, eid, "Your account ACCT-991 is closed.")
    result = ScoringWorker(client=client, settle_s=0).run_once()
    assert (result.scored, result.errors) == (4, 0)
    got = {
        t: {a.name: a for a in client.store.get_trace(t).info.assessments} for t in (clean, leaky)
    }
    assert got[clean]["no_pii"].value is True and got[leaky]["no_pii"].value is False
    assert got[clean]["no_pii"].metadata["checked_patterns"] == "3"
    assert got[clean]["no_pii"].source == AssessmentSource("CODE", "no_pii")
    assert got[clean]["politeness"].value is True and got[leaky]["politeness"].value is False


def test_a_plugin_config_is_checked_at_registration(installed, client):
    eid = client.create_experiment("guarded")
    with pytest.raises(InvalidInputError, match="no_pii") as caught:
        production.ScorersClient.register_scorer(
            client, "no_pii", experiment_id=eid, config={"threshold": 3}
        )
    assert caught.value.field == "config"
    with pytest.raises(InvalidInputError, match="plugins only"):
        production.ScorersClient.register_scorer(
            client, from_spec({"kind": "plugin", "plugin": "polite"}), config={"a": 1}
        )


def _score_once(uri: str, pythonpath: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    return subprocess.run(
        [sys.executable, "-m", "tracemark.cli", "--tracking-uri", uri, "score", "--once"]
        + ["--settle", "0", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_a_worker_process_finds_the_plugin_where_it_is_installed(
    installed, tmp_path, sqlite_template
):
    import shutil

    from tracemark.store.sql.store import SqlStore

    shutil.copyfile(sqlite_template, tmp_path / "t.db")
    uri = f"sqlite:///{tmp_path / 't.db'}"
    store = SqlStore(uri, artifact_root=str(tmp_path / "artifacts"))
    eid = store.create_experiment("guarded")
    spec = {"kind": "plugin", "plugin": "no_pii", "config": {}, "name": "no_pii"}
    store.create_registered_scorer(eid, "no_pii", spec)
    trace_id = log_trace(store, eid, "mail me at bob@example.com")

    missing = _score_once(uri, None)  # a worker where the package is not installed
    assert missing.returncode == 0, missing.stderr
    assert orjson.loads(missing.stdout)["unloadable"] == 1
    reg = store.get_registered_scorer(eid, "no_pii")
    assert "no installed scorer plugin named 'no_pii'" in reg.last_error
    assert store.get_trace(trace_id).info.assessments == []

    done = _score_once(uri, str(installed))
    assert done.returncode == 0, done.stderr
    assert orjson.loads(done.stdout)["scored"] == 1
    (verdict,) = store.get_trace(trace_id).info.assessments
    assert (verdict.name, verdict.value) == ("no_pii", False)
    assert store.get_registered_scorer(eid, "no_pii").last_error is None  # loaded: cleared
    store.close()
