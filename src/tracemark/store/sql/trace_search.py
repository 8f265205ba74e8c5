"""Compile filter and order_by ASTs to SQLAlchemy Core for traces.

Keys a trace filter understands (the grammar is `store/filter_grammar.py`):

- ``status``, ``name``, ``trace_id``, ``run_id``, ``timestamp_ms``, ``execution_time_ms``,
  ``input_tokens``, ``output_tokens``, ``total_tokens``, ``cost``, ``span_count``: columns of
  ``trace_info``, bare or prefixed with ``attributes.`` or ``trace.``.
- ``request`` and ``response``: the request and response previews, as strings
  (``=``, ``LIKE``, ``ILIKE``, ``IN`` ...).
- ``tags.<key>`` and ``metadata.<key>``: string comparisons; a trace without the key fails
  every condition but ``IS NULL``.
- ``span.name``, ``span.type``, ``span.status``: true when *some* span of the trace matches.
- ``feedback.<name>``, ``expectation.<name>``, ``assessment.<name>`` (either kind): true when
  some *valid* assessment of that name matches (overridden ones are ignored). Its value is
  compared by the type of the filter value:

  - an unquoted number compares numerically with numeric values (``feedback.score >= 0.8``);
    ``<``, ``<=``, ``>``, ``>=`` need a number. Booleans and strings are not numbers.
  - a quoted string or ``TRUE``/``FALSE`` compares with the value's text form: a string
    value as it is, a boolean as ``true``/``false``, anything else as its compact JSON
    (``5``, ``0.5``, ``{"a":1}``). So ``feedback.helpful = 'true'`` and
    ``feedback.helpful = true`` both match the boolean True. ``LIKE``/``ILIKE`` match the
    text form too.
  - ``IS NULL`` is true when the trace has no valid assessment of that name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, exists, select, true
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.visitors import InternalTraversal

from tracemark.entities.trace import Assessment
from tracemark.store import validation
from tracemark.store.filter_grammar import Comparison, Expr, OrderBy, parse_filter, parse_order_by
from tracemark.store.sql.assessments import text_form
from tracemark.store.sql.filter_compile import (
    NUMBER,
    STRING,
    Attributes,
    FilterCompiler,
    KeyValueTable,
    key_value_subquery,
    order_attribute,
    order_direction,
    order_prefix,
    parse_experiment_ids,
)
from tracemark.store.sql.paging import decode_page_token, encode_page_token
from tracemark.store.sql.schema import assessments, spans, trace_info, trace_metadata, trace_tags

__all__ = ["build_trace_select", "trace_filter_clause", "trace_order_clauses"]

_FEEDBACK = Assessment.FEEDBACK
_EXPECTATION = Assessment.EXPECTATION
_ANY_ASSESSMENT = "assessment"

_TRACE_PREFIXES = {
    "attributes": "attributes",
    "attribute": "attributes",
    "attr": "attributes",
    "trace": "attributes",
    "tags": "tags",
    "tag": "tags",
    "metadata": "metadata",
    "request_metadata": "metadata",
    "span": "span",
    "spans": "span",
    "feedback": _FEEDBACK,
    "expectation": _EXPECTATION,
    "expectations": _EXPECTATION,
    "assessment": _ANY_ASSESSMENT,
    "assessments": _ANY_ASSESSMENT,
}
_ORDER_PREFIXES = {
    "attributes": "attributes",
    "attribute": "attributes",
    "attr": "attributes",
    "trace": "attributes",
    "tags": "tags",
    "tag": "tags",
    "metadata": "metadata",
}

_ti = trace_info.c
_TRACE_ATTRIBUTES: Attributes = {
    "status": (_ti.status, STRING),
    "name": (_ti.name, STRING),
    "trace_id": (_ti.trace_id, STRING),
    "run_id": (_ti.run_id, STRING),
    "timestamp_ms": (_ti.timestamp_ms, NUMBER),
    "timestamp": (_ti.timestamp_ms, NUMBER),
    "execution_time_ms": (_ti.execution_time_ms, NUMBER),
    "input_tokens": (_ti.input_tokens, NUMBER),
    "output_tokens": (_ti.output_tokens, NUMBER),
    "total_tokens": (_ti.total_tokens, NUMBER),
    "cost": (_ti.cost, NUMBER),
    "span_count": (_ti.span_count, NUMBER),
    "request": (_ti.request_preview, STRING),
    "response": (_ti.response_preview, STRING),
    "request_preview": (_ti.request_preview, STRING),
    "response_preview": (_ti.response_preview, STRING),
}


class _Unindexed(ColumnElement[Any]):
    """A column whose index SQLite must not use here (SQLite's unary ``+`` idiom).

    Without statistics SQLite may answer ``EXISTS (... spans.trace_id = outer AND
    spans.name = 'x')`` through the index on name, scanning every span of that name once
    per trace; through the primary key it reads only the trace's own spans.
    """

    inherit_cache = True
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement)]

    def __init__(self, column: ColumnElement[Any]) -> None:
        self.column = column
        self.type = column.type


@compiles(_Unindexed)
def _compile_unindexed(element: _Unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.column, **kw)


@compiles(_Unindexed, "sqlite")
def _compile_unindexed_sqlite(element: _Unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return "+" + compiler.process(element.column, **kw)


_SPAN_FIELDS = {
    "name": _Unindexed(spans.c.name),
    "type": _Unindexed(spans.c.span_type),
    "span_type": _Unindexed(spans.c.span_type),
    "status": spans.c.status_code,
    "status_code": spans.c.status_code,
}
_TRACE_KEY_VALUE_TABLES = {
    "tags": KeyValueTable(trace_tags, trace_tags.c.trace_id, _ti.trace_id),
    "metadata": KeyValueTable(trace_metadata, trace_metadata.c.trace_id, _ti.trace_id),
}
_ORDERED_COMPARISONS = ("<", "<=", ">", ">=")


def trace_filter_clause(expr: Expr, *, filter_string: str = "") -> ColumnElement[bool]:
    """Compile a parsed filter to a WHERE clause over the ``trace_info`` table.

    Example::

        stmt = select(trace_info).where(
            trace_filter_clause(parse_filter("status = 'ERROR' AND metadata.user_id = 'u-7'"))
        )

    Args:
        expr: The AST from `parse_filter`.
        filter_string: The original text, so errors can point into it.

    Raises:
        InvalidFilterError: A key, attribute, operator or value makes no sense for traces.
    """
    return _TraceFilter(filter_string).compile(expr)


def trace_order_clauses(order_by: Sequence[OrderBy]) -> list[ColumnElement[Any]]:
    """Compile parsed ``order_by`` clauses to ORDER BY expressions over ``trace_info``.

    Without clauses the order is newest first (``timestamp_ms DESC``); ``trace_id`` always
    breaks ties, so pages never overlap. Missing values sort last.

    Example::

        stmt = select(trace_info).order_by(
            *trace_order_clauses(parse_order_by(["execution_time_ms DESC"]))
        )

    Args:
        order_by: The clauses from `parse_order_by`, most significant first.

    Raises:
        InvalidFilterError: An unknown prefix or attribute (its `field` is ``"order_by"``).
    """
    clauses: list[ColumnElement[Any]] = []
    ordered: set[str] = set()
    for clause in order_by:
        prefix = order_prefix(clause, _ORDER_PREFIXES)
        if prefix in _TRACE_KEY_VALUE_TABLES:
            sort_key = key_value_subquery(_TRACE_KEY_VALUE_TABLES[prefix], clause.key)
        else:
            sort_key = order_attribute(clause, _TRACE_ATTRIBUTES)
            ordered.add(sort_key.key)
        clauses.append(order_direction(sort_key, clause.ascending))
    if "timestamp_ms" not in ordered:
        clauses.append(_ti.timestamp_ms.desc())
    if "trace_id" not in ordered:
        clauses.append(_ti.trace_id.asc())
    return clauses


def build_trace_select(
    experiment_ids: Sequence[str | int],
    filter_string: str | None = None,
    order_by: Sequence[str] | None = None,
    max_results: int = 100,
    page_token: str | None = None,
    run_id: str | None = None,
) -> tuple[Select[Any], str]:
    """Build the statement that reads one page of trace infos (``trace_info`` columns only).

    It fetches up to ``max_results + 1`` rows: the extra row only shows that another page
    follows, and then the returned token is that page's token.

    Example::

        stmt, next_token = build_trace_select(["1"], "span.type = 'TOOL'", max_results=50)
        rows = conn.execute(stmt).all()
        page, token = rows[:50], (next_token if len(rows) > 50 else None)

    Args:
        experiment_ids: The experiments to search (strings of digits or ints).
        filter_string: A filter in the grammar of `parse_filter` (keys in the module doc).
        order_by: Clauses such as ``"execution_time_ms DESC"``; newest first by default.
        max_results: Page size, from 1 to 50,000.
        page_token: The token returned for the previous page; None for the first page.
        run_id: Only traces linked to this run.

    Raises:
        InvalidFilterError: The filter or an order_by clause is invalid.
        InvalidInputError: Another argument is out of range or malformed.
    """
    validation.max_results(max_results)
    ids = parse_experiment_ids(experiment_ids)
    offset = decode_page_token(page_token)
    stmt = select(trace_info).where(_ti.experiment_id.in_(ids))
    if run_id is not None:
        stmt = stmt.where(_ti.run_id == validation.run_id(run_id))
    expr = parse_filter(filter_string)
    if expr is not None:
        stmt = stmt.where(trace_filter_clause(expr, filter_string=filter_string or ""))
    stmt = stmt.order_by(*trace_order_clauses(parse_order_by(order_by)))
    stmt = stmt.limit(max_results + 1).offset(offset)
    return stmt, encode_page_token(offset + max_results)


class _TraceFilter(FilterCompiler):
    def comparison(self, cmp: Comparison) -> ColumnElement[bool]:
        prefix = self.prefix(cmp, _TRACE_PREFIXES)
        if prefix in _TRACE_KEY_VALUE_TABLES:
            return self.key_value(_TRACE_KEY_VALUE_TABLES[prefix], cmp)
        if prefix == "span":
            return self.span(cmp)
        if prefix in (_FEEDBACK, _EXPECTATION, _ANY_ASSESSMENT):
            return self.assessment(cmp, prefix)
        return self.attribute(cmp, _TRACE_ATTRIBUTES)

    def span(self, cmp: Comparison) -> ColumnElement[bool]:
        """True when some span of the trace satisfies the condition."""
        column = _SPAN_FIELDS.get(cmp.key.lower())
        if column is None:
            raise self.error(
                f"unknown span field {cmp.key!r} at position {cmp.position}; "
                "use span.name, span.type or span.status",
                cmp.position,
            )
        return exists().where(spans.c.trace_id == _ti.trace_id, self.condition(column, cmp, STRING))

    def assessment(self, cmp: Comparison, kind: str) -> ColumnElement[bool]:
        """True when some valid assessment of that name has a matching value."""
        a = assessments.c
        found = exists().where(
            a.trace_id == _ti.trace_id, _Unindexed(a.name) == cmp.key, a.valid == true()
        )
        if kind != _ANY_ASSESSMENT:
            found = found.where(a.kind == kind)
        if cmp.op == "IS NULL":
            return ~found
        if cmp.op == "IS NOT NULL":
            return found
        values = cmp.value if isinstance(cmp.value, tuple) else (cmp.value,)
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        if numeric or cmp.op in _ORDERED_COMPARISONS:
            return found.where(self.condition(a.value_number, cmp, NUMBER))
        text_values = tuple(text_form(v) for v in values)
        as_text = dataclasses.replace(
            cmp, value=text_values if isinstance(cmp.value, tuple) else text_values[0]
        )
        return found.where(self.condition(a.value_text, as_text, STRING))
