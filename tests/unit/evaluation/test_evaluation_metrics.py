"""The weighted metrics agree with scikit-learn, and the bootstrap is seeded and sane."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as sk

from keel.evaluation._metrics import Outcomes, compute, confusion, reliability, resample_weights


def _binary(n: int = 2000, seed: int = 0) -> tuple[Outcomes, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    score = np.clip(0.35 * y + rng.normal(0.35, 0.2, n), 0.001, 0.999).round(2)  # ties
    pred = (score >= 0.5).astype(np.int64)
    return Outcomes("binary", y, pred, score, (0, 1), 1), y, score


def test_binary_metrics_match_scikit_learn() -> None:
    outcomes, y, score = _binary()
    got = {k: float(v[0]) for k, v in compute(outcomes).items()}
    pred = outcomes.pred
    assert got["accuracy"] == pytest.approx(sk.accuracy_score(y, pred))
    assert got["precision"] == pytest.approx(sk.precision_score(y, pred))
    assert got["recall"] == pytest.approx(sk.recall_score(y, pred))
    assert got["f1"] == pytest.approx(sk.f1_score(y, pred))
    assert got["auc"] == pytest.approx(sk.roc_auc_score(y, score))
    assert got["pr_auc"] == pytest.approx(sk.average_precision_score(y, score))
    assert got["log_loss"] == pytest.approx(sk.log_loss(y, score))
    assert got["brier"] == pytest.approx(sk.brier_score_loss(y, score))
    assert 0 <= got["ece"] <= 1


def test_multiclass_metrics_match_scikit_learn() -> None:
    rng = np.random.default_rng(1)
    n, k = 1500, 3
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[y]
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    pred = proba.argmax(axis=1)
    got = compute(Outcomes("multiclass", y, pred, proba, ("a", "b", "c")))
    assert got["accuracy"][0] == pytest.approx(sk.accuracy_score(y, pred))
    assert got["f1"][0] == pytest.approx(sk.f1_score(y, pred, average="macro"))
    assert got["precision"][0] == pytest.approx(sk.precision_score(y, pred, average="macro"))
    assert got["recall"][0] == pytest.approx(sk.recall_score(y, pred, average="macro"))
    assert got["auc"][0] == pytest.approx(sk.roc_auc_score(y, proba, multi_class="ovr"))
    assert got["log_loss"][0] == pytest.approx(sk.log_loss(y, proba))
    ap = np.mean([sk.average_precision_score(y == c, proba[:, c]) for c in range(k)])
    assert got["pr_auc"][0] == pytest.approx(ap)


def test_regression_metrics_match_scikit_learn_and_mape_skips_zero_targets() -> None:
    rng = np.random.default_rng(2)
    y = rng.normal(10, 3, 1000)
    y[:50] = 0.0
    pred = y + rng.normal(0, 1, 1000)
    got = compute(Outcomes("regression", y, pred))
    assert got["mae"][0] == pytest.approx(sk.mean_absolute_error(y, pred))
    assert got["rmse"][0] == pytest.approx(np.sqrt(sk.mean_squared_error(y, pred)))
    assert got["r2"][0] == pytest.approx(sk.r2_score(y, pred))
    nonzero = y != 0
    expected = sk.mean_absolute_percentage_error(y[nonzero], pred[nonzero])
    assert got["mape"][0] == pytest.approx(expected)


def test_undefined_metrics_are_nan_not_errors() -> None:
    one_class = Outcomes("binary", np.zeros(10, int), np.zeros(10, int), np.full(10, 0.3), (0, 1))
    got = compute(one_class)
    assert np.isnan(got["auc"][0])
    assert np.isnan(got["recall"][0])
    assert np.isnan(got["precision"][0])
    assert got["accuracy"][0] == 1.0
    constant = compute(Outcomes("regression", np.zeros(5), np.ones(5)))
    assert np.isnan(constant["r2"][0])
    assert np.isnan(constant["mape"][0])
    assert constant["mae"][0] == 1.0


def test_probability_metrics_are_nan_without_probabilities() -> None:
    outcomes, _, _ = _binary(100)
    got = compute(Outcomes("binary", outcomes.y, outcomes.pred, None, (0, 1), 1))
    assert all(np.isnan(got[m][0]) for m in ("auc", "pr_auc", "log_loss", "brier", "ece"))
    assert not np.isnan(got["f1"][0])


def test_resample_weights_are_seeded_counts_of_n_rows() -> None:
    first = resample_weights(np.random.default_rng(3), 50, 20)
    again = resample_weights(np.random.default_rng(3), 50, 20)
    assert first.shape == (20, 50)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first.sum(axis=1), np.full(20, 50.0))


def test_weighted_metrics_equal_metrics_of_the_resampled_rows() -> None:
    outcomes, y, score = _binary(300, seed=4)
    rng = np.random.default_rng(5)
    index = rng.integers(0, 300, 300)
    weights = np.bincount(index, minlength=300).astype(float)[None, :]
    got = compute(outcomes, weights)
    assert got["auc"][0] == pytest.approx(sk.roc_auc_score(y[index], score[index]))
    assert got["pr_auc"][0] == pytest.approx(sk.average_precision_score(y[index], score[index]))
    assert got["f1"][0] == pytest.approx(sk.f1_score(y[index], outcomes.pred[index]))


def test_confusion_and_reliability() -> None:
    outcomes, y, _ = _binary(500)
    np.testing.assert_array_equal(confusion(outcomes), sk.confusion_matrix(y, outcomes.pred))
    bins = reliability(outcomes)
    assert sum(b["count"] for b in bins) == 500
    assert all(0 <= b["observed"] <= 1 for b in bins)
