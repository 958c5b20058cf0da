"""From a model and a frame to ``Outcomes``: the task, the features, the predictions.

The model is duck-typed: anything with ``predict`` (and ``predict_proba`` for
probability metrics) works, a scikit-learn estimator or pipeline as well as Keel's
loaded models. Class order for ``predict_proba`` columns comes from ``classes_``, then
from a ``signature.classes``, then from the sorted labels of the target.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from keel.errors import InvalidArgument
from keel.evaluation._metrics import Outcomes

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["TASKS", "feature_columns", "infer_task", "predict_outcomes"]

TASKS = ("binary", "multiclass", "regression")


def _classes_of(model: Any) -> tuple[Any, ...] | None:
    found = getattr(model, "classes_", None)
    if found is None:
        found = getattr(getattr(model, "signature", None), "classes", None)
    if found is None:
        return None
    return tuple(v.item() if hasattr(v, "item") else v for v in np.asarray(found).ravel())


def _is_classifier(model: Any) -> bool:
    return (
        getattr(model, "_estimator_type", None) == "classifier"
        or hasattr(model, "predict_proba")
        or _classes_of(model) is not None
    )


def infer_task(model: Any, y: pd.Series, task: str | None) -> str:
    """``binary``, ``multiclass`` or ``regression``: given, or read from model and target.

    A model with ``predict_proba`` or ``classes_`` is a classifier; otherwise a target
    that is not numeric, or an integer target with at most two values, is a class label;
    anything else is regression.
    """
    import pandas as pd

    if task is not None:
        if task not in TASKS:
            raise InvalidArgument(f"unknown task {task!r}; use one of {', '.join(TASKS)} or None")
        return task
    numeric = pd.api.types.is_numeric_dtype(y) and not pd.api.types.is_bool_dtype(y)
    classifier = _is_classifier(model) or not numeric
    if not classifier and pd.api.types.is_integer_dtype(y) and y.nunique() <= 2:
        classifier = True
    if not classifier:
        return "regression"
    classes = _classes_of(model)
    count = len(classes) if classes is not None else int(y.nunique())
    return "binary" if count <= 2 else "multiclass"


def feature_columns(model: Any, data: pd.DataFrame, target: str) -> list[str]:
    """The columns the model is given: ``feature_names_in_``, the signature's inputs, or
    every column but the target."""
    names = getattr(model, "feature_names_in_", None)
    if names is None:
        inputs = getattr(getattr(model, "signature", None), "inputs", None)
        if inputs:
            names = [spec.name for spec in inputs]
    if names is None:
        return [c for c in data.columns if c != target]
    wanted = [str(n) for n in names]
    missing = [n for n in wanted if n not in data.columns]
    if missing:
        raise InvalidArgument(
            f"the model needs columns the data lacks: {', '.join(map(repr, missing[:10]))}; "
            "evaluate on data with the model's input columns"
        )
    return wanted


def _codes(values: Any, classes: Sequence[Any], what: str) -> np.ndarray[Any, np.dtype[np.int64]]:
    import pandas as pd

    index = pd.Index(list(classes))
    codes = np.asarray(index.get_indexer(np.asarray(values, dtype=object)), dtype=np.int64)
    if (codes < 0).any():
        unknown = sorted({str(v) for v, c in zip(np.asarray(values), codes, strict=True) if c < 0})
        raise InvalidArgument(
            f"the {what} holds labels the model does not know: {', '.join(unknown[:10])} "
            f"(its classes are {', '.join(map(str, classes))}); evaluate on data with the "
            "labels the model was trained on, or pass task='regression' for a regressor"
        )
    return codes


def predict_outcomes(
    model: Any,
    features: pd.DataFrame,
    y: pd.Series,
    task: str,
    positive_label: Any,
    threshold: float,
) -> tuple[Outcomes, list[str]]:
    """Run the model once and return its outcomes and any notes about what is missing."""
    if not hasattr(model, "predict"):
        raise InvalidArgument(
            f"cannot evaluate a {type(model).__name__}: it has no predict method; pass a "
            "fitted estimator or a model loaded with keel.load_model"
        )
    notes: list[str] = []
    if task == "regression":
        values = np.asarray(model.predict(features), dtype=np.float64).ravel()
        target = np.asarray(y, dtype=np.float64)
        if not np.isfinite(values).all():
            raise InvalidArgument("the model predicted NaN or infinite values; fix the model")
        return Outcomes("regression", target, _same_length(values, target)), notes
    proba = _proba(model, features, notes)
    classes = _classes_of(model)
    if classes is None:
        labels = set(y.dropna().tolist())
        if proba is None:
            labels |= set(np.asarray(model.predict(features)).ravel().tolist())
        classes = tuple(sorted(labels, key=lambda v: (str(type(v)), v)))
    if proba is not None and proba.shape[1] != len(classes):
        raise InvalidArgument(
            f"predict_proba returned {proba.shape[1]} columns for {len(classes)} classes; "
            "give the model a classes_ attribute naming its predict_proba columns"
        )
    truth = _codes(y, classes, "target")
    if task == "binary":
        if len(classes) > 2:
            raise InvalidArgument(
                f"task='binary' but the model has {len(classes)} classes; use 'multiclass'"
            )
        positive = _positive(classes, positive_label)
        if proba is not None:
            score = proba[:, positive]
            other = 1 - positive if len(classes) == 2 else positive
            pred = np.where(score >= threshold, positive, other).astype(np.int64)
            return Outcomes("binary", truth, pred, score, classes, positive), notes
        pred = _codes(np.asarray(model.predict(features)).ravel(), classes, "prediction")
        return Outcomes("binary", truth, _same_length(pred, truth), None, classes, positive), notes
    pred = _codes(np.asarray(model.predict(features)).ravel(), classes, "prediction")
    return Outcomes("multiclass", truth, _same_length(pred, truth), proba, classes), notes


def _proba(model: Any, features: pd.DataFrame, notes: list[str]) -> Any:
    if not hasattr(model, "predict_proba"):
        notes.append(
            f"{type(model).__name__} has no predict_proba, so auc, pr_auc, log_loss, brier "
            "and ece are not computed; evaluate a model with predict_proba to get them"
        )
        return None
    proba = np.asarray(model.predict_proba(features), dtype=np.float64)
    if proba.ndim != 2 or proba.shape[0] != len(features):
        raise InvalidArgument(
            f"predict_proba returned shape {proba.shape}; expected (rows, classes)"
        )
    if not np.isfinite(proba).all():
        raise InvalidArgument("predict_proba returned NaN or infinite values; fix the model")
    return proba


def _positive(classes: Sequence[Any], positive_label: Any) -> int:
    if positive_label is None:
        return len(classes) - 1
    for i, label in enumerate(classes):
        if label == positive_label:
            return i
    raise InvalidArgument(
        f"positive_label {positive_label!r} is not a class of the model "
        f"({', '.join(map(repr, classes))}); pass one of those"
    )


def _same_length(pred: Any, truth: Any) -> Any:
    if pred.shape[0] != truth.shape[0]:
        raise InvalidArgument(
            f"the model returned {pred.shape[0]} predictions for {truth.shape[0]} rows"
        )
    return pred
