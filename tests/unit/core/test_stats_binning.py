"""Fast fixed-edge binning, one-pass number summaries, equal-mass grouping and the
natural-log Jensen-Shannon distance used by drift detection."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import jensenshannon
from scipy.stats import wasserstein_distance

from keel.core._stats import (
    BLOCK,
    FixedBins,
    bin_counts,
    choose_edges,
    equal_mass_groups,
    extend_edges,
    jensen_shannon,
    wasserstein_from_sums,
)

RNG = np.random.default_rng(11)


@pytest.mark.parametrize(
    "values",
    [
        RNG.normal(size=200_000),
        RNG.lognormal(2.0, 1.5, 200_000),
        RNG.integers(0, 7, 50_000).astype(float),
        np.concatenate([RNG.normal(size=50_000), [1e15, -1e15]]),
        np.full(1000, 3.25),
    ],
    ids=["normal", "heavy-tailed", "integers", "outliers", "constant"],
)
def test_fixed_bins_count_exactly_like_bin_counts(values: np.ndarray) -> None:
    edges = choose_edges(values[::7], 100)
    probe = np.concatenate([values, edges, np.nextafter(edges, -np.inf), [np.nan, np.inf]])
    RNG.shuffle(probe)
    np.testing.assert_array_equal(FixedBins(edges).count(probe), bin_counts(probe, edges))


def test_fixed_bins_fall_back_when_edges_crowd_one_cell() -> None:
    edges = np.concatenate([np.linspace(0.0, 1.0, 50), [1e12]])
    bins = FixedBins(edges)
    assert bins._first is None  # one cell would hold 50 edges: searchsorted instead
    x = np.concatenate([RNG.uniform(-1.0, 2.0, 10_000), [1e12, 5e11, 2e12]])
    np.testing.assert_array_equal(bins.count(x), bin_counts(x, edges))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6), min_size=2, max_size=40, unique=True),
    st.lists(st.floats(-2e6, 2e6), min_size=0, max_size=200),
)
def test_fixed_bins_agree_with_bin_counts_on_any_edges(edges: list[float], x: list[float]) -> None:
    e = np.sort(np.asarray(edges))
    values = np.asarray(x + edges, dtype=np.float64)
    np.testing.assert_array_equal(FixedBins(e).count(values), bin_counts(values, e))


def test_fixed_bins_reject_bad_edges() -> None:
    for edges in ([1.0], [0.0, np.nan], [2.0, 1.0]):
        with pytest.raises(ValueError, match="edges"):
            FixedBins(edges)


def test_summarise_is_counts_moments_and_extremes_in_one_pass() -> None:
    x = RNG.gamma(2.0, 3.0, 3 * BLOCK + 17)
    x[::101] = np.nan
    x[5], x[6] = np.inf, -np.inf
    middle = np.sort(x[np.isfinite(x)])[100:-100]
    edges = choose_edges(middle[::3], 100)  # the extremes fall outside
    summary = FixedBins(edges).summarise(x, origin=5.0)
    finite = x[np.isfinite(x)]
    np.testing.assert_array_equal(summary.counts, bin_counts(x, edges))
    n, mean, m2 = summary.moments
    assert n == finite.size
    assert mean == pytest.approx(finite.mean(), rel=1e-12)
    assert m2 / (n - 1) == pytest.approx(finite.var(ddof=1), rel=1e-9)
    assert (summary.low, summary.high) == (finite.min(), finite.max())  # beyond the edges
    assert summary.nan == int(np.isnan(x).sum())
    assert summary.infinite == 2
    assert summary.sums is not None
    index = np.searchsorted(np.append(edges[:-1], np.nextafter(edges[-1], np.inf)), finite, "right")
    np.testing.assert_allclose(
        summary.sums, np.bincount(index, weights=finite - 5.0, minlength=edges.size + 1)
    )
    inside = FixedBins(choose_edges(finite, 100)).summarise(finite, sums=False)
    assert (inside.low, inside.high, inside.sums) == (math.inf, -math.inf, None)
    empty = FixedBins(edges).summarise(np.array([np.nan]))
    assert empty.moments == (0, 0.0, 0.0)
    assert math.isinf(empty.low)


def test_equal_mass_groups_make_deciles_of_a_quantile_histogram() -> None:
    counts = np.concatenate([[0], np.full(100, 50), [0]])
    groups = equal_mass_groups(counts, 10)
    merged = np.bincount(groups, weights=counts)
    assert merged.tolist() == [500.0] * 10
    assert groups[0] == 0
    assert groups[-1] == 9
    assert np.all(np.diff(groups) >= 0)
    assert equal_mass_groups([3, 0, 4], 10).tolist() == [0, 1, 2]
    assert equal_mass_groups(np.zeros(30), 10).tolist() == list(range(30))
    skewed = equal_mass_groups([1000, *([1] * 50)], 10)
    assert skewed.max() + 1 == len(np.unique(skewed))  # no empty group ids
    with pytest.raises(ValueError, match="parts"):
        equal_mass_groups([1, 2], 0)


def test_extend_edges_bounds_the_outer_bins_by_the_data() -> None:
    assert extend_edges([0.0, 1.0], -3.0, 0.5).tolist() == [-3.0, 0.0, 1.0, 1.0]
    assert extend_edges([0.0, 1.0], 0.2, 7.0).tolist() == [0.0, 0.0, 1.0, 7.0]


def test_jensen_shannon_in_natural_log_matches_scipy_default() -> None:
    p, q = np.array([10, 0, 5, 3]), np.array([0, 4, 5, 9])
    assert jensen_shannon(p, q, base=math.e).statistic == pytest.approx(jensenshannon(p, q))
    assert jensen_shannon([1, 0], [0, 1], base=math.e).statistic == pytest.approx(
        math.sqrt(math.log(2))
    )
    with pytest.raises(ValueError, match="base"):
        jensen_shannon(p, q, base=1.0)


@pytest.mark.parametrize("origin", [0.0, 1.7e9])
def test_wasserstein_from_sums_is_exact_without_crossings_inside_bins(origin: float) -> None:
    a = RNG.lognormal(0.0, 1.0, 20_000) + origin
    b = RNG.lognormal(0.0, 1.0, 15_000) + 0.3 + origin
    edges = choose_edges(a[::3], 100)
    bins = FixedBins(edges)
    ra, rb = bins.summarise(a, origin), bins.summarise(b, origin)
    outer = extend_edges(edges, min(ra.low, rb.low), max(ra.high, rb.high))
    ours = wasserstein_from_sums(outer, ra.counts, rb.counts, ra.sums, rb.sums, origin)
    exact = wasserstein_distance(a, b)
    assert ours.statistic <= exact * (1 + 1e-6)  # a lower bound...
    assert ours.statistic == pytest.approx(exact, rel=0.03)  # ...and a tight one
    assert ours.p_value is None


def test_wasserstein_from_sums_degenerate_input() -> None:
    assert math.isnan(
        wasserstein_from_sums([0, 1, 2], [0, 0], [1, 1], [0, 0], [0.5, 1.5]).statistic
    )
    same = wasserstein_from_sums([0, 1, 2], [2, 2], [1, 1], [1.0, 3.0], [0.5, 1.5])
    assert same.statistic == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="sums"):
        wasserstein_from_sums([0, 1, 2], [1, 1], [1, 1], [0.0], [0.0, 0.0])
    with pytest.raises(ValueError, match="edges"):
        wasserstein_from_sums([0, 2], [1, 1], [1, 1], [0.0, 0.0], [0.0, 0.0])
