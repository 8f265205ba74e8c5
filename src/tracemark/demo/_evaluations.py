"""Two evaluation runs of the demo's FAQ bot, so the Evaluations tab has something to compare.

"faq-bot v1" and "faq-bot v2" answer the FAQ set (the expected answer, or the plausible
wrong one, chosen deterministically per version) and are scored by code scorers: whether the
answer matches the expected one, whether it names where in the product to go, and its length.
v2 fixes some answers and breaks others, as a real prompt change does.
"""

from __future__ import annotations

import random
from typing import Any

import tracemark as tm
from tracemark.demo._dataset import QUESTIONS

__all__ = ["log_demo_evaluations"]


@tm.scorer
def correct(outputs: Any, expectations: dict[str, Any]) -> tm.Feedback:
    """The answer is the expected one."""
    expected = expectations["expected_response"]
    ok = outputs == expected
    return tm.Feedback(
        value="yes" if ok else "no",
        rationale="Matches the expected answer." if ok else f"Expected: {expected}",
    )


@tm.scorer
def names_the_setting(outputs: Any) -> bool:
    """The answer tells the user where to go (a menu path such as Settings > Security)."""
    return ">" in str(outputs)


@tm.scorer
def words(outputs: Any) -> int:
    """How long the answer is, in words."""
    return len(str(outputs).split())


def _bot(version: int, seed: int) -> Any:
    rng = random.Random(seed * 100 + version)
    wrong = {q for q, _, _ in QUESTIONS if rng.random() < (0.35 if version == 1 else 0.25)}
    answers = {q: (bad if q in wrong else good) for q, good, bad in QUESTIONS}

    def faq_bot(question: str) -> str:
        return answers[question]

    return faq_bot


def log_demo_evaluations(*, seed: int = 0) -> list[str]:
    """Evaluate two versions of the FAQ bot; return the two evaluation run ids."""
    rows = [
        {"inputs": {"question": q}, "expectations": {"expected_response": good}}
        for q, good, _ in QUESTIONS
    ]
    run_ids = []
    for version in (1, 2):
        result = tm.evaluate(
            data=rows,
            predict_fn=_bot(version, seed),
            scorers=[correct, names_the_setting, words],
            run_name=f"faq-bot v{version}",
            max_workers=4,
            progress=False,
        )
        run_ids.append(result.run_id)
    return run_ids
