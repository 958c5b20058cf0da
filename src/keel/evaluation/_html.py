"""The evaluation report as one self-contained HTML file.

Plots are embedded as base64 PNG ``data:`` URIs; there are no external assets or
scripts. Every string that came from data, a model or the caller (column names, slice
values, class labels, notes) goes through ``html.escape``, as in Keel's data
validation reports, so a slice value ``<script>`` renders as text.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keel.evaluation._report import Estimate, EvaluationReport

__all__ = ["render_html"]

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem;color:#1b1f24;max-width:1100px}
h1{font-size:1.3rem} h2{font-size:1.1rem;margin-top:2rem}
table{border-collapse:collapse;width:100%;margin-top:.5rem}
th,td{border-bottom:1px solid #d0d7de;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa} td.num{font-variant-numeric:tabular-nums;white-space:nowrap}
.muted{color:#656d76} .bad{color:#cf222e;font-weight:600}
.plots{display:flex;flex-wrap:wrap;gap:1rem} .plots img{max-width:520px;border:1px solid #d0d7de}
code{font-size:12px;word-break:break-all}
""".strip()


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _num(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _estimate(estimate: Estimate | None) -> str:
    if estimate is None:
        return '<td class="num">—</td><td></td>'
    interval = ""
    if estimate.low is not None and estimate.high is not None:
        interval = f"[{_num(estimate.low)}, {_num(estimate.high)}]"
    note = f'<span class="muted">{_e(estimate.note)}</span>' if estimate.note else ""
    return f'<td class="num">{_num(estimate.value)}</td><td class="num">{interval}{note}</td>'


def _table(headers: Sequence[str], rows: Iterable[str]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _overall(report: EvaluationReport) -> str:
    rows = []
    for name, estimate in report.overall.items():
        base = report.baseline_metrics.get(name) if report.baseline_metrics else None
        rows.append(
            f'<tr><td>{_e(name)}</td>{_estimate(estimate)}<td class="num">{_num(base)}</td></tr>'
        )
    baseline = f"baseline: {report.baseline}" if report.baseline else "baseline"
    return _table(["metric", "value", "95% interval", baseline], rows)


def _slices(report: EvaluationReport) -> str:
    if not report.slices:
        return '<p class="muted">No slices were evaluated (pass slices=[...]).</p>'
    metrics = list(report.overall)
    rows = []
    for s in report.slices:
        cells = "".join(_estimate(s.metrics.get(m)) for m in metrics)
        rows.append(
            f"<tr><td>{_e(s.slice)}</td><td>{_e(s.value)}</td>"
            f'<td class="num">{s.count}</td>{cells}</tr>'
        )
    headers = ["slice", "value", "n"]
    for m in metrics:
        headers += [m, f"{m} 95%"]
    return f'<div style="overflow-x:auto">{_table(headers, rows)}</div>'


def _fairness(report: EvaluationReport) -> str:
    fair = report.fairness
    if fair is None:
        return '<p class="muted">No sensitive attribute was given.</p>'
    parts = [f"<p>Sensitive attribute: <code>{_e(fair.sensitive)}</code></p>"]
    if fair.note:
        parts.append(f'<p class="muted">{_e(fair.note)}</p>')
    parts.append(
        _table(
            ["measure", "value"],
            (
                f'<tr><td>{_e(k)}</td><td class="num">{_num(v)}</td></tr>'
                for k, v in fair.metrics().items()
            ),
        )
    )
    if fair.groups:
        keys = [k for k in next(iter(fair.groups.values())) if k != "count"]
        rows = (
            f'<tr><td>{_e(g)}</td><td class="num">{_e(v.get("count"))}</td>'
            + "".join(f'<td class="num">{_num(v.get(k))}</td>' for k in keys)
            + "</tr>"
            for g, v in fair.groups.items()
        )
        parts.append(_table(["group", "n", *keys], rows))
    return "".join(parts)


def _worst(report: EvaluationReport) -> str:
    if not report.worst_slices:
        return '<p class="muted">No slice with enough rows does worse than overall.</p>'
    rows = (
        f"<tr><td>{_e(w['slice'])}</td><td>{_e(w['value'])}</td>"
        f'<td class="num">{w["count"]}</td><td class="num bad">{_num(w["score"])}</td>'
        f'<td class="num">{_num(w.get("low"))} – {_num(w.get("high"))}</td>'
        f'<td class="num">{_num(w.get("gap"))}</td></tr>'
        for w in report.worst_slices
    )
    return _table(["slice", "value", "n", report.primary_metric, "95%", "vs overall"], rows)


def _importance(report: EvaluationReport) -> str:
    if not report.importance:
        return '<p class="muted">Not computed.</p>'
    rows = (
        f'<tr><td>{_e(f["feature"])}</td><td class="num">{_num(f.get("mean"))}</td>'
        f'<td class="num">{_num(f.get("std"))}</td></tr>'
        for f in report.importance
    )
    metric = report.params.get("importance_metric", report.primary_metric)
    return _table(["feature", f"drop in {metric}", "std"], rows)


def _plots(plots: Mapping[str, bytes]) -> str:
    images = (
        f'<img alt="{_e(name)}" src="data:image/png;base64,'
        f'{base64.b64encode(data).decode("ascii")}">'
        for name, data in plots.items()
    )
    return f'<div class="plots">{"".join(images)}</div>'


def render_html(report: EvaluationReport, plots: Mapping[str, Any] | None = None) -> str:
    """The whole report as one HTML document; ``plots`` defaults to drawing them now."""
    if plots is None:
        plots = report.plots()
    when = dt.datetime.fromtimestamp(report.created_at, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    notes = "".join(f"<li>{_e(n)}</li>" for n in report.notes)
    positive = (
        f" · positive class <code>{_e(report.positive_label)}</code>"
        if report.positive_label is not None
        else ""
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Keel evaluation: {_e(report.target)}</title><style>{_CSS}</style></head><body>"
        f"<h1>Evaluation of <code>{_e(report.target)}</code> ({_e(report.task)})</h1>"
        f"<p>{report.rows} rows{positive} · primary metric <code>{_e(report.primary_metric)}"
        f"</code> · data <code>{_e(report.data_digest)}</code> · {_e(when)}</p>"
        + (f"<ul>{notes}</ul>" if notes else "")
        + "<h2>Overall</h2>"
        + _overall(report)
        + "<h2>Plots</h2>"
        + _plots(plots)
        + "<h2>Where the model is worst</h2>"
        + _worst(report)
        + "<h2>Fairness</h2>"
        + _fairness(report)
        + "<h2>Slices</h2>"
        + _slices(report)
        + "<h2>Permutation importance</h2>"
        + _importance(report)
        + "</body></html>\n"
    )
