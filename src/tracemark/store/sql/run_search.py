"""Compile filter and order_by ASTs to SQLAlchemy Core for runs and experiments.

Every user value becomes a bound parameter; nothing the user typed is spliced into SQL.
Params and tags compare as strings, metrics as numbers against each run's latest value,
and a condition on a key a run lacks is false (``IS NULL`` tests for the missing key).
"""

from __future__ import annotations

import base64
import binascii
import json
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, and_, exists, false, or_, select

from tracemark.entities import LifecycleStage
from tracemark.exceptions import InvalidFilterError, InvalidInputError
from tracemark.store import validation
from tracemark.store.base import ViewType
from tracemark.store.filter_grammar import (
    And,
    Comparison,
    Expr,
    Or,
    OrderBy,
    Value,
    parse_filter,
    parse_order_by,
)
from tracemark.store.sql.schema import (
    experiment_tags,
    experiments,
    latest_metrics,
    params,
    run_tags,
    runs,
)

__all__ = [
    "build_run_select",
    "decode_page_token",
    "encode_page_token",
    "experiment_filter_clause",
    "experiment_order_clauses",
    "run_filter_clause",
    "run_order_clauses",
]


# Value kinds an attribute or key compares as.
_STRING = "string"
_NUMBER = "number"
_ID = "id"

_OPERATORS_BY_KIND = {
    _STRING: ("=", "!=", "LIKE", "ILIKE", "NOT LIKE", "NOT ILIKE", "IN", "NOT IN"),
    _NUMBER: ("=", "!=", "<", "<=", ">", ">=", "IN", "NOT IN"),
    _ID: ("=", "!=", "IN", "NOT IN"),
}
_METRIC_OPERATORS = ("=", "!=", "<", "<=", ">", ">=", "IS NULL", "IS NOT NULL")
_NULL_OPERATORS = ("IS NULL", "IS NOT NULL")

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

# MLflow accepts the singular spellings; users bring their filters along.
_RUN_PREFIXES = {
    "metrics": "metrics",
    "metric": "metrics",
    "params": "params",
    "param": "params",
    "tags": "tags",
    "tag": "tags",
    "attributes": "attributes",
    "attribute": "attributes",
    "attr": "attributes",
    "run": "attributes",
}
_EXPERIMENT_PREFIXES = {
    "tags": "tags",
    "tag": "tags",
    "attributes": "attributes",
    "attribute": "attributes",
    "attr": "attributes",
}

_RUN_ATTRIBUTES = {
    "status": (runs.c.status, _STRING),
    "run_name": (runs.c.name, _STRING),
    "name": (runs.c.name, _STRING),
    "run_id": (runs.c.run_id, _STRING),
    "start_time": (runs.c.start_time, _NUMBER),
    "end_time": (runs.c.end_time, _NUMBER),
    "artifact_uri": (runs.c.artifact_uri, _STRING),
    "experiment_id": (runs.c.experiment_id, _ID),
    "parent_run_id": (runs.c.parent_run_id, _STRING),
    "lifecycle_stage": (runs.c.lifecycle_stage, _STRING),
}
_EXPERIMENT_ATTRIBUTES = {
    "name": (experiments.c.name, _STRING),
    "creation_time": (experiments.c.creation_time, _NUMBER),
    "last_update_time": (experiments.c.last_update_time, _NUMBER),
    "experiment_id": (experiments.c.experiment_id, _ID),
}

_INT64 = range(-(2**63), 2**63)
_PLAIN_KEY = re.compile(r"\w+")


@dataclass(frozen=True, slots=True)
class _KeyValueTable:
    """A key/value table hanging off an entity: params, run tags, experiment tags."""

    table: Table
    owner: ColumnElement[Any]  # the foreign key column in `table`
    outer: ColumnElement[Any]  # the primary key column it points at


_RUN_KEY_VALUE_TABLES = {
    "params": _KeyValueTable(params, params.c.run_id, runs.c.run_id),
    "tags": _KeyValueTable(run_tags, run_tags.c.run_id, runs.c.run_id),
}
_EXPERIMENT_TAGS = _KeyValueTable(
    experiment_tags, experiment_tags.c.experiment_id, experiments.c.experiment_id
)


# --- public API ---------------------------------------------------------------------------


