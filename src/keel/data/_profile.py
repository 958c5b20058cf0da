"""Mergeable table profiles and schema inference, computed in one streaming pass.

A profile holds no raw rows, only summaries that add up: counts, nulls, moments
(Chan's parallel update), min/max, a histogram on fixed edges with underflow and
overflow bins, exact value counts while a column has at most ``CATEGORY_CAP`` distinct
values, and a HyperLogLog sketch (2**12 registers, ~1.6% error) for distinct counts
beyond that. Quantiles are read off the histogram. ``TableProfile.merge`` of profiles
made on the same edges equals the profile of the concatenated data; monitoring bins a
production window on the reference's edges (``bins_from``) to get exactly that.
"""

from __future__ import annotations

import base64
import math
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from keel.core import _stats
from keel.data._read import detect_format, scan
from keel.data._schema import infer_schema
from keel.errors import InvalidArgument

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    from numpy.typing import NDArray

__all__ = [
    "ColumnProfile",
    "TableProfile",
    "TableProfiler",
    "infer_schema",
    "profile_file",
    "profile_frame",
]

CATEGORY_CAP = 1000
HISTOGRAM_BINS = 100
HLL_PRECISION = 12
EDGE_SAMPLE = 100_000
TOP_K = 20
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
NUMERIC_KINDS = ("int", "float", "datetime")


def _kind(arrow_type: pa.DataType) -> str:
    import pyarrow as pa

    t = pa.types
    if t.is_dictionary(arrow_type):
        return "string"
    if t.is_boolean(arrow_type):
        return "bool"
    if t.is_integer(arrow_type):
        return "int"
    if t.is_floating(arrow_type) or t.is_decimal(arrow_type):
        return "float"
    if t.is_timestamp(arrow_type) or t.is_date(arrow_type):
        return "datetime"
    if t.is_null(arrow_type):
        return "null"
    return "string"


