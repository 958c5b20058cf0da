"""Search results as a pandas DataFrame, built column by column.

A page of runs arrives either as ``Run`` objects or as the store's plain row tuples
(``PAGE_COLUMNS``, the summary JSON last); both become the same frame: attribute
columns first, then ``metrics.*``, ``params.*`` and ``tags.*`` in key order, a
missing metric NaN and a missing param or tag None.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from keel.core._entities import Run
from keel.stores.metadata import summary_parts_of_many

if TYPE_CHECKING:
    import pandas as pd


def runs_to_frame(found: Sequence[Run]) -> pd.DataFrame:
    """One row per run with attribute columns first, then metrics, params and tags."""
    return _frame(
        [
            (r.id, r.experiment_id, r.name, r.status.value, r.start_time, r.end_time, r.parent_id)
            for r in found
        ],
        ([r.params for r in found], [r.metrics for r in found], [r.tags for r in found]),
    )


def rows_to_frame(rows: Sequence[tuple[Any, ...]]) -> pd.DataFrame:
    """The same frame as ``runs_to_frame`` from the store's search rows, with no ``Run``
    per row; metric values stay as the summary holds them until NumPy converts them.
    """
    return _frame(rows, summary_parts_of_many([row[-1] for row in rows]))


def _frame(
    rows: Sequence[Sequence[Any]],
    values: tuple[
        Sequence[Mapping[str, Any]], Sequence[Mapping[str, Any]], Sequence[Mapping[str, Any]]
    ],
) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    ids, experiments, names, statuses, starts, ends, parents = (
        [list(column) for column in zip(*rows, strict=True)][:7] if rows else [[]] * 7
    )
    # Each column on its own, and an empty list (not an empty array) when there are no
    # rows: pandas picks the resolution from its input.
    start: Any = np.array(starts, dtype="float64") if rows else []
    end: Any = np.array(ends, dtype="float64") if rows else []
    columns: dict[str, Any] = {
        "run_id": ids,
        "experiment_id": experiments,
        "run_name": names,
        "status": statuses,
        "start_time": pd.to_datetime(start, unit="s", utc=True, cache=False),
        "end_time": pd.to_datetime(end, unit="s", utc=True, cache=False),
        "parent_run_id": parents,
    }
    for position, prefix in ((1, "metrics"), (0, "params"), (2, "tags")):
        metric = position == 1
        spread = _spread(values[position], math.nan if metric else None)
        for key in sorted(spread):
            # NumPy turns the summary's None and "inf"/"-inf" into NaN and infinities.
            column = spread[key]
            columns[f"{prefix}.{key}"] = np.array(column, dtype="float64") if metric else column
    return pd.DataFrame(columns)


def _spread(dicts: Sequence[Mapping[str, Any]], default: Any) -> Mapping[str, Sequence[Any]]:
    """Columns from per-row mappings: ``{key: [value of row 0, ...]}``, ``default`` where
    a row lacks the key.

    Runs of one experiment usually log the same keys; then every row has as many keys
    as the first and all of them, and the values are picked and transposed in C.
    Otherwise one pass over the rows fills the columns.
    """
    if not any(dicts):  # nothing of this kind logged, the usual case for tags
        return {}
    keys = tuple(dicts[0])
    if len(keys) > 1 and set(map(len, dicts)) == {len(keys)}:
        try:
            picked = list(map(itemgetter(*keys), dicts))
        except KeyError:
            pass
        else:
            return dict(zip(keys, zip(*picked, strict=True), strict=True))
    n = len(dicts)
    columns: dict[str, list[Any]] = {}
    for i, mapping in enumerate(dicts):
        for key, value in mapping.items():
            column = columns.get(key)
            if column is None:
                column = columns[key] = [default] * n
            column[i] = value
    return columns
