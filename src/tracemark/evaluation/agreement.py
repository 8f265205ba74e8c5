"""How far a judge agrees with people, and aligning a judge with them.

`judge_agreement` runs a judge on traces people have labelled (HUMAN feedback) and compares
verdicts: accuracy, Cohen's kappa, the confusion matrix and the traces they disagree on.
`align` (`Judge.align`) splits the labelled traces into train and holdout, asks the judge's
model to rewrite the judge's criteria from the train cases it got wrong, adds a few of them
as examples, and measures agreement on the holdout before and after.

Labels are compared after light normalization: booleans count as "yes"/"no", strings
ignore case and surrounding spaces, `2.0` equals `2`.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tracemark.entities.trace import Assessment, AssessmentSource, Trace
from tracemark.evaluation.scorers import Feedback, Scorer
from tracemark.exceptions import InvalidInputError, TracemarkError

if TYPE_CHECKING:
    from tracemark.evaluation.judges._base import Judge

__all__ = ["Agreement", "AlignmentResult", "align", "judge_agreement"]

_MAX_WORKERS = 8
_MAX_EXAMPLES = 4
_MAX_REWRITE_CASES = 12
_CASE_VALUE_LIMIT = 3000


@dataclass
class Agreement:
    """How a judge's verdicts compare with people's on a set of traces.

    Attributes:
        n: Traces compared (labelled by people and judged without error).
        accuracy: The share of them where judge and people agree; None when n is 0.
        kappa: Cohen's kappa (agreement beyond chance); None when undefined (n is 0, or
            both sides gave one and the same label throughout).
        labels: The labels seen, sorted; the confusion matrix's row and column order.
        confusion: `confusion[i][j]` counts traces people labelled `labels[i]` and the
            judge `labels[j]`.
        disagreements: Ids of the traces where they disagree.
        skipped: Traces without a human label of that name (not judged).
        errors: Ids of the traces the judge failed on (its feedback is an error).
    """

    n: int
    accuracy: float | None
    kappa: float | None
    labels: list[Any] = field(default_factory=list)
    confusion: list[list[int]] = field(default_factory=list)
    disagreements: list[str] = field(default_factory=list)
    skipped: int = 0
    errors: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        if self.accuracy is None:
            return f"no traces compared ({self.skipped} without a human label)"
        kappa = "undefined" if self.kappa is None else f"{self.kappa:.2f}"
        return f"accuracy {self.accuracy:.2f}, kappa {kappa} over {self.n} traces"

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "n": self.n,
            "accuracy": self.accuracy,
            "kappa": self.kappa,
            "labels": list(self.labels),
            "confusion": [list(row) for row in self.confusion],
            "disagreements": list(self.disagreements),
            "skipped": self.skipped,
            "errors": list(self.errors),
        }


@dataclass
class AlignmentResult:
    """What `Judge.align` returns.

    Attributes:
        judge: The aligned judge (the same judge when it already agreed on every train case).
        before: Agreement of the original judge on the holdout traces.
        after: Agreement of the aligned judge on the same traces.
    """

    judge: Judge
    before: Agreement
    after: Agreement


@dataclass
class _Case:
    trace: Trace
    human: Assessment
    feedback: Feedback | None = None

    @property
    def human_label(self) -> Any:
        return _label(self.human.value)

    @property
    def judge_label(self) -> Any:
        return None if self.feedback is None else _label(self.feedback.value)


def _label(value: Any) -> Any:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value.strip().lower()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, (int, float)) or value is None:
        return value
    return json.dumps(value, sort_keys=True, default=str)


def _human_label(trace: Trace, name: str) -> Assessment | None:
    found = [
        a
        for a in trace.info.assessments
        if a.kind == Assessment.FEEDBACK
        and a.name == name
        and a.valid
        and a.value is not None
        and a.source.source_type == AssessmentSource.HUMAN
    ]
    if not found:
        return None
    # A trace-level label wins over a span's; the latest one wins among those.
    return max(found, key=lambda a: (a.span_id is None, a.last_updated_time_ms, a.created_time_ms))


def _resolve(traces: Sequence[Any]) -> list[Trace]:
    from tracemark.evaluation.judges._trace import as_trace

    if isinstance(traces, (str, Trace)) or not isinstance(traces, Sequence):
        raise InvalidInputError("traces must be a list of Trace objects or ids", field="traces")
    return [t for t in (as_trace(item) for item in traces) if t is not None]


def _run(judge: Scorer, case: _Case) -> _Case:
    from tracemark.evaluation.judges._trace import root_io

    inputs, outputs = root_io(case.trace)
    feedback = judge.run(
        inputs=inputs,
        outputs=outputs,
        expectations=case.trace.expectations or None,
        trace=case.trace,
    )
    with_value = [f for f in feedback if f.error is None and f.value is not None]
    trace_level = [f for f in with_value if f.span_id is None]
    # Judges with one verdict per span (retrieval relevance) are compared by their first.
    case.feedback = (trace_level or with_value or [None])[0]
    return case


def _compare(judge: Scorer, traces: Sequence[Trace], name: str) -> tuple[list[_Case], int]:
    """Judge every trace with a human label; return the cases and how many were skipped."""
    from tracemark.tracing._context import TracedThreadPoolExecutor

    cases: list[_Case] = []
    for trace in traces:
        human = _human_label(trace, name)
        if human is not None:
            cases.append(_Case(trace, human))
    if cases:
        with TracedThreadPoolExecutor(max_workers=min(_MAX_WORKERS, len(cases))) as pool:
            cases = list(pool.map(lambda c: _run(judge, c), cases))
    return cases, len(traces) - len(cases)


def _agreement(cases: list[_Case], skipped: int) -> Agreement:
    judged = [c for c in cases if c.feedback is not None]
    errors = [c.trace.trace_id for c in cases if c.feedback is None]
    n = len(judged)
    labels = sorted(
        {c.human_label for c in judged} | {c.judge_label for c in judged},
        key=lambda v: (type(v).__name__, str(v)),
    )
    index = {label: i for i, label in enumerate(labels)}
    confusion = [[0] * len(labels) for _ in labels]
    for c in judged:
        confusion[index[c.human_label]][index[c.judge_label]] += 1
    disagreements = [c.trace.trace_id for c in judged if c.human_label != c.judge_label]
    if n == 0:
        return Agreement(0, None, None, labels, confusion, disagreements, skipped, errors)
    observed = sum(confusion[i][i] for i in range(len(labels))) / n
    expected = sum(
        sum(confusion[i]) * sum(row[i] for row in confusion) for i in range(len(labels))
    ) / (n * n)
    kappa = None if expected >= 1.0 else (observed - expected) / (1.0 - expected)
    return Agreement(n, observed, kappa, labels, confusion, disagreements, skipped, errors)


def judge_agreement(
    judge: Scorer, traces: Sequence[Any], human_name: str | None = None
) -> Agreement:
    """Run a judge on traces people labelled and measure how often it agrees with them.

    Example:
        >>> agreement = judge_agreement(Correctness(), traces)
        >>> agreement.accuracy, agreement.kappa, agreement.disagreements

    The judge sees each trace's root inputs and outputs, its expectations and the trace.
    People's label is the trace's HUMAN feedback named `human_name` (the latest valid one);
    traces without one are skipped and counted.

    Args:
        judge: A judge (or any scorer).
        traces: Trace objects or trace ids (read with the default client).
        human_name: The human feedback's name; the judge's name by default.
    """
    name = human_name or judge.name
    cases, skipped = _compare(judge, _resolve(traces), name)
    return _agreement(cases, skipped)


def align(
    judge: Judge,
    traces: Sequence[Any],
    *,
    human_name: str | None = None,
    holdout: float = 0.3,
    seed: int = 0,
) -> AlignmentResult:
    """Rewrite a judge's criteria from its disagreements with people; see `Judge.align`."""
    if not isinstance(holdout, (int, float)) or not 0 < holdout < 1:
        raise InvalidInputError("holdout must be between 0 and 1", field="holdout")
    name = human_name or judge.name
    labelled = [t for t in _resolve(traces) if _human_label(t, name) is not None]
    if len(labelled) < 2:
        raise InvalidInputError(
            f"align needs at least 2 traces with HUMAN feedback named {name!r}; "
            f"{len(labelled)} found",
            field="traces",
        )
    random.Random(seed).shuffle(labelled)
    size = min(len(labelled) - 1, max(1, round(len(labelled) * holdout)))
    held, train = labelled[:size], labelled[size:]
    before = _agreement(*_compare(judge, held, name))
    train_cases, _ = _compare(judge, train, name)
    wrong = [c for c in train_cases if c.feedback is not None and c.human_label != c.judge_label]
    if not wrong:
        return AlignmentResult(judge=judge, before=before, after=before)
    instructions = judge.fit_instructions(_rewrite(judge, wrong))
    examples = (judge.examples + [_example(judge, c) for c in wrong])[-_MAX_EXAMPLES:]
    aligned = judge.with_instructions(instructions, examples)
    after = _agreement(*_compare(aligned, held, name))
    return AlignmentResult(judge=aligned, before=before, after=after)


