"""Scorers: what judges one row of an evaluation (or one production trace).

A scorer is called with any of `inputs`, `outputs`, `expectations` and `trace` and answers
with a bool, a number, a string, a `Feedback`, or a list of them. `Scorer.run` turns any of
those (or an exception) into a list of `Feedback`, so one failing scorer never stops an
evaluation.

Example:
    >>> import tracemark as tm
    >>> @tm.scorer
    ... def is_short(outputs) -> bool:
    ...     return len(str(outputs)) < 200
    >>> is_short.run(outputs="ok")[0].value
    True
"""

from __future__ import annotations

import functools
import importlib
import inspect
import logging
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from tracemark.evaluation._usage import BudgetExceeded
from tracemark.exceptions import InvalidInputError

__all__ = ["PARAMETERS", "Feedback", "Scorer", "load_scorer_plugins", "scorer"]

logger = logging.getLogger("tracemark.evaluation")

PARAMETERS = ("inputs", "outputs", "expectations", "trace")
"""What a scorer may ask for, by parameter name."""

ENTRY_POINT_GROUP = "tracemark.scorers"


@dataclass
class Feedback:
    """One verdict of a scorer.

    Attributes:
        value: bool, number, string, list or dict; None when `error` says why there is none.
        rationale: Why (judges always give one).
        name: The assessment name; the scorer's name when None.
        error: Why no value could be produced.
        metadata: String key/values stored with the assessment.
        span_id: The span judged, when not the whole trace.
    """

    value: Any = None
    rationale: str | None = None
    name: str | None = None
    error: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    span_id: str | None = None


class Scorer:
    """Base class of all scorers: code scorers, built-in judges and custom judges.

    Subclasses set `name` and implement `score`, declaring the parameters they use (any of
    `inputs`, `outputs`, `expectations`, `trace`).
    """

    name: str = "scorer"
    # AssessmentSource type of the verdicts: CODE, or LLM_JUDGE for judges.
    source_type: ClassVar[str] = "CODE"

    def score(self, **kwargs: Any) -> Any:
        """Judge one row; return bool, number, string, Feedback, or a list of them."""
        raise NotImplementedError

    @property
    def parameters(self) -> tuple[str, ...]:
        """The parameters `score` takes (all four when it takes **kwargs)."""
        return _parameters_of(self.score)

    @property
    def needs_trace(self) -> bool:
        """True when the scorer reads the trace (so it must be stored before scoring)."""
        return "trace" in self.parameters

    def __call__(
        self,
        *,
        inputs: Any = None,
        outputs: Any = None,
        expectations: Any = None,
        trace: Any = None,
    ) -> Any:
        """Call `score` with the arguments it declares; exceptions propagate."""
        given = {"inputs": inputs, "outputs": outputs, "expectations": expectations}
        given["trace"] = trace
        return self.score(**{p: given[p] for p in self.parameters})

    def run(
        self,
        *,
        inputs: Any = None,
        outputs: Any = None,
        expectations: Any = None,
        trace: Any = None,
    ) -> list[Feedback]:
        """Score one row and return its feedback; an exception becomes a Feedback error."""
        try:
            result = self(inputs=inputs, outputs=outputs, expectations=expectations, trace=trace)
        except BudgetExceeded:
            raise  # the evaluation reports the row as not judged, not as a failure
        except Exception as exc:
            logger.debug("scorer %s failed", self.name, exc_info=True)
            return [Feedback(name=self.name, error=_describe(exc))]
        return normalize(result, self.name)

    def to_spec(self) -> dict[str, Any]:
        """How to rebuild this scorer in another process (for production scoring).

        The default names the class by import path; scorers with configuration override it.
        """
        cls = type(self)
        return {"kind": "class", "path": f"{cls.__module__}:{cls.__qualname__}", "name": self.name}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class FunctionScorer(Scorer):
    """A scorer made from a function by `@tm.scorer`."""

    def __init__(self, func: Callable[..., Any], name: str | None = None) -> None:
        self.func = func
        self.name = name or func.__name__
        self._parameters = _parameters_of(func)
        functools.update_wrapper(self, func)  # type: ignore[arg-type]

    @property
    def parameters(self) -> tuple[str, ...]:
        """The parameters the function declares."""
        return self._parameters

    def score(self, **kwargs: Any) -> Any:
        """Call the function."""
        return self.func(**kwargs)

    def to_spec(self) -> dict[str, Any]:
        """Name the function by import path; a worker imports it from there."""
        module = getattr(self.func, "__module__", None)
        qualname = getattr(self.func, "__qualname__", "")
        if not module or module == "__main__" or "<" in qualname:
            raise InvalidInputError(
                f"scorer {self.name!r} is defined in {module or 'no module'}"
                f"{' (a local function)' if '<' in qualname else ''}: a worker must be able "
                "to import it, so define it at the top level of an importable module",
                field="scorer",
            )
        return {"kind": "function", "path": f"{module}:{qualname}", "name": self.name}


