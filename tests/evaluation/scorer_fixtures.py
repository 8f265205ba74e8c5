"""Scorers for the production-scoring tests, at the top level of an importable module.

Workers rebuild a registered scorer from its import path, so these must import the same in
the test process, in a `tracemark score` subprocess and in a `tracemark server --score`
process: the tests put this folder on PYTHONPATH for the subprocesses.
"""

from __future__ import annotations

import time
from pathlib import Path

from tracemark.evaluation._usage import record_call
from tracemark.evaluation.scorers import Feedback, Scorer, scorer

HERE = str(Path(__file__).resolve().parent)


@scorer
def is_short(outputs) -> bool:
    """True when the answer has at most 20 characters."""
    return len(str(outputs)) <= 20


@scorer
def always_fails(outputs):
    """A scorer with a bug."""
    raise RuntimeError("the scorer broke")


@scorer
def matches_expectation(outputs, expectations) -> Feedback:
    """Compare the answer with the trace's `expected` expectation."""
    expected = expectations.get("expected")
    return Feedback(value=outputs == expected, rationale=f"expected {expected!r}")


@scorer
def not_a_number(outputs) -> float:
    """Returns NaN, which JSON (and so an assessment) cannot hold."""
    return float("nan")


@scorer
def sees_the_trace(trace) -> Feedback:
    """Reads the whole trace: how many spans it has, with the root span's id as the target."""
    return Feedback(value=len(trace.spans), span_id=trace.root.span_id, metadata={"k": 1})


@scorer
def slow_length(outputs) -> int:
    """Takes a moment, so that concurrent workers overlap."""
    time.sleep(0.002)
    return len(str(outputs))


class FakeJudge(Scorer):
    """An LLM judge whose calls cost one cent each, metered like a real judge model's."""

    name = "fake_judge"
    source_type = "LLM_JUDGE"

    def score(self, outputs) -> Feedback:
        """Answer yes, after one (recorded) model call."""
        start = time.time_ns()
        record_call(
            name="judge fake_judge",
            provider="openai",
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": str(outputs)}],
            output={"result": "yes"},
            input_tokens=100,
            output_tokens=10,
            cost=0.01,
            start_ns=start,
        )
        return Feedback(value="yes", rationale="it answers the question")
