"""`make_judge`: an LLM judge from instructions over the row's values or its trace.

The instructions are a template over `{{ inputs }}`, `{{ outputs }}`, `{{ expectations }}`
and `{{ trace }}`.

Without `{{ trace }}` the row's values are pasted into the instructions as JSON. With it the
judge is an agent: the prompt names the trace but does not contain it, and the model reads
it with tools (`list_spans`, `search_spans`, `get_span`) until it can answer, so a trace of
thousands of spans is judged without ever being pasted whole into a prompt.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from tracemark.evaluation._usage import BudgetExceeded
from tracemark.evaluation.judges import _prompts
from tracemark.evaluation.judges._agent import run_agent
from tracemark.evaluation.judges._base import Judge, model_from_config
from tracemark.evaluation.judges._model import JudgeModel, describe_error
from tracemark.evaluation.judges._parse import ValueType, read_answer
from tracemark.evaluation.judges._trace import as_trace
from tracemark.evaluation.judges._trace_tools import TraceTools
from tracemark.evaluation.scorers import PARAMETERS, Feedback
from tracemark.exceptions import InvalidInputError

__all__ = ["CustomJudge", "make_judge", "placeholder", "template_variables"]

_VARIABLE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
DEFAULT_MAX_ITERATIONS = 20


def placeholder(variable: str) -> str:
    """How a template writes a variable: `{{ inputs }}`."""
    return "{{ " + variable + " }}"


def template_variables(instructions: str) -> tuple[str, ...]:
    """Return the variables `instructions` uses, in the order inputs, outputs, expectations, trace.

    Example:
        >>> template_variables("Is {{ outputs }} an answer to {{ inputs }}?")
        ('inputs', 'outputs')

    Args:
        instructions: The judge's instructions.

    Raises:
        InvalidInputError: A variable is unknown, or there is none.
    """
    if not isinstance(instructions, str) or not instructions.strip():
        raise InvalidInputError(
            "a judge's instructions must be a non-empty string", field="instructions"
        )
    used = _VARIABLE.findall(instructions)
    unknown = sorted({v for v in used if v not in PARAMETERS})
    if unknown:
        raise InvalidInputError(
            f"the instructions use unknown template variables {unknown}: a judge may use "
            + ", ".join(placeholder(p) for p in PARAMETERS),
            field="instructions",
        )
    if not used:
        raise InvalidInputError(
            "the instructions use no template variable: say what to judge with "
            + ", ".join(placeholder(p) for p in PARAMETERS),
            field="instructions",
        )
    return tuple(p for p in PARAMETERS if p in used)


class CustomJudge(Judge):
    """A judge made by `make_judge`; its parameters are the variables its instructions use.

    Args:
        name: The assessment name.
        instructions: The template over `{{ inputs }}`, `{{ outputs }}`, `{{ expectations }}`
            and `{{ trace }}`.
        model: The judge model.
        feedback_value_type: bool, int, float, str or `typing.Literal[...]` categories.
        examples: Judged cases shown to the model (alignment adds them).
        max_iterations: Model calls a trace judge may make before giving up.
        base_url: The model API's base URL.
        api_key: The API key.
    """

    def __init__(
        self,
        *,
        name: str,
        instructions: str,
        model: str | JudgeModel | None = None,
        feedback_value_type: Any = str,
        examples: Sequence[dict[str, Any]] | None = None,
        max_iterations: int = DEFAULT_MAX_ITERATIONS,
        base_url: str | None = None,
        api_key: str | None = None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise InvalidInputError("make_judge needs a name (the assessment name)", field="name")
        self._variables = template_variables(instructions)
        self.value_type = ValueType.of(feedback_value_type)
        if not isinstance(max_iterations, int) or max_iterations < 1:
            raise InvalidInputError(
                "max_iterations must be a positive integer", field="max_iterations"
            )
        self.max_iterations = max_iterations
        super().__init__(
            name=name,
            model=model,
            base_url=base_url,
            api_key=api_key,
            instructions=instructions,
            examples=examples,
        )

    @property
    def parameters(self) -> tuple[str, ...]:
        """The template variables the instructions use."""
        return self._variables

    def _config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"feedback_value_type": self.value_type.to_config()}
        if self.max_iterations != DEFAULT_MAX_ITERATIONS:
            config["max_iterations"] = self.max_iterations
        return config

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> CustomJudge:
        """Rebuild a judge from `to_spec` output."""
        config = dict(spec.get("config") or {})
        config["model"] = model_from_config(config.get("model"))
        config["feedback_value_type"] = ValueType.from_config(
            config.get("feedback_value_type", "str")
        )
        config.setdefault("name", spec.get("name"))
        return cls(**config)

    def _criteria(self) -> str | None:
        return None  # the filled-in instructions are the case

    def fit_instructions(self, instructions: str) -> str:
        """Keep rewritten instructions on exactly this judge's variables."""
        used = set(_VARIABLE.findall(instructions))
        # Unknown variables lose their braces; missing ones are appended, labelled.
        text = _VARIABLE.sub(
            lambda m: m.group(0) if m.group(1) in self._variables else m.group(1), instructions
        )
        missing = [v for v in self._variables if v not in used]
        if missing:
            text += "\n\n" + "\n".join(f"{v.capitalize()}: {placeholder(v)}" for v in missing)
        return text

    def score(self, **values: Any) -> Any:
        """Fill in the instructions and ask the model (an agent when they use the trace)."""
        absent = [v for v in self._variables if values.get(v) is None]
        if absent:
            return self._feedback_error(f"{self.name} needs {', '.join(absent)}; none given")
        if "trace" not in self._variables:
            return self._ask(self._fill(values, None))
        trace = as_trace(values["trace"])
        tools = TraceTools(trace)
        try:
            model = self.judge_model
        except InvalidInputError as exc:
            return self._feedback_error(str(exc))
        messages = [
            {"role": "system", "content": _prompts.system_prompt(self.value_type, agent=True)},
            {
                "role": "user",
                "content": _prompts.user_prompt(None, self._fill(values, tools), self.examples),
            },
        ]
        meta = self._metadata(model, None)
        try:
            answer = run_agent(
                model,
                messages,
                tools,
                json_schema=self.value_type.answer_schema(),
                name=self.name,
                max_iterations=self.max_iterations,
            )
        except BudgetExceeded:
            raise
        except Exception as exc:
            return Feedback(name=self.name, error=describe_error(exc), metadata=meta)
        if answer is None:
            return Feedback(
                name=self.name,
                error=f"the judge did not answer within {self.max_iterations} model calls "
                "(it kept calling tools)",
                metadata=meta,
            )
        return read_answer(answer, self.value_type, self.name, metadata=meta)

    def _fill(self, values: dict[str, Any], tools: TraceTools | None) -> str:
        def value(match: re.Match[str]) -> str:
            variable = match.group(1)
            if variable == "trace" and tools is not None:
                return tools.summary()
            return _prompts.render_value(
                json.dumps(values[variable], ensure_ascii=False, indent=2, default=str)
            )

        return _VARIABLE.sub(value, self.instructions)


