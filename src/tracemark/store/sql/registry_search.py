"""Compile registry filters (prompts, registered models, model versions) to SQLAlchemy.

The grammar is the one of runs and traces (`store/filter_grammar.py`); the registry
entities know a few attributes (``name``, ``version``, ``run_id``, ...) and ``tags.<key>``.
Every user value becomes a bound parameter.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, exists, or_, select

from tracemark.exceptions import InvalidFilterError
from tracemark.store.filter_grammar import And, Comparison, Expr, Or, parse_filter

__all__ = ["RegistryFilter"]

STRING = "string"
NUMBER = "number"

_OPERATORS = {
    STRING: ("=", "!=", "LIKE", "ILIKE", "NOT LIKE", "NOT ILIKE", "IN", "NOT IN"),
    NUMBER: ("=", "!=", "<", "<=", ">", ">=", "IN", "NOT IN"),
}
_BINARY: dict[str, Callable[[Any, Any], ColumnElement[bool]]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "LIKE": lambda column, value: column.like(value),
    "ILIKE": lambda column, value: column.ilike(value),
    "NOT LIKE": lambda column, value: column.not_like(value),
    "NOT ILIKE": lambda column, value: column.not_ilike(value),
}


@dataclass(frozen=True)
class RegistryFilter:
    """The filterable attributes and the tag table of one registry entity.

    Args:
        kind: what is searched, for error messages ("prompts").
        attributes: attribute name -> (column, STRING or NUMBER).
        tags: the tag table; its owner columns are joined to `owner` column by column.
        owner: the searched table's key columns, in the order of the tag table's.
    """

    kind: str
    attributes: Mapping[str, tuple[ColumnElement[Any], str]]
    tags: Table
    owner: Sequence[ColumnElement[Any]]

    def clause(self, filter_string: str | None) -> ColumnElement[bool] | None:
        """Return the WHERE clause of a filter string, or None for no filter."""
        expr = parse_filter(filter_string)
        return None if expr is None else self._compile(expr, filter_string or "")

    def _compile(self, expr: Expr, source: str) -> ColumnElement[bool]:
        if isinstance(expr, And):
            return and_(*(self._compile(e, source) for e in expr.items))
        if isinstance(expr, Or):
            return or_(*(self._compile(e, source) for e in expr.items))
        return self._comparison(expr, source)

    def _error(self, message: str, source: str, position: int) -> InvalidFilterError:
        return InvalidFilterError(message, filter_string=source, position=position)

    def _comparison(self, c: Comparison, source: str) -> ColumnElement[bool]:
        prefix = c.prefix if c.prefix not in ("attributes", "attribute", "attr") else None
        if prefix in ("tags", "tag"):
            column, kind = self.tags.c.value, STRING
        elif prefix is None and c.key in self.attributes:
            column, kind = self.attributes[c.key]
        else:
            known = ", ".join([*sorted(self.attributes), "tags.<key>"])
            raise self._error(
                f"cannot filter {self.kind} on {source[c.position :].split()[0]!r}; "
                f"use one of: {known}",
                source,
                c.position,
            )
        if c.op not in _OPERATORS[kind]:
            raise self._error(
                f"operator {c.op} does not apply to {c.key!r}; use one of "
                f"{', '.join(_OPERATORS[kind])}",
                source,
                c.position,
            )
        values = c.value if isinstance(c.value, tuple) else (c.value,)
        for value in values:
            wrong = isinstance(value, bool) or (
                not isinstance(value, str) if kind == STRING else not isinstance(value, int | float)
            )
            if wrong:
                raise self._error(
                    f"{c.key!r} compares with a {kind}, not {value!r}",
                    source,
                    c.value_position or c.position,
                )
        if c.op in ("IN", "NOT IN"):
            condition = column.in_(values) if c.op == "IN" else column.not_in(values)
        else:
            condition = _BINARY[c.op](column, c.value)
        if prefix not in ("tags", "tag"):
            return condition
        owner_columns = [self.tags.c[col.key] for col in self.owner]
        return exists(
            select(1).where(
                *(tag_col == col for tag_col, col in zip(owner_columns, self.owner, strict=True)),
                self.tags.c.key == c.key,
                condition,
            )
        )
