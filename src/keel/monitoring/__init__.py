"""Monitoring: distribution drift of production data against a reference.

``detect_drift(reference, current)`` returns a ``DriftReport``; ``DriftDetector`` is the
same as a fitted estimator (``fit(reference)`` once, ``score(window)`` many times). The
reference is a DataFrame or a stored profile; windows stream in chunks (DataFrames,
pyarrow data, Parquet files or directories), and statistics come from histograms on
the reference's bins. Names resolve lazily: importing this package loads neither
NumPy nor pandas.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keel.monitoring._detector import DriftDetector, detect_drift
    from keel.monitoring._report import ColumnDrift, Distribution, DriftReport

_EXPORTS: dict[str, str] = {
    "ColumnDrift": "keel.monitoring._report",
    "Distribution": "keel.monitoring._report",
    "DriftDetector": "keel.monitoring._detector",
    "DriftReport": "keel.monitoring._report",
    "detect_drift": "keel.monitoring._detector",
}

__all__ = [
    "ColumnDrift",
    "Distribution",
    "DriftDetector",
    "DriftReport",
    "detect_drift",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'keel.monitoring' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return list(__all__)