def make_judge(
    *,
    name: str,
    instructions: str,
    model: str | JudgeModel | None = None,
    feedback_value_type: Any = str,
    max_iterations: int = DEFAULT_MAX_ITERATIONS,
    base_url: str | None = None,
    api_key: str | None = None,
) -> CustomJudge:
    """Make an LLM judge from instructions over `{{ inputs }}`, `{{ outputs }}`, ...

    Example:
        >>> from typing import Literal
        >>> tone = make_judge(
        ...     name="tone",
        ...     instructions="Is the tone of {{ outputs }} polite for {{ inputs }}?",
        ...     feedback_value_type=Literal["polite", "neutral", "rude"],
        ... )

    Args:
        name: The assessment name.
        instructions: What to judge, using any of `{{ inputs }}`, `{{ outputs }}`,
            `{{ expectations }}`, `{{ trace }}` (at least one; nothing else). With
            `{{ trace }}` the judge reads the trace with tools instead of a pasted copy.
        model: A model URI or `JudgeModel`; `TRACEMARK_JUDGE_MODEL` when None.
        feedback_value_type: The answer's type: bool, int, float, str, or
            `typing.Literal[...]` of allowed values.
        max_iterations: Model calls a trace judge may make before its feedback is an error.
        base_url: The model API's base URL, e.g. a local OpenAI-compatible server.
        api_key: The API key (a worker rebuilding the judge reads its environment instead).
    """
    return CustomJudge(
        name=name,
        instructions=instructions,
        model=model,
        feedback_value_type=feedback_value_type,
        max_iterations=max_iterations,
        base_url=base_url,
        api_key=api_key,
    )
