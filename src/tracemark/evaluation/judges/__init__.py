"""LLM judges: built-in judges, `make_judge`, and the models they call.

Example:
    >>> from tracemark.evaluation.judges import Correctness, make_judge
    >>> correctness = Correctness(model="openai:/gpt-4o-mini")
    >>> polite = make_judge(name="polite", instructions="Is {{ outputs }} polite?",
    ...                     feedback_value_type=bool)

Importing this package loads no LLM SDK: `openai` and `anthropic` are imported on a judge's
first model call.
"""

from tracemark.evaluation.judges._base import Judge
from tracemark.evaluation.judges._model import JudgeModel, ModelResponse, get_judge_model
from tracemark.evaluation.judges.builtin import (
    Completeness,
    Correctness,
    ExpectationsGuidelines,
    Guidelines,
    RelevanceToQuery,
    RetrievalGroundedness,
    RetrievalRelevance,
    RetrievalSufficiency,
    Safety,
    ToolCallCorrectness,
)
from tracemark.evaluation.judges.custom import CustomJudge, make_judge

__all__ = [
    "Completeness",
    "Correctness",
    "CustomJudge",
    "ExpectationsGuidelines",
    "Guidelines",
    "Judge",
    "JudgeModel",
    "ModelResponse",
    "RelevanceToQuery",
    "RetrievalGroundedness",
    "RetrievalRelevance",
    "RetrievalSufficiency",
    "Safety",
    "ToolCallCorrectness",
    "get_judge_model",
    "make_judge",
]
