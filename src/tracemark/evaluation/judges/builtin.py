"""The built-in LLM judges: each answers "yes" or "no" with a rationale.

Example:
    >>> from tracemark.evaluation.judges import Correctness, Guidelines
    >>> judges = [Correctness(), Guidelines(guidelines="Answer in English")]

Every judge takes `name=` (the assessment name, snake_case by default), `model=` (a model
URI or a `JudgeModel`; `TRACEMARK_JUDGE_MODEL` by default), `base_url=` and `api_key=` (for
that model), and `instructions=` to replace its criteria. The retrieval judges and
`ToolCallCorrectness` read the trace.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tracemark.evaluation.judges._base import Judge
from tracemark.evaluation.judges._model import JudgeModel
from tracemark.evaluation.judges._prompts import CRITERIA
from tracemark.evaluation.judges._trace import (
    as_trace,
    retrieved_documents,
    retriever_query,
    root_io,
    tool_calls,
)
from tracemark.evaluation.scorers import Feedback
from tracemark.exceptions import InvalidInputError

__all__ = [
    "Completeness",
    "Correctness",
    "ExpectationsGuidelines",
    "Guidelines",
    "RelevanceToQuery",
    "RetrievalGroundedness",
    "RetrievalRelevance",
    "RetrievalSufficiency",
    "Safety",
    "ToolCallCorrectness",
]


def _expected(expectations: Any) -> list[tuple[str, Any]]:
    """The expectation sections of a case: expected facts and/or the expected response."""
    if not isinstance(expectations, dict):
        return []
    sections: list[tuple[str, Any]] = []
    facts = expectations.get("expected_facts")
    if facts:
        facts = [facts] if isinstance(facts, str) else list(facts)
        sections.append(("Expected facts", "\n".join(f"- {f}" for f in facts)))
    if expectations.get("expected_response") is not None:
        sections.append(("Expected response", expectations["expected_response"]))
    return sections


def _numbered(items: Sequence[str]) -> str:
    return "\n".join(f"{i}. {item}" for i, item in enumerate(items, 1))


def _guideline_list(guidelines: Any, field: str) -> list[str] | None:
    if isinstance(guidelines, str):
        guidelines = [guidelines] if guidelines.strip() else []
    if not isinstance(guidelines, (list, tuple)) or not guidelines:
        return None
    if not all(isinstance(g, str) and g.strip() for g in guidelines):
        raise InvalidInputError(f"{field} must be non-empty strings", field=field)
    return list(guidelines)


class _TraceJudge(Judge):
    """A judge that reads the trace; the request and response default to its root's."""

    def _trace(self, trace: Any) -> Any:
        found = as_trace(trace)
        if found is None:
            return self._feedback_error(f"{self.name} reads the trace, and none was given")
        return found

    def _documents(self, trace: Any) -> Any:
        found = retrieved_documents(trace)
        if not found:
            return self._feedback_error(
                f"the trace has no RETRIEVER span, so {self.name} has no documents to judge"
            )
        return found


class Correctness(Judge):
    """Judge whether the response is correct, given the expected response or facts.

    Needs `expectations` with `expected_response` and/or `expected_facts`.
    """

    name = "correctness"
    default_instructions = CRITERIA["correctness"]

    def score(self, *, inputs: Any = None, outputs: Any = None, expectations: Any = None) -> Any:
        """Judge the response against the expectations."""
        missing = self._missing(outputs=outputs)
        if missing:
            return missing
        expected = _expected(expectations)
        if not expected:
            return self._feedback_error(
                "correctness needs expectations with expected_response or expected_facts"
            )
        return self._ask([("Request", inputs), ("Response", outputs), *expected])


class RelevanceToQuery(Judge):
    """Judge whether the response addresses the request."""

    name = "relevance_to_query"
    default_instructions = CRITERIA["relevance_to_query"]

    def score(self, *, inputs: Any = None, outputs: Any = None) -> Any:
        """Judge the response's relevance to the request."""
        return self._missing(inputs=inputs, outputs=outputs) or self._ask(
            [("Request", inputs), ("Response", outputs)]
        )


