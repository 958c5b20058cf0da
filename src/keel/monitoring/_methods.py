"""Drift methods, their defaults, and one column's result from histograms alone.

Defaults follow Evidently's choice by type and sample size, with multiple-testing care
added for the p-value tests (see docs/adr/0014-drift-detection.md):

========================  ==========================  ================================
column                    <= 1000 reference values    more reference values
========================  ==========================  ================================
numeric, > 5 values       ``ks`` p < 0.05 (BH)         ``wasserstein`` (in sd) >= 0.1
numeric <= 5 values,      ``chisquare`` p < 0.05 (BH)  ``jensenshannon`` >= 0.1
categorical, boolean
========================  ==========================  ================================

``psi`` (>= 0.1) is available on request. Jensen-Shannon uses natural logarithms as
SciPy and Evidently do, so thresholds carry over. Numeric histograms are merged into
about ten equal-mass groups of the reference (its deciles) for ``psi``,
``jensenshannon`` and ``chisquare``; ``ks`` and ``wasserstein`` use every bin.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from keel.core import _stats
from keel.errors import InvalidArgument
from keel.monitoring._report import ColumnDrift, Distribution

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from keel.data._profile import ColumnProfile
    from keel.monitoring._window import CategoryCounts, NumericCounts

__all__ = [
    "DEFAULT_THRESHOLDS",
    "METHODS",
    "P_VALUE_METHODS",
    "categorical_drift",
    "default_method",
    "method_name",
    "numeric_drift",
]

METHODS = ("chisquare", "jensenshannon", "ks", "psi", "wasserstein")
P_VALUE_METHODS = frozenset({"chisquare", "ks"})
NUMERIC_ONLY = frozenset({"ks", "wasserstein"})
DEFAULT_THRESHOLDS = {
    "chisquare": 0.05,
    "jensenshannon": 0.1,
    "ks": 0.05,
    "psi": 0.1,
    "wasserstein": 0.1,
}
SMALL_SAMPLE = 1000
"""Columns with at most this many non-missing reference values get p-value tests."""
FEW_VALUES = 5
"""Numeric columns with at most this many distinct values are compared as categories."""
GROUPS = 10
"""Equal-mass groups of a numeric histogram for psi, jensenshannon and chisquare."""
PLOT_CATEGORIES = 20

_ALIASES = {
    "chi2": "chisquare",
    "chi_square": "chisquare",
    "chi-square": "chisquare",
    "js": "jensenshannon",
    "jensen_shannon": "jensenshannon",
    "jensen-shannon": "jensenshannon",
    "kolmogorov_smirnov": "ks",
    "kolmogorov-smirnov": "ks",
    "population_stability_index": "psi",
    "wasserstein_distance": "wasserstein",
}


def method_name(method: str, column: str) -> str:
    """The canonical method name; raises InvalidArgument listing the choices."""
    key = str(method).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in METHODS:
        raise InvalidArgument(
            f"unknown drift method {method!r} for column {column!r}; use one of "
            f"{', '.join(METHODS)}"
        )
    return key


def default_method(categorical: bool, distinct: int, count: int, small_sample: int) -> str:
    """Evidently's choice: p-value tests for small samples, distances for large ones."""
    as_categories = categorical or distinct <= FEW_VALUES
    if count <= small_sample:
        return "chisquare" if as_categories else "ks"
    return "jensenshannon" if as_categories else "wasserstein"


def _statistic(method: str, ref: NDArray[Any], cur: NDArray[Any]) -> _stats.Statistic:
    if method == "psi":
        return _stats.psi(ref, cur)
    if method == "jensenshannon":
        return _stats.jensen_shannon(ref, cur, base=math.e)
    return _stats.chi_square(ref, cur)


def _shares(missing: int, rows: int) -> float | None:
    return missing / rows if rows else None


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _common(result: ColumnDrift, ref: ColumnProfile, rows: int, missing: int) -> None:
    result.reference_count = ref.count
    result.reference_missing_share = _shares(ref.nulls, ref.rows)
    result.current_missing_share = _shares(missing, rows)


