"""The shared half of compiling filter and order_by ASTs to SQLAlchemy Core.

Each searchable entity (runs and experiments in `run_search`, traces in `trace_search`)
subclasses `FilterCompiler` and says which prefixes, attributes and key/value tables it
has; everything else is here: walking And/Or nodes, checking that an operator suits a
column's kind, coercing values, testing keys of key/value tables, and the building
blocks of ORDER BY. Every user value becomes a bound parameter; nothing the user typed is
spliced into SQL. Error messages spell keys the way the user wrote them (`key_label`)
and point at their position in the filter.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, exists, or_, select

from tracemark.exceptions import InvalidFilterError, InvalidInputError
from tracemark.store.filter_grammar import And, Comparison, Expr, Or, OrderBy, Value

__all__ = [
    "ID",
    "NUMBER",
    "STRING",
    "Attributes",
    "FilterCompiler",
    "KeyValueTable",
    "key_label",
    "key_value_subquery",
    "order_attribute",
    "order_direction",
    "order_prefix",
    "parse_experiment_ids",
]

# Value kinds an attribute or key compares as.
STRING = "string"
NUMBER = "number"
ID = "id"  # an experiment id: an integer, written as one or as a string of digits

# Attribute name -> (column, kind): the plain columns an entity can be filtered by.
Attributes = dict[str, tuple[ColumnElement[Any], str]]

_OPERATORS_BY_KIND = {
    STRING: ("=", "!=", "LIKE", "ILIKE", "NOT LIKE", "NOT ILIKE", "IN", "NOT IN"),
    NUMBER: ("=", "!=", "<", "<=", ">", ">=", "IN", "NOT IN"),
    ID: ("=", "!=", "IN", "NOT IN"),
}

_BINARY: dict[str, Callable[[Any, Any], ColumnElement[bool]]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    # On SQLite the store turns on PRAGMA case_sensitive_like so LIKE means the same there.
    "LIKE": lambda column, value: column.like(value),
    "ILIKE": lambda column, value: column.ilike(value),
    "NOT LIKE": lambda column, value: column.not_like(value),
    "NOT ILIKE": lambda column, value: column.not_ilike(value),
}

_INT64 = range(-(2**63), 2**63)
_PLAIN_KEY = re.compile(r"\w+")


@dataclass(frozen=True, slots=True)
class KeyValueTable:
    """A key/value table hanging off an entity: params, run tags, trace metadata ..."""

    table: Table
    owner: ColumnElement[Any]  # the foreign key column in `table`
    outer: ColumnElement[Any]  # the primary key column it points at


class FilterCompiler:
    """Compile a filter AST to a WHERE clause; subclasses compile each `Comparison`.

    Example::

        class ExperimentFilter(FilterCompiler):
            def comparison(self, cmp):
                return self.attribute(cmp, {"name": (experiments.c.name, STRING)})

        where = ExperimentFilter(text).compile(parse_filter(text))

    Args:
        filter_string: The filter's text, so errors can point into it.
    """

    def __init__(self, filter_string: str) -> None:
        self.filter_string = filter_string

    def compile(self, expr: Expr) -> ColumnElement[bool]:
        """Compile a whole expression: And/Or nodes here, comparisons by the subclass."""
        if isinstance(expr, And):
            return and_(*(self.compile(item) for item in expr.items))
        if isinstance(expr, Or):
            return or_(*(self.compile(item) for item in expr.items))
        return self.comparison(expr)

    def comparison(self, cmp: Comparison) -> ColumnElement[bool]:
        """Compile one comparison such as ``tags.env = 'prod'``."""
        raise NotImplementedError

    def error(self, message: str, position: int) -> InvalidFilterError:
        """Return the error for a problem at `position` of the filter."""
        return InvalidFilterError(message, filter_string=self.filter_string, position=position)

    def prefix(self, cmp: Comparison, prefixes: dict[str, str]) -> str:
        """Return the normalized prefix of the comparison's key (``attributes`` if none)."""
        if cmp.prefix is None:
            return "attributes"
        normalized = prefixes.get(cmp.prefix.lower())
        if normalized is None:
            valid = ", ".join(dict.fromkeys(prefixes.values()))
            raise self.error(
                f"unknown key prefix {cmp.prefix!r} at position {cmp.position}; use one of {valid}",
                cmp.position,
            )
        return normalized

    def attribute(self, cmp: Comparison, attributes: Attributes) -> ColumnElement[bool]:
        """Compare a plain column named by the comparison's key (case-insensitive)."""
        name = cmp.key.lower()
        if name not in attributes:
            raise self.error(
                f"unknown attribute {cmp.key!r} at position {cmp.position}; "
                f"use one of {', '.join(attributes)}",
                cmp.position,
            )
        column, kind = attributes[name]
        if cmp.op == "IS NULL":
            return column.is_(None)
        if cmp.op == "IS NOT NULL":
            return column.is_not(None)
        return self.condition(column, cmp, kind)

    def condition(self, column: Any, cmp: Comparison, kind: str) -> ColumnElement[bool]:
        """Compare `column` with the comparison's value(s), checking the operator and type."""
        allowed = _OPERATORS_BY_KIND[kind]
        if cmp.op not in allowed:
            raise self.error(
                f"{key_label(cmp)}: operator {cmp.op!r} does not apply to "
                f"{'ids' if kind == ID else kind + 's'}; use one of {', '.join(allowed)}",
                cmp.position,
            )
        if cmp.op in ("IN", "NOT IN"):
            assert isinstance(cmp.value, tuple)
            values = [self.coerce(value, cmp, kind) for value in cmp.value]
            return column.in_(values) if cmp.op == "IN" else column.not_in(values)
        assert cmp.value is not None and not isinstance(cmp.value, tuple)
        return _BINARY[cmp.op](column, self.coerce(cmp.value, cmp, kind))

    def coerce(self, value: Value, cmp: Comparison, kind: str) -> str | int | float:
        """Return `value` as the column's type, or raise naming the key."""
        position = cmp.position if cmp.value_position is None else cmp.value_position
        if kind == STRING:
            if isinstance(value, str):
                return value
            raise self.error(
                f"{key_label(cmp)}: value must be a quoted string, e.g. "
                f"{key_label(cmp)} {cmp.op} '{_literal(value)}'",
                position,
            )
        if kind == NUMBER:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                # Beyond 64 bits SQLite refuses to bind an int; a float compares the same.
                return value if isinstance(value, float) or value in _INT64 else float(value)
            raise self.error(f"{key_label(cmp)}: value must be a number, got {value!r}", position)
        experiment_id = _as_id(value)
        if experiment_id is not None:
            return experiment_id
        raise self.error(
            f"{key_label(cmp)}: value must be an experiment id such as '1', got {value!r}",
            position,
        )

    def key_value(self, kv: KeyValueTable, cmp: Comparison) -> ColumnElement[bool]:
        """Test a key of a key/value table; a missing key fails all but IS NULL."""
        has_key = exists().where(kv.owner == kv.outer, kv.table.c.key == cmp.key)
        if cmp.op == "IS NULL":
            return ~has_key
        if cmp.op == "IS NOT NULL":
            return has_key
        return has_key.where(self.condition(kv.table.c.value, cmp, STRING))


