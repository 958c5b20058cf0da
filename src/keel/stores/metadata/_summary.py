"""A run's latest params, metrics and tags as one JSON text (``runs.summary``).

Search returns a page of runs as that many rows instead of one row per value; the
normalised tables stay the source of truth for filtering and ordering, and every
write that changes them rewrites the affected runs' summaries in the same transaction
(see docs/adr/0018-run-summary-column.md).

JSON has no NaN or infinities: NaN is ``null`` (as ``metrics_latest`` stores it) and
the infinities are the strings ``"inf"`` and ``"-inf"``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from operator import methodcaller
from types import MappingProxyType
from typing import Any

import orjson
import sqlalchemy as sa

from keel.stores.metadata._schema import metrics_latest, params, runs, tags

EMPTY = "{}"

Values = tuple[dict[str, str], dict[str, float], dict[str, str]]
"""(params, metrics, tags) of one run."""


def empty_values() -> Values:
    return {}, {}, {}


def _encode_metric(value: float | None) -> float | str | None:
    if value is None or value != value:
        return None
    if value in (math.inf, -math.inf):
        return "inf" if value > 0 else "-inf"
    return value


def _decode_metric(value: float | str | None) -> float:
    if value is None:
        return math.nan
    return float(value)


def encode(params: Mapping[str, str], metrics: Mapping[str, float], tags: Mapping[str, str]) -> str:
    """The summary text of a run with these latest values (empty parts are left out)."""
    body: dict[str, Any] = {}
    if params:
        body["params"] = params
    if metrics:
        body["metrics"] = {k: _encode_metric(v) for k, v in metrics.items()}
    if tags:
        body["tags"] = tags
    return orjson.dumps(body).decode() if body else EMPTY


def parts(text: str | bytes | None) -> tuple[dict[str, str], dict[str, Any], dict[str, str]]:
    """``(params, metrics, tags)`` from a summary text as stored: a metric is a float,
    None (NaN) or "inf"/"-inf", which is what ``float`` and NumPy's float64 accept.
    """
    if not text or text == EMPTY:
        return {}, {}, {}
    body = orjson.loads(text)
    return body.get("params") or {}, body.get("metrics") or {}, body.get("tags") or {}


_NOTHING: Mapping[str, Any] = MappingProxyType({})


def parts_of_many(
    texts: Sequence[str],
) -> tuple[list[Mapping[str, str]], list[Mapping[str, Any]], list[Mapping[str, str]]]:
    """``parts`` of many texts at once, as three lists (all params, all metrics, all
    tags), parsed in one go: a page of search results on its way to columns. A run
    without a part gets one shared read-only empty mapping.
    """
    bodies = orjson.loads("[" + ",".join(texts) + "]") if texts else []
    return (
        list(map(methodcaller("get", "params", _NOTHING), bodies)),
        list(map(methodcaller("get", "metrics", _NOTHING), bodies)),
        list(map(methodcaller("get", "tags", _NOTHING), bodies)),
    )


def decode(text: str | bytes | None) -> Values:
    """``(params, metrics, tags)`` from a summary text; NaN and infinities restored."""
    logged, metrics, tags_ = parts(text)
    for key, value in metrics.items():
        if value.__class__ is not float:
            metrics[key] = _decode_metric(value)
    return logged, metrics, tags_


def collect(rows: Iterable[tuple[Any, ...]], ids: Iterable[str]) -> dict[str, Values]:
    """Group ``(kind, run_id, key, text, number)`` rows (kind 0 params, 1 metrics, 2 tags)
    into each run's values; every id in ``ids`` gets an entry, empty if it has none.

    A metric's ``number`` is NULL for NaN, as ``metrics_latest`` stores it.
    """
    by_id: dict[str, Values] = {run_id: empty_values() for run_id in ids}
    for kind, run_id, key, text, number in rows:
        values = by_id.get(run_id)
        if values is None:
            continue
        if kind == 1:
            values[1][key] = math.nan if number is None else number
        else:
            values[kind][key] = text
    return by_id


VALUES = sa.union_all(
    *(
        sa.select(
            sa.literal_column(str(kind), sa.Integer).label("kind"),
            table.c.run_id,
            table.c.key,
            table.c.value if kind != 1 else sa.null().cast(sa.Text),
            table.c.value if kind == 1 else sa.null().cast(sa.Float),
        ).where(table.c.run_id.in_(sa.bindparam("ids", expanding=True)))
        for kind, table in enumerate((params, metrics_latest, tags))
    )
)
"""Params (kind 0), latest metric values (1) and tags (2) of some runs, in one query."""


def from_tables(conn: sa.Connection, ids: Sequence[str]) -> dict[str, str]:
    """The summary each run in ``ids`` should have, computed from the normalised tables."""
    texts: dict[str, str] = {}
    for start in range(0, len(ids), 900):
        chunk = ids[start : start + 900]
        rows = conn.execute(VALUES, {"ids": list(chunk)}).all()
        for run_id, values in collect(rows, chunk).items():
            texts[run_id] = encode(*values)
    return texts


def rebuild(conn: sa.Connection, ids: Sequence[str]) -> None:
    """Recompute the summaries of ``ids`` from the normalised tables (data migration)."""
    texts = from_tables(conn, ids)
    if texts:
        conn.execute(
            runs.update()
            .where(runs.c.id == sa.bindparam("rid"))
            .values(summary=sa.bindparam("text")),
            [{"rid": k, "text": v} for k, v in texts.items()],
        )
