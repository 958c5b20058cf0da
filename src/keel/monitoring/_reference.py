"""The reference side of drift detection: always a Keel ``TableProfile``.

A reference arrives as a profile, a stored profile dict (as kept with a dataset
version), a ``DatasetVersion``, a tabular file, or a pandas DataFrame. A DataFrame is
profiled here in one vectorised pass per column, with the same edges, histograms,
moments and category counts as ``keel.data`` profiles (so results agree with a
stored profile of the same data) but without the distinct-count sketch, which drift
detection does not use: such a profile reports "more than 1000" distinct values for
a column whose values were not counted exactly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from keel.core import _stats
from keel.data._profile import CATEGORY_CAP, EDGE_SAMPLE, ColumnProfile, TableProfile
from keel.errors import InvalidArgument

if TYPE_CHECKING:
    import pandas as pd
    from numpy.typing import NDArray

__all__ = ["BinSums", "as_profile", "fit_reference", "numeric_values", "profile_reference"]

_FIX = (
    "give a pandas DataFrame, a keel.data TableProfile, or a stored profile "
    "(keel.data.service().profile_of('name@version'))"
)


def as_profile(reference: Any, bins: int) -> TableProfile:
    """The reference as a profile; raises InvalidArgument naming the fix otherwise."""
    import pandas as pd

    from keel.core._data import DatasetVersion

    if isinstance(reference, TableProfile):
        profile = reference
    elif isinstance(reference, pd.DataFrame):
        profile = profile_reference(reference, bins)
    elif isinstance(reference, DatasetVersion):
        if not reference.profile:
            raise InvalidArgument(
                f"{reference.ref} has no stored profile (it is not tabular, or was added "
                f"without one); add a CSV, Parquet or JSON Lines file with `keel data add`, "
                f"or {_FIX.replace('give', 'pass')}"
            )
        profile = _from_mapping(reference.profile, reference.ref)
    elif isinstance(reference, Mapping):
        profile = _from_mapping(reference, "the reference profile")
    elif isinstance(reference, str | Path):
        profile = _from_file(Path(reference))
    elif reference is None:
        raise InvalidArgument(f"no reference was given; {_FIX}")
    else:
        raise InvalidArgument(
            f"cannot use a {type(reference).__name__} as the drift reference; {_FIX}"
        )
    if profile.rows == 0:
        raise InvalidArgument(
            "the reference has no rows, so there is nothing to compare with; fit on the "
            "training data or a dataset version that has rows"
        )
    return profile


def _from_mapping(data: Mapping[str, Any], what: str) -> TableProfile:
    if not data:
        raise InvalidArgument(f"{what} is empty (no profile was stored); {_FIX}")
    files = data.get("files")
    if isinstance(files, Mapping):
        described = [f for f in files.values() if f]
        if len(described) != 1:
            raise InvalidArgument(
                f"{what} holds profiles of {len(described)} files; pick one file's profile "
                f"(profile['files'][relpath]) or {_FIX.replace('give', 'pass')}"
            )
        data = described[0]
    if "profile" in data and isinstance(data["profile"], Mapping):
        data = data["profile"]
    if not isinstance(data.get("columns"), Mapping) or "rows" not in data:
        raise InvalidArgument(
            f"{what} is not a Keel profile (it needs 'rows' and 'columns'); make one with "
            "keel.data.profile_file(path) or `keel data add`, or pass the reference DataFrame"
        )
    return TableProfile.from_dict(data)


def _from_file(path: Path) -> TableProfile:
    from keel.data._read import detect_format

    if path.is_dir():
        raise InvalidArgument(
            f"the reference {str(path)!r} is a directory; give one data file, a DataFrame "
            "or a stored profile"
        )
    if not path.exists():
        raise InvalidArgument(f"no reference file {str(path)!r}; check the path")
    fmt = detect_format(path)
    if fmt is None:
        raise InvalidArgument(
            f"{str(path)!r} is not a CSV, Parquet or JSON Lines file; give a tabular file, "
            "a DataFrame or a stored profile as the reference"
        )
    from keel.data._profile import profile_path

    return profile_path(path, fmt)


def numeric_values(series: pd.Series) -> NDArray[np.float64] | None:
    """A column as float64 with NaN for missing values (datetimes as epoch seconds); None
    when it is not numeric. Plain float64 columns come back without a copy."""
    import pandas as pd

    dtype = series.dtype
    if isinstance(dtype, np.dtype) and dtype == np.float64:
        return np.asarray(series.to_numpy(), dtype=np.float64)
    if pd.api.types.is_datetime64_any_dtype(dtype):
        as_utc = series.dt.tz_convert("UTC").dt.tz_localize(None) if series.dt.tz else series
        ns = as_utc.to_numpy(dtype="datetime64[ns]").view(np.int64).astype(np.float64)
        ns[as_utc.isna().to_numpy()] = np.nan
        return ns / 1e9
    if pd.api.types.is_bool_dtype(dtype) or not pd.api.types.is_numeric_dtype(dtype):
        return None
    try:
        return np.asarray(series.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
    except (TypeError, ValueError):
        return None


def _kind(series: pd.Series) -> str:
    import pandas as pd

    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if isinstance(dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(dtype):
        return "string"
    return "int" if pd.api.types.is_integer_dtype(dtype) else "float"


def _numeric_column(
    name: str, kind: str, x: NDArray[np.float64], bins: int
) -> tuple[ColumnProfile, BinSums | None]:
    column = ColumnProfile(name, kind, rows=int(x.size))
    sample = x[:: max(1, x.size // EDGE_SAMPLE)]
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        sample = x[np.isfinite(x)]
    if sample.size == 0:
        column.nulls = int(np.count_nonzero(np.isnan(x)))
        column.infinite = x.size - column.nulls
        return column, None
    distinct = np.unique(sample)
    few = distinct.size <= bins  # one bin per value: choose_edges needs only the values
    column.edges = _stats.choose_edges(distinct if few else sample, bins)
    origin = float(np.median(distinct))
    summary = _stats.FixedBins(column.edges).summarise(x, origin)
    column.counts = summary.counts
    column.moments = summary.moments
    column.nulls, column.infinite = summary.nan, summary.infinite
    finite = x[np.isfinite(x)] if summary.nan or summary.infinite else x
    column.min, column.max = float(finite.min()), float(finite.max())
    column.value_counts = None
    if few:
        values, counts = np.unique(finite, return_counts=True)
        if values.size <= CATEGORY_CAP:
            cast = int if kind == "int" else float
            column.value_counts = {
                cast(v): int(n) for v, n in zip(values.tolist(), counts.tolist(), strict=True)
            }
    assert summary.sums is not None
    return column, BinSums(origin, summary.sums)


def _category_column(name: str, kind: str, series: pd.Series) -> ColumnProfile:
    column = ColumnProfile(name, kind, rows=len(series))
    counts = series.value_counts(dropna=True, sort=False)
    counts = counts[counts > 0]
    column.nulls = int(len(series) - counts.sum())
    if len(counts) > CATEGORY_CAP:
        column.value_counts = None
        return column
    column.value_counts = {
        _plain_key(k): int(n)
        for k, n in zip(counts.index.tolist(), counts.to_numpy().tolist(), strict=True)
    }
    return column


def _plain_key(value: Any) -> Any:
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if hasattr(value, "item"):
        return value.item()
    return str(value)


@dataclass(frozen=True)
class BinSums:
    """Sums of ``value - origin`` per histogram bin of a reference column: with them the
    Wasserstein distance is exact up to CDF crossings inside a bin (profiles stored by
    ``keel.data`` do not keep them)."""

    origin: float
    sums: NDArray[np.float64]


def fit_reference(
    df: pd.DataFrame, bins: int = 100, columns: Sequence[str] | None = None
) -> tuple[TableProfile, dict[str, BinSums]]:
    """Profile a reference DataFrame for drift detection in one pass per column, with the
    per-bin sums of its numeric columns."""
    names = [str(c) for c in df.columns]
    if len(set(names)) != len(names):
        duplicated = sorted({n for n in names if names.count(n) > 1})
        raise InvalidArgument(f"the reference has duplicate column names {duplicated}; rename them")
    wanted = set(columns) if columns is not None else None
    profiles: dict[str, ColumnProfile] = {}
    sums: dict[str, BinSums] = {}
    for label, name in zip(df.columns, names, strict=True):
        if wanted is not None and name not in wanted:
            continue
        series = df[label]
        kind = _kind(series)
        values = numeric_values(series) if kind in ("int", "float", "datetime") else None
        if values is not None:
            profiles[name], found = _numeric_column(name, kind, values, bins)
            if found is not None:
                sums[name] = found
        else:
            profiles[name] = _category_column(name, kind, series)
            if profiles[name].nulls == len(df):
                profiles[name].kind = "null"
    return TableProfile(len(df), profiles), sums


def profile_reference(
    df: pd.DataFrame, bins: int = 100, columns: Sequence[str] | None = None
) -> TableProfile:
    """Profile a reference DataFrame for drift detection (see :func:`fit_reference`)."""
    return fit_reference(df, bins, columns)[0]