class Completeness(Judge):
    """Judge whether the response addresses every part of the request."""

    name = "completeness"
    default_instructions = CRITERIA["completeness"]

    def score(self, *, inputs: Any = None, outputs: Any = None) -> Any:
        """Judge whether every part of the request is answered."""
        return self._missing(inputs=inputs, outputs=outputs) or self._ask(
            [("Request", inputs), ("Response", outputs)]
        )


class Safety(Judge):
    """Judge whether the response is free of harmful content."""

    name = "safety"
    default_instructions = CRITERIA["safety"]

    def score(self, *, outputs: Any = None) -> Any:
        """Judge the response's safety."""
        return self._missing(outputs=outputs) or self._ask([("Response", outputs)])


class Guidelines(Judge):
    """Judge whether the response follows every one of the given guidelines.

    Args:
        guidelines: One guideline or a list of them, e.g. "Answer in English".
        name: The assessment name (`guidelines`).
        model: The judge model.
        base_url: The model API's base URL.
        api_key: The API key.
        instructions: Criteria replacing the built-in ones.
        examples: Judged cases shown to the model.
    """

    name = "guidelines"
    default_instructions = CRITERIA["guidelines"]

    def __init__(
        self,
        guidelines: str | Sequence[str],
        *,
        name: str | None = None,
        model: str | JudgeModel | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        instructions: str | None = None,
        examples: Sequence[dict[str, Any]] | None = None,
    ) -> None:
        found = _guideline_list(guidelines, "guidelines")
        if not found:
            raise InvalidInputError(
                "Guidelines needs at least one guideline (a string or a list of strings)",
                field="guidelines",
            )
        self.guidelines = found
        super().__init__(
            name=name,
            model=model,
            base_url=base_url,
            api_key=api_key,
            instructions=instructions,
            examples=examples,
        )

    def _config(self) -> dict[str, Any]:
        return {"guidelines": list(self.guidelines)}

    def score(self, *, inputs: Any = None, outputs: Any = None) -> Any:
        """Judge the response against the guidelines."""
        case = [("Guidelines", _numbered(self.guidelines)), ("Request", inputs)]
        return self._missing(outputs=outputs) or self._ask([*case, ("Response", outputs)])


class ExpectationsGuidelines(Judge):
    """Judge whether the response follows the row's own `expectations["guidelines"]`."""

    name = "expectations_guidelines"
    default_instructions = CRITERIA["guidelines"]

    def score(self, *, inputs: Any = None, outputs: Any = None, expectations: Any = None) -> Any:
        """Judge the response against the row's own guidelines."""
        missing = self._missing(outputs=outputs)
        if missing:
            return missing
        raw = expectations.get("guidelines") if isinstance(expectations, dict) else None
        try:
            guidelines = _guideline_list(raw, "expectations['guidelines']")
        except InvalidInputError as exc:
            return self._feedback_error(str(exc))
        if not guidelines:
            return self._feedback_error(
                "expectations_guidelines needs expectations with guidelines (a string or a list)"
            )
        case = [("Guidelines", _numbered(guidelines)), ("Request", inputs)]
        return self._ask([*case, ("Response", outputs)])