def run_filter_clause(expr: Expr, *, filter_string: str = "") -> ColumnElement[bool]:
    """Compile a parsed filter to a WHERE clause over the ``runs`` table.

    Example::

        stmt = select(runs).where(run_filter_clause(parse_filter("metrics.acc > 0.9")))

    Args:
        expr: The AST from `parse_filter`.
        filter_string: The original text, so errors can point into it.

    Raises:
        InvalidFilterError: A key, attribute, operator or value makes no sense for runs.
    """
    return _RunFilter(filter_string).compile(expr)


def run_order_clauses(order_by: Sequence[OrderBy]) -> list[ColumnElement[Any]]:
    """Compile parsed ``order_by`` clauses to ORDER BY expressions over ``runs``.

    Runs without the ordered metric, param or tag sort last in both directions; the list
    always ends with ``start_time DESC`` (unless ordered already) and ``run_id`` so that
    paging is deterministic.

    Example::

        stmt = select(runs).order_by(*run_order_clauses(parse_order_by(["metrics.acc DESC"])))

    Args:
        order_by: The clauses from `parse_order_by`, most significant first.

    Raises:
        InvalidFilterError: An unknown prefix or attribute (its `field` is ``"order_by"``).
    """
    clauses: list[ColumnElement[Any]] = []
    ordered: set[str] = set()
    for clause in order_by:
        prefix = _order_prefix(clause, _RUN_PREFIXES)
        if prefix == "metrics":
            sort_key = _latest_metric(clause.key)
        elif prefix in _RUN_KEY_VALUE_TABLES:
            sort_key = _key_value(_RUN_KEY_VALUE_TABLES[prefix], clause.key)
        else:
            sort_key = _order_attribute(clause, _RUN_ATTRIBUTES)
            ordered.add(sort_key.key)
        clauses.append(_direction(sort_key, clause.ascending))
    if "start_time" not in ordered:
        clauses.append(runs.c.start_time.desc())
    if "run_id" not in ordered:
        clauses.append(runs.c.run_id.asc())
    return clauses


def experiment_filter_clause(expr: Expr, *, filter_string: str = "") -> ColumnElement[bool]:
    """Compile a parsed filter to a WHERE clause over the ``experiments`` table.

    Supports ``name``, ``creation_time``, ``last_update_time`` and ``experiment_id``
    (bare or as ``attributes.<name>``) and ``tags.<key>``.

    Example::

        stmt = select(experiments).where(
            experiment_filter_clause(parse_filter("name LIKE 'support-%'"))
        )

    Args:
        expr: The AST from `parse_filter`.
        filter_string: The original text, so errors can point into it.

    Raises:
        InvalidFilterError: A key, attribute, operator or value makes no sense for experiments.
    """
    return _ExperimentFilter(filter_string).compile(expr)


def experiment_order_clauses(order_by: Sequence[OrderBy]) -> list[ColumnElement[Any]]:
    """Compile parsed ``order_by`` clauses to ORDER BY expressions over ``experiments``.

    With no clauses the order is ``last_update_time DESC``; ``experiment_id`` always breaks
    ties. Experiments without an ordered tag sort last.

    Example::

        stmt = select(experiments).order_by(*experiment_order_clauses(parse_order_by(["name"])))

    Args:
        order_by: The clauses from `parse_order_by`, most significant first.

    Raises:
        InvalidFilterError: An unknown prefix or attribute (its `field` is ``"order_by"``).
    """
    clauses: list[ColumnElement[Any]] = []
    ordered: set[str] = set()
    for clause in order_by:
        prefix = _order_prefix(clause, _EXPERIMENT_PREFIXES)
        if prefix == "tags":
            sort_key = _key_value(_EXPERIMENT_TAGS, clause.key)
        else:
            sort_key = _order_attribute(clause, _EXPERIMENT_ATTRIBUTES)
            ordered.add(sort_key.key)
        clauses.append(_direction(sort_key, clause.ascending))
    if not order_by:
        clauses.append(experiments.c.last_update_time.desc())
    if "experiment_id" not in ordered:
        clauses.append(experiments.c.experiment_id.asc())
    return clauses


