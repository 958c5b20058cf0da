"""Metrics as weighted sums, so one code path gives point estimates and bootstrap CIs.

A bootstrap resample is a row of multinomial weights over the original rows; every
metric here is written as a function of a ``(B, n)`` weight matrix and returns ``B``
values. Point estimates use a single row of ones. Ranking metrics (ROC AUC, average
precision) sort the scores once and sum weights per distinct score, so ties are handled
exactly as scikit-learn does and the bootstrap never re-sorts.

Undefined values are NaN, never an exception: AUC with one class, recall with no
positive labels, precision with no positive predictions, R² of a constant target, MAPE
when every target is zero (rows whose target is exactly zero are left out of MAPE).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "CLASSIFICATION_METRICS",
    "FAIRNESS_METRICS",
    "HIGHER_IS_BETTER",
    "PROBA_METRICS",
    "REGRESSION_METRICS",
    "Outcomes",
    "compute",
    "resample_weights",
]

Array = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

CLASSIFICATION_METRICS = (
    "accuracy",
    "precision",
    "recall",
    "f1",
    "auc",
    "pr_auc",
    "log_loss",
    "brier",
    "ece",
)
REGRESSION_METRICS = ("mae", "rmse", "r2", "mape")
FAIRNESS_METRICS = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
)
PROBA_METRICS = frozenset({"auc", "pr_auc", "log_loss", "brier", "ece"})
HIGHER_IS_BETTER = frozenset(
    {"accuracy", "precision", "recall", "f1", "auc", "pr_auc", "r2", "demographic_parity_ratio"}
)
CALIBRATION_BINS = 10
_EPS = float(np.finfo(np.float64).eps)


@dataclass(frozen=True)
class Outcomes:
    """Labels and predictions of one task, ready for the weighted metrics.

    Classification: ``y`` and ``pred`` are class indices into ``classes``; ``proba`` is
    the positive-class score (binary, shape ``(n,)``) or the class probabilities
    (multiclass, ``(n, K)``), or None when the model has no ``predict_proba``.
    Regression: ``y`` and ``pred`` are floats and ``proba`` is None.
    """

    task: str  # "binary", "multiclass" or "regression"
    y: npt.NDArray[Any]
    pred: npt.NDArray[Any]
    proba: Array | None = None
    classes: tuple[Any, ...] = ()
    positive: int = 1  # index of the positive class (binary)

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def subset(self, rows: npt.NDArray[Any]) -> Outcomes:
        """The outcomes of the rows selected by a boolean mask or an index array."""
        mask = rows
        proba = None if self.proba is None else self.proba[mask]
        return Outcomes(
            self.task, self.y[mask], self.pred[mask], proba, self.classes, self.positive
        )

    @property
    def metric_names(self) -> tuple[str, ...]:
        return REGRESSION_METRICS if self.task == "regression" else CLASSIFICATION_METRICS


def resample_weights(rng: np.random.Generator, n: int, count: int) -> Array:
    """``count`` bootstrap resamples of ``n`` rows as a ``(count, n)`` matrix of counts."""
    index = rng.integers(0, n, size=(count, n))
    index += np.arange(count, dtype=np.int64)[:, None] * n
    counts = np.bincount(index.ravel(), minlength=count * n)
    return counts.reshape(count, n).astype(np.float64)


def compute(outcomes: Outcomes, weights: Array | None = None) -> dict[str, Array]:
    """Every metric of the task for each weight row (``None``: one row of ones)."""
    if weights is None:
        weights = np.ones((1, len(outcomes)))
    with np.errstate(divide="ignore", invalid="ignore"):
        if outcomes.task == "regression":
            return _regression(outcomes.y.astype(np.float64), outcomes.pred, weights)
        if outcomes.task == "binary":
            return _binary(outcomes, weights)
        return _multiclass(outcomes, weights)


def _ratio(num: Array, den: Array) -> Array:
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _regression(y: Array, pred: Array, w: Array) -> dict[str, Array]:
    total = w.sum(axis=1)
    err = y - pred
    sse = w @ (err * err)
    sum_y = w @ y
    sst = w @ (y * y) - sum_y * sum_y / total
    # sst below rounding noise means a constant target: R² is undefined.
    constant = sst <= 1e-12 * np.maximum(w @ (y * y), 1e-300)
    nonzero = y != 0
    ape = np.divide(np.abs(err), np.abs(y), out=np.zeros_like(y), where=nonzero)
    return {
        "mae": (w @ np.abs(err)) / total,
        "rmse": np.sqrt(sse / total),
        "r2": np.where(constant, np.nan, 1.0 - sse / np.where(constant, 1.0, sst)),
        "mape": _ratio(w @ ape, w @ nonzero.astype(np.float64)),
    }


def _counts(y: Array, pred: Array, w: Array) -> tuple[Array, Array, Array]:
    """Weighted true positives, false positives and false negatives for 0/1 arrays."""
    tp = w @ (y * pred)
    fp = w @ ((1.0 - y) * pred)
    fn = w @ (y * (1.0 - pred))
    return tp, fp, fn


def _threshold_metrics(y: Array, pred: Array, w: Array) -> tuple[Array, Array, Array]:
    tp, fp, fn = _counts(y, pred, w)
    return _ratio(tp, tp + fp), _ratio(tp, tp + fn), _ratio(2 * tp, 2 * tp + fp + fn)


def _binary(o: Outcomes, w: Array) -> dict[str, Array]:
    total = w.sum(axis=1)
    y = (o.y == o.positive).astype(np.float64)
    pred = (o.pred == o.positive).astype(np.float64)
    precision, recall, f1 = _threshold_metrics(y, pred, w)
    out = {
        "accuracy": (w @ (y == pred).astype(np.float64)) / total,
        "precision": precision,
        "recall": recall,
        "f1": f1,
    }
    if o.proba is None:
        nan = np.full(w.shape[0], np.nan)
        return out | dict.fromkeys(sorted(PROBA_METRICS), nan)
    p = o.proba
    clipped = np.clip(p, _EPS, 1 - _EPS)
    loss = -(y * np.log(clipped) + (1.0 - y) * np.log1p(-clipped))
    auc, ap = _ranking(p, y, w)
    out |= {
        "auc": auc,
        "pr_auc": ap,
        "log_loss": (w @ loss) / total,
        "brier": (w @ ((p - y) ** 2)) / total,
        "ece": _ece(p, y, w, total),
    }
    return out


def _ranking(score: Array, y: Array, w: Array) -> tuple[Array, Array]:
    """ROC AUC (Mann-Whitney with half credit for ties) and average precision."""
    order = np.argsort(score, kind="mergesort")
    s = score[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    ws = w[:, order]
    ys = y[order]
    pos = np.add.reduceat(ws * ys, starts, axis=1)  # (B, G) ascending score
    neg = np.add.reduceat(ws * (1.0 - ys), starts, axis=1)
    n_pos, n_neg = pos.sum(axis=1), neg.sum(axis=1)
    below = np.cumsum(neg, axis=1) - neg
    auc = _ratio(np.sum(pos * (below + 0.5 * neg), axis=1), n_pos * n_neg)
    tp = np.cumsum(pos[:, ::-1], axis=1)  # descending thresholds
    fp = np.cumsum(neg[:, ::-1], axis=1)
    predicted = tp + fp
    precision = np.where(predicted > 0, tp / np.where(predicted > 0, predicted, 1.0), 0.0)
    recall_gain = pos[:, ::-1] / np.where(n_pos > 0, n_pos, 1.0)[:, None]
    ap = np.where(n_pos > 0, np.sum(recall_gain * precision, axis=1), np.nan)
    # With one class present, AUC is undefined; so is average precision with no positives.
    auc = np.where((n_pos > 0) & (n_neg > 0), auc, np.nan)
    return auc, ap


def _ece(conf: Array, correct: Array, w: Array, total: Array) -> Array:
    """Expected calibration error over equal-width confidence bins."""
    bins = np.minimum((conf * CALIBRATION_BINS).astype(np.int64), CALIBRATION_BINS - 1)
    onehot = np.zeros((conf.shape[0], CALIBRATION_BINS))
    onehot[np.arange(conf.shape[0]), bins] = 1.0
    observed = w @ (onehot * correct[:, None])
    predicted = w @ (onehot * conf[:, None])
    gaps: Array = np.sum(np.abs(observed - predicted), axis=1)
    return gaps / total


def _multiclass(o: Outcomes, w: Array) -> dict[str, Array]:
    total = w.sum(axis=1)
    k = len(o.classes)
    out = {"accuracy": (w @ (o.y == o.pred).astype(np.float64)) / total}
    per_class = [
        _threshold_metrics((o.y == c).astype(np.float64), (o.pred == c).astype(np.float64), w)
        for c in range(k)
    ]
    for i, name in enumerate(("precision", "recall", "f1")):
        out[name] = _nanmean(np.stack([m[i] for m in per_class], axis=1))
    if o.proba is None:
        nan = np.full(w.shape[0], np.nan)
        return out | dict.fromkeys(sorted(PROBA_METRICS), nan)
    proba = o.proba
    onehot = np.zeros_like(proba)
    onehot[np.arange(proba.shape[0]), o.y] = 1.0
    ranking = [_ranking(proba[:, c], onehot[:, c], w) for c in range(k)]
    true_p = np.clip(proba[np.arange(proba.shape[0]), o.y], _EPS, 1.0)
    top = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == o.y).astype(np.float64)
    out |= {
        "auc": _nanmean(np.stack([r[0] for r in ranking], axis=1)),
        "pr_auc": _nanmean(np.stack([r[1] for r in ranking], axis=1)),
        "log_loss": (w @ -np.log(true_p)) / total,
        "brier": (w @ np.sum((proba - onehot) ** 2, axis=1)) / total,
        "ece": _ece(top, correct, w, total),
    }
    return out


def _nanmean(values: Array) -> Array:
    """Mean over classes of the defined values (macro average); NaN when none is."""
    defined = ~np.isnan(values)
    count = defined.sum(axis=1)
    sums = np.where(defined, values, 0.0).sum(axis=1)
    return np.where(count > 0, sums / np.maximum(count, 1), np.nan)


def reliability(outcomes: Outcomes) -> list[dict[str, float | int]]:
    """Reliability-diagram bins: count, mean confidence and observed frequency per bin."""
    if outcomes.proba is None or outcomes.task == "regression":
        return []
    if outcomes.task == "binary":
        conf = outcomes.proba
        hit = (outcomes.y == outcomes.positive).astype(np.float64)
    else:
        conf = outcomes.proba.max(axis=1)
        hit = (outcomes.proba.argmax(axis=1) == outcomes.y).astype(np.float64)
    bins = np.minimum((conf * CALIBRATION_BINS).astype(np.int64), CALIBRATION_BINS - 1)
    counts = np.bincount(bins, minlength=CALIBRATION_BINS)
    conf_sum = np.bincount(bins, weights=conf, minlength=CALIBRATION_BINS)
    hit_sum = np.bincount(bins, weights=hit, minlength=CALIBRATION_BINS)
    rows: list[dict[str, float | int]] = []
    for b in range(CALIBRATION_BINS):
        if counts[b]:
            rows.append(
                {
                    "lower": b / CALIBRATION_BINS,
                    "upper": (b + 1) / CALIBRATION_BINS,
                    "count": int(counts[b]),
                    "mean_predicted": float(conf_sum[b] / counts[b]),
                    "observed": float(hit_sum[b] / counts[b]),
                }
            )
    return rows


def curves(outcomes: Outcomes, points: int = 200) -> dict[str, dict[str, dict[str, list[float]]]]:
    """ROC and precision-recall curves per positive class, thinned to about ``points``."""
    if outcomes.proba is None or outcomes.task == "regression":
        return {}
    from sklearn.metrics import precision_recall_curve, roc_curve

    if outcomes.task == "binary":
        pairs = [
            (outcomes.classes[outcomes.positive], outcomes.y == outcomes.positive, outcomes.proba)
        ]
    else:
        pairs = [(c, outcomes.y == i, outcomes.proba[:, i]) for i, c in enumerate(outcomes.classes)]
    roc: dict[str, dict[str, list[float]]] = {}
    pr: dict[str, dict[str, list[float]]] = {}
    for label, truth, score in pairs:
        if truth.all() or not truth.any():
            continue
        fpr, tpr, _ = roc_curve(truth, score)
        precision, recall, _ = precision_recall_curve(truth, score)
        roc[str(label)] = {"x": _thin(fpr, points), "y": _thin(tpr, points)}
        pr[str(label)] = {"x": _thin(recall, points), "y": _thin(precision, points)}
    return {"roc": roc, "pr": pr}


def _thin(values: Array, points: int) -> list[float]:
    if values.shape[0] <= points:
        return [float(v) for v in values]
    index = np.unique(np.linspace(0, values.shape[0] - 1, points).round().astype(np.int64))
    return [float(v) for v in values[index]]


def confusion(outcomes: Outcomes) -> list[list[int]]:
    """Rows are true classes, columns predicted classes, in ``outcomes.classes`` order."""
    k = len(outcomes.classes)
    flat = outcomes.y.astype(np.int64) * k + outcomes.pred.astype(np.int64)
    matrix: list[list[int]] = np.bincount(flat, minlength=k * k).reshape(k, k).tolist()
    return matrix
