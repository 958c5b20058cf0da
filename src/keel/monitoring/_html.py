"""The drift report as one self-contained HTML file.

It reuses the evaluation report's look (CSS, tables, inline base64 PNGs) and its plot
helper (``matplotlib.figure.Figure`` on the Agg canvas, never ``pyplot``). Every
string that came from data or the caller (column names, categories, slice values,
messages) goes through ``html.escape``, so a column named ``<script>`` renders as text.
One plot per drifted column: reference against current densities on the reference's
bins for numbers, shares per category for categories.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from typing import TYPE_CHECKING, Any

from keel.evaluation._html import _CSS, _e, _plots, _table
from keel.evaluation._plots import _BLUE, _GREY, _png, _text

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from keel.monitoring._report import Distribution, DriftReport

__all__ = ["render_html", "render_plots"]

_EXTRA_CSS = ".ok{color:#1a7f37} .warn{color:#9a6700}"
PLOT_BINS = 30


def _num(value: float | None, digits: int = 4) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:.{digits}g}"


def _numeric_plot(axes: Axes, name: str, d: Distribution) -> None:
    import numpy as np

    from keel.core._stats import equal_mass_groups

    assert d.edges is not None
    ref, cur = np.asarray(d.reference, dtype=float), np.asarray(d.current, dtype=float)
    groups = equal_mass_groups(ref, PLOT_BINS)  # fewer, wider bins read better
    starts = np.flatnonzero(np.diff(groups, prepend=-1))
    edges = np.append(np.asarray(d.edges)[starts], d.edges[-1])
    widths = np.diff(edges)
    for counts, label, colour in ((ref, "reference", _GREY), (cur, "current", _BLUE)):
        c = np.bincount(groups, weights=counts)
        density = np.divide(c / max(c.sum(), 1.0), widths, out=np.zeros_like(c), where=widths > 0)
        axes.stairs(density, edges, label=label, color=colour, linewidth=1.5)
    axes.set_xlabel(_text(name))
    axes.set_ylabel("density")
    axes.legend(frameon=False)


def _category_plot(axes: Axes, name: str, d: Distribution) -> None:
    import numpy as np

    assert d.labels is not None
    ref = np.asarray(d.reference, dtype=float)
    cur = np.asarray(d.current, dtype=float)
    ref, cur = ref / max(ref.sum(), 1.0), cur / max(cur.sum(), 1.0)
    y = np.arange(len(d.labels))
    axes.barh(y - 0.2, ref, 0.4, label="reference", color=_GREY)
    axes.barh(y + 0.2, cur, 0.4, label="current", color=_BLUE)
    axes.set_yticks(y, [_text(label)[:30] for label in d.labels])
    axes.invert_yaxis()
    axes.set_xlabel(f"share of {_text(name)}")
    axes.legend(frameon=False)


def render_plots(report: DriftReport) -> dict[str, bytes]:
    """PNG bytes per drifted column (keyed by column name)."""
    plots: dict[str, bytes] = {}
    for name in report.drifted_columns:
        column = report.columns[name]
        d = column.distribution
        if d is None:
            continue
        if d.edges is not None:
            plots[name] = _png(functools.partial(_numeric_plot, name=name, d=d), (5.5, 3.2))
        else:
            height = 1.2 + 0.3 * len(d.labels or [])
            plots[name] = _png(functools.partial(_category_plot, name=name, d=d), (5.5, height))
    return plots


def _columns(report: DriftReport) -> str:
    rows = []
    ordered = sorted(report.columns.values(), key=lambda c: (not c.drifted, not c.compared))
    for c in ordered:
        verdict = (
            '<span class="bad">drifted</span>'
            if c.drifted
            else '<span class="ok">stable</span>'
            if c.compared
            else f'<span class="warn">{_e(c.status)}</span>'
        )
        p = c.p_value_adjusted if c.p_value_adjusted is not None else c.p_value
        rows.append(
            f"<tr><td><code>{_e(c.column)}</code></td><td>{_e(c.kind)}</td><td>{verdict}</td>"
            f'<td>{_e(c.method or "—")}</td><td class="num">{_num(c.statistic)}</td>'
            f'<td class="num">{_num(p)}</td><td class="num">{_num(c.threshold)}</td>'
            f'<td class="num">{c.current_count}</td><td>{_e(c.message)}</td></tr>'
        )
    headers = ["column", "type", "verdict", "method", "statistic", "p-value", "threshold", "n"]
    return _table([*headers, "why"], rows)


def _slices(report: DriftReport) -> str:
    if not report.slices:
        return ""
    rows = []
    for name, values in report.slices.items():
        for value, sub in values.items():
            drifted = ", ".join(sub.drifted_columns) or "—"
            rows.append(
                f"<tr><td><code>{_e(name)}</code></td><td>{_e(value)}</td>"
                f'<td class="num">{sub.current_rows}</td><td class="num">{sub.reference_rows}</td>'
                f'<td class="num">{sub.drift_share:.0%}</td><td>{_e(drifted)}</td>'
                f"<td>{_e(sub.message)}</td></tr>"
            )
    headers = ["slice", "value", "rows", "reference rows", "drift share", "drifted", "note"]
    return "<h2>Slices</h2>" + _table(headers, rows)


def _findings(report: DriftReport) -> str:
    items = [
        f"<li><code>{_e(c.column)}</code>: {_e(c.status)}. {_e(c.message)}</li>"
        for c in report.findings
    ]
    if report.unexpected_columns:
        shown = ", ".join(report.unexpected_columns[:20])
        items.append(f"<li>columns not in the reference (not checked): {_e(shown)}</li>")
    if not items:
        return ""
    return "<h2>Data quality</h2><ul>" + "".join(items) + "</ul>"


def render_html(report: DriftReport, plots: dict[str, Any] | None = None) -> str:
    """The whole report as one HTML document; ``plots`` defaults to drawing them now."""
    if plots is None:
        plots = render_plots(report)
    when = dt.datetime.fromtimestamp(report.created_at, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    verdict = (
        '<span class="bad">dataset drift</span>'
        if report.drifted
        else '<span class="ok">no dataset drift</span>'
    )
    compared = len(report.compared_columns)
    summary = (
        f"<p>{verdict} · {len(report.drifted_columns)} of {compared} compared columns drifted "
        f"({report.drift_share:.0%}; the dataset counts as drifted from "
        f"{report.dataset_share:.0%}) · current {report.current_rows} rows, reference "
        f"{report.reference_rows} rows · {_e(when)}</p>"
    )
    message = f'<p class="warn">{_e(report.message)}</p>' if report.message else ""
    figures = "<h2>Drifted columns</h2>" + _plots(plots) if plots else ""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Keel {_e(report.title)}</title><style>{_CSS}\n{_EXTRA_CSS}</style></head><body>"
        f"<h1>{_e(report.title)}</h1>"
        + summary
        + message
        + "<h2>Columns</h2>"
        + _columns(report)
        + figures
        + _findings(report)
        + _slices(report)
        + "</body></html>\n"
    )