def numeric_drift(
    name: str,
    ref: ColumnProfile,
    cur: NumericCounts,
    rows: int,
    missing: int,
    method: str,
    threshold: float,
    reference_sums: NDArray[np.float64] | None = None,
) -> ColumnDrift:
    """A numeric column's statistic from the two histograms on the reference's edges
    (and, for Wasserstein, the reference's per-bin sums when it has them)."""
    assert ref.edges is not None
    assert ref.counts is not None
    result = ColumnDrift(name, "numeric", method=method, threshold=threshold)
    _common(result, ref, rows, missing)
    result.current_count = cur.count
    ref_counts = ref.counts.astype(np.float64)
    summary = cur.summary
    cur_counts = summary.counts.astype(np.float64)
    ref_std = ref.std if math.isfinite(ref.std) else 0.0
    n, cur_mean, m2 = summary.moments
    result.reference_mean, result.reference_std = _finite(ref.mean), ref_std
    result.current_mean = cur_mean if n else None
    result.current_std = math.sqrt(m2 / (n - 1)) if n > 1 else (0.0 if n == 1 else None)
    if n:
        result.mean_shift = (cur_mean - ref.mean) / max(ref_std, _stats.STD_FLOOR)
        result.out_of_range_share = float(cur_counts[0] + cur_counts[-1]) / n
    low = min(ref.min if ref.min is not None else math.inf, summary.low)
    high = max(ref.max if ref.max is not None else -math.inf, summary.high)
    edges = _stats.extend_edges(ref.edges, low, high)
    result.distribution = Distribution(
        ref_counts.tolist(), cur_counts.tolist(), edges=edges.tolist()
    )
    if not _ready(result, cur.count, rows, cur.mismatch):
        return result
    if method == "wasserstein" and reference_sums is not None and summary.sums is not None:
        raw = _stats.wasserstein_from_sums(
            edges, ref_counts, cur_counts, reference_sums, summary.sums, summary.origin
        )
        stat = _stats.Statistic(raw.statistic / max(ref_std, _stats.STD_FLOOR))
    elif method == "wasserstein":
        stat = _stats.wasserstein_normalised(edges, ref_counts, cur_counts, ref_std)
    elif method == "ks":
        stat = _stats.ks_from_histograms(ref_counts, cur_counts)
    else:
        groups = _stats.equal_mass_groups(ref_counts, GROUPS)
        stat = _statistic(
            method,
            np.bincount(groups, weights=ref_counts),
            np.bincount(groups, weights=cur_counts),
        )
    _set(result, stat)
    return result


def categorical_drift(
    name: str,
    ref: ColumnProfile,
    cur: CategoryCounts,
    rows: int,
    missing: int,
    method: str,
    threshold: float,
) -> ColumnDrift:
    """A categorical column's statistic from counts per reference category + unseen."""
    from keel.monitoring._window import examples

    result = ColumnDrift(name, "categorical", method=method, threshold=threshold)
    _common(result, ref, rows, missing)
    count = cur.count
    result.current_count = count
    ref_counts = np.append(
        np.array([ref.value_counts[k] for k in ref.value_counts], dtype=np.float64)
        if ref.value_counts
        else np.zeros(0),
        0.0,
    )
    cur_counts = cur.counts.astype(np.float64)
    labels = [str(k) for k in cur.keys] + ["(unseen)"]
    result.distribution = _category_distribution(labels, ref_counts, cur_counts)
    if count:
        result.unseen_share = float(cur_counts[-1]) / count
        result.unseen_examples = examples(cur.unseen)
        result.top_changes = _top_changes(cur.keys, ref_counts, cur_counts)
    if not _ready(result, count, rows, cur.mismatch):
        return result
    _set(result, _statistic(method, ref_counts, cur_counts))
    return result


def _category_distribution(
    labels: list[str], ref: NDArray[np.float64], cur: NDArray[np.float64]
) -> Distribution:
    """The categories to plot: the most frequent on either side, the rest as 'other'."""
    if len(labels) <= PLOT_CATEGORIES + 1:
        return Distribution(ref.tolist(), cur.tolist(), labels=labels)
    weight = ref / max(ref.sum(), 1) + cur / max(cur.sum(), 1)
    weight[-1] = math.inf  # always show the unseen bucket
    keep = np.sort(np.argsort(-weight, kind="stable")[:PLOT_CATEGORIES])
    rest = np.setdiff1d(np.arange(len(labels)), keep)
    return Distribution(
        [*ref[keep].tolist(), float(ref[rest].sum())],
        [*cur[keep].tolist(), float(cur[rest].sum())],
        labels=[*(labels[i] for i in keep), "(other)"],
    )


