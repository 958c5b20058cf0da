"""The evaluation report: metrics overall and per slice, fairness, errors, importance.

It is a plain value that round-trips through JSON (``to_dict``/``from_dict``; NaN is
stored as null), renders as one self-contained HTML file, draws its plots as PNG, and
logs itself to a run (``log_to``). Run metric keys written by ``log_to``:

- ``eval.<metric>`` for every overall metric (``eval.auc``, ``eval.rmse``, …);
- ``eval.<fairness metric>`` (``eval.demographic_parity_difference``, …);
- ``eval.baseline.<metric>`` for the baseline's metrics;
- ``eval.rows``.

Artifacts: ``evaluation/report.json``, ``evaluation/report.html`` and
``evaluation/plots/*.png``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.core._models import EVALUATION_ARTIFACT
from keel.errors import InvalidArgument
from keel.evaluation._fairness import FairnessResult
from keel.evaluation._metrics import FAIRNESS_METRICS, HIGHER_IS_BETTER

if TYPE_CHECKING:
    from keel.tracking._service import TrackingService

__all__ = ["FORMAT", "Estimate", "EvaluationReport", "SliceResult"]

FORMAT = "keel.evaluation/1"
HTML_ARTIFACT = "evaluation/report.html"
PLOTS_PREFIX = "evaluation/plots"


def plain(value: Any) -> Any:
    """A JSON-safe copy: NaN/inf as None, NumPy scalars as Python, tuples as lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if value is None or isinstance(value, str | int | bool):
        return value
    if hasattr(value, "item"):
        return plain(value.item())
    return str(value)


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


@dataclass(frozen=True)
class Estimate:
    """A metric value with its bootstrap percentile interval (95%) or a note why not."""

    value: float | None
    low: float | None = None
    high: float | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = plain(
            {"value": self.value, "low": self.low, "high": self.high, "note": self.note}
        )
        return found

    @classmethod
    def from_dict(cls, data: Any) -> Estimate:
        if not isinstance(data, dict):
            return cls(_number(data))
        return cls(
            _number(data.get("value")),
            _number(data.get("low")),
            _number(data.get("high")),
            data.get("note"),
        )


