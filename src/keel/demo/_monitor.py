"""Demo steps 6-7: production traffic drifts; the monitor detects it and alerts.

A recession-like drift of the synthetic world (lower incomes, more debt and
unemployment) is sent to the deployment in batches, then monitor ``credit`` compares
the window with the training split's stored profile: feature drift, prediction drift,
data quality, latency, and accuracy estimated from the calibrated probabilities next to
the real one for the rows whose labels came back through ``/feedback``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from keel.context import get_context
from keel.errors import AlreadyExists

if TYPE_CHECKING:
    import pandas as pd
    from rich.console import Console

__all__ = ["run_monitor", "send_drifted"]

MONITOR = "credit"
RULES = ("drift_share > 0.3", "estimated_accuracy < 0.6")


def send_drifted(post: Callable[[str, Any], Any], drifted: pd.DataFrame, target: str) -> int:
    """Send ``drifted`` in batches of 100 rows; labels come back for every other batch."""
    import orjson

    features = drifted.drop(columns=[target])
    columns = list(features.columns)
    rows = orjson.loads(features.to_json(orient="values"))
    labels = drifted[target].tolist()
    labelled = 0
    for start in range(0, len(rows), 100):
        answer = post("/predict", {"columns": columns, "data": rows[start : start + 100]})
        if start % 200 == 0:
            post(
                "/feedback",
                {"request_id": answer["request_id"], "labels": labels[start : start + 100]},
            )
            labelled += len(labels[start : start + 100])
    return labelled


def run_monitor(deployment: str, reference: str, console: Console) -> dict[str, Any]:
    """Create (once) and run monitor ``credit``; print the figures and alerts."""
    service = get_context().monitors
    with contextlib.suppress(AlreadyExists):
        service.create(
            MONITOR,
            deployment=deployment,
            reference=reference,
            window=dt.timedelta(hours=1),
            slices=("gender",),
            rules=RULES,
        )
    # Close the current hour: the demo does not wait for its window to end.
    now = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    reports = service.run(MONITOR, now=now + dt.timedelta(hours=1))
    if not reports:
        console.print("monitor: no complete window to report on")
        return {"monitor": MONITOR, "windows": 0}
    report = reports[-1]
    path = report.to_html(get_context().settings.home / "reports" / "monitor.html")
    metrics = report.metrics
    events = [a["event"] for a in report.alerts if isinstance(a.get("event"), dict)]
    firing = [e for e in events if e.get("status") == "firing"]
    console.print(
        f"monitor: {MONITOR} on deployment {deployment}, {metrics.get('rows', 0):.0f} rows: "
        f"drift share {metrics.get('drift_share', float('nan')):.2f}, estimated accuracy "
        f"{metrics.get('estimated_accuracy', float('nan')):.3f} (real on labelled rows "
        f"{metrics.get('accuracy', float('nan')):.3f})"
    )
    for alert in firing:
        console.print(f"[bold red]ALERT[/bold red] {alert.get('message', alert.get('rule'))}")
    console.print(f"monitor report: {path}")
    return {
        "monitor": MONITOR,
        "windows": len(reports),
        "metrics": {k: metrics[k] for k in sorted(metrics) if not k.startswith("slice.")},
        "alerts": [a.get("rule") for a in firing],
        "monitor_report": str(path),
    }
