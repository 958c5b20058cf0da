"""A monitor window as HTML: its figures, findings and alerts, then its drift report.

Every value is escaped; a stored report (no drift report in memory) renders the
figures alone.
"""

from __future__ import annotations

import datetime as dt
import html
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from keel.monitoring._monitor import MonitorReport

__all__ = ["report_html"]


def _iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat().replace("+00:00", "Z")


_ROWS = (
    ("rows", "rows"),
    ("requests", "requests"),
    ("drift_share", "feature drift share"),
    ("prediction_drift", "prediction drift statistic"),
    ("null_rate_max", "highest null rate"),
    ("out_of_range_share_max", "highest share out of the reference range"),
    ("unseen_category_rows", "rows with unseen categories"),
    ("missing_columns", "missing input columns"),
    ("p50_latency_seconds", "latency p50 (s)"),
    ("p95_latency_seconds", "latency p95 (s)"),
    ("p99_latency_seconds", "latency p99 (s)"),
    ("labelled_rows", "labelled rows"),
)


def _figures(report: MonitorReport) -> str:
    e = html.escape
    rows = [(label, _fmt(report.metrics.get(key))) for key, label in _ROWS]
    for key in ("accuracy", "precision", "recall", "f1", "roc_auc"):
        realized = _fmt(report.metrics.get(key))
        estimated = _fmt(report.metrics.get(f"estimated_{key}"))
        rows.append((f"{key} (labels / estimated)", f"{realized} / {estimated}"))
    body = "".join(f"<tr><td>{e(label)}</td><td>{e(value)}</td></tr>" for label, value in rows)
    quality = report.section.get("quality") or {}
    findings = []
    for column in quality.get("missing_columns") or ():
        findings.append(f"column {column} is missing from the window")
    for column, info in (quality.get("unseen_categories") or {}).items():
        findings.append(f"column {column}: {info.get('rows')} rows with unseen categories")
    for column, share in (quality.get("null_rate") or {}).items():
        if share:
            findings.append(f"column {column}: {share:.1%} missing values")
    listed = "".join(f"<li>{e(str(f))}</li>" for f in findings)
    alerts = "".join(
        f"<li>{e(str(a.get('event', {}).get('rule', '')))}: "
        f"{e(str(a.get('event', {}).get('status', '')))}</li>"
        for a in report.alerts
    )
    return (
        f"<h2>Window {e(_iso(report.window_start))} to {e(_iso(report.window_end))} "
        f"({e(report.status)})</h2>"
        f"<table><tr><th>figure</th><th>value</th></tr>{body}</table>"
        + (f"<h2>Data quality findings</h2><ul>{listed}</ul>" if listed else "")
        + (f"<h2>Alerts</h2><ul>{alerts}</ul>" if alerts else "")
    )


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.4g}"


def report_html(report: MonitorReport) -> str:
    """One HTML document: the window's figures, then its drift report when in memory."""
    figures = _figures(report)
    if report.drift is not None:
        from keel.monitoring._html import render_html

        page = render_html(report.drift)
        head, _, tail = page.partition("<h2>")
        return (
            head + figures + "<h2>" + tail if tail else page.replace("</body>", figures + "</body>")
        )
    title = html.escape(f"Monitor {report.monitor}")
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Keel {title}'
        f"</title></head><body><h1>{title}</h1>{figures}</body></html>\n"
    )