@dataclass(frozen=True)
class SliceResult:
    """One group of one slice (``gender`` = ``F``): its row count and metrics."""

    slice: str
    value: str
    count: int
    metrics: dict[str, Estimate]

    def to_dict(self) -> dict[str, Any]:
        return {
            "slice": self.slice,
            "value": self.value,
            "count": self.count,
            "metrics": {k: v.to_dict() for k, v in self.metrics.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SliceResult:
        return cls(
            str(data["slice"]),
            str(data["value"]),
            int(data["count"]),
            {k: Estimate.from_dict(v) for k, v in (data.get("metrics") or {}).items()},
        )


@dataclass
class EvaluationReport:
    """What ``keel.evaluation.evaluate`` found; see the module docstring for logging."""

    task: str
    target: str
    rows: int
    data_digest: str
    primary_metric: str
    overall: dict[str, Estimate]
    slices: list[SliceResult] = field(default_factory=list)
    fairness: FairnessResult | None = None
    worst_slices: list[dict[str, Any]] = field(default_factory=list)
    importance: list[dict[str, Any]] = field(default_factory=list)
    baseline: str | None = None
    baseline_metrics: dict[str, float | None] = field(default_factory=dict)
    classes: list[str] = field(default_factory=list)
    positive_label: str | None = None
    confusion: list[list[int]] = field(default_factory=list)
    calibration: list[dict[str, Any]] = field(default_factory=list)
    curves: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    created_at: float = field(default_factory=lambda: dt.datetime.now(dt.UTC).timestamp())

    # reading ------------------------------------------------------------------------

    @property
    def metrics(self) -> dict[str, float | None]:
        """Overall metric values by name (None where undefined)."""
        return {name: estimate.value for name, estimate in self.overall.items()}

    @property
    def slice_names(self) -> list[str]:
        """The slices evaluated, in order (``gender``, ``gender & age``)."""
        return list(dict.fromkeys(s.slice for s in self.slices))

    def slice_metric(self, metric: str, by: str) -> list[tuple[SliceResult, Estimate]]:
        """Every group of slice ``by`` with its estimate of ``metric``."""
        if by not in self.slice_names:
            known = ", ".join(self.slice_names) or "none (evaluate with slices=[...])"
            raise InvalidArgument(f"the report has no slice {by!r}; its slices are: {known}")
        return [
            (s, s.metrics.get(metric, Estimate(None, note=f"{metric} not computed")))
            for s in self.slices
            if s.slice == by
        ]

    def value(self, metric: str) -> float | None:
        """An overall metric or a fairness metric by name; None when undefined."""
        if metric in FAIRNESS_METRICS:
            return None if self.fairness is None else self.fairness.metrics()[metric]
        if metric not in self.overall:
            raise InvalidArgument(
                f"the {self.task} report has no metric {metric!r}; it has: "
                + ", ".join([*self.overall, *FAIRNESS_METRICS])
            )
        return self.overall[metric].value

    def why_missing(self, metric: str) -> str:
        """Why ``metric`` has no value, for messages."""
        if metric in FAIRNESS_METRICS:
            if self.fairness is None:
                return "the report has no fairness section (evaluate with sensitive=...)"
            return self.fairness.note or "undefined for these groups"
        estimate = self.overall.get(metric)
        return (estimate.note if estimate and estimate.note else None) or "undefined"

    @staticmethod
    def higher_is_better(metric: str) -> bool:
        return metric in HIGHER_IS_BETTER

    # serialising ----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return plain(  # type: ignore[no-any-return]
            {
                "format": FORMAT,
                "task": self.task,
                "target": self.target,
                "rows": self.rows,
                "data_digest": self.data_digest,
                "primary_metric": self.primary_metric,
                "created_at": self.created_at,
                "classes": self.classes,
                "positive_label": self.positive_label,
                "metrics": {k: v.to_dict() for k, v in self.overall.items()},
                "slices": [s.to_dict() for s in self.slices],
                "fairness": None if self.fairness is None else self.fairness.to_dict(),
                "worst_slices": self.worst_slices,
                "importance": self.importance,
                "baseline": self.baseline,
                "baseline_metrics": self.baseline_metrics,
                "confusion": self.confusion,
                "calibration": self.calibration,
                "curves": self.curves,
                "notes": self.notes,
                "params": self.params,
            }
        )

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, data: Any) -> EvaluationReport:
        """Read a report written by ``to_dict``; a clear error for anything else."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise InvalidArgument(
                f"not a Keel evaluation report (expected format {FORMAT!r}); write one with "
                "EvaluationReport.to_json() or find it in a run as evaluation/report.json"
            )
        try:
            fairness = data.get("fairness")
            return cls(
                task=str(data["task"]),
                target=str(data["target"]),
                rows=int(data["rows"]),
                data_digest=str(data["data_digest"]),
                primary_metric=str(data["primary_metric"]),
                overall={k: Estimate.from_dict(v) for k, v in data["metrics"].items()},
                slices=[SliceResult.from_dict(s) for s in data.get("slices") or []],
                fairness=None if fairness is None else FairnessResult.from_dict(fairness),
                worst_slices=list(data.get("worst_slices") or []),
                importance=list(data.get("importance") or []),
                baseline=data.get("baseline"),
                baseline_metrics={
                    k: _number(v) for k, v in (data.get("baseline_metrics") or {}).items()
                },
                classes=[str(c) for c in data.get("classes") or []],
                positive_label=data.get("positive_label"),
                confusion=[list(map(int, row)) for row in data.get("confusion") or []],
                calibration=list(data.get("calibration") or []),
                curves=dict(data.get("curves") or {}),
                notes=[str(n) for n in data.get("notes") or []],
                params=dict(data.get("params") or {}),
                created_at=float(data.get("created_at") or 0.0),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidArgument(
                f"the evaluation report is incomplete or malformed ({type(exc).__name__}: "
                f"{exc}); re-create it with keel.evaluation.evaluate"
            ) from exc

    @classmethod
    def from_json(cls, text: str | bytes) -> EvaluationReport:
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as exc:
            raise InvalidArgument(
                f"the evaluation report is not valid JSON ({exc}); give the file written by "
                "EvaluationReport.to_json() or a run's evaluation/report.json"
            ) from exc

    @classmethod
    def load(cls, path: str | Path) -> EvaluationReport:
        """Read a report from a JSON file."""
        try:
            text = Path(path).read_bytes()
        except OSError as exc:
            raise InvalidArgument(
                f"cannot read evaluation report {str(path)!r}: {exc.strerror or exc}; check "
                "the path"
            ) from exc
        return cls.from_json(text)

    # rendering --------------------------------------------------------------------------

    def to_html(self, path: str | Path) -> Path:
        """Write one self-contained HTML file (plots embedded); returns its path."""
        from keel.evaluation._html import render_html

        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(render_html(self), encoding="utf-8")
        return out

    def plots(self) -> dict[str, bytes]:
        """PNG images by file name: roc, pr, calibration, confusion, one per slice."""
        from keel.evaluation._plots import render_plots

        return render_plots(self)

    def save_plots(self, directory: str | Path) -> list[Path]:
        """Write the plots as PNG files into ``directory``; returns their paths."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for name, data in self.plots().items():
            target = out / name
            target.write_bytes(data)
            written.append(target)
        return written

    def log_to(self, tracking: TrackingService, run_id: str) -> None:
        """Record the report in a run: metrics, JSON, HTML and plots (module docstring)."""
        from keel.evaluation._html import render_html

        values: dict[str, float] = {"eval.rows": float(self.rows)}
        for name, value in self.metrics.items():
            if value is not None:
                values[f"eval.{name}"] = value
        if self.fairness is not None:
            for name, fair in self.fairness.metrics().items():
                if fair is not None:
                    values[f"eval.{name}"] = fair
        for name, base in self.baseline_metrics.items():
            if base is not None:
                values[f"eval.baseline.{name}"] = base
        plots = self.plots()
        tracking.log_metrics(run_id, values)
        tracking.log_bytes(run_id, self.to_json().encode("utf-8"), EVALUATION_ARTIFACT)
        tracking.log_bytes(run_id, render_html(self, plots).encode("utf-8"), HTML_ARTIFACT)
        for name, data in plots.items():
            tracking.log_bytes(run_id, data, f"{PLOTS_PREFIX}/{name}")
