"""Monitoring: distribution drift of production data against a reference.

``detect_drift(reference, current)`` returns a ``DriftReport``; ``DriftDetector`` is the
same as a fitted estimator (``fit(reference)`` once, ``score(window)`` many times). The
reference is a DataFrame or a stored profile; windows stream in chunks (DataFrames,
pyarrow data, Parquet files or directories), and statistics come from histograms on
the reference's bins. ``estimate_performance`` estimates accuracy, F1 and AUC from
calibrated probabilities before labels arrive (``realized_performance`` once they do);
``AlertRule`` and ``evaluate_alerts`` turn metric values into alert events, delivered by
``deliver_all`` to the log, a webhook or a callback. Names resolve lazily: importing
this package loads neither NumPy nor pandas.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from keel.core._lazy import lazy_exports

if TYPE_CHECKING:
    from keel.monitoring._alerts import (
        AlertEvent,
        AlertRule,
        AlertState,
        CallbackNotifier,
        DeliveryResult,
        LogNotifier,
        Notifier,
        WebhookNotifier,
        alert_callbacks,
        deliver_all,
        evaluate_alerts,
        redeliver,
        register_alert_callback,
        unregister_alert_callback,
    )
    from keel.monitoring._detector import DriftDetector, detect_drift
    from keel.monitoring._monitor import MonitorReport, MonitorService, report_html
    from keel.monitoring._performance import (
        calibration_error,
        estimate_performance,
        realized_performance,
    )
    from keel.monitoring._report import ColumnDrift, Distribution, DriftReport

_EXPORTS: dict[str, str] = {
    "AlertEvent": "keel.monitoring._alerts",
    "AlertRule": "keel.monitoring._alerts",
    "AlertState": "keel.monitoring._alerts",
    "CallbackNotifier": "keel.monitoring._alerts",
    "ColumnDrift": "keel.monitoring._report",
    "DeliveryResult": "keel.monitoring._alerts",
    "Distribution": "keel.monitoring._report",
    "DriftDetector": "keel.monitoring._detector",
    "DriftReport": "keel.monitoring._report",
    "LogNotifier": "keel.monitoring._alerts",
    "MonitorReport": "keel.monitoring._monitor",
    "MonitorService": "keel.monitoring._monitor",
    "Notifier": "keel.monitoring._alerts",
    "WebhookNotifier": "keel.monitoring._alerts",
    "alert_callbacks": "keel.monitoring._alerts",
    "calibration_error": "keel.monitoring._performance",
    "deliver_all": "keel.monitoring._alerts",
    "detect_drift": "keel.monitoring._detector",
    "estimate_performance": "keel.monitoring._performance",
    "evaluate_alerts": "keel.monitoring._alerts",
    "realized_performance": "keel.monitoring._performance",
    "redeliver": "keel.monitoring._alerts",
    "register_alert_callback": "keel.monitoring._alerts",
    "report_html": "keel.monitoring._monitor",
    "unregister_alert_callback": "keel.monitoring._alerts",
}

__all__ = [
    "AlertEvent",
    "AlertRule",
    "AlertState",
    "CallbackNotifier",
    "ColumnDrift",
    "DeliveryResult",
    "Distribution",
    "DriftDetector",
    "DriftReport",
    "LogNotifier",
    "MonitorReport",
    "MonitorService",
    "Notifier",
    "WebhookNotifier",
    "alert_callbacks",
    "calibration_error",
    "deliver_all",
    "detect_drift",
    "estimate_performance",
    "evaluate_alerts",
    "realized_performance",
    "redeliver",
    "register_alert_callback",
    "report_html",
    "unregister_alert_callback",
]


__getattr__ = lazy_exports(__name__, _EXPORTS)


def __dir__() -> list[str]:
    return list(__all__)
