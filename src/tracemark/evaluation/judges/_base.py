"""`Judge`: the base of the built-in and custom LLM judges.

A judge is a `Scorer` whose verdicts come from a model: it holds the model (a URI, a
`JudgeModel`, or None for `TRACEMARK_JUDGE_MODEL`), its criteria (`instructions`), and the
examples people agreed with that alignment added. `_ask` sends one case and turns whatever
comes back, a failure included, into a `Feedback`; only `BudgetExceeded` escapes, so the
evaluation can report the row as not judged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from tracemark.evaluation._usage import BudgetExceeded
from tracemark.evaluation.judges import _prompts
from tracemark.evaluation.judges._model import (
    JudgeModel,
    describe_error,
    get_judge_model,
    parse_model_uri,
)
from tracemark.evaluation.judges._parse import YES_NO, ValueType, read_answer
from tracemark.evaluation.scorers import Feedback, Scorer
from tracemark.exceptions import InvalidInputError

if TYPE_CHECKING:
    from tracemark.evaluation.agreement import AlignmentResult

__all__ = ["Judge", "check_model", "model_from_config"]


def check_model(model: Any, base_url: str | None = None, api_key: str | None = None) -> Any:
    """Check a judge's `model=` argument (a model URI, a JudgeModel, or None).

    With `base_url` or `api_key` the judge gets its own `JudgeModel` built from them.
    """
    if isinstance(model, str):
        parse_model_uri(model)
    elif model is not None and not isinstance(model, JudgeModel):
        raise InvalidInputError(
            f"model must be a model URI such as 'openai:/gpt-4o-mini' or a JudgeModel, "
            f"got {type(model).__name__}",
            field="model",
        )
    if base_url is None and api_key is None:
        return model
    if isinstance(model, JudgeModel):
        raise InvalidInputError(
            "base_url and api_key go to get_judge_model, not beside a JudgeModel", field="model"
        )
    return get_judge_model(model, base_url=base_url, api_key=api_key)


def model_from_config(config: Any) -> Any:
    """Rebuild a `model=` argument from `Judge.to_spec` output."""
    return get_judge_model(**config) if isinstance(config, dict) else config


class Judge(Scorer):
    """Base class of LLM judges: a scorer that asks a model for a verdict and a rationale.

    Args:
        name: The assessment name; the class's snake_case name by default.
        model: A model URI (`openai:/gpt-4o-mini`, `anthropic:/claude-3-5-haiku-latest`),
            a `JudgeModel` from `get_judge_model`, or None for `TRACEMARK_JUDGE_MODEL`.
        base_url: The model API's base URL, e.g. a local OpenAI-compatible server.
        api_key: The API key (never part of `to_spec`: workers read their environment).
        instructions: Criteria replacing the built-in ones (as `align` does).
        examples: Judged cases shown to the model (`inputs`, `outputs`, `result`, ...).
    """

    source_type: ClassVar[str] = "LLM_JUDGE"
    name = "judge"
    default_instructions: ClassVar[str] = ""
    value_type: ValueType = YES_NO

    def __init__(
        self,
        *,
        name: str | None = None,
        model: str | JudgeModel | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        instructions: str | None = None,
        examples: Sequence[dict[str, Any]] | None = None,
    ) -> None:
        if name is not None and (not isinstance(name, str) or not name):
            raise InvalidInputError("a judge's name must be a non-empty string", field="name")
        self.name = name or type(self).name
        self.model = check_model(model, base_url, api_key)
        self.instructions = instructions or self.default_instructions
        self.examples = [dict(e) for e in examples or ()]

    def __repr__(self) -> str:
        model = f", model={self.model!r}" if self.model is not None else ""
        return f"{type(self).__name__}(name={self.name!r}{model})"

    @property
    def judge_model(self) -> JudgeModel:
        """The model this judge calls."""
        model = self.model
        return model if isinstance(model, JudgeModel) else get_judge_model(model)

    # -- rebuilding in another process ------------------------------------------------------

    def _config(self) -> dict[str, Any]:
        """Constructor arguments beyond name, model, instructions and examples."""
        return {}

    def to_spec(self) -> dict[str, Any]:
        """How to rebuild this judge in a worker: class path and constructor arguments.

        The model's API key is never included; a worker reads it from its environment.
        """
        config: dict[str, Any] = {"name": self.name}
        if isinstance(self.model, JudgeModel):
            config["model"] = self.model.to_config()
        elif self.model is not None:
            config["model"] = self.model
        if self.instructions != self.default_instructions:
            config["instructions"] = self.instructions
        if self.examples:
            config["examples"] = [dict(e) for e in self.examples]
        config.update(self._config())
        cls = type(self)
        path = f"{cls.__module__}:{cls.__qualname__}"
        return {"kind": "class", "path": path, "name": self.name, "config": config}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Judge:
        """Rebuild a judge from `to_spec` output."""
        config = dict(spec.get("config") or {})
        config["model"] = model_from_config(config.get("model"))
        config.setdefault("name", spec.get("name"))
        return cls(**config)

    # -- alignment --------------------------------------------------------------------------

    def with_instructions(self, instructions: str, examples: Sequence[dict[str, Any]]) -> Judge:
        """Return a copy of this judge with other criteria and examples."""
        spec = self.to_spec()
        spec["config"]["instructions"] = instructions
        spec["config"]["examples"] = [dict(e) for e in examples]
        spec["config"].pop("model", None)
        judge = type(self).from_spec(spec)
        judge.model = self.model
        return judge

    def align(
        self,
        traces: Sequence[Any],
        human_name: str | None = None,
        holdout: float = 0.3,
        seed: int = 0,
    ) -> AlignmentResult:
        """Rewrite this judge's criteria from the cases where it disagreed with people.

        Example:
            >>> result = judge.align(labelled_traces)
            >>> result.before.accuracy, result.after.accuracy
            >>> judge = result.judge

        Args:
            traces: Traces (or trace ids) carrying HUMAN feedback named `human_name`.
            human_name: The human feedback's name; the judge's name by default.
            holdout: The share of traces kept out of training to measure agreement on.
            seed: Seeds the train/holdout split.
        """
        from tracemark.evaluation.agreement import align

        return align(self, traces, human_name=human_name, holdout=holdout, seed=seed)

    # -- asking the model -------------------------------------------------------------------

    def _feedback_error(self, message: str, span_id: str | None = None) -> Feedback:
        return Feedback(name=self.name, error=message, span_id=span_id)

    def _missing(self, **values: Any) -> Feedback | None:
        """A Feedback error naming the first of `values` that is None, else None."""
        for key, value in values.items():
            if value is None:
                return self._feedback_error(f"{self.name} needs {key}, and none were given")
        return None

    def _criteria(self) -> str | None:
        """The criteria section of the prompt (None when the case text carries them)."""
        return self.instructions

    def fit_instructions(self, instructions: str) -> str:
        """Adapt rewritten criteria to this judge (custom judges keep their variables)."""
        return instructions

    def _metadata(self, model: JudgeModel, extra: dict[str, str] | None) -> dict[str, str]:
        return {"judge_model": model.uri, **(extra or {})}

    def _ask(
        self,
        case: Sequence[tuple[str, Any]] | str,
        *,
        span_id: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> Feedback:
        """Judge one case: (heading, value) sections (None values left out), or text."""
        try:
            model = self.judge_model
        except InvalidInputError as exc:
            return self._feedback_error(str(exc), span_id)
        messages = [
            {"role": "system", "content": _prompts.system_prompt(self.value_type)},
            {
                "role": "user",
                "content": _prompts.user_prompt(self._criteria(), case, self.examples),
            },
        ]
        meta = self._metadata(model, metadata)
        try:
            response = model.chat(
                messages, json_schema=self.value_type.answer_schema(), name=self.name
            )
        except BudgetExceeded:
            raise
        except Exception as exc:
            return Feedback(
                name=self.name, error=describe_error(exc), span_id=span_id, metadata=meta
            )
        return read_answer(
            response.text, self.value_type, self.name, span_id=span_id, metadata=meta
        )
