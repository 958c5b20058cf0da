"""Compile a parsed run filter into SQL: bound parameters only, allow-listed columns.

Every user value becomes a bound parameter; every key is matched as a value in the
key column, never spliced into SQL; attribute names come from a fixed table.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from keel.core._filter import And, Comparison, Expr, Not, Or, OrderKey
from keel.errors import InvalidArgument
from keel.stores.metadata._schema import metrics_latest, params, runs, tags

_ATTRIBUTES: dict[str, sa.Column[Any]] = {
    "run_id": runs.c.id,
    "run_name": runs.c.name,
    "status": runs.c.status,
    "start_time": runs.c.start_time,
    "end_time": runs.c.end_time,
    "parent_id": runs.c.parent_id,
    "experiment_id": runs.c.experiment_id,
}
_KEYED_TABLES = {"metric": metrics_latest, "param": params, "tag": tags}


def _apply(column: ColumnElement[Any], op: str, value: Any) -> ColumnElement[bool]:
    result: ColumnElement[bool]
    match op:
        case "=":
            result = column == value
            return result
        case "!=":
            result = column != value
            return result
        case "<":
            result = column < value
            return result
        case "<=":
            result = column <= value
            return result
        case ">":
            result = column > value
            return result
        case ">=":
            result = column >= value
            return result
        case "LIKE":
            return column.like(value)
        case "ILIKE":
            return sa.func.lower(column).like(sa.func.lower(sa.literal(value)))
        case "IN":
            return column.in_(list(value))
        case "NOT IN":
            return column.not_in(list(value))
        case "IS NULL":
            return column.is_(None)
        case "IS NOT NULL":
            return column.is_not(None)
    raise InvalidArgument(f"unsupported operator {op!r} in filter")


def _comparison(node: Comparison) -> ColumnElement[bool]:
    if node.kind == "attribute":
        column = _ATTRIBUTES.get(node.key)
        if column is None:
            raise InvalidArgument(
                f"unknown attribute {node.key!r}; use one of {', '.join(sorted(_ATTRIBUTES))}"
            )
        return _apply(column, node.op, node.value)
    table = _KEYED_TABLES[node.kind]
    present = sa.and_(table.c.run_id == runs.c.id, table.c.key == node.key)
    if node.op == "IS NULL":
        return ~sa.exists().where(present)
    if node.op == "IS NOT NULL":
        return sa.exists().where(present)
    return sa.exists().where(present, _apply(table.c.value, node.op, node.value))


def compile_filter(expr: Expr | None) -> ColumnElement[bool]:
    """The WHERE clause over ``runs`` that selects what ``expr`` matches."""
    if expr is None:
        return sa.true()
    if isinstance(expr, Comparison):
        return _comparison(expr)
    if isinstance(expr, And):
        return sa.and_(*(compile_filter(c) for c in expr.clauses))
    if isinstance(expr, Or):
        return sa.or_(*(compile_filter(c) for c in expr.clauses))
    if isinstance(expr, Not):
        return sa.not_(compile_filter(expr.clause))
    raise InvalidArgument(f"unsupported filter node {type(expr).__name__}")


PAGE_COLUMNS = (
    "id",
    "experiment_id",
    "name",
    "status",
    "start_time",
    "end_time",
    "parent_id",
    "environment_digest",
    "summary",
)
"""The columns of a search page's rows, in order."""

# The parts every page query shares, built once (statements are immutable).
_PAGE = sa.select(*(runs.c[name] for name in PAGE_COLUMNS))
_IDS = sa.select(runs.c.id)
_NOT_DELETED = runs.c.deleted_at.is_(None)


def runs_page(
    experiment_ids: Sequence[str],
    expr: Expr | None,
    order_by: Sequence[OrderKey],
    *,
    limit: int,
    offset: int = 0,
    include_deleted: bool = False,
) -> sa.Select[Any]:
    """SELECT the matching runs' ``PAGE_COLUMNS``, ordered, one page.

    With a filter, the page is found first from the runs index and the keyed tables
    alone (ids only), and only that page's rows are read: the filter may reject most
    of the runs it visits, and reading each visited run's row (its summary) costs
    more than the filter itself.
    """
    return _page(tuple(experiment_ids), expr, tuple(order_by), limit, offset, include_deleted)


@lru_cache(maxsize=256)
def _page(
    experiment_ids: tuple[str, ...],
    expr: Expr | None,
    order_by: tuple[OrderKey, ...],
    limit: int,
    offset: int,
    include_deleted: bool,
) -> sa.Select[Any]:
    """``runs_page``, built once per distinct search: a statement is immutable (its
    values are bound parameters), and building one costs more than running a cached one.
    """
    if expr is None:
        return (
            _ordered(_PAGE, experiment_ids, order_by, include_deleted).limit(limit).offset(offset)
        )
    ids = (
        _ordered(_IDS.where(compile_filter(expr)), experiment_ids, order_by, include_deleted)
        .limit(limit)
        .offset(offset)
        .subquery("page")
    )
    # Re-sorting the page needs the same keys again; the page holds each run once.
    return _ordered(_PAGE.join(ids, ids.c.id == runs.c.id), (), order_by, True)


def _ordered(
    query: sa.Select[Any],
    experiment_ids: Sequence[str],
    order_by: Sequence[OrderKey],
    include_deleted: bool,
) -> sa.Select[Any]:
    """``query`` restricted to the experiments and ordered by ``order_by``, then newest
    first (ties broken by id), runs without an ordering key last.
    """
    if len(experiment_ids) == 1:
        query = query.where(runs.c.experiment_id == experiment_ids[0])
    elif experiment_ids:
        query = query.where(runs.c.experiment_id.in_(list(experiment_ids)))
    if not include_deleted:
        query = query.where(_NOT_DELETED)
    ordering: list[ColumnElement[Any]] = []
    for position, key in enumerate(order_by):
        if key.kind == "attribute":
            column: ColumnElement[Any] | None = _ATTRIBUTES.get(key.key)
            if column is None:
                raise InvalidArgument(
                    f"cannot order by unknown attribute {key.key!r}; "
                    f"use one of {', '.join(sorted(_ATTRIBUTES))}"
                )
        else:
            table = _KEYED_TABLES[key.kind].alias(f"order_{position}")
            query = query.outerjoin(
                table, sa.and_(table.c.run_id == runs.c.id, table.c.key == key.key)
            )
            column = table.c.value
        ordering.append(column.is_(None))  # runs without the key sort last either way
        ordering.append(column.desc() if key.descending else column.asc())
    return query.order_by(*ordering, runs.c.start_time.desc(), runs.c.id.asc())