def build_run_select(
    experiment_ids: Sequence[str | int],
    filter_string: str | None = None,
    view_type: str = ViewType.ACTIVE_ONLY,
    order_by: Sequence[str] | None = None,
    max_results: int = 1000,
    page_token: str | None = None,
) -> tuple[Select[Any], str]:
    """Build the statement that reads one page of runs, selecting ``runs`` columns only.

    The statement fetches up to ``max_results + 1`` rows: the extra row only shows that
    another page follows, and then the returned token is that page's token.

    Example::

        stmt, next_token = build_run_select(["1"], "params.model = 'gpt-4o'", max_results=100)
        rows = conn.execute(stmt).all()
        page, token = rows[:100], (next_token if len(rows) > 100 else None)

    Args:
        experiment_ids: The experiments to search (strings of digits or ints).
        filter_string: A filter in the grammar of `parse_filter`.
        view_type: One of `ViewType.VALUES`.
        order_by: Clauses such as ``"metrics.accuracy DESC"``; newest runs first by default.
        max_results: Page size, from 1 to 50,000.
        page_token: The token returned for the previous page; None for the first page.

    Raises:
        InvalidFilterError: The filter or an order_by clause is invalid.
        InvalidInputError: Another argument is out of range or malformed.
    """
    validation.max_results(max_results)
    ids = _experiment_ids(experiment_ids)
    offset = decode_page_token(page_token)
    stmt = select(runs).where(runs.c.experiment_id.in_(ids))
    stage = lifecycle_condition(runs.c.lifecycle_stage, view_type)
    if stage is not None:
        stmt = stmt.where(stage)
    expr = parse_filter(filter_string)
    if expr is not None:
        stmt = stmt.where(run_filter_clause(expr, filter_string=filter_string or ""))
    stmt = stmt.order_by(*run_order_clauses(parse_order_by(order_by)))
    stmt = stmt.limit(max_results + 1).offset(offset)
    return stmt, encode_page_token(offset + max_results)


def encode_page_token(offset: int) -> str:
    """Return the opaque token of the page that starts at `offset`.

    Example::

        decode_page_token(encode_page_token(100))  # 100

    Args:
        offset: How many rows earlier pages held.
    """
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_page_token(page_token: str | None) -> int:
    """Return the row offset a page token stands for; no token means the first page.

    Example::

        decode_page_token(None)  # 0

    Args:
        page_token: A token from `encode_page_token`, or None.

    Raises:
        InvalidInputError: The token was not made by `encode_page_token`.
    """
    if page_token is None or page_token == "":
        return 0
    try:
        payload = json.loads(base64.urlsafe_b64decode(page_token.encode("ascii")))
        offset = payload["offset"]
    except (AttributeError, binascii.Error, UnicodeError, ValueError, KeyError, TypeError):
        offset = None
    if type(offset) is not int or offset < 0:
        raise InvalidInputError(
            f"page_token {page_token!r} is malformed; pass the token the previous page returned",
            field="page_token",
        )
    return offset


# --- compilers ----------------------------------------------------------------------------


class _FilterCompiler:
    """Walk And/Or nodes; subclasses compile each Comparison for their table."""

    def __init__(self, filter_string: str) -> None:
        self.filter_string = filter_string

    def compile(self, expr: Expr) -> ColumnElement[bool]:
        if isinstance(expr, And):
            return and_(*(self.compile(item) for item in expr.items))
        if isinstance(expr, Or):
            return or_(*(self.compile(item) for item in expr.items))
        return self.comparison(expr)

    def comparison(self, cmp: Comparison) -> ColumnElement[bool]:
        raise NotImplementedError

    def error(self, message: str, position: int) -> InvalidFilterError:
        return InvalidFilterError(message, filter_string=self.filter_string, position=position)

    def prefix(self, cmp: Comparison, prefixes: dict[str, str]) -> str:
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

    def attribute(
        self, cmp: Comparison, attributes: dict[str, tuple[ColumnElement[Any], str]]
    ) -> ColumnElement[bool]:
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
                f"{_label(cmp)}: operator {cmp.op!r} does not apply to "
                f"{'ids' if kind == _ID else kind + 's'}; use one of {', '.join(allowed)}",
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
        if kind == _STRING:
            if isinstance(value, str):
                return value
            raise self.error(
                f"{_label(cmp)}: value must be a quoted string, e.g. "
                f"{_label(cmp)} {cmp.op} '{_literal(value)}'",
                position,
            )
        if kind == _NUMBER:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                # Beyond 64 bits SQLite refuses to bind an int; a float compares the same.
                return value if isinstance(value, float) or value in _INT64 else float(value)
            raise self.error(f"{_label(cmp)}: value must be a number, got {value!r}", position)
        experiment_id = _as_id(value)
        if experiment_id is not None:
            return experiment_id
        raise self.error(
            f"{_label(cmp)}: value must be an experiment id such as '1', got {value!r}", position
        )

    def key_value(self, kv: _KeyValueTable, cmp: Comparison) -> ColumnElement[bool]:
        """Test a key of a params/tags table; a missing key fails all but IS NULL."""
        has_key = exists().where(kv.owner == kv.outer, kv.table.c.key == cmp.key)
        if cmp.op == "IS NULL":
            return ~has_key
        if cmp.op == "IS NOT NULL":
            return has_key
        return has_key.where(self.condition(kv.table.c.value, cmp, _STRING))


