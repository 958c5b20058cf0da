"""What a monitor computes for one window of the prediction log.

``WindowAnalysis`` holds what every window needs from the reference (a fitted
``DriftDetector``, the reference's ranges and categories, the model's inputs, and
what predictions are compared with); ``analyse`` turns one window (a pyarrow Table
read from the log) into a plain-JSON section: feature drift, prediction drift, data
quality, operational figures and performance (realized when labels arrived, estimated
from the probabilities always), overall and per slice. ``flat_metrics`` flattens a
window into the names alert rules use (``drift_share``, ``slice.gender.F.drift_share``).
A slice's drift leaves out its own column (constant within the slice) and compares the
slice's rows with the whole reference: the reference profile holds no per-slice summaries.

Prediction drift compares ``keel_prediction`` with the reference's target column when
the reference has one (a column that is not a model input); otherwise with the first
window that had rows (the monitor's ``baseline``), so a monitor over a reference
without labels still notices its predictions moving.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from keel.data._report import _plain as plain

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from keel.monitoring._detector import DriftDetector
    from keel.monitoring._report import DriftReport

__all__ = ["MAX_SLICE_VALUES", "WindowAnalysis", "flat_metrics"]

log = logging.getLogger("keel.monitoring")

MAX_SLICE_VALUES = 20
"""Per slice column, the most frequent values in a window that get their own section."""

_PROBA = "keel_proba_"
_NUMERIC = ("int", "float")
_CATEGORY = ("string", "bool")


@dataclass
class WindowAnalysis:
    """The reference side of a monitor, fitted once per run and applied to each window."""

    profile: Mapping[str, Any]  # the reference's stored profile
    inputs: list[str]  # the model's input columns
    slices: Sequence[str] = ()
    target: str | None = None
    baseline: pd.DataFrame | None = None  # first window's predictions, when no target
    detector_: DriftDetector | None = field(default=None, init=False)
    slice_detectors_: dict[str, DriftDetector] = field(default_factory=dict, init=False)
    prediction_detector_: DriftDetector | None = field(default=None, init=False)

    def fit(self) -> WindowAnalysis:
        from keel.monitoring._detector import DriftDetector

        columns = self.profile.get("columns", {})
        features = [c for c in self.inputs if c in columns] or [
            c for c in columns if c != self.target
        ]
        self.detector_ = DriftDetector(columns=features).fit(dict(self.profile))
        # within a slice its own column is constant: leave it out of that slice's drift
        for column in self.slices:
            rest = [c for c in features if c != column]
            if rest:
                self.slice_detectors_[column] = DriftDetector(columns=rest).fit(dict(self.profile))
        if self.target is not None and self.target in columns:
            self.prediction_detector_ = DriftDetector(columns=[self.target]).fit(dict(self.profile))
        elif self.baseline is not None and len(self.baseline):
            self.prediction_detector_ = DriftDetector(columns=["prediction"]).fit(self.baseline)
        return self

    # -- one window ------------------------------------------------------------------

    def analyse(self, table: pa.Table) -> tuple[dict[str, Any], DriftReport | None]:
        """The section of one window (``status`` ``no_data`` when it has no rows)."""
        frame = _frame(table)
        section, drift = self._section(frame)
        section["slices"] = {}
        for column in self.slices:
            if column not in frame.columns or not len(frame):
                continue
            values = frame[column].value_counts(dropna=True).head(MAX_SLICE_VALUES)
            per_value: dict[str, Any] = {}
            for value in values.index:
                sub, _ = self._section(
                    frame[frame[column] == value], self.slice_detectors_.get(column)
                )
                per_value[str(value)] = sub
            section["slices"][column] = per_value
        return plain(section), drift

    def _section(
        self, frame: pd.DataFrame, detector: DriftDetector | None = None
    ) -> tuple[dict[str, Any], DriftReport | None]:
        rows = len(frame)
        out: dict[str, Any] = {"status": "ok" if rows else "no_data", "rows": rows}
        out["operational"] = _operational(frame)
        out["quality"] = self._quality(frame) if rows else None  # nothing to judge
        if not rows:
            out["drift"] = {"drift_share": None, "drifted": False, "columns": {}}
            out["prediction_drift"] = None
            out["performance"] = {"realized": None, "estimated": None}
            return out, None
        detector = detector or self.detector_
        assert detector is not None
        features = frame[[c for c in detector.columns_ if c in frame.columns]]
        drift = detector.score(features)
        out["drift"] = {
            "drift_share": drift.drift_share,
            "drifted": drift.drifted,
            "drifted_columns": drift.drifted_columns,
            "columns": {
                name: {
                    "status": c.status,
                    "method": c.method,
                    "statistic": c.statistic,
                    "p_value": c.p_value_adjusted,
                    "drifted": c.drifted,
                }
                for name, c in drift.columns.items()
            },
        }
        out["prediction_drift"] = self._prediction_drift(frame)
        out["performance"] = _performance(frame)
        return out, drift

    def _prediction_drift(self, frame: pd.DataFrame) -> dict[str, Any] | None:
        if self.prediction_detector_ is None or "keel_prediction" not in frame.columns:
            return None
        import pandas as pd

        detector = self.prediction_detector_
        name = detector.columns_[0]
        predictions = frame["keel_prediction"]
        kind = detector.reference_.columns[name].kind
        if kind in ("string",):
            predictions = predictions.astype(str)
        current = pd.DataFrame({name: predictions.to_numpy()})
        column = detector.score(current).columns[name]
        return {
            "against": "target" if name == self.target else "first_window",
            "column": name,
            "status": column.status,
            "method": column.method,
            "statistic": column.statistic,
            "p_value": column.p_value_adjusted,
            "drifted": column.drifted,
        }

    def _quality(self, frame: pd.DataFrame) -> dict[str, Any]:
        columns = self.profile.get("columns", {})
        rows = len(frame)
        missing = [c for c in self.inputs if c not in frame.columns]
        nulls: dict[str, float] = {}
        out_of_range: dict[str, float] = {}
        unseen: dict[str, dict[str, Any]] = {}
        for name in self.inputs:
            if name not in frame.columns:
                continue
            series = frame[name]
            nulls[name] = float(series.isna().mean()) if rows else 0.0
            ref = columns.get(name)
            if not ref or not rows:
                continue
            kind = ref.get("type")
            present = series.dropna()
            if kind in _NUMERIC and ref.get("min") is not None and ref.get("max") is not None:
                import pandas as pd

                numbers = pd.to_numeric(present, errors="coerce").dropna()
                outside = (numbers < ref["min"]) | (numbers > ref["max"])
                out_of_range[name] = float(outside.sum() / len(numbers)) if len(numbers) else 0.0
            elif kind in _CATEGORY and ref.get("value_counts") is not None:
                known = {str(k) for k, _ in ref["value_counts"]}
                text = present.astype(str)
                new = text[~text.isin(known)]
                if len(new):
                    counts = new.value_counts().head(10)
                    unseen[name] = {
                        "rows": len(new),
                        "distinct": int(new.nunique()),
                        "top": {str(k): int(v) for k, v in counts.items()},
                    }
        return {
            "missing_columns": missing,
            "null_rate": nulls,
            "null_rate_max": max(nulls.values(), default=0.0),
            "out_of_range_share": out_of_range,
            "out_of_range_share_max": max(out_of_range.values(), default=0.0),
            "unseen_categories": unseen,
            "unseen_category_rows": sum(u["rows"] for u in unseen.values()),
        }


def _frame(table: pa.Table) -> pd.DataFrame:
    import pandas as pd

    if table.num_columns == 0:
        return pd.DataFrame()
    frame: pd.DataFrame = table.to_pandas()
    return frame


def _operational(frame: pd.DataFrame) -> dict[str, Any]:
    rows = len(frame)
    out: dict[str, Any] = {"rows": rows, "requests": 0}
    for q in ("p50", "p95", "p99"):
        out[f"{q}_latency_seconds"] = None
    if not rows or "keel_request_id" not in frame.columns:
        return out
    requests = frame.drop_duplicates("keel_request_id")
    out["requests"] = len(requests)
    if "keel_latency_seconds" in frame.columns:
        latency = requests["keel_latency_seconds"].dropna()
        if len(latency):
            for q, at in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
                out[f"{q}_latency_seconds"] = float(latency.quantile(at))
    return out


def _performance(frame: pd.DataFrame) -> dict[str, Any]:
    """Realized metrics on labelled rows and the label-free estimate, side by side."""
    out: dict[str, Any] = {"realized": None, "estimated": None, "labelled_rows": 0}
    proba_columns = [c for c in frame.columns if str(c).startswith(_PROBA)]
    classes = [str(c)[len(_PROBA) :] for c in proba_columns]
    try:
        from keel.monitoring import _performance as performance
    except ImportError:  # the performance module is optional
        out["error"] = "keel.monitoring._performance is not available"
        return out
    if len(classes) >= 2:
        proba = frame[proba_columns].to_numpy(dtype="float64")
        usable = ~(proba != proba).any(axis=1)  # rows without NaN probabilities
        try:
            out["estimated"] = performance.estimate_performance(proba[usable], classes)
        except Exception as error:  # a bad window must not stop the monitor
            out["estimated_error"] = str(error)
    if "keel_label" in frame.columns:
        labelled = frame[frame["keel_label"].notna()]
        out["labelled_rows"] = len(labelled)
        if len(labelled) and len(classes) >= 2:
            y_true = [_label_text(v) for v in labelled["keel_label"]]
            y_pred = [str(v) for v in labelled["keel_prediction"]]
            try:
                out["realized"] = performance.realized_performance(
                    y_true, y_pred, labelled[proba_columns].to_numpy(dtype="float64"), classes
                )
            except Exception as error:  # e.g. a label that is not one of the classes
                out["realized_error"] = str(error)
    return out


def _label_text(value: Any) -> str:
    try:
        decoded = json.loads(value)
    except (TypeError, ValueError):
        return str(value)
    if isinstance(decoded, float) and decoded.is_integer():
        decoded = int(decoded)
    return str(decoded)


_FLAT_PERFORMANCE = ("accuracy", "precision", "recall", "f1", "roc_auc")


def _flat_section(section: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}

    def put(name: str, value: Any) -> None:
        if isinstance(value, bool):
            value = float(value)
        if isinstance(value, int | float) and math.isfinite(value):
            out[prefix + name] = float(value)

    put("rows", section.get("rows"))
    operational = section.get("operational") or {}
    for key in ("requests", "p50_latency_seconds", "p95_latency_seconds", "p99_latency_seconds"):
        put(key, operational.get(key))
    drift = section.get("drift") or {}
    put("drift_share", drift.get("drift_share"))
    put("drifted", drift.get("drifted"))
    prediction = section.get("prediction_drift") or {}
    put("prediction_drift", prediction.get("statistic"))
    put("prediction_drifted", prediction.get("drifted"))
    quality = section.get("quality") or {}
    put("null_rate_max", quality.get("null_rate_max"))
    put("out_of_range_share_max", quality.get("out_of_range_share_max"))
    put("unseen_category_rows", quality.get("unseen_category_rows"))
    put("missing_columns", len(quality.get("missing_columns") or ()))
    performance = section.get("performance") or {}
    put("labelled_rows", performance.get("labelled_rows"))
    for key in _FLAT_PERFORMANCE:
        put(key, (performance.get("realized") or {}).get(key))
        put(f"estimated_{key}", (performance.get("estimated") or {}).get(key))
    return out


def flat_metrics(section: Mapping[str, Any]) -> dict[str, float]:
    """A window's figures under the names alert rules use, slices as ``slice.COL.VALUE.*``."""
    out = _flat_section(section)
    for column, values in (section.get("slices") or {}).items():
        for value, sub in values.items():
            out.update(_flat_section(sub, f"slice.{column}.{value}."))
    return out
