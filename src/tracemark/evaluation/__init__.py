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
    "Agreement": "tracemark.evaluation.agreement",
    "AlignmentResult": "tracemark.evaluation.agreement",
    "Completeness": _JUDGES,
    "Correctness": _JUDGES,
    "EvaluationDataset": "tracemark.evaluation.datasets",
    "EvaluationResult": "tracemark.evaluation.results",
    "ExpectationsGuidelines": _JUDGES,
    "Feedback": "tracemark.evaluation.scorers",
    "Guidelines": _JUDGES,
    "Judge": _JUDGES,
    "RelevanceToQuery": _JUDGES,
    "RetrievalGroundedness": _JUDGES,
    "RetrievalRelevance": _JUDGES,
    "RetrievalSufficiency": _JUDGES,
    "RowResult": "tracemark.evaluation.results",
    "Safety": _JUDGES,
    "Scorer": "tracemark.evaluation.scorers",
    "ScoringWorker": "tracemark.evaluation.worker",
    "ToolCallCorrectness": _JUDGES,
    "evaluate": "tracemark.evaluation.harness",
    "get_judge_model": _JUDGES,
    "judge_agreement": "tracemark.evaluation.agreement",
    "make_judge": _JUDGES,
    "register_scorer": "tracemark.evaluation.production",
    "scorer": "tracemark.evaluation.scorers",
}

__all__ = sorted([*_LAZY, "datasets"])


def __getattr__(name: str) -> Any:
    if name == "datasets":
        return importlib.import_module("tracemark.evaluation.datasets")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tracemark.evaluation' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(__all__) | set(globals()))