class _RunFilter(_FilterCompiler):
    def comparison(self, cmp: Comparison) -> ColumnElement[bool]:
        prefix = self.prefix(cmp, _RUN_PREFIXES)
        if prefix == "metrics":
            return self.metric(cmp)
        if prefix in _RUN_KEY_VALUE_TABLES:
            return self.key_value(_RUN_KEY_VALUE_TABLES[prefix], cmp)
        return self.attribute(cmp, _RUN_ATTRIBUTES)

    def metric(self, cmp: Comparison) -> ColumnElement[bool]:
        """Test the latest value of a metric; NaN values match no comparison."""
        lm = latest_metrics
        has_key = exists().where(lm.c.run_id == runs.c.run_id, lm.c.key == cmp.key)
        if cmp.op not in _METRIC_OPERATORS:
            raise self.error(
                f"{_label(cmp)}: operator {cmp.op!r} does not apply to metrics; "
                f"use one of {', '.join(_METRIC_OPERATORS)}",
                cmp.position,
            )
        if cmp.op == "IS NULL":
            return ~has_key
        if cmp.op == "IS NOT NULL":
            return has_key
        return has_key.where(self.condition(lm.c.value, cmp, _NUMBER), lm.c.is_nan.is_(false()))


class _ExperimentFilter(_FilterCompiler):
    def comparison(self, cmp: Comparison) -> ColumnElement[bool]:
        if self.prefix(cmp, _EXPERIMENT_PREFIXES) == "tags":
            return self.key_value(_EXPERIMENT_TAGS, cmp)
        return self.attribute(cmp, _EXPERIMENT_ATTRIBUTES)


# --- helpers ------------------------------------------------------------------------------


def _label(cmp: Comparison | OrderBy) -> str:
    """Spell the key as the user would write it, backquoting keys that need it."""
    key = cmp.key if _PLAIN_KEY.fullmatch(cmp.key) else f"`{cmp.key}`"
    return key if cmp.prefix is None else f"{cmp.prefix}.{key}"


def _literal(value: Value) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _order_by_error(message: str) -> InvalidFilterError:
    error = InvalidFilterError(message)
    error.field = "order_by"
    return error


def _order_prefix(clause: OrderBy, prefixes: dict[str, str]) -> str:
    if clause.prefix is None:
        return "attributes"
    normalized = prefixes.get(clause.prefix.lower())
    if normalized is None:
        valid = ", ".join(dict.fromkeys(prefixes.values()))
        raise _order_by_error(
            f"order_by: unknown key prefix in {_label(clause)!r}; use one of {valid}"
        )
    return normalized


def _order_attribute(clause: OrderBy, attributes: dict[str, Any]) -> Any:
    name = clause.key.lower()
    if name not in attributes:
        raise _order_by_error(
            f"order_by: unknown attribute in {_label(clause)!r}; use one of {', '.join(attributes)}"
        )
    return attributes[name][0]


def _latest_metric(key: str) -> Any:
    lm = latest_metrics
    return (
        select(lm.c.value)
        .where(lm.c.run_id == runs.c.run_id, lm.c.key == key, lm.c.is_nan.is_(false()))
        .scalar_subquery()
    )


def _key_value(kv: _KeyValueTable, key: str) -> Any:
    return (
        select(kv.table.c.value)
        .where(kv.owner == kv.outer, kv.table.c.key == key)
        .scalar_subquery()
    )


def _direction(sort_key: Any, ascending: bool) -> ColumnElement[Any]:
    return (sort_key.asc() if ascending else sort_key.desc()).nulls_last()


def lifecycle_condition(column: Any, view_type: str) -> ColumnElement[bool] | None:
    """Return the condition on `lifecycle_stage` for a view type (None: no condition)."""
    validation.view_type(view_type)
    if view_type == ViewType.ACTIVE_ONLY:
        return column == LifecycleStage.ACTIVE
    if view_type == ViewType.DELETED_ONLY:
        return column == LifecycleStage.DELETED
    return None


def _experiment_ids(experiment_ids: Sequence[str | int]) -> list[int]:
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
