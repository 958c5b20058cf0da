"""``evaluate``: judge a model on a holdout, overall and on every slice that matters."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from keel.errors import InvalidArgument
from keel.evaluation._fairness import FairnessResult, fairness
from keel.evaluation._importance import permutation_importances
from keel.evaluation._metrics import (
    HIGHER_IS_BETTER,
    PROBA_METRICS,
    Outcomes,
    compute,
    confusion,
    curves,
    reliability,
    resample_weights,
)
from keel.evaluation._predict import feature_columns, infer_task, predict_outcomes
from keel.evaluation._report import Estimate, EvaluationReport, SliceResult
from keel.evaluation._slices import normalise_specs, slice_groups, slice_name

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["data_digest", "evaluate"]

# Bootstrap weight matrices are processed in chunks of about this many cells (rows x
# resamples), which bounds memory at a few tens of MB whatever the data size.
_CHUNK_CELLS = 2_000_000
_WORST = 5


def evaluate(
    model: Any,
    data: pd.DataFrame,
    target: str,
    *,
    slices: Sequence[str | Sequence[str]] = (),
    sensitive: str | None = None,
    baseline: Any = "dummy",
    task: str | None = None,
    positive_label: Any = None,
    threshold: float = 0.5,
    bootstrap: int = 200,
    seed: int = 0,
    permutation_repeats: int = 5,
    max_rows_importance: int = 5000,
    slice_bins: int = 4,
    min_support: int = 30,
) -> EvaluationReport:
    """Evaluate ``model`` on ``data`` (a holdout with the ``target`` column).

    Metrics come overall and per slice, each with a seeded bootstrap 95% interval
    (``bootstrap`` resamples; groups under ``min_support`` rows get "n too small"
    instead). ``sensitive`` (default: the first slice column) gets fairness gaps;
    ``baseline`` is ``"dummy"`` (a prior/mean dummy fitted on ``data``), a fitted model,
    or None. Binary labels are ``predict_proba >= threshold`` when the model has
    ``predict_proba``, else its ``predict``. Numeric slice columns are cut into
    ``slice_bins`` quantile bands.
    """
    import pandas as pd

    if not isinstance(data, pd.DataFrame):
        raise InvalidArgument(
            f"data must be a pandas DataFrame, got {type(data).__name__}; load it with "
            "pandas or keel.data.load"
        )
    if target not in data.columns:
        shown = ", ".join(map(repr, list(data.columns)[:20]))
        raise InvalidArgument(
            f"no target column {target!r} in the data; name one of its columns: {shown}"
        )
    _check_numbers(
        threshold, bootstrap, permutation_repeats, max_rows_importance, slice_bins, min_support
    )
    if len(data) == 0:
        raise InvalidArgument("the evaluation data has no rows; give a non-empty holdout")
    y = data[target]
    if missing := int(y.isna().sum()):
        raise InvalidArgument(
            f"the target {target!r} has {missing} missing values; drop those rows first"
        )
    specs = normalise_specs(slices)
    groups = {slice_name(spec): slice_groups(data, spec, slice_bins) for spec in specs}
    if sensitive is None and specs:
        sensitive = specs[0] if isinstance(specs[0], str) else specs[0][0]
    sensitive_groups = slice_groups(data, sensitive, slice_bins) if sensitive else []

    features = data[feature_columns(model, data, target)]
    task = infer_task(model, y, task)
    outcomes, notes = predict_outcomes(model, features, y, task, positive_label, threshold)
    primary = _primary(outcomes)

    overall = _estimates(outcomes, np.random.default_rng([seed, 0]), bootstrap, min_support)
    slice_results: list[SliceResult] = []
    for name, found in groups.items():
        for label, mask in found:
            rng = np.random.default_rng([seed, len(slice_results) + 1])
            metrics = _estimates(outcomes.subset(mask), rng, bootstrap, min_support)
            slice_results.append(SliceResult(name, label, int(mask.sum()), metrics))

    fair: FairnessResult | None = None
    if sensitive:
        fair = fairness(outcomes, sensitive, sensitive_groups)
    importance = permutation_importances(
        model,
        features,
        y,
        task=task,
        metric=primary,
        positive_label=positive_label,
        threshold=threshold,
        repeats=permutation_repeats,
        max_rows=max_rows_importance,
        seed=seed,
    )
    baseline_name, baseline_metrics = _baseline(
        baseline, features, y, task, positive_label, threshold
    )
    positive = outcomes.classes[outcomes.positive] if task == "binary" else None
    return EvaluationReport(
        task=task,
        target=target,
        rows=len(data),
        data_digest=data_digest(data),
        primary_metric=primary,
        overall=overall,
        slices=slice_results,
        fairness=fair,
        worst_slices=_worst_slices(slice_results, overall, primary, min_support),
        importance=importance,
        baseline=baseline_name,
        baseline_metrics=baseline_metrics,
        classes=[str(c) for c in outcomes.classes],
        positive_label=None if positive is None else str(positive),
        confusion=[] if task == "regression" else confusion(outcomes),
        calibration=reliability(outcomes),
        curves=curves(outcomes),
        notes=notes,
        params={
            "bootstrap": bootstrap,
            "seed": seed,
            "threshold": threshold,
            "confidence": 0.95,
            "min_support": min_support,
            "slice_bins": slice_bins,
            "sensitive": sensitive,
            "features": list(features.columns.astype(str)),
            "permutation_repeats": permutation_repeats,
            "max_rows_importance": max_rows_importance,
            "importance_metric": primary,
        },
    )


def _check_numbers(threshold: float, *counts: int) -> None:
    if not 0.0 <= float(threshold) <= 1.0:
        raise InvalidArgument(f"threshold must be within [0, 1], got {threshold!r}")
    names = ("bootstrap", "permutation_repeats", "max_rows_importance", "slice_bins", "min_support")
    for name, value in zip(names, counts, strict=True):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidArgument(f"{name} must be a non-negative integer, got {value!r}")
    if counts[3] < 1:
        raise InvalidArgument("slice_bins must be at least 1")


def _primary(outcomes: Outcomes) -> str:
    if outcomes.task == "regression":
        return "rmse"
    return "auc" if outcomes.proba is not None else "f1"


def _why_undefined(metric: str, outcomes: Outcomes) -> str:
    if outcomes.task != "regression" and outcomes.proba is None and metric in PROBA_METRICS:
        return f"{metric} needs predict_proba, which the model lacks"
    present = np.unique(outcomes.y).shape[0]
    if metric in ("auc", "pr_auc") and present < 2:
        return f"only one class in these rows: {metric} is undefined"
    reasons = {
        "precision": "no positive predictions in these rows: precision is undefined",
        "recall": "no positive labels in these rows: recall is undefined",
        "f1": "no positive labels or predictions in these rows: f1 is undefined",
        "r2": "the target is constant in these rows: r2 is undefined",
        "mape": "every target is zero in these rows: mape is undefined",
        "pr_auc": "no positive labels in these rows: pr_auc is undefined",
    }
    return reasons.get(metric, f"{metric} is undefined on these rows")


def _estimates(
    outcomes: Outcomes, rng: np.random.Generator, bootstrap: int, min_support: int
) -> dict[str, Estimate]:
    """Point value and bootstrap percentile interval of every metric of the task."""
    n = len(outcomes)
    point = compute(outcomes)
    draws: dict[str, list[np.ndarray[Any, Any]]] = {name: [] for name in point}
    if bootstrap and n >= max(min_support, 2):
        if outcomes.task == "binary" and outcomes.proba is not None:
            outcomes = outcomes.subset(np.argsort(outcomes.proba, kind="stable"))
        chunk = max(1, min(bootstrap, _CHUNK_CELLS // n))
        for start in range(0, bootstrap, chunk):
            weights = resample_weights(rng, n, min(chunk, bootstrap - start))
            for name, values in compute(outcomes, weights).items():
                draws[name].append(values)
    found: dict[str, Estimate] = {}
    for name in outcomes.metric_names:
        value = float(point[name][0])
        if not np.isfinite(value):
            found[name] = Estimate(None, note=_why_undefined(name, outcomes))
        elif not draws[name]:
            note = None if not bootstrap else f"n too small for an interval ({n} < {min_support})"
            found[name] = Estimate(value, note=note)
        else:
            values = np.concatenate(draws[name])
            defined = values[np.isfinite(values)]
            if defined.shape[0] < 0.9 * values.shape[0]:
                share = 1 - defined.shape[0] / values.shape[0]
                note = f"undefined in {share:.0%} of resamples: no interval"
                found[name] = Estimate(value, note=note)
            else:
                low, high = np.percentile(defined, [2.5, 97.5])
                found[name] = Estimate(value, float(low), float(high))
    return found


def _worst_slices(
    results: list[SliceResult], overall: dict[str, Estimate], metric: str, min_support: int
) -> list[dict[str, Any]]:
    """The groups with at least ``min_support`` rows that do worst on ``metric``."""
    reference = overall[metric].value
    higher = metric in HIGHER_IS_BETTER
    ranked: list[dict[str, Any]] = []
    for result in results:
        estimate = result.metrics.get(metric)
        if result.count < min_support or estimate is None or estimate.value is None:
            continue
        gap = None if reference is None else estimate.value - reference
        if gap is not None and (gap >= 0 if higher else gap <= 0):
            continue  # not worse than overall
        ranked.append(
            {
                "slice": result.slice,
                "value": result.value,
                "count": result.count,
                "metric": metric,
                "score": estimate.value,
                "low": estimate.low,
                "high": estimate.high,
                "overall": reference,
                "gap": gap,
            }
        )
    ranked.sort(key=lambda r: r["score"] if higher else -r["score"])
    return ranked[:_WORST]


def _baseline(
    baseline: Any,
    features: pd.DataFrame,
    y: pd.Series,
    task: str,
    positive_label: Any,
    threshold: float,
) -> tuple[str | None, dict[str, float | None]]:
    if baseline is None:
        return None, {}
    if isinstance(baseline, str):
        if baseline != "dummy":
            raise InvalidArgument(
                f"unknown baseline {baseline!r}; use 'dummy', a fitted model, or None"
            )
        from sklearn.dummy import DummyClassifier, DummyRegressor

        if task == "regression":
            model: Any = DummyRegressor(strategy="mean").fit(features, y)
            name = "dummy (mean)"
        else:
            model = DummyClassifier(strategy="prior").fit(features, y)
            name = "dummy (prior)"
    else:
        model, name = baseline, type(baseline).__name__
    outcomes, _ = predict_outcomes(model, features, y, task, positive_label, threshold)
    values = compute(outcomes)
    return name, {k: (float(v[0]) if np.isfinite(v[0]) else None) for k, v in values.items()}


def data_digest(data: pd.DataFrame) -> str:
    """A BLAKE3 digest of the rows (in any order) and the column names and types.

    Two reports are "on the same holdout" when their digests are equal.
    """
    import blake3
    import pandas as pd

    digest = blake3.blake3()
    digest.update(json.dumps([[str(c), str(t)] for c, t in data.dtypes.items()]).encode())
    try:
        rows = pd.util.hash_pandas_object(data, index=False).to_numpy()
    except TypeError as exc:
        raise InvalidArgument(
            f"cannot digest the evaluation data ({exc}); use columns of numbers, strings, "
            "categories or dates"
        ) from exc
    digest.update(np.sort(rows).tobytes())
    return f"blake3:{digest.hexdigest()}"
