"""Performance without labels (confidence-based estimation) and with them.

``estimate_performance`` is CBPE as NannyML describes it: when a classifier's
probabilities are calibrated, each row's label is Bernoulli(p), so the expected
confusion-matrix cells are sums of ``p`` and ``1 - p`` over the rows predicted positive
or negative, and expected accuracy is the mean probability of the predicted class.
Expected ROC AUC is the AUC of the expected ROC curve: rows sorted by score, expected
true and false positives as cumulative sums of ``p`` and ``1 - p``, trapezoids (ties
get half credit) — the AUC scikit-learn gives when every row is split into a positive
of weight ``p`` and a negative of weight ``1 - p``. Multiclass metrics are one-vs-rest
macro averages, as in ``keel.evaluation``.

The estimate is only as good as the calibration, and calibration survives covariate
shift but not concept drift (a change of P(y | x)). ``calibration_error`` measures it
once labels arrive, so a monitor can say when the estimate stops being trustworthy.

Every function returns a plain ``dict`` with ``rows``; with no rows the dict is
``{"rows": 0}`` and callers treat a missing metric as "no data". Undefined metrics
(recall with no expected positives, AUC with one class) are NaN, as in
``keel.evaluation``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidArgument

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Array = npt.NDArray[np.float64]

__all__ = ["calibration_error", "estimate_performance", "realized_performance"]

METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")


def _proba(proba: Any, classes: Sequence[Any] | None) -> Array:
    import numpy as np

    try:
        array = np.asarray(proba, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(
            f"proba must be numbers, one row per prediction and one column per class ({exc}); "
            "pass model.predict_proba(x)"
        ) from exc
    if array.ndim != 2:
        raise InvalidArgument(
            f"proba must be 2-D (rows, classes), got shape {array.shape}; for a binary model "
            "pass both columns of predict_proba, not only the positive one"
        )
    k = array.shape[1]
    if classes is not None and len(classes) != k:
        raise InvalidArgument(
            f"proba has {k} columns but {len(classes)} classes were given; pass the model's "
            "classes_ in the order of predict_proba's columns"
        )
    if k < 2:
        raise InvalidArgument(
            f"performance needs at least two classes, got {k}; the model was trained on one "
            "class, so there is nothing to estimate"
        )
    if array.size and (not np.isfinite(array).all() or array.min() < 0 or array.max() > 1):
        raise InvalidArgument(
            "proba must be finite probabilities in [0, 1]; drop rows with missing scores "
            "before estimating"
        )
    return array


def _positive(classes: Sequence[Any], positive: Any) -> int:
    if len(classes) != 2:
        if positive is not None:
            raise InvalidArgument(
                f"positive applies to binary models only, this one has {len(classes)} classes; "
                "leave positive unset for macro averages"
            )
        return -1
    if positive is None:
        return 1
    for i, c in enumerate(classes):
        if c == positive:
            return i
    raise InvalidArgument(
        f"positive class {positive!r} is not one of the classes {list(classes)!r}; "
        "pass one of them or leave it unset for the last class"
    )


def _binary_cells(p: Array, pred: Array) -> tuple[float, float, float]:
    """Expected true positives, false positives and false negatives."""
    tp = float(p @ pred)
    fp = float((1.0 - p) @ pred)
    fn = float(p @ (1.0 - pred))
    return tp, fp, fn


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else float("nan")


def _threshold(tp: float, fp: float, fn: float) -> tuple[float, float, float]:
    return _ratio(tp, tp + fp), _ratio(tp, tp + fn), _ratio(2 * tp, 2 * tp + fp + fn)


def _expected_auc(score: Array, p: Array) -> float:
    """AUC of the expected ROC curve: labels Bernoulli(p), ties half credit."""
    import numpy as np

    from keel.evaluation._metrics import _ranking

    # The ranking metric is written for weighted 0/1 labels; a fractional label p is a
    # positive of weight p plus a negative of weight 1 - p at the same score.
    auc, _ = _ranking(score, p, np.ones((1, score.shape[0])))
    return float(auc[0])


def _nanmean(values: list[float]) -> float:
    defined = [v for v in values if v == v]
    return sum(defined) / len(defined) if defined else float("nan")


def estimate_performance(
    proba: Any, classes: Sequence[Any], *, positive: Any = None
) -> dict[str, float]:
    """Expected accuracy, precision, recall, F1 and ROC AUC from calibrated probabilities.

    ``proba`` is ``(rows, classes)`` in the order of ``classes``; the prediction is the
    most probable class (``predict_proba(x).argmax(1)``, as scikit-learn's ``predict``).
    Binary precision, recall and F1 are those of ``positive`` (default: the last class);
    multiclass ones are macro averages over classes. No labels are needed.
    """
    import numpy as np

    array = _proba(proba, classes)
    pos = _positive(classes, positive)
    n = array.shape[0]
    if n == 0:
        return {"rows": 0}
    predicted = array.argmax(axis=1)
    out: dict[str, float] = {"rows": n, "accuracy": float(array.max(axis=1).mean())}
    k = array.shape[1]
    if k == 2:
        p = array[:, pos]
        pred = (predicted == pos).astype(np.float64)
        precision, recall, f1 = _threshold(*_binary_cells(p, pred))
        auc = _expected_auc(p, p)
    else:
        per_class = [
            _threshold(*_binary_cells(array[:, c], (predicted == c).astype(np.float64)))
            for c in range(k)
        ]
        precision, recall, f1 = (_nanmean([m[i] for m in per_class]) for i in range(3))
        auc = _nanmean([_expected_auc(array[:, c], array[:, c]) for c in range(k)])
    out |= {"precision": precision, "recall": recall, "f1": f1, "roc_auc": auc}
    return out


def _indices(labels: Any, classes: Sequence[Any], what: str) -> npt.NDArray[np.int64]:
    import numpy as np

    values = np.asarray(labels)
    if values.ndim != 1:
        raise InvalidArgument(f"{what} must be 1-D, got shape {values.shape}; pass one label a row")
    index = {c: i for i, c in enumerate(classes)}
    unique, inverse = np.unique(values, return_inverse=True)
    plain = [u.item() if isinstance(u, np.generic) else u for u in unique]
    unknown = [u for u in plain if u not in index]
    if unknown:
        raise InvalidArgument(
            f"{what} holds labels that are not classes: {unknown[:5]!r}; classes are "
            f"{list(classes)!r} (pass the model's classes_)"
        )
    lookup = np.array([index[u] for u in plain], dtype=np.int64)
    result: npt.NDArray[np.int64] = lookup[inverse.reshape(-1)]
    return result


def realized_performance(
    y_true: Any,
    y_pred: Any,
    proba: Any,
    classes: Sequence[Any],
    *,
    positive: Any = None,
) -> dict[str, float]:
    """Accuracy, precision, recall, F1 and ROC AUC once labels have arrived.

    The same keys and averaging as ``estimate_performance``, computed by
    ``keel.evaluation``'s metrics. ``y_pred`` may be None (the most probable class of
    ``proba``); ``proba`` may be None (``roc_auc`` is then NaN).
    """
    import numpy as np

    from keel.evaluation._metrics import Outcomes, compute

    if len(classes) < 2:
        raise InvalidArgument(
            f"performance needs at least two classes, got {len(classes)}; pass the model's classes_"
        )
    pos = _positive(classes, positive)
    y = _indices(y_true, classes, "y_true")
    array = None if proba is None else _proba(proba, classes)
    if y_pred is None:
        if array is None:
            raise InvalidArgument("pass y_pred or proba: realized performance needs predictions")
        pred = array.argmax(axis=1).astype(np.int64)
    else:
        pred = _indices(y_pred, classes, "y_pred")
    n = y.shape[0]
    if pred.shape[0] != n or (array is not None and array.shape[0] != n):
        raise InvalidArgument(
            f"y_true has {n} rows, y_pred {pred.shape[0]}"
            + ("" if array is None else f", proba {array.shape[0]}")
            + "; pass the same rows to each"
        )
    if n == 0:
        return {"rows": 0}
    binary = len(classes) == 2
    score = None if array is None else (array[:, pos] if binary else array)
    outcomes = Outcomes(
        "binary" if binary else "multiclass",
        y,
        pred,
        score,
        tuple(classes),
        pos if binary else 1,
    )
    metrics = compute(outcomes)
    out: dict[str, float] = {"rows": n}
    for name in METRICS:
        out[name] = float(metrics["auc" if name == "roc_auc" else name][0])
    return out


def calibration_error(y_true: Any, proba: Any, classes: Sequence[Any] | None = None) -> float:
    """Expected calibration error over 10 equal-width bins (NaN with no rows).

    Binary: of the last column's probability against the last class; multiclass: of the
    top-class confidence against being right, as ``keel.evaluation``'s ``ece``. Labels
    are column indices, or values of ``classes`` when it is given. Above a few points
    (say 0.05) a label-free estimate should not be trusted.
    """
    import numpy as np

    from keel.evaluation._metrics import _ece

    array = _proba(proba, classes)
    k = array.shape[1]
    y = _indices(y_true, list(range(k)) if classes is None else classes, "y_true")
    n = y.shape[0]
    if n != array.shape[0]:
        raise InvalidArgument(
            f"y_true has {n} rows and proba {array.shape[0]}; pass the same rows to each"
        )
    if n == 0:
        return float("nan")
    if k == 2:
        conf = array[:, 1]
        hit = (y == 1).astype(np.float64)
    else:
        conf = array.max(axis=1)
        hit = (array.argmax(axis=1) == y).astype(np.float64)
    w = np.ones((1, n))
    return float(_ece(conf, hit, w, w.sum(axis=1))[0])