@dataclass
class ColumnProfile:
    """Mergeable summary of one column. ``kind``: int, float, datetime (as epoch
    seconds), bool, string, or null (no value seen yet)."""

    name: str
    kind: str
    rows: int = 0
    nulls: int = 0
    infinite: int = 0
    moments: tuple[int, float, float] = (0, 0.0, 0.0)
    min: float | None = None
    max: float | None = None
    edges: NDArray[np.float64] | None = None
    counts: NDArray[np.int64] | None = None
    value_counts: dict[Any, int] | None = field(default_factory=dict)
    registers: NDArray[np.uint8] = field(
        default_factory=lambda: np.zeros(1 << HLL_PRECISION, dtype=np.uint8)
    )

    @property
    def count(self) -> int:
        """Non-null values."""
        return self.rows - self.nulls

    @property
    def distinct(self) -> int:
        if self.value_counts is not None:
            return len(self.value_counts)
        return max(CATEGORY_CAP + 1, round(_stats.hll_estimate(self.registers)))

    @property
    def mean(self) -> float:
        return self.moments[1] if self.moments[0] else math.nan

    @property
    def std(self) -> float:
        n, _, m2 = self.moments
        return math.sqrt(m2 / (n - 1)) if n > 1 else (0.0 if n == 1 else math.nan)

    def update(self, array: pa.Array | pa.ChunkedArray) -> None:
        """Add one chunk of this column."""
        import pyarrow as pa
        import pyarrow.compute as pc

        kind = _kind(array.type)
        if self.kind == "null":
            self.kind = kind
        elif kind not in ("null", self.kind):
            raise InvalidArgument(
                f"column {self.name!r} changes type from {self.kind} to {kind} between "
                "chunks; give it one type in every file or row"
            )
        self.rows += len(array)
        self.nulls += array.null_count
        if kind == "null" or array.null_count == len(array):
            return
        values = array.drop_null()
        if pa.types.is_dictionary(values.type):
            values = values.cast(values.type.value_type)
        if self.kind in NUMERIC_KINDS:
            numbers = _as_float(values, self.kind)
            nan = np.isnan(numbers)
            self.nulls += int(nan.sum())
            finite = np.isfinite(numbers)
            self.infinite += int((~finite & ~nan).sum())
            numbers = numbers[finite]
            self._add_numbers(numbers)
            keys = pa.array(numbers) if self.kind != "int" else values
        else:
            if self.kind == "string" and not pa.types.is_string(values.type):
                values = values.cast(pa.string())
            keys = values
        self._add_keys(keys, pc)

    def _add_numbers(self, numbers: NDArray[np.float64]) -> None:
        if numbers.size == 0:
            return
        mean = float(numbers.mean())
        chunk = (int(numbers.size), mean, float(np.sum((numbers - mean) ** 2)))
        self.moments = _stats.combine_moments(self.moments, chunk)
        low, high = float(numbers.min()), float(numbers.max())
        self.min = low if self.min is None else min(self.min, low)
        self.max = high if self.max is None else max(self.max, high)
        if self.edges is None:
            step = max(1, numbers.size // EDGE_SAMPLE)  # deterministic: every step-th value
            self.edges = _stats.choose_edges(numbers[::step], HISTOGRAM_BINS)
        counts = _stats.bin_counts(numbers, self.edges)
        self.counts = counts if self.counts is None else self.counts + counts

    def _add_keys(self, keys: pa.Array, pc: Any) -> None:
        if len(keys) == 0:
            return
        _stats.hll_update(self.registers, _hashes(keys, self.kind))
        if self.value_counts is not None and _stats.hll_estimate(self.registers) > 2 * CATEGORY_CAP:
            self.value_counts = None  # clearly high-cardinality: skip exact counting
        if self.value_counts is not None:
            table = pc.value_counts(keys)
            if len(table) > CATEGORY_CAP:
                self.value_counts = None
            else:
                found = table.field("values").to_pylist()
                for key, n in zip(found, table.field("counts").to_pylist(), strict=True):
                    self.value_counts[key] = self.value_counts.get(key, 0) + n
                if len(self.value_counts) > CATEGORY_CAP:
                    self.value_counts = None

    def merge(self, other: ColumnProfile) -> ColumnProfile:
        """The profile of both columns' values; histograms on other edges are re-binned
        (approximately, mass uniform within a bin)."""
        kinds = {self.kind, other.kind} - {"null"}
        if len(kinds) > 1:
            raise InvalidArgument(
                f"column {self.name!r} is {self.kind} in one profile and {other.kind} in "
                "the other; profiles of differently typed data cannot be merged"
            )
        out = ColumnProfile(self.name, kinds.pop() if kinds else "null")
        out.rows, out.nulls = self.rows + other.rows, self.nulls + other.nulls
        out.infinite = self.infinite + other.infinite
        out.moments = _stats.combine_moments(self.moments, other.moments)
        mins = [v for v in (self.min, other.min) if v is not None]
        maxs = [v for v in (self.max, other.max) if v is not None]
        out.min, out.max = (min(mins) if mins else None), (max(maxs) if maxs else None)
        out.edges = self.edges if self.edges is not None else other.edges
        out.counts = _add_histograms(self, other, out.edges)
        if self.value_counts is None or other.value_counts is None:
            out.value_counts = None
        else:
            merged = dict(self.value_counts)
            for key, n in other.value_counts.items():
                merged[key] = merged.get(key, 0) + n
            out.value_counts = merged if len(merged) <= CATEGORY_CAP else None
        out.registers = np.maximum(self.registers, other.registers)
        return out

    def histogram_on(self, edges: NDArray[np.float64]) -> NDArray[np.float64]:
        """Counts on ``edges`` (with underflow and overflow), exact when they are this
        profile's own edges."""
        if self.edges is None or self.counts is None or self.min is None or self.max is None:
            return np.zeros(len(edges) + 1)
        if self.edges.shape == edges.shape and np.array_equal(self.edges, edges):
            return self.counts.astype(np.float64)
        return _stats.rebin(self.edges, self.counts, self.min, self.max, edges)

    def quantiles(self) -> dict[str, float]:
        if self.edges is None or self.counts is None or self.min is None or self.max is None:
            return {}
        values = _stats.histogram_quantiles(self.edges, self.counts, self.min, self.max, QUANTILES)
        return {f"p{round(q * 100):02d}": float(v) for q, v in zip(QUANTILES, values, strict=True)}

    def top(self, k: int = TOP_K) -> list[list[Any]]:
        if self.value_counts is None:
            return []
        ranked = sorted(self.value_counts.items(), key=lambda kv: (-kv[1], str(kv[0])))
        return [[key, n] for key, n in ranked[:k]]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": self.kind,
            "rows": self.rows,
            "count": self.count,
            "nulls": self.nulls,
            "null_fraction": self.nulls / self.rows if self.rows else 0.0,
            "distinct": self.distinct,
            "distinct_exact": self.value_counts is not None,
            "top": self.top(),
            "value_counts": None if self.value_counts is None else self.top(CATEGORY_CAP),
            "hll": base64.b64encode(zlib.compress(self.registers.tobytes())).decode("ascii"),
        }
        if self.kind in NUMERIC_KINDS:
            n, mean, m2 = self.moments
            out.update(
                mean=self.mean if n else None,
                std=self.std if n else None,
                min=self.min,
                max=self.max,
                infinite=self.infinite,
                moments={"n": n, "mean": mean, "m2": m2},
                quantiles=self.quantiles(),
                histogram=None
                if self.edges is None or self.counts is None
                else {"edges": self.edges.tolist(), "counts": self.counts.tolist()},
            )
        return out

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any]) -> ColumnProfile:
        try:
            out = cls(name, str(data["type"]), rows=int(data["rows"]), nulls=int(data["nulls"]))
            vc = data.get("value_counts")
            out.value_counts = None if vc is None else {_key(k): int(n) for k, n in vc}
            out.registers = np.frombuffer(
                zlib.decompress(base64.b64decode(data["hll"])), dtype=np.uint8
            ).copy()
            if out.kind in NUMERIC_KINDS:
                m = data["moments"]
                out.moments = (int(m["n"]), float(m["mean"]), float(m["m2"]))
                out.min, out.max = data.get("min"), data.get("max")
                out.infinite = int(data.get("infinite", 0))
                hist = data.get("histogram")
                if hist:
                    out.edges = np.asarray(hist["edges"], dtype=np.float64)
                    out.counts = np.asarray(hist["counts"], dtype=np.int64)
        except (KeyError, TypeError, ValueError, zlib.error) as exc:
            raise InvalidArgument(
                f"the profile of column {name!r} is malformed ({exc!r}); profile the data "
                "again with keel.data.profile_file"
            ) from exc
        return out