def scorer(func: Callable[..., Any] | None = None, *, name: str | None = None) -> Any:
    """Make a code scorer from a function taking any of inputs, outputs, expectations, trace.

    Example:
        >>> import tracemark as tm
        >>> @tm.scorer(name="exact_match")
        ... def exact(outputs, expectations) -> bool:
        ...     return outputs == expectations["expected_response"]

    Args:
        func: The function (when used without parentheses).
        name: The assessment name; the function's name by default.
    """

    def make(f: Callable[..., Any]) -> FunctionScorer:
        if not callable(f):
            raise InvalidInputError("@scorer decorates a function", field="scorer")
        return FunctionScorer(f, name)

    return make(func) if func is not None else make


def normalize(result: Any, name: str) -> list[Feedback]:
    """Turn what a scorer returned into a list of Feedback named after the scorer."""
    items = list(result) if isinstance(result, (list, tuple)) else [result]
    out: list[Feedback] = []
    for item in items:
        if isinstance(item, Feedback):
            if item.name is None:
                item.name = name
            if item.value is None and item.error is None:
                item.error = "the scorer returned a Feedback without a value"
            out.append(item)
        elif item is None:
            out.append(Feedback(name=name, error="the scorer returned None"))
        elif isinstance(item, (bool, int, float, str, dict)):
            out.append(Feedback(value=item, name=name))
        else:
            out.append(
                Feedback(
                    name=name,
                    error=f"the scorer returned a {type(item).__name__}; expected bool, "
                    "number, string, Feedback or a list of them",
                )
            )
    if not out:
        out.append(Feedback(name=name, error="the scorer returned an empty list"))
    return out


def from_spec(spec: dict[str, Any]) -> Scorer:
    """Rebuild a scorer from `Scorer.to_spec` output."""
    kind = spec.get("kind")
    if kind == "plugin":
        plugins = load_scorer_plugins()
        if spec["plugin"] not in plugins:
            raise InvalidInputError(
                f"no installed scorer plugin named {spec['plugin']!r} "
                f"(entry-point group {ENTRY_POINT_GROUP})",
                field="spec",
            )
        obj = plugins[spec["plugin"]]
        made = obj(**spec.get("config", {})) if isinstance(obj, type) else obj
        return made if isinstance(made, Scorer) else FunctionScorer(made, spec.get("name"))
    path = spec.get("path")
    if not isinstance(path, str) or ":" not in path:
        raise InvalidInputError(f"scorer spec has no import path: {spec!r}", field="spec")
    obj = _import(path)
    if kind == "function":
        if isinstance(obj, Scorer):
            return obj
        return FunctionScorer(obj, spec.get("name"))
    if kind == "class":
        if hasattr(obj, "from_spec"):
            return obj.from_spec(spec)
        return obj()
    raise InvalidInputError(f"unknown scorer spec kind {kind!r}", field="spec")


def load_scorer_plugins() -> dict[str, Any]:
    """Scorers installed by other packages in the `tracemark.scorers` entry-point group."""
    from importlib.metadata import entry_points

    found: dict[str, Any] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            found[ep.name] = ep.load()
        except Exception as exc:  # a broken plugin must not break evaluation
            logger.warning("scorer plugin %s could not be loaded: %s", ep.name, exc)
    return found


def _import(path: str) -> Any:
    module_name, _, qualname = path.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise InvalidInputError(f"cannot import scorer {path!r}: {exc}", field="spec") from exc
    return obj


def _parameters_of(func: Callable[..., Any]) -> tuple[str, ...]:
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return PARAMETERS
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return PARAMETERS
    names = tuple(p.name for p in params if p.name in PARAMETERS)
    unknown = [
        p.name
        for p in params
        if p.name not in PARAMETERS
        and p.default is inspect.Parameter.empty
        and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        and p.name != "self"
    ]
    if unknown:
        raise InvalidInputError(
            f"scorer {getattr(func, '__name__', func)!r} takes {', '.join(unknown)}; a scorer "
            f"may take only {', '.join(PARAMETERS)}",
            field="scorer",
        )
    return names


def _describe(exc: BaseException) -> str:
    frames = traceback.format_exception_only(type(exc), exc)
    return "".join(frames).strip()[:2000]


def as_scorers(scorers: Sequence[Any]) -> list[Scorer]:
    """Check a list of scorers, wrapping plain functions; names must be unique."""
    out: list[Scorer] = []
    for item in scorers:
        if isinstance(item, Scorer):
            out.append(item)
        elif callable(item):
            out.append(FunctionScorer(item))
        else:
            raise InvalidInputError(
                f"{item!r} is not a scorer: use @tm.scorer, a built-in judge or make_judge",
                field="scorers",
            )
    names = [s.name for s in out]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InvalidInputError(
            f"scorer names must be unique; repeated: {', '.join(duplicates)}", field="scorers"
        )
    return out
