"""Group fairness across a sensitive attribute, as Fairlearn defines it.

- demographic parity difference: the largest gap in selection rate (the share of rows
  predicted positive) between two groups; ratio: smallest rate over largest;
- equalized odds difference: the larger of the largest true-positive-rate gap and the
  largest false-positive-rate gap.

Multiclass tasks take each class in turn as "positive" and report the worst class.
A group whose rate is undefined (no positive labels, for TPR) is left out of that gap.
Regression has no selection rate: the result says so and holds no numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from keel.evaluation._metrics import Outcomes

__all__ = ["FairnessResult", "fairness"]


@dataclass(frozen=True)
class FairnessResult:
    """Per-group rates and the gaps between them, across one sensitive attribute."""

    sensitive: str
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    demographic_parity_difference: float | None = None
    demographic_parity_ratio: float | None = None
    equalized_odds_difference: float | None = None
    note: str | None = None

    def metrics(self) -> dict[str, float | None]:
        return {
            "demographic_parity_difference": self.demographic_parity_difference,
            "demographic_parity_ratio": self.demographic_parity_ratio,
            "equalized_odds_difference": self.equalized_odds_difference,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "sensitive": self.sensitive,
            "groups": self.groups,
            **self.metrics(),
            "note": self.note,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FairnessResult:
        return cls(
            sensitive=str(data["sensitive"]),
            groups=dict(data.get("groups") or {}),
            demographic_parity_difference=data.get("demographic_parity_difference"),
            demographic_parity_ratio=data.get("demographic_parity_ratio"),
            equalized_odds_difference=data.get("equalized_odds_difference"),
            note=data.get("note"),
        )


def _rate(num: float, den: float) -> float:
    return num / den if den > 0 else float("nan")


def _gap(values: list[float]) -> float:
    defined = [v for v in values if not np.isnan(v)]
    return max(defined) - min(defined) if len(defined) >= 2 else float("nan")


def _none(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def fairness(
    outcomes: Outcomes, sensitive: str, groups: list[tuple[str, np.ndarray[Any, Any]]]
) -> FairnessResult:
    """Selection rate, TPR and FPR per group, and the demographic-parity and
    equalized-odds gaps between the groups of ``sensitive``."""
    if outcomes.task == "regression":
        return FairnessResult(
            sensitive, note="fairness metrics need a classification task; none computed"
        )
    positives = (
        [outcomes.positive] if outcomes.task == "binary" else list(range(len(outcomes.classes)))
    )
    per_group: dict[str, dict[str, Any]] = {}
    dp_diff, dp_ratio, eo_diff = [], [], []
    for positive in positives:
        selection, tpr, fpr = [], [], []
        for label, mask in groups:
            y = outcomes.y[mask] == positive
            pred = outcomes.pred[mask] == positive
            rates = {
                "count": int(mask.sum()),
                "selection_rate": _rate(float(pred.sum()), float(pred.shape[0])),
                "tpr": _rate(float((pred & y).sum()), float(y.sum())),
                "fpr": _rate(float((pred & ~y).sum()), float((~y).sum())),
            }
            selection.append(rates["selection_rate"])
            tpr.append(rates["tpr"])
            fpr.append(rates["fpr"])
            if outcomes.task == "binary":
                per_group[label] = {k: _none(v) if k != "count" else v for k, v in rates.items()}
        defined = [s for s in selection if not np.isnan(s)]
        dp_diff.append(_gap(selection))
        top = max(defined) if defined else float("nan")
        dp_ratio.append(min(defined) / top if defined and top > 0 else float("nan"))
        eo_diff.append(_worst([_gap(tpr), _gap(fpr)], max))
    if outcomes.task == "multiclass":
        per_group = {label: {"count": int(mask.sum())} for label, mask in groups}
    note = None
    if len(groups) < 2:
        note = f"{sensitive!r} has fewer than two groups in the data; no gaps to measure"
    return FairnessResult(
        sensitive,
        per_group,
        _none(_worst(dp_diff, max)),
        _none(_worst(dp_ratio, min)),
        _none(_worst(eo_diff, max)),
        note,
    )


def _worst(values: list[float], pick: Any) -> float:
    defined = [v for v in values if not np.isnan(v)]
    return float(pick(defined)) if defined else float("nan")