def _top_changes(
    keys: list[Any], ref: NDArray[np.float64], cur: NDArray[np.float64], k: int = 3
) -> list[dict[str, Any]]:
    p = ref / ref.sum() if ref.sum() else ref
    q = cur / cur.sum() if cur.sum() else cur
    change = (q - p)[: len(keys)]  # the unseen bucket is reported on its own
    order = np.argsort(-np.abs(change), kind="stable")[:k]
    out = []
    for i in order.tolist():
        if change[i] == 0:
            break
        value = keys[i]
        out.append({"value": value, "reference_share": float(p[i]), "current_share": float(q[i])})
    return out


def _ready(result: ColumnDrift, count: int, rows: int, mismatch: str | None) -> bool:
    """False (and a data-quality status) when there is nothing to compare."""
    if mismatch is not None:
        expected = "numbers" if result.kind == "numeric" else "categories"
        result.status = "type_mismatch"
        result.message = (
            f"the current column has type {mismatch}, where the reference has {expected}; "
            "convert it to the reference's type or check the data source"
        )
    elif rows == 0:
        result.status = "no_data"
        result.message = "the current data has no rows; check the window's time range or query"
    elif count == 0:
        result.status = "all_missing"
        result.message = (
            f"all {rows} current values are missing; check the pipeline that fills this column"
        )
    else:
        return True
    result.method = result.threshold = None
    result.distribution = None
    return False


def _set(result: ColumnDrift, stat: _stats.Statistic) -> None:
    result.statistic = _finite(stat.statistic)
    if result.method in P_VALUE_METHODS:
        result.p_value = None if stat.p_value is None else _finite(stat.p_value)
    else:
        assert result.threshold is not None
        result.drifted = result.statistic is not None and result.statistic >= result.threshold


def apply_correction(results: list[ColumnDrift], correct: bool) -> None:
    """Benjamini-Hochberg across the p-value columns of one report, then the verdicts."""
    tested = [r for r in results if r.compared and r.method in P_VALUE_METHODS]
    if not tested:
        return
    raw = np.array([np.nan if r.p_value is None else r.p_value for r in tested])
    adjusted = _stats.benjamini_hochberg(raw)[1] if correct else raw
    for r, p in zip(tested, adjusted.tolist(), strict=True):
        r.p_value_adjusted = _finite(p)
        assert r.threshold is not None
        r.drifted = r.p_value_adjusted is not None and r.p_value_adjusted < r.threshold


def explain(result: ColumnDrift) -> None:
    """A one-line reason for a drifted column (the message of compared columns)."""
    if not result.compared:
        return
    if result.method in P_VALUE_METHODS:
        test = (
            f"{result.method} p-value {_g(result.p_value_adjusted)} (Benjamini-Hochberg "
            f"adjusted) {'<' if result.drifted else '>='} {result.threshold}"
        )
    else:
        test = (
            f"{result.method} {_g(result.statistic)} "
            f"{'>=' if result.drifted else '<'} {result.threshold}"
        )
    parts = [test]
    if result.kind == "numeric" and result.mean_shift is not None:
        parts.append(
            f"mean {_g(result.reference_mean)} -> {_g(result.current_mean)} "
            f"({result.mean_shift:+.2f} reference sd)"
        )
        if result.out_of_range_share and result.out_of_range_share >= 0.001:
            parts.append(f"{result.out_of_range_share:.1%} outside the reference range")
    if result.kind == "categorical":
        for change in result.top_changes[:2]:
            parts.append(
                f"{change['value']!r} {change['reference_share']:.1%} -> "
                f"{change['current_share']:.1%}"
            )
        if result.unseen_share:
            parts.append(
                f"{result.unseen_share:.1%} unseen values, e.g. {result.unseen_examples[:3]}"
            )
    result.message = "; ".join(parts)


def _g(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"
