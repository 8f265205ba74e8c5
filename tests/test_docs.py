"""Every ```python example in docs/**/*.md runs, so the documentation cannot rot.

Each page runs in its own interpreter, in a fresh temporary working directory, with
TRACEMARK_TRACKING_URI pointing at a new SQLite file there. The blocks of one page run in
order in one namespace, so a later block may use what an earlier one defined. A block
fenced as ```python no-run is shown to readers but not executed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
PAGE_IDS = [p.relative_to(DOCS).as_posix() for p in PAGES]

_FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*)$")

# Runs in the child interpreter: reads the page and its blocks as JSON on stdin, executes
# the blocks in one namespace, and on the first failure prints the block number and the
# traceback, whose line numbers and source lines are the page's own; exit code 3.
_RUNNER = """
import json, linecache, sys, traceback
page, text, blocks = json.load(sys.stdin)
linecache.cache[page] = (len(text), None, text.splitlines(True), page)
namespace = {"__name__": "__main__"}
for number, line, source in blocks:
    try:
        exec(compile("\\n" * (line - 1) + source, page, "exec"), namespace)
    except BaseException:
        print(f"{page}: python block {number} (line {line}) failed", file=sys.stderr)
        traceback.print_exc()
        sys.exit(3)
"""

# Settings a developer may have exported that would change what the examples do.
_CLEARED_ENV = (
    "TRACEMARK_ARTIFACT_ROOT",
    "TRACEMARK_EXPERIMENT_NAME",
    "TRACEMARK_EXPERIMENT_ID",
)


@dataclass(frozen=True)
class Block:
    """One fenced ```python block: its 1-based number on the page and first code line."""

    number: int
    line: int
    source: str


def python_blocks(text: str) -> list[Block]:
    """Return the runnable ```python blocks of a Markdown page, in order."""
    blocks: list[Block] = []
    lines = text.splitlines()
    number = i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i].strip())
        if match is None:
            i += 1
            continue
        fence, info = match["fence"], match["info"].split()
        start = i + 1
        i = start
        # A fence closes on a line of at least as many of the same character, alone.
        while i < len(lines) and not (
            lines[i].strip().startswith(fence) and set(lines[i].strip()) == {fence[0]}
        ):
            i += 1
        if info[:1] == ["python"]:
            # Number every python block, no-run ones too, as a reader counts them.
            number += 1
            if "no-run" not in info[1:]:
                blocks.append(Block(number, start + 1, "\n".join(lines[start:i]) + "\n"))
        i += 1
    return blocks


def test_python_blocks_are_found_and_no_run_is_skipped() -> None:
    page = (
        "text\n```python\na = 1\n```\n"
        "```python no-run\nraise SystemExit\n```\n"
        "````markdown\n```python\nnot code\n```\n````\n"
        "```bash\nls\n```\n```python\nb = a + 1\n```\n"
    )
    assert python_blocks(page) == [Block(1, 3, "a = 1\n"), Block(3, 17, "b = a + 1\n")]


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_examples_run(page: Path, tmp_path: Path) -> None:
    text = page.read_text(encoding="utf-8")
    blocks = python_blocks(text)
    if not blocks:
        pytest.skip(f"{page.name} has no runnable python examples")
    env = {k: v for k, v in os.environ.items() if k not in _CLEARED_ENV}
    env["TRACEMARK_TRACKING_URI"] = f"sqlite:///{tmp_path / 'tracemark.db'}"
    # The examples should be as warning-free as the test suite (pytest -W error).
    env["PYTHONWARNINGS"] = "error"
    name = f"docs/{page.relative_to(DOCS).as_posix()}"
    payload = json.dumps([name, text, [[b.number, b.line, b.source] for b in blocks]])
    result = subprocess.run(
        [sys.executable, "-c", _RUNNER],
        input=payload,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        pytest.fail(
            f"{name}: an example failed (exit {result.returncode})\n"
            f"{result.stderr}\n--- stdout ---\n{result.stdout[-4000:]}",
            pytrace=False,
        )