def _example(judge: Judge, case: _Case) -> dict[str, Any]:
    from tracemark.evaluation.judges._trace import root_io

    inputs, outputs = root_io(case.trace)
    try:
        result = judge.value_type.validate(case.human.value)
    except ValueError:
        result = case.human.value
    example: dict[str, Any] = {"inputs": inputs, "outputs": outputs, "result": result}
    expectations = case.trace.expectations
    if expectations:
        example["expectations"] = expectations
    example["rationale"] = case.human.rationale or f"Reviewers judged this {json.dumps(result)}."
    return example


_REWRITE_SYSTEM = (
    "You improve the criteria of an LLM judge so that its verdicts agree with human "
    'reviewers. Answer with only a JSON object: {"rationale": "<what you changed and why>", '
    '"result": "<the complete new criteria>"}. Write nothing before or after it.'
)


def _rewrite(judge: Judge, wrong: list[_Case]) -> str:
    from tracemark.evaluation.judges._parse import ValueType, read_answer
    from tracemark.evaluation.judges._prompts import render_value
    from tracemark.evaluation.judges._trace import root_io
    from tracemark.evaluation.judges.custom import placeholder

    parts = [f"# Current criteria\n{judge.instructions}"]
    if "{{" in judge.instructions:
        parts.append(
            "The criteria are a template: keep each of its variables "
            f"({', '.join(placeholder(v) for v in judge.parameters)}) exactly as written."
        )
    parts.append("# Cases where the judge and the reviewers disagreed")
    for i, case in enumerate(wrong[:_MAX_REWRITE_CASES], 1):
        inputs, outputs = root_io(case.trace)
        judged = case.feedback or Feedback()
        parts.append(
            f"## Case {i}\n### Request\n{render_value(inputs, _CASE_VALUE_LIMIT)}\n"
            f"### Response\n{render_value(outputs, _CASE_VALUE_LIMIT)}\n"
            f"### The judge's verdict\n{json.dumps(judged.value)}: {judged.rationale or ''}\n"
            f"### The reviewers' verdict\n{json.dumps(case.human.value)}: "
            f"{case.human.rationale or ''}"
        )
    parts.append(
        "# Task\nRewrite the criteria so that a judge following them reaches the reviewers' "
        "verdicts on these cases and on similar ones. Keep what still holds, state the rules "
        "the reviewers apply as general rules without quoting these cases, and keep the "
        f"verdict's form ({judge.value_type.describe()})."
    )
    text_type = ValueType("str")
    messages = [
        {"role": "system", "content": _REWRITE_SYSTEM},
        {"role": "user", "content": "\n\n".join(parts)},
    ]
    response = judge.judge_model.chat(
        messages, json_schema=text_type.answer_schema(), name=f"{judge.name} alignment"
    )
    answer = read_answer(response.text, text_type, judge.name)
    if answer.error is not None or not str(answer.value).strip():
        raise TracemarkError(
            f"aligning {judge.name}: the model's rewritten criteria could not be read: "
            f"{answer.error or 'empty criteria'}"
        )
    return str(answer.value)
