"""Model evaluation: metrics overall and per slice, fairness, plots, validation gates.

``evaluate(model, data, target, slices=[...])`` returns an ``EvaluationReport``;
``Gate.from_yaml(path).check(report, champion_report)`` returns a ``GateResult`` with
every reason. Both log themselves to a run with ``log_to(tracking, run_id)``. Names
resolve lazily, so importing this package loads neither NumPy nor scikit-learn.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keel.evaluation._evaluate import data_digest, evaluate
    from keel.evaluation._fairness import FairnessResult
    from keel.evaluation._gate import Gate, GateResult, RuleResult
    from keel.evaluation._metrics import (
        CLASSIFICATION_METRICS,
        FAIRNESS_METRICS,
        REGRESSION_METRICS,
    )
    from keel.evaluation._report import Estimate, EvaluationReport, SliceResult

_EXPORTS: dict[str, str] = {
    "CLASSIFICATION_METRICS": "keel.evaluation._metrics",
    "FAIRNESS_METRICS": "keel.evaluation._metrics",
    "REGRESSION_METRICS": "keel.evaluation._metrics",
    "Estimate": "keel.evaluation._report",
    "EvaluationReport": "keel.evaluation._report",
    "FairnessResult": "keel.evaluation._fairness",
    "Gate": "keel.evaluation._gate",
    "GateResult": "keel.evaluation._gate",
    "RuleResult": "keel.evaluation._gate",
    "SliceResult": "keel.evaluation._report",
    "data_digest": "keel.evaluation._evaluate",
    "evaluate": "keel.evaluation._evaluate",
}

__all__ = [
    "CLASSIFICATION_METRICS",
    "FAIRNESS_METRICS",
    "REGRESSION_METRICS",
    "Estimate",
    "EvaluationReport",
    "FairnessResult",
    "Gate",
    "GateResult",
    "RuleResult",
    "SliceResult",
    "data_digest",
    "evaluate",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'keel.evaluation' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return list(__all__)
