"""Compile filter and order_by ASTs to SQLAlchemy Core for runs and experiments.

Params and tags compare as strings, metrics as numbers against each run's latest value,
and a condition on a key a run lacks is false (``IS NULL`` tests for the missing key).
The machinery shared with traces (operators, value kinds, key/value tables, ORDER BY
helpers) is in `filter_compile`; page tokens are in `paging`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, exists, false, select

from tracemark.entities import LifecycleStage
from tracemark.store import validation
from tracemark.store.base import ViewType
from tracemark.store.filter_grammar import Comparison, Expr, OrderBy, parse_filter, parse_order_by
from tracemark.store.sql.filter_compile import (
    ID,
    NUMBER,
    STRING,
    Attributes,
    FilterCompiler,
    KeyValueTable,
    key_label,
    key_value_subquery,
    order_attribute,
    order_direction,
    order_prefix,
    parse_experiment_ids,
)
from tracemark.store.sql.paging import decode_page_token, encode_page_token
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
    "experiment_filter_clause",
    "experiment_order_clauses",
    "lifecycle_condition",
    "run_filter_clause",
    "run_order_clauses",
]

_METRIC_OPERATORS = ("=", "!=", "<", "<=", ">", ">=", "IS NULL", "IS NOT NULL")

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

_RUN_ATTRIBUTES: Attributes = {
    "status": (runs.c.status, STRING),
    "run_name": (runs.c.name, STRING),
    "name": (runs.c.name, STRING),
    "run_id": (runs.c.run_id, STRING),
    "start_time": (runs.c.start_time, NUMBER),
    "end_time": (runs.c.end_time, NUMBER),
    "artifact_uri": (runs.c.artifact_uri, STRING),
    "experiment_id": (runs.c.experiment_id, ID),
    "parent_run_id": (runs.c.parent_run_id, STRING),
    "lifecycle_stage": (runs.c.lifecycle_stage, STRING),
}
_EXPERIMENT_ATTRIBUTES: Attributes = {
    "name": (experiments.c.name, STRING),
    "creation_time": (experiments.c.creation_time, NUMBER),
    "last_update_time": (experiments.c.last_update_time, NUMBER),
    "experiment_id": (experiments.c.experiment_id, ID),
}

_RUN_KEY_VALUE_TABLES = {
    "params": KeyValueTable(params, params.c.run_id, runs.c.run_id),
    "tags": KeyValueTable(run_tags, run_tags.c.run_id, runs.c.run_id),
}
_EXPERIMENT_TAGS = KeyValueTable(
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
        prefix = order_prefix(clause, _RUN_PREFIXES)
        if prefix == "metrics":
            sort_key = _latest_metric(clause.key)
        elif prefix in _RUN_KEY_VALUE_TABLES:
            sort_key = key_value_subquery(_RUN_KEY_VALUE_TABLES[prefix], clause.key)
        else:
            sort_key = order_attribute(clause, _RUN_ATTRIBUTES)
            ordered.add(sort_key.key)
        clauses.append(order_direction(sort_key, clause.ascending))
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
        prefix = order_prefix(clause, _EXPERIMENT_PREFIXES)
        if prefix == "tags":
            sort_key = key_value_subquery(_EXPERIMENT_TAGS, clause.key)
        else:
            sort_key = order_attribute(clause, _EXPERIMENT_ATTRIBUTES)
            ordered.add(sort_key.key)
        clauses.append(order_direction(sort_key, clause.ascending))
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
    ids = parse_experiment_ids(experiment_ids)
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


# --- compilers ----------------------------------------------------------------------------


class _RunFilter(FilterCompiler):
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
                f"{key_label(cmp)}: operator {cmp.op!r} does not apply to metrics; "
                f"use one of {', '.join(_METRIC_OPERATORS)}",
                cmp.position,
            )
        if cmp.op == "IS NULL":
            return ~has_key
        if cmp.op == "IS NOT NULL":
            return has_key
        return has_key.where(self.condition(lm.c.value, cmp, NUMBER), lm.c.is_nan.is_(false()))


class _ExperimentFilter(FilterCompiler):
    def comparison(self, cmp: Comparison) -> ColumnElement[bool]:
        if self.prefix(cmp, _EXPERIMENT_PREFIXES) == "tags":
            return self.key_value(_EXPERIMENT_TAGS, cmp)
        return self.attribute(cmp, _EXPERIMENT_ATTRIBUTES)


# --- helpers ------------------------------------------------------------------------------


def _latest_metric(key: str) -> Any:
    lm = latest_metrics
    return (
        select(lm.c.value)
        .where(lm.c.run_id == runs.c.run_id, lm.c.key == key, lm.c.is_nan.is_(false()))
        .scalar_subquery()
    )


def lifecycle_condition(column: Any, view_type: str) -> ColumnElement[bool] | None:
    """Return the condition on `lifecycle_stage` for a view type (None: no condition)."""
    validation.view_type(view_type)
    if view_type == ViewType.ACTIVE_ONLY:
        return column == LifecycleStage.ACTIVE
    if view_type == ViewType.DELETED_ONLY:
        return column == LifecycleStage.DELETED
    return None
