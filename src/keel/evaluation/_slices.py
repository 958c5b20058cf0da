"""Slices of the evaluation data: groups of rows named the way people read them.

A slice spec is a column name, or a tuple of names for a crossed slice (``("gender",
"age")`` is named ``gender & age`` with values like ``F & [18, 31)``). Numeric columns
with more than ``MAX_EXACT_VALUES`` distinct values are cut into quantile bands
(``[18, 31)`` … ``[52, 85]``); other columns slice by value, the ``MAX_GROUPS - 1`` most
frequent kept and the rest pooled as ``(other)``. Missing values form ``(missing)``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from keel.errors import InvalidArgument

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["MAX_EXACT_VALUES", "MAX_GROUPS", "SliceSpec", "slice_groups", "slice_name"]

SliceSpec = str | tuple[str, ...]
MAX_EXACT_VALUES = 10
MAX_GROUPS = 50
MISSING = "(missing)"
OTHER = "(other)"


def slice_name(spec: SliceSpec) -> str:
    return spec if isinstance(spec, str) else " & ".join(spec)


def normalise_specs(slices: Sequence[Any] | str | None) -> list[SliceSpec]:
    """Slice specs from the ``slices`` argument (a name, or names and tuples of names)."""
    if slices is None:
        return []
    if isinstance(slices, str):
        slices = [slices]
    specs: list[SliceSpec] = []
    for item in slices:
        if isinstance(item, str):
            specs.append(item)
        elif isinstance(item, list | tuple) and item and all(isinstance(c, str) for c in item):
            specs.append(item[0] if len(item) == 1 else tuple(item))
        else:
            raise InvalidArgument(
                f"invalid slice {item!r}: give a column name or a tuple of column names, "
                "as in slices=['gender', ('gender', 'age')]"
            )
    return specs


def _fmt(value: float) -> str:
    if float(value).is_integer():
        return f"{int(value):d}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}"


def column_labels(
    data: pd.DataFrame, column: str, bins: int
) -> tuple[np.ndarray[Any, Any], list[str]]:
    """Per-row group codes (-1 for missing) and the group labels of one column."""
    import pandas as pd

    if column not in data.columns:
        shown = ", ".join(map(repr, list(data.columns)[:20]))
        raise InvalidArgument(
            f"slice column {column!r} is not in the data; slice by one of its columns: {shown}"
        )
    series = data[column]
    numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
    if numeric and series.nunique() > MAX_EXACT_VALUES:
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        finite = values[np.isfinite(values)]
        edges = np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1)))
        codes: np.ndarray[Any, Any] = np.searchsorted(edges[1:-1], values, side="right")
        codes[~np.isfinite(values)] = -1
        labels = [f"[{_fmt(lo)}, {_fmt(hi)})" for lo, hi in itertools.pairwise(edges[:-1])]
        labels.append(f"[{_fmt(edges[-2])}, {_fmt(edges[-1])}]")
        return codes, labels
    if isinstance(series.dtype, pd.CategoricalDtype):
        series = series.cat.remove_unused_categories()
        codes = series.cat.codes.to_numpy(dtype=np.int64)
        labels = [str(c) for c in series.cat.categories]
    else:
        codes_, uniques = pd.factorize(series, sort=True)
        codes = np.asarray(codes_, dtype=np.int64)
        labels = [str(u) for u in uniques]
    if len(labels) > MAX_GROUPS:
        counts = np.bincount(codes[codes >= 0], minlength=len(labels))
        keep = np.sort(np.argsort(-counts, kind="stable")[: MAX_GROUPS - 1])
        remap = np.full(len(labels), MAX_GROUPS - 1, dtype=np.int64)
        remap[keep] = np.arange(keep.shape[0])
        codes = np.where(codes >= 0, remap[np.maximum(codes, 0)], -1).astype(np.int64)
        labels = [labels[i] for i in keep] + [OTHER]
    return codes, labels


def slice_groups(
    data: pd.DataFrame, spec: SliceSpec, bins: int
) -> list[tuple[str, np.ndarray[Any, np.dtype[np.bool_]]]]:
    """``(label, row mask)`` for every non-empty group of the slice, in a stable order."""
    columns = (spec,) if isinstance(spec, str) else spec
    parts = [column_labels(data, column, bins) for column in columns]
    combined = np.zeros(len(data), dtype=np.int64)
    for codes, labels in parts:
        combined = combined * (len(labels) + 1) + (codes + 1)  # 0 is missing
    present, inverse = np.unique(combined, return_inverse=True)
    groups = []
    for i, key in enumerate(present.tolist()):
        names = []
        for _, labels in reversed(parts):
            key, code = divmod(key, len(labels) + 1)
            names.append(MISSING if code == 0 else labels[code - 1])
        groups.append((" & ".join(reversed(names)), inverse == i))
    return groups