def _key(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _add_histograms(
    a: ColumnProfile, b: ColumnProfile, edges: NDArray[np.float64] | None
) -> NDArray[np.int64] | None:
    if edges is None:
        return None
    total = np.zeros(edges.size + 1, dtype=np.float64)
    for side in (a, b):
        if side.counts is not None:
            total += side.histogram_on(edges)
    return np.rint(total).astype(np.int64)


def _as_float(values: pa.Array, kind: str) -> NDArray[np.float64]:
    import pyarrow as pa

    if kind == "datetime":
        if pa.types.is_date(values.type):
            values = values.cast(pa.date32()).cast(pa.int32())
            return np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64) * 86400
        unit = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}[values.type.unit]
        ints = values.cast(pa.int64()).to_numpy(zero_copy_only=False)
        return np.asarray(ints, dtype=np.float64) * unit
    if pa.types.is_decimal(values.type):
        values = values.cast(pa.float64())
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64)


def _hashes(keys: pa.Array, kind: str) -> NDArray[np.uint64]:
    if kind in ("float", "datetime"):
        numbers = np.asarray(keys.to_numpy(zero_copy_only=False), dtype=np.float64) + 0.0
        return _stats.mix64(numbers.view(np.uint64))
    if kind in ("int", "bool"):
        ints = np.asarray(keys.to_numpy(zero_copy_only=False)).astype(np.int64)
        return _stats.mix64(ints.view(np.uint64))
    import pandas as pd
    import pyarrow.compute as pc

    unique = pc.unique(keys).to_numpy(zero_copy_only=False)
    hashed = pd.util.hash_array(np.asarray(unique, dtype=object), categorize=False)
    return _stats.mix64(np.asarray(hashed, dtype=np.uint64))


def _row_hashes(values: pa.Array, kind: str) -> NDArray[np.uint64]:
    """One 64-bit hash per (non-null) value, for exact duplicate counting."""
    if kind in ("float", "datetime"):
        return _stats.mix64((_as_float(values, kind) + 0.0).view(np.uint64))
    if kind in ("int", "bool"):
        ints = np.asarray(values.to_numpy(zero_copy_only=False)).astype(np.int64)
        return _stats.mix64(ints.view(np.uint64))
    import pandas as pd

    text = np.asarray(values.to_numpy(zero_copy_only=False), dtype=object)
    return np.asarray(pd.util.hash_array(text, categorize=False), dtype=np.uint64)


