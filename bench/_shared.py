"""Helpers several benchmarks share: the fake LLM server process and a scratch folder."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator


@contextlib.contextmanager
def fake_llm_server(*options: str) -> Iterator[str]:
    """Start `tracemark.testing.llm_server` in its own process; yield its `/v1` base URL.

    `options` are its command-line options, e.g. `"--delay", "0.05"`.
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "tracemark.testing.llm_server", "--no-record", *options],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        if not url.startswith("http://127.0.0.1:"):
            raise SystemExit(f"the fake server did not start (printed {url!r})")
        yield url + "/v1"
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextlib.contextmanager
def scratch(prefix: str) -> Iterator[str]:
    """A temporary folder that is also the working directory, removed afterwards."""
    folder = tempfile.mkdtemp(prefix=prefix)
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        yield folder
    finally:
        os.chdir(cwd)
        shutil.rmtree(folder, ignore_errors=True)
