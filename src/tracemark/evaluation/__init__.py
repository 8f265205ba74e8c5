"""Evaluation: `evaluate()`, scorers, LLM judges, datasets, agreement with people.

Example:
    >>> import tracemark as tm
    >>> from tracemark.evaluation import Correctness
    >>> result = tm.evaluate(data=rows, predict_fn=agent, scorers=[Correctness()])

Every name is loaded on first use, so importing this package loads no LLM client.
"""

from __future__ import annotations

import importlib
from typing import Any

_JUDGES = "tracemark.evaluation.judges"

# public name -> module that defines it
_LAZY: dict[str, str] = {
    "EvaluationResult": "tracemark.evaluation.results",
    "Feedback": "tracemark.evaluation.scorers",
    "RowResult": "tracemark.evaluation.results",
    "Scorer": "tracemark.evaluation.scorers",
    "evaluate": "tracemark.evaluation.harness",
    "scorer": "tracemark.evaluation.scorers",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tracemark.evaluation' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(__all__) | set(globals()))
