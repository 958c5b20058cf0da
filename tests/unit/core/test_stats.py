"""The shared two-sample statistics agree with SciPy and survive degenerate input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps
from scipy.spatial.distance import jensenshannon

from keel.core._stats import (
    benjamini_hochberg,
    chi_square,
    chi_square_goodness_of_fit,
    jensen_shannon,
    ks_2samp,
    ks_from_histograms,
    psi,
    wasserstein_from_histograms,
    wasserstein_normalised,
)

RNG = np.random.default_rng(7)
A = RNG.normal(0.0, 1.0, 3000)
B = RNG.normal(0.3, 1.2, 2000)


def test_ks_matches_scipy_on_raw_values() -> None:
    ours = ks_2samp(A, B)
    theirs = sps.ks_2samp(A, B)
    assert ours.statistic == pytest.approx(theirs.statistic)
    assert ours.p_value == pytest.approx(theirs.pvalue)


def test_ks_drops_nan_and_handles_empty_side() -> None:
    assert ks_2samp([1.0, math.nan, 2.0], [1.0, 2.0]).statistic == 0.0
    empty = ks_2samp([], [1.0, 2.0])
    assert math.isnan(empty.statistic)
    assert empty.p_value is not None
    assert math.isnan(empty.p_value)


def test_ks_from_histograms_bounds_the_raw_statistic() -> None:
    edges = np.linspace(-5, 6, 201)
    ref, _ = np.histogram(A, edges)
    cur, _ = np.histogram(B, edges)
    approx = ks_from_histograms(ref, cur)
    exact = sps.ks_2samp(A, B)
    assert approx.statistic <= exact.statistic + 1e-12
    assert approx.statistic == pytest.approx(exact.statistic, abs=0.02)
    assert approx.p_value is not None
    assert approx.p_value < 1e-6


def test_ks_from_histograms_of_identical_counts_is_zero() -> None:
    result = ks_from_histograms([5, 0, 5], [10, 0, 10])
    assert result.statistic == 0.0
    assert result.p_value == pytest.approx(1.0)


def test_chi_square_matches_scipy_contingency() -> None:
    ref, cur = [120, 80, 50, 10], [100, 95, 40, 25]
    ours = chi_square(ref, cur)
    stat, p, _, _ = sps.chi2_contingency([ref, cur], correction=False)
    assert ours.statistic == pytest.approx(stat)
    assert ours.p_value == pytest.approx(p)


def test_chi_square_with_unseen_and_empty_categories() -> None:
    result = chi_square([50, 50, 0, 0], [40, 40, 20, 0])
    assert result.statistic > 0
    assert result.p_value is not None
    assert result.p_value < 1e-4
    assert chi_square([5], [7]).p_value == 1.0
    assert math.isnan(chi_square([0, 0], [1, 2]).statistic)


def test_chi_square_goodness_of_fit_matches_scipy() -> None:
    ref, cur = np.array([30.0, 50.0, 20.0]), np.array([40.0, 40.0, 20.0])
    ours = chi_square_goodness_of_fit(ref, cur)
    theirs = sps.chisquare(cur, ref / ref.sum() * cur.sum())
    assert ours.statistic == pytest.approx(theirs.statistic)
    assert ours.p_value == pytest.approx(theirs.pvalue)
    assert math.isfinite(chi_square_goodness_of_fit([10, 0], [5, 5]).statistic)


def test_jensen_shannon_matches_scipy_including_zero_bins() -> None:
    p, q = np.array([10, 0, 5, 3]), np.array([0, 4, 5, 9])
    assert jensen_shannon(p, q).statistic == pytest.approx(jensenshannon(p, q, base=2))
    assert jensen_shannon(p, p * 3).statistic == pytest.approx(0.0, abs=1e-7)
    assert jensen_shannon([1, 0], [0, 1]).statistic == pytest.approx(1.0)
    assert jensen_shannon(p, q).p_value is None


def test_wasserstein_from_histograms_matches_scipy() -> None:
    edges = np.linspace(-6, 7, 401)
    ref, _ = np.histogram(A, edges)
    cur, _ = np.histogram(B, edges)
    ours = wasserstein_from_histograms(edges, ref, cur).statistic
    assert ours == pytest.approx(sps.wasserstein_distance(A, B), rel=0.02)
    # With all mass at bin centres the two agree up to the within-bin spread.
    mids = (edges[:-1] + edges[1:]) / 2
    centred = sps.wasserstein_distance(mids, mids, ref, cur)
    assert ours == pytest.approx(centred, abs=edges[1] - edges[0])


def test_wasserstein_exact_for_uniform_bins() -> None:
    # Everything in [0, 1) against everything in [1, 2): the distance is exactly 1.
    assert wasserstein_from_histograms([0, 1, 2], [10, 0], [0, 3]).statistic == pytest.approx(1)
    crossing = wasserstein_from_histograms([0, 1, 2, 3], [1, 0, 1], [0, 2, 0]).statistic
    values = sps.wasserstein_distance([0.5, 2.5], [1.5, 1.5])
    assert crossing == pytest.approx(values, abs=0.5)


def test_wasserstein_normalised_divides_by_reference_std_with_a_floor() -> None:
    edges, ref, cur = [0, 1, 2], [10, 0], [0, 10]
    assert wasserstein_normalised(edges, ref, cur, 2.0).statistic == pytest.approx(0.5)
    assert wasserstein_normalised(edges, ref, cur, 0.0).statistic == pytest.approx(1000)


def test_psi_known_value_and_empty_bins() -> None:
    ref, cur = np.array([25, 25, 25, 25]), np.array([10, 20, 30, 40])
    p, q = ref / 100, cur / 100
    assert psi(ref, cur).statistic == pytest.approx(float(np.sum((q - p) * np.log(q / p))))
    assert psi(ref, ref).statistic == 0.0
    assert math.isfinite(psi([10, 0], [0, 10]).statistic)
    assert math.isnan(psi([0, 0], [1, 1]).statistic)


def test_mismatched_or_negative_counts_are_rejected() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        psi([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="non-negative"):
        jensen_shannon([1, -1], [1, 1])
    with pytest.raises(ValueError, match="edges"):
        wasserstein_from_histograms([0, 1], [1, 1], [1, 1])


def test_benjamini_hochberg_matches_scipy() -> None:
    p = np.array([0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216])
    rejected, adjusted = benjamini_hochberg(p, alpha=0.05)
    np.testing.assert_allclose(adjusted, sps.false_discovery_control(p))
    assert rejected.tolist() == (sps.false_discovery_control(p) <= 0.05).tolist()


def test_benjamini_hochberg_ignores_nan() -> None:
    rejected, adjusted = benjamini_hochberg([0.01, math.nan, 0.02])
    assert rejected.tolist() == [True, False, True]
    assert math.isnan(adjusted[1])
    np.testing.assert_allclose(adjusted[[0, 2]], sps.false_discovery_control([0.01, 0.02]))
    with pytest.raises(ValueError, match="alpha"):
        benjamini_hochberg([0.1], alpha=0)
