"""Compile a parsed model-version filter into SQL: bound parameters, allow-listed columns.

Keys: the version's attributes (``name``, ``version``, ``status``, ``run_id``,
``created_at``), ``tags.X`` (the version's tags), and ``metrics.X`` / ``params.X``
of the run behind the version (metrics at their latest value, from ``metrics_latest``).
Every key is matched as a value in a key column, never spliced into SQL.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from keel.core._filter import And, Attributes, Comparison, Expr, Not, Or
from keel.errors import InvalidArgument
from keel.stores.metadata._schema import (
    metrics_latest,
    model_version_tags,
    model_versions,
    params,
    registered_models,
)
from keel.stores.metadata._search import _apply

__all__ = ["MODEL_ATTRIBUTES", "MODEL_STATUSES", "compile_version_filter"]

MODEL_STATUSES = ("active", "deprecated", "archived")

MODEL_ATTRIBUTES = Attributes(
    names={
        "name": "name",
        "model": "name",
        "version": "version",
        "status": "status",
        "run_id": "run_id",
        "created_at": "created_at",
    },
    numeric=frozenset({"version", "created_at"}),
    choices={"status": MODEL_STATUSES},
    hint="name, version, status, run_id, created_at, or tags.KEY (the version's tags), "
    "metrics.KEY, params.KEY (its run's), as in tags.domain = 'credit' AND metrics.auc > 0.8",
    sample="3",
)

_COLUMNS: dict[str, ColumnElement[Any]] = {
    "name": registered_models.c.name,
    "version": model_versions.c.version,
    "status": model_versions.c.status,
    "run_id": model_versions.c.run_id,
    "created_at": model_versions.c.created_at,
}


def _comparison(node: Comparison) -> ColumnElement[bool]:
    if node.kind == "attribute":
        column = _COLUMNS.get(node.key)
        if column is None:
            raise InvalidArgument(
                f"unknown model attribute {node.key!r}; use one of {', '.join(sorted(_COLUMNS))}"
            )
        return _apply(column, node.op, node.value)
    if node.kind == "tag":
        present = sa.and_(
            model_version_tags.c.version_id == model_versions.c.id,
            model_version_tags.c.key == node.key,
        )
        value: ColumnElement[Any] = model_version_tags.c.value
    else:
        table = metrics_latest if node.kind == "metric" else params
        present = sa.and_(table.c.run_id == model_versions.c.run_id, table.c.key == node.key)
        value = table.c.value
    if node.op == "IS NULL":
        return ~sa.exists().where(present)
    if node.op == "IS NOT NULL":
        return sa.exists().where(present)
    return sa.exists().where(present, _apply(value, node.op, node.value))


def compile_version_filter(expr: Expr | None) -> ColumnElement[bool]:
    """The WHERE clause over ``model_versions`` joined to ``registered_models``."""
    if expr is None:
        return sa.true()
    if isinstance(expr, Comparison):
        return _comparison(expr)
    if isinstance(expr, And):
        return sa.and_(*(compile_version_filter(c) for c in expr.clauses))
    if isinstance(expr, Or):
        return sa.or_(*(compile_version_filter(c) for c in expr.clauses))
    if isinstance(expr, Not):
        return sa.not_(compile_version_filter(expr.clause))
    raise InvalidArgument(f"unsupported filter node {type(expr).__name__}")
