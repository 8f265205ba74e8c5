"""Reading a judge's answer: find the JSON object, check its `result` against the value type.

Judges ask for `{"rationale": ..., "result": ...}`. Models wrap that in code fences, put a
sentence before it, or answer something else entirely; `read_answer` copes with the first
two and turns everything else into a `Feedback` error, never an exception.
"""

from __future__ import annotations

import json
import re
import typing
from dataclasses import dataclass
from typing import Any

from tracemark.evaluation.scorers import Feedback
from tracemark.exceptions import InvalidInputError

__all__ = ["YES_NO", "ValueType", "extract_json", "read_answer"]

_FENCED = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)
_RATIONALE_KEYS = ("rationale", "reasoning", "explanation", "reason")
_BASIC = {bool: "bool", int: "int", float: "float", str: "str"}


@dataclass(frozen=True)
class ValueType:
    """The values a judge may answer: bool, int, float, str, or one of given categories.

    Attributes:
        kind: `"bool"`, `"int"`, `"float"`, `"str"` or `"categories"`.
        categories: The allowed values when `kind` is `"categories"`.
    """

    kind: str
    categories: tuple[Any, ...] = ()

    @classmethod
    def of(cls, annotation: Any) -> ValueType:
        """Return the value type of `bool`, `int`, `float`, `str` or `typing.Literal[...]`."""
        if isinstance(annotation, ValueType):
            return annotation
        if annotation in _BASIC:
            return cls(_BASIC[annotation])
        if typing.get_origin(annotation) is typing.Literal:
            values = typing.get_args(annotation)
            if values and all(isinstance(v, (str, int, bool)) for v in values):
                return cls("categories", tuple(values))
        raise InvalidInputError(
            f"feedback_value_type {annotation!r} is not supported: use bool, int, float, str "
            "or typing.Literal[...] of strings or integers",
            field="feedback_value_type",
        )

    def to_config(self) -> Any:
        """A JSON-ready description, read back by `from_config`."""
        return {"categories": list(self.categories)} if self.kind == "categories" else self.kind

    @classmethod
    def from_config(cls, config: Any) -> ValueType:
        """Rebuild a value type from `to_config` output."""
        if isinstance(config, dict):
            return cls("categories", tuple(config["categories"]))
        if config in ("bool", "int", "float", "str"):
            return cls(config)
        raise InvalidInputError(f"unknown judge value type {config!r}", field="spec")

    def describe(self) -> str:
        """How the prompt asks for the value."""
        if self.kind == "categories":
            names = [json.dumps(c) for c in self.categories]
            if len(names) == 2:
                return f"{names[0]} or {names[1]}"
            return "one of " + ", ".join(names)
        return {
            "bool": "true or false (a JSON boolean)",
            "int": "an integer",
            "float": "a number",
            "str": "a string",
        }[self.kind]

    def json_schema(self) -> dict[str, Any]:
        """The JSON schema of the value alone."""
        if self.kind == "categories":
            kinds = {type(c) for c in self.categories}
            if kinds == {str}:
                return {"type": "string", "enum": list(self.categories)}
            if kinds == {int}:
                return {"type": "integer", "enum": list(self.categories)}
            return {"enum": list(self.categories)}
        return {
            "bool": {"type": "boolean"},
            "int": {"type": "integer"},
            "float": {"type": "number"},
            "str": {"type": "string"},
        }[self.kind]

    def answer_schema(self) -> dict[str, Any]:
        """The JSON schema of the whole answer, for providers with structured output."""
        return {
            "type": "object",
            "properties": {"rationale": {"type": "string"}, "result": self.json_schema()},
            "required": ["rationale", "result"],
            "additionalProperties": False,
        }

    def validate(self, value: Any) -> Any:
        """Return `value` as this type (lenient about case and quoting); ValueError if not."""
        if self.kind == "categories":
            return self._category(value)
        if self.kind == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.strip().lower() in ("true", "yes"):
                return True
            if isinstance(value, str) and value.strip().lower() in ("false", "no"):
                return False
        elif self.kind == "int":
            number = _number(value)
            if number is not None and float(number).is_integer():
                return int(number)
        elif self.kind == "float":
            number = _number(value)
            if number is not None:
                return float(number)
        elif isinstance(value, str):
            return value
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ValueError(f"the judge answered {_show(value)}; expected {self.describe()}")

    def _category(self, value: Any) -> Any:
        for category in self.categories:
            if value == category and type(value) is type(category):
                return category
        if isinstance(value, bool) and {"yes", "no"} <= set(self.categories):
            return "yes" if value else "no"
        text = str(value).strip().lower() if isinstance(value, (str, int)) else None
        for category in self.categories:
            if text is not None and text == str(category).strip().lower():
                return category
        raise ValueError(f"the judge answered {_show(value)}; expected {self.describe()}")


YES_NO = ValueType("categories", ("yes", "no"))
"""The value type of the built-in judges."""


def _number(value: Any) -> float | int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _show(value: Any, limit: int = 200) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[:limit] + "..."


def extract_json(text: str) -> dict[str, Any] | None:
    """Return the JSON object in a model's answer: plain, fenced, or after some prose.

    Example:
        >>> extract_json('Sure! {"result": "yes"}')
        {'result': 'yes'}

    Args:
        text: The model's answer.
    """
    stripped = text.strip()
    candidates = [stripped, *(m.group(1).strip() for m in _FENCED.finditer(text))]
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    # An object somewhere inside prose: try each opening brace, keep the first with a result.
    decoder = json.JSONDecoder()
    found: dict[str, Any] | None = None
    for match in re.finditer(r"\{", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except ValueError:
            continue
        if isinstance(value, dict):
            if "result" in value:
                return value
            found = found or value
    return found


def read_answer(
    text: str | None,
    value_type: ValueType,
    name: str,
    *,
    span_id: str | None = None,
    metadata: dict[str, str] | None = None,
) -> Feedback:
    """Turn a judge model's answer into a Feedback: a checked value, or an error saying why.

    Args:
        text: The model's answer.
        value_type: What `result` must be.
        name: The feedback name.
        span_id: The span judged, if any.
        metadata: Metadata for the feedback.
    """
    meta = dict(metadata or {})
    if text is None or not text.strip():
        return Feedback(
            name=name,
            error="the judge model gave an empty answer",
            span_id=span_id,
            metadata=meta,
        )
    answer = extract_json(text)
    if answer is None:
        return Feedback(
            name=name,
            error=f"the judge's answer is not JSON: {_show(text.strip(), 300)}",
            span_id=span_id,
            metadata=meta,
        )
    rationale = next((answer[k] for k in _RATIONALE_KEYS if isinstance(answer.get(k), str)), None)
    if "result" not in answer:
        return Feedback(
            name=name,
            rationale=rationale,
            error=f'the judge\'s answer has no "result": {_show(answer, 300)}',
            span_id=span_id,
            metadata=meta,
        )
    try:
        value = value_type.validate(answer["result"])
    except ValueError as exc:
        return Feedback(
            name=name, rationale=rationale, error=str(exc), span_id=span_id, metadata=meta
        )
    return Feedback(value=value, rationale=rationale, name=name, span_id=span_id, metadata=meta)
