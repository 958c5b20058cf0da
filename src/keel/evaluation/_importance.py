"""Permutation feature importance on a sample, scored with Keel's own metrics.

scikit-learn's ``permutation_importance`` wants an estimator with ``fit``; models here
are duck-typed (anything with ``predict``), so a thin adapter stands in for the
estimator and the scorer runs the same metric code as the report. Importance is the
drop in the primary metric when a column is shuffled (sign-adjusted so that bigger is
always more important, also for lower-is-better metrics such as RMSE).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from keel.evaluation._metrics import HIGHER_IS_BETTER, compute
from keel.evaluation._predict import predict_outcomes

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["permutation_importances"]


class _Scored:
    """The model as scikit-learn's permutation_importance expects it (it is never fitted)."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def fit(self, *args: Any, **kwargs: Any) -> _Scored:
        raise NotImplementedError("evaluation never refits the model")

    def predict(self, features: Any) -> Any:
        return self.model.predict(features)


def permutation_importances(
    model: Any,
    features: pd.DataFrame,
    y: pd.Series,
    *,
    task: str,
    metric: str,
    positive_label: Any,
    threshold: float,
    repeats: int,
    max_rows: int,
    seed: int,
) -> list[dict[str, Any]]:
    """Mean and standard deviation of the metric drop per column, most important first."""
    import pandas as pd
    from sklearn.inspection import permutation_importance

    if repeats <= 0 or max_rows <= 0 or features.shape[1] == 0:
        return []
    if len(features) > max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(len(features), max_rows, replace=False))
        features, y = features.iloc[rows], y.iloc[rows]
    sign = 1.0 if metric in HIGHER_IS_BETTER else -1.0

    def score(adapter: _Scored, x: Any, truth: Any) -> float:
        labels = pd.Series(np.asarray(truth))
        outcomes, _ = predict_outcomes(adapter.model, x, labels, task, positive_label, threshold)
        return sign * float(compute(outcomes)[metric][0])

    result = permutation_importance(
        _Scored(model), features, y, scoring=score, n_repeats=repeats, random_state=seed
    )
    found = [
        {"feature": str(name), "mean": float(mean), "std": float(std)}
        for name, mean, std in zip(
            features.columns, result.importances_mean, result.importances_std, strict=True
        )
    ]
    return sorted(found, key=lambda f: -f["mean"] if np.isfinite(f["mean"]) else np.inf)