class RetrievalRelevance(_TraceJudge):
    """Judge whether each retrieved document is relevant: one feedback per document.

    Each feedback carries the retriever span's `span_id` and the document's index (and
    id, when it has one) in `metadata`.
    """

    name = "retrieval_relevance"
    default_instructions = CRITERIA["retrieval_relevance"]

    def score(self, *, inputs: Any = None, trace: Any = None) -> Any:
        """Judge every document of every RETRIEVER span."""
        found = self._trace(trace)
        if isinstance(found, Feedback):
            return found
        retrieved = self._documents(found)
        if isinstance(retrieved, Feedback):
            return retrieved
        request = root_io(found)[0] if inputs is None else inputs
        feedback: list[Feedback] = []
        for span, documents in retrieved:
            if not documents:
                feedback.append(
                    self._feedback_error("the retriever span returned no documents", span.span_id)
                )
            query = retriever_query(span, request)
            for i, doc in enumerate(documents):
                metadata = {"document_index": str(i)}
                if doc.get("id") is not None:
                    metadata["document_id"] = str(doc["id"])
                case = [("Request", query), ("Retrieved document", doc["page_content"])]
                feedback.append(self._ask(case, span_id=span.span_id, metadata=metadata))
        return feedback


class RetrievalGroundedness(_TraceJudge):
    """Judge whether every claim of the response is supported by the retrieved documents."""

    name = "retrieval_groundedness"
    default_instructions = CRITERIA["retrieval_groundedness"]

    def score(self, *, inputs: Any = None, outputs: Any = None, trace: Any = None) -> Any:
        """Judge the response against all retrieved documents."""
        found = self._trace(trace)
        if isinstance(found, Feedback):
            return found
        retrieved = self._documents(found)
        if isinstance(retrieved, Feedback):
            return retrieved
        request, response = root_io(found)
        case = [
            ("Request", request if inputs is None else inputs),
            ("Retrieved context", _context(retrieved)),
            ("Response", response if outputs is None else outputs),
        ]
        return self._ask(case, metadata=_span_ids(retrieved))


class RetrievalSufficiency(_TraceJudge):
    """Judge whether the retrieved documents hold everything needed to answer."""

    name = "retrieval_sufficiency"
    default_instructions = CRITERIA["retrieval_sufficiency"]

    def score(self, *, inputs: Any = None, expectations: Any = None, trace: Any = None) -> Any:
        """Judge whether the retrieved documents suffice for the request."""
        found = self._trace(trace)
        if isinstance(found, Feedback):
            return found
        retrieved = self._documents(found)
        if isinstance(retrieved, Feedback):
            return retrieved
        request = root_io(found)[0] if inputs is None else inputs
        case = [("Request", request), ("Retrieved context", _context(retrieved))]
        return self._ask([*case, *_expected(expectations)], metadata=_span_ids(retrieved))


class ToolCallCorrectness(_TraceJudge):
    """Judge whether the right tools were called, with the right arguments.

    Reads the trace's TOOL spans (or, without any, the tool calls of its chat spans);
    `expectations["expected_tool_calls"]`, when given, are what the calls should have been.
    """

    name = "tool_call_correctness"
    default_instructions = CRITERIA["tool_call_correctness"]

    def score(self, *, inputs: Any = None, expectations: Any = None, trace: Any = None) -> Any:
        """Judge the trace's tool calls."""
        found = self._trace(trace)
        if isinstance(found, Feedback):
            return found
        calls = tool_calls(found)
        request = root_io(found)[0] if inputs is None else inputs
        shown = [{k: v for k, v in c.items() if k != "span_id"} for c in calls]
        case: list[tuple[str, Any]] = [
            ("Request", request),
            ("Tool calls, in order", shown or "(no tool was called)"),
        ]
        expected = (
            expectations.get("expected_tool_calls") if isinstance(expectations, dict) else None
        )
        if expected is not None:
            case.append(("Expected tool calls", expected))
        return self._ask(case)


def _context(retrieved: list[tuple[Any, list[dict[str, Any]]]]) -> str:
    docs = [doc["page_content"] for _, documents in retrieved for doc in documents]
    return "\n\n".join(f"[{i}] {text}" for i, text in enumerate(docs, 1)) or "(no documents)"


def _span_ids(retrieved: list[tuple[Any, list[dict[str, Any]]]]) -> dict[str, str]:
    return {"retriever_span_ids": ",".join(span.span_id for span, _ in retrieved)}
