"""Label-free performance estimation against the performance labels later reveal."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

from keel.errors import InvalidArgument
from keel.monitoring import calibration_error, estimate_performance, realized_performance

KEYS = {"rows", "accuracy", "precision", "recall", "f1", "roc_auc"}


def calibrated_binary(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and labels drawn as Bernoulli(p): calibrated by construction."""
    rng = np.random.default_rng(seed)
    p = rng.beta(0.8, 0.8, n)
    y = (rng.random(n) < p).astype(np.int64)
    return np.c_[1 - p, p], y


def test_binary_estimates_match_realized_within_sampling_error() -> None:
    proba, y = calibrated_binary(50_000, seed=1)
    classes = ["no", "yes"]
    labels = np.array(classes)[y]
    estimated = estimate_performance(proba, classes)
    realized = realized_performance(labels, None, proba, classes)
    assert set(estimated) == set(realized) == KEYS
    assert estimated["rows"] == realized["rows"] == 50_000
    # Standard errors at n=50k are about 0.002-0.003; allow 4 of them.
    for name in ("accuracy", "precision", "recall", "f1", "roc_auc"):
        assert estimated[name] == pytest.approx(realized[name], abs=0.01), name


def test_realized_agrees_with_scikit_learn() -> None:
    proba, y = calibrated_binary(2_000, seed=2)
    pred = proba.argmax(axis=1)
    got = realized_performance(y, pred, proba, [0, 1])
    assert got["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert got["precision"] == pytest.approx(precision_score(y, pred))
    assert got["recall"] == pytest.approx(recall_score(y, pred))
    assert got["f1"] == pytest.approx(f1_score(y, pred))
    assert got["roc_auc"] == pytest.approx(roc_auc_score(y, proba[:, 1]))
    as_objects = np.array(["no", "yes"], dtype=object)[y]
    assert realized_performance(as_objects, None, proba, ["no", "yes"]) == got


def test_positive_class_can_be_the_first() -> None:
    proba, y = calibrated_binary(50_000, seed=3)
    estimated = estimate_performance(proba, [0, 1], positive=0)
    realized = realized_performance(y, None, proba, [0, 1], positive=0)
    pred = proba.argmax(axis=1)
    assert realized["recall"] == pytest.approx(recall_score(y, pred, pos_label=0))
    assert estimated["recall"] == pytest.approx(realized["recall"], abs=0.01)
    assert estimated["roc_auc"] == pytest.approx(realized["roc_auc"], abs=0.01)


def test_expected_auc_is_the_auc_of_expected_labels_in_an_exact_case() -> None:
    # Each row is a positive of weight p and a negative of weight 1 - p at its score.
    p = np.array([0.9, 0.7, 0.7, 0.4, 0.2, 0.1])
    expanded_score = np.r_[p, p]
    expanded_label = np.r_[np.ones_like(p), np.zeros_like(p)]
    weight = np.r_[p, 1 - p]
    expected = roc_auc_score(expanded_label, expanded_score, sample_weight=weight)
    got = estimate_performance(np.c_[1 - p, p], [0, 1])
    assert got["roc_auc"] == pytest.approx(expected, abs=1e-12)
    # The expected confusion cells, worked by hand: predicted positive are p > 0.5.
    tp, fp, fn = 0.9 + 0.7 + 0.7, 0.1 + 0.3 + 0.3, 0.4 + 0.2 + 0.1
    assert got["precision"] == pytest.approx(tp / (tp + fp))
    assert got["recall"] == pytest.approx(tp / (tp + fn))
    assert got["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert got["accuracy"] == pytest.approx(np.mean([0.9, 0.7, 0.7, 0.6, 0.8, 0.9]))


def test_multiclass_estimates_match_realized() -> None:
    rng = np.random.default_rng(4)
    n, k = 50_000, 3
    proba = rng.dirichlet([0.6, 0.6, 0.6], n)
    y = (rng.random(n)[:, None] > np.cumsum(proba, axis=1)).sum(axis=1)  # y ~ Categorical(p)
    y = np.minimum(y, k - 1)
    classes = ["a", "b", "c"]
    estimated = estimate_performance(proba, classes)
    realized = realized_performance(np.array(classes)[y], None, proba, classes)
    assert realized["roc_auc"] == pytest.approx(
        roc_auc_score(y, proba, multi_class="ovr", average="macro")
    )
    assert realized["f1"] == pytest.approx(f1_score(y, proba.argmax(axis=1), average="macro"))
    for name in ("accuracy", "precision", "recall", "f1", "roc_auc"):
        assert estimated[name] == pytest.approx(realized[name], abs=0.01), name
    with pytest.raises(InvalidArgument, match="binary models only"):
        estimate_performance(proba, classes, positive="a")


def test_empty_input_is_rows_zero() -> None:
    assert estimate_performance(np.empty((0, 2)), [0, 1]) == {"rows": 0}
    assert realized_performance([], [], np.empty((0, 2)), [0, 1]) == {"rows": 0}
    assert math.isnan(calibration_error([], np.empty((0, 2))))


def test_a_single_class_leaves_auc_undefined() -> None:
    # Every row surely negative: no expected positives, so recall and AUC are undefined.
    certain = np.c_[np.ones(10), np.zeros(10)]
    got = estimate_performance(certain, [0, 1])
    assert got["accuracy"] == 1.0
    assert math.isnan(got["roc_auc"])
    assert math.isnan(got["recall"])
    # Labels of one class only: realized AUC is undefined, accuracy is not.
    proba, _ = calibrated_binary(100, seed=5)
    realized = realized_performance(np.zeros(100, dtype=int), None, proba, [0, 1])
    assert math.isnan(realized["roc_auc"])
    assert 0 <= realized["accuracy"] <= 1
    with pytest.raises(InvalidArgument, match="at least two classes"):
        estimate_performance(np.ones((3, 1)), ["only"])


def test_calibration_error_tells_calibrated_from_overconfident() -> None:
    proba, y = calibrated_binary(50_000, seed=6)
    assert calibration_error(y, proba) < 0.02
    p = proba[:, 1]
    sharp = np.clip((p - 0.5) * 3 + 0.5, 0, 1)  # overconfident version of the same scores
    assert calibration_error(y, np.c_[1 - sharp, sharp]) > 0.1
    labels = np.array(["n", "y"])[y]
    assert calibration_error(labels, proba, ["n", "y"]) == calibration_error(y, proba)


@pytest.mark.parametrize(
    ("proba", "classes", "message"),
    [
        (np.array([0.2, 0.8]), [0, 1], "must be 2-D"),
        (np.array([[0.2, 0.8]]), [0, 1, 2], "3 classes were given"),
        (np.array([[np.nan, 0.8]]), [0, 1], "finite probabilities"),
        (np.array([[-0.2, 1.2]]), [0, 1], "finite probabilities"),
    ],
)
def test_bad_probabilities_are_refused(proba: np.ndarray, classes: list[int], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        estimate_performance(proba, classes)


def test_bad_labels_are_refused() -> None:
    proba, y = calibrated_binary(10, seed=7)
    with pytest.raises(InvalidArgument, match="not classes: \\['maybe'\\]"):
        realized_performance(np.array(["yes"] * 9 + ["maybe"]), None, proba, ["no", "yes"])
    with pytest.raises(InvalidArgument, match="same rows"):
        realized_performance(y[:5], None, proba, [0, 1])
    with pytest.raises(InvalidArgument, match="not one of the classes"):
        estimate_performance(proba, [0, 1], positive=2)
