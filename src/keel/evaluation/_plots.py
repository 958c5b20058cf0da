"""The report's plots as PNG bytes, drawn from the report alone (no data needed).

Figures are built with ``matplotlib.figure.Figure`` and saved through the Agg canvas,
never through ``pyplot``: no global backend is switched and no figure is left open in
the caller's process (a notebook keeps its own backend). Labels that come from data
have ``$`` escaped so matplotlib does not read them as mathtext.
"""

from __future__ import annotations

import functools
import io
import re
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from keel.evaluation._report import EvaluationReport

__all__ = ["render_plots"]

_BLUE, _GREY, _RED = "#0969da", "#8c959f", "#cf222e"


def _text(value: object) -> str:
    return str(value).replace("$", r"\$")


def _png(draw: Callable[[Axes], None], size: tuple[float, float] = (5.0, 4.0)) -> bytes:
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, dpi=100)
    axes = figure.subplots()
    draw(axes)
    figure.tight_layout()
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # Labels come from data; a character missing from the default font draws as a
        # box, which is acceptable in a report, so the glyph warning is not an error.
        warnings.filterwarnings(
            "ignore", message=r"Glyph \d+ .* missing from", category=UserWarning
        )
        figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _file_part(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")[:60] or "slice"


def render_plots(report: EvaluationReport) -> dict[str, bytes]:
    """PNG bytes by file name for the plots that apply to the report's task."""
    plots: dict[str, bytes] = {}
    roc = report.curves.get("roc") or {}
    pr = report.curves.get("pr") or {}
    if roc:
        plots["roc.png"] = _png(lambda ax: _curves(ax, roc, "roc"))
    if pr:
        plots["pr.png"] = _png(lambda ax: _curves(ax, pr, "pr"))
    if report.calibration:
        plots["calibration.png"] = _png(lambda ax: _calibration(ax, report))
    if report.confusion:
        side = 3.0 + 0.5 * len(report.classes)
        plots["confusion.png"] = _png(lambda ax: _confusion(ax, report), (side + 1, side))
    if report.importance:
        shown = report.importance[:15]
        plots["importance.png"] = _png(
            lambda ax: _importance(ax, shown, report), (6.0, 1.2 + 0.35 * len(shown))
        )
    for i, name in enumerate(report.slice_names, start=1):
        groups = [s for s in report.slices if s.slice == name]
        height = 1.4 + 0.35 * len(groups)
        plots[f"slice-{i}-{_file_part(name)}.png"] = _png(
            functools.partial(_slice_bars, report=report, name=name, groups=groups),
            (6.0, height),
        )
    return plots


def _curves(ax: Axes, found: dict[str, Any], kind: str) -> None:
    for label, points in found.items():
        ax.plot(points["x"], points["y"], label=_text(label), linewidth=1.6)
    if kind == "roc":
        ax.plot([0, 1], [0, 1], linestyle="--", color=_GREY, linewidth=1)
        ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC curve")
    else:
        ax.set(xlabel="recall", ylabel="precision", title="Precision-recall curve")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    if len(found) > 1:
        ax.legend(fontsize=8, title="positive class")


def _calibration(ax: Axes, report: EvaluationReport) -> None:
    bins = report.calibration
    ax.plot([0, 1], [0, 1], linestyle="--", color=_GREY, linewidth=1, label="perfect")
    ax.plot(
        [b["mean_predicted"] for b in bins],
        [b["observed"] for b in bins],
        marker="o",
        color=_BLUE,
        label="model",
    )
    ece = report.metrics.get("ece")
    title = "Calibration" + (f" (ECE {ece:.3f})" if ece is not None else "")
    ax.set(xlabel="mean predicted probability", ylabel="observed frequency", title=title)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)


def _confusion(ax: Axes, report: EvaluationReport) -> None:
    matrix = report.confusion
    ax.imshow(matrix, cmap="Blues")
    labels = [_text(c) for c in report.classes]
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    top = max((max(row) for row in matrix), default=0)
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            color = "white" if top and count > top / 2 else "black"
            ax.text(j, i, str(count), ha="center", va="center", color=color, fontsize=9)
    ax.set(xlabel="predicted", ylabel="true", title="Confusion matrix")


def _importance(ax: Axes, shown: list[dict[str, Any]], report: EvaluationReport) -> None:
    names = [_text(f["feature"]) for f in reversed(shown)]
    means = [f["mean"] if f["mean"] is not None else 0.0 for f in reversed(shown)]
    stds = [f["std"] if f["std"] is not None else 0.0 for f in reversed(shown)]
    ax.barh(names, means, xerr=stds, color=_BLUE)
    metric = report.params.get("importance_metric", report.primary_metric)
    ax.set(xlabel=f"drop in {metric} when shuffled", title="Permutation importance")


def _slice_bars(ax: Axes, *, report: EvaluationReport, name: str, groups: list[Any]) -> None:
    metric = report.primary_metric
    labels, values, low_err, high_err = [], [], [], []
    for group in reversed(groups):
        estimate = group.metrics.get(metric)
        value = estimate.value if estimate is not None else None
        labels.append(_text(f"{group.value} (n={group.count})"))
        values.append(0.0 if value is None else value)
        has_ci = value is not None and estimate.low is not None and estimate.high is not None
        low_err.append(value - estimate.low if has_ci else 0.0)
        high_err.append(estimate.high - value if has_ci else 0.0)
    ax.barh(labels, values, xerr=[low_err, high_err], color=_BLUE, capsize=3)
    overall = report.metrics.get(metric)
    if overall is not None:
        ax.axvline(overall, color=_RED, linestyle="--", linewidth=1, label="overall")
        ax.legend(fontsize=8)
    ax.set(xlabel=metric, title=_text(f"{metric} by {name} (95% interval)"))