# --- ORDER BY ---------------------------------------------------------------------------


def order_prefix(clause: OrderBy, prefixes: dict[str, str]) -> str:
    """Return the normalized prefix of an order_by key (``attributes`` if none).

    Raises:
        InvalidFilterError: An unknown prefix (its `field` is ``"order_by"``).
    """
    if clause.prefix is None:
        return "attributes"
    normalized = prefixes.get(clause.prefix.lower())
    if normalized is None:
        valid = ", ".join(dict.fromkeys(prefixes.values()))
        raise _order_by_error(
            f"order_by: unknown key prefix in {key_label(clause)!r}; use one of {valid}"
        )
    return normalized


def order_attribute(clause: OrderBy, attributes: Attributes) -> Any:
    """Return the column an order_by attribute names.

    Raises:
        InvalidFilterError: An unknown attribute (its `field` is ``"order_by"``).
    """
    name = clause.key.lower()
    if name not in attributes:
        raise _order_by_error(
            f"order_by: unknown attribute in {key_label(clause)!r}; "
            f"use one of {', '.join(attributes)}"
        )
    return attributes[name][0]


def key_value_subquery(kv: KeyValueTable, key: str) -> Any:
    """Return the value of `key` for the outer row (NULL when it lacks the key), to sort by."""
    return (
        select(kv.table.c.value)
        .where(kv.owner == kv.outer, kv.table.c.key == key)
        .scalar_subquery()
    )


def order_direction(sort_key: Any, ascending: bool) -> ColumnElement[Any]:
    """Sort by `sort_key` in a direction, with missing values last either way."""
    return (sort_key.asc() if ascending else sort_key.desc()).nulls_last()


def _order_by_error(message: str) -> InvalidFilterError:
    error = InvalidFilterError(message)
    error.field = "order_by"
    return error


# --- keys and values ----------------------------------------------------------------------


def key_label(cmp: Comparison | OrderBy) -> str:
    """Spell the key as the user would write it, backquoting keys that need it."""
    key = cmp.key if _PLAIN_KEY.fullmatch(cmp.key) else f"`{cmp.key}`"
    return key if cmp.prefix is None else f"{cmp.prefix}.{key}"


def _literal(value: Value) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def parse_experiment_ids(experiment_ids: Sequence[str | int]) -> list[int]:
    """Return experiment ids (ints or strings of digits) as the integers the tables hold.

    Raises:
        InvalidInputError: A single string was given, or an id is not an experiment id.
    """
    if isinstance(experiment_ids, str):
        raise InvalidInputError(
            f"experiment_ids must be a list of ids, got the string {experiment_ids!r}",
            field="experiment_ids",
        )
    ids = []
    for experiment_id in experiment_ids:
        parsed = _as_id(experiment_id)
        if parsed is None:
            raise InvalidInputError(
                f"experiment_ids: {experiment_id!r} is not an experiment id", field="experiment_ids"
            )
        ids.append(parsed)
    return ids


def _as_id(value: object) -> int | None:
    """Return an experiment id (an int or a string of digits) as an int, else None."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 20:
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value in _INT64:
        return value
    return None
