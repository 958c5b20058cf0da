"""Counts of a current window on the reference's bins, accumulated chunk by chunk.

Numeric columns are binned on the reference's fixed edges (``FixedBins``) with exact
moments; categorical columns are counted per reference category, plus one "unseen"
bucket for values the reference never had (a few of which are kept as examples). No
raw values outlive the chunk they came in, so memory does not grow with the window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from keel.core import _stats
from keel.data._profile import NUMERIC_KINDS, ColumnProfile, TableProfile
from keel.monitoring._source import Chunk, Mismatch

if TYPE_CHECKING:
    import pyarrow as pa
    from numpy.typing import NDArray

__all__ = ["CategoryCounts", "NumericCounts", "WindowCounter", "is_categorical"]

UNSEEN_EXAMPLES = 1000
"""Distinct unseen values whose counts are kept (the rest are only counted)."""


def is_categorical(column: ColumnProfile) -> bool:
    return column.kind in ("string", "bool")


@dataclass
class NumericCounts:
    """A numeric column of the window on the reference's edges."""

    bins: _stats.FixedBins
    summary: _stats.NumberSummary
    rows: int = 0
    mismatch: str | None = None

    @property
    def count(self) -> int:
        return self.summary.moments[0]

    @property
    def missing(self) -> int:
        return self.summary.nan

    def update(self, x: NDArray[np.float64]) -> None:
        self.rows += x.size
        for start in range(0, x.size, _stats.BLOCK):
            self.summary.add(x[start : start + _stats.BLOCK], self.bins)


@dataclass
class CategoryCounts:
    """A categorical column of the window: counts per reference category + unseen."""

    keys: list[Any]
    value_set: pa.Array
    counts: NDArray[np.int64]
    rows: int = 0
    missing: int = 0
    unseen: dict[Any, int] = field(default_factory=dict)
    mismatch: str | None = None
    _as_text: pa.Array | None = None

    @property
    def count(self) -> int:
        return int(self.counts.sum())

    def update(self, values: pa.Array, counts: NDArray[np.int64], missing: int, rows: int) -> None:
        self.rows += rows
        self.missing += missing
        if len(values) == 0:
            return
        index = self._index(values)
        unseen = index < 0
        slot = np.where(unseen, len(self.keys), index)
        self.counts += np.bincount(slot, weights=counts, minlength=len(self.keys) + 1).astype(
            np.int64
        )
        if unseen.any():
            for value, n in zip(
                values.filter(unseen).to_pylist(), counts[unseen].tolist(), strict=True
            ):
                if value in self.unseen or len(self.unseen) < UNSEEN_EXAMPLES:
                    self.unseen[value] = self.unseen.get(value, 0) + int(n)

    def _index(self, values: pa.Array) -> NDArray[np.intp]:
        import pyarrow as pa
        import pyarrow.compute as pc

        value_set = self.value_set
        if values.type != value_set.type:
            try:
                values = values.cast(value_set.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
                if self._as_text is None:
                    self._as_text = value_set.cast(pa.string())
                value_set, values = self._as_text, values.cast(pa.string())
        found = pc.fill_null(pc.index_in(values, value_set=value_set), -1)
        return np.asarray(found.to_numpy(zero_copy_only=False), dtype=np.intp)


def _category_counts(column: ColumnProfile) -> CategoryCounts:
    import pyarrow as pa

    keys = list((column.value_counts or {}).keys())
    try:
        value_set = pa.array(keys)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        keys = [str(k) for k in keys]
        value_set = pa.array(keys, type=pa.string())
    return CategoryCounts(keys, value_set, np.zeros(len(keys) + 1, dtype=np.int64))


class WindowCounter:
    """Accumulates one window's counts for the given reference columns."""

    def __init__(self, reference: TableProfile, columns: list[str], sums: dict[str, float]) -> None:
        """``sums`` names the numeric columns whose per-bin sums to collect, with the
        origin they are taken from (the reference's)."""
        self.reference = reference
        self.rows = 0
        self.present: set[str] = set()
        self.numeric: dict[str, NumericCounts] = {}
        self.categorical: dict[str, CategoryCounts] = {}
        for name in columns:
            column = reference.columns[name]
            if column.kind in NUMERIC_KINDS and column.edges is not None:
                size = column.edges.size + 1
                origin = sums.get(name, column.mean if math.isfinite(column.mean) else 0.0)
                summary = _stats.NumberSummary(
                    np.zeros(size, dtype=np.int64),
                    np.zeros(size) if name in sums else None,
                    origin,
                )
                self.numeric[name] = NumericCounts(_stats.FixedBins(column.edges), summary)
            elif is_categorical(column) and column.value_counts is not None:
                self.categorical[name] = _category_counts(column)
        self.extra: set[str] = set()
        self._known = set(reference.columns)

    def update(self, chunk: Chunk) -> None:
        n = chunk.num_rows
        names = chunk.names
        self.rows += n
        self.present |= names
        self.extra |= names - self._known
        for name, numeric in self.numeric.items():
            if name not in names or numeric.mismatch is not None:
                continue
            try:
                numeric.update(chunk.numbers(name))
            except Mismatch as exc:
                numeric.mismatch = str(exc)
        for name, category in self.categorical.items():
            if name not in names or category.mismatch is not None:
                continue
            values, counts, missing = chunk.categories(name)
            category.update(values, counts, missing, n)

    def column_rows(self, name: str) -> tuple[int, int]:
        """(rows in which the column was present, of which missing) for the window;
        rows of chunks without the column count as missing."""
        counts: NumericCounts | CategoryCounts | None = self.numeric.get(
            name
        ) or self.categorical.get(name)
        if counts is None:
            return self.rows, self.rows
        return self.rows, counts.missing + (self.rows - counts.rows)


def examples(unseen: dict[Any, int], k: int = 5) -> list[Any]:
    """The ``k`` most frequent unseen values."""
    ranked = sorted(unseen.items(), key=lambda kv: (-kv[1], str(kv[0])))
    return [key for key, _ in ranked[:k]]