@dataclass
class TableProfile:
    """Column profiles in file order plus the row count, format and size of the source."""

    rows: int
    columns: dict[str, ColumnProfile]
    format: str | None = None
    size_bytes: int | None = None

    def merge(self, other: TableProfile) -> TableProfile:
        """The profile of both tables stacked; a column missing on one side counts as null
        there."""
        names = list(self.columns) + [n for n in other.columns if n not in self.columns]
        merged: dict[str, ColumnProfile] = {}
        for name in names:
            a = self.columns.get(name) or _all_null(name, self.rows)
            b = other.columns.get(name) or _all_null(name, other.rows)
            merged[name] = a.merge(b)
        size = None
        if self.size_bytes is not None and other.size_bytes is not None:
            size = self.size_bytes + other.size_bytes
        fmt = self.format if self.format == other.format else None
        return TableProfile(self.rows + other.rows, merged, fmt, size)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "rows": self.rows,
            "format": self.format,
            "size_bytes": self.size_bytes,
            "columns": {name: c.to_dict() for name, c in self.columns.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TableProfile:
        """Accepts a profile dict or ``{"schema": ..., "profile": ...}`` from profile_file."""
        if "profile" in data and isinstance(data["profile"], Mapping):
            data = data["profile"]
        columns = data.get("columns")
        if not isinstance(columns, Mapping) or "rows" not in data:
            raise InvalidArgument(
                "not a Keel profile (it needs 'rows' and 'columns'); make one with "
                "keel.data.profile_file or `keel data add`"
            )
        return cls(
            int(data["rows"]),
            {str(n): ColumnProfile.from_dict(str(n), c) for n, c in columns.items()},
            data.get("format"),
            data.get("size_bytes"),
        )


def _all_null(name: str, rows: int) -> ColumnProfile:
    return ColumnProfile(name, "null", rows=rows, nulls=rows)


class TableProfiler:
    """Accumulates a profile batch by batch; ``bins_from`` fixes histogram edges to a
    reference profile's, so the result compares and merges exactly with it."""

    def __init__(self, bins_from: TableProfile | None = None) -> None:
        self._bins_from = bins_from
        self.rows = 0
        self.columns: dict[str, ColumnProfile] = {}

    def update(self, batch: pa.RecordBatch | pa.Table) -> None:
        for name, array in zip(batch.schema.names, batch.columns, strict=True):
            column = self.columns.get(name)
            if column is None:
                column = self.columns[name] = _all_null(name, self.rows)
                reference = self._bins_from.columns.get(name) if self._bins_from else None
                if reference is not None and reference.edges is not None:
                    column.edges = reference.edges.copy()
            column.update(array)
        self.rows += batch.num_rows
        for column in self.columns.values():
            if column.rows < self.rows:  # absent from this batch (JSON Lines)
                column.rows, column.nulls = self.rows, column.nulls + self.rows - column.rows
        if len(set(batch.schema.names)) != len(batch.schema.names):
            raise InvalidArgument("the data has duplicate column names; rename them")

    def result(self, fmt: str | None = None, size_bytes: int | None = None) -> TableProfile:
        return TableProfile(self.rows, dict(self.columns), fmt, size_bytes)


def profile_batches(
    batches: Iterable[pa.RecordBatch | pa.Table], bins_from: TableProfile | None = None
) -> TableProfile:
    profiler = TableProfiler(bins_from)
    for batch in batches:
        profiler.update(batch)
    return profiler.result()


def frame_batches(df: pd.DataFrame, chunk_rows: int) -> Iterator[pa.RecordBatch]:
    """A DataFrame as Arrow batches of ``chunk_rows`` rows; mixed-type columns are named."""
    import pyarrow as pa

    for start in range(0, max(len(df), 1), chunk_rows):
        part = df.iloc[start : start + chunk_rows]
        try:
            table = pa.Table.from_pandas(part, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            bad = _mixed_column(part)
            raise InvalidArgument(
                f"column {bad!r} mixes value types ({exc}); convert it to one type, e.g. "
                f"df[{bad!r}].astype(str)"
            ) from exc
        yield from table.to_batches() or [pa.RecordBatch.from_pylist([], schema=table.schema)]


def _mixed_column(df: pd.DataFrame) -> str:
    import pyarrow as pa

    for name in df.columns:
        try:
            pa.array(df[name])
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            return str(name)
    return "?"


def profile_frame(
    df: pd.DataFrame, *, chunk_rows: int = 1_000_000, bins_from: TableProfile | None = None
) -> TableProfile:
    """Profile an in-memory DataFrame (chunked the same way as a file)."""
    return profile_batches(frame_batches(df, chunk_rows), bins_from)


def profile_file(path: Path, *, chunk_rows: int = 1_000_000) -> dict[str, Any] | None:
    """``{"schema": ..., "profile": ...}`` of a CSV, Parquet or JSON Lines file, read in
    chunks; None when the file is not tabular."""
    path = Path(path)
    fmt = detect_format(path)
    if fmt is None:
        return None
    profile = profile_path(path, fmt, chunk_rows=chunk_rows)
    return {"schema": infer_schema(profile).to_dict(), "profile": profile.to_dict()}


def profile_path(
    path: Path, fmt: str, *, chunk_rows: int = 1_000_000, bins_from: TableProfile | None = None
) -> TableProfile:
    profile = scan(path, fmt, lambda b: profile_batches(b, bins_from), chunk_rows=chunk_rows)
    profile.format, profile.size_bytes = fmt, path.stat().st_size
    return profile
