"""The behaviour every Keel monitor store must show, as a pytest test class.

Subclass ``MonitorStoreConformance`` and provide a ``monitors`` fixture returning a
``MonitorStore`` over an empty, migrated metadata store; every test then runs against
it. Keel runs it on SQLite and PostgreSQL.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from keel.errors import AlreadyExists, Conflict, InvalidArgument, NotFound
from keel.stores.metadata import MonitorStore
from keel.stores.metadata._monitors import NewAlert, NewReport

__all__ = ["MonitorStoreConformance"]


def _create(store: MonitorStore, name: str = "credit-drift", **extra: Any) -> Any:
    values: dict[str, Any] = {
        "deployment": "credit",
        "reference": "credit-train@v1",
        "reference_version_id": "a" * 32,
        "window_seconds": 3600,
    }
    values.update(extra)
    return store.create(name, **values)


def _report(start: float, status: str = "ok", **metrics: float) -> NewReport:
    return NewReport(start, start + 3600, status, metrics, {"section": {"rows": 1}})


def _alert(key: str, status: str = "firing") -> NewAlert:
    return NewAlert(key, "drift_share > 0.3", status, 10.0, {"event": {"id": key}})


class MonitorStoreConformance:
    """Create, read, record windows and alerts, deliver, delete."""

    def test_create_and_read_back(self, monitors: MonitorStore) -> None:
        rules = [{"name": "r", "metric": "drift_share", "operator": ">", "threshold": 0.3}]
        made = _create(
            monitors,
            slices=["gender"],
            rules=rules,
            webhook={"url": "http://127.0.0.1/h", "allowed_hosts": ["127.0.0.1"]},
        )
        got = monitors.get("credit-drift")
        assert got == made
        assert got.slices == ("gender",)
        assert got.rules == tuple(rules)
        assert got.webhook == {"url": "http://127.0.0.1/h", "allowed_hosts": ["127.0.0.1"]}
        assert got.alert_state == {}
        assert got.last_window_end is None
        assert [m.name for m in monitors.list()] == ["credit-drift"]
        assert got.to_dict()["window_seconds"] == 3600

    def test_names_are_unique_and_checked(self, monitors: MonitorStore) -> None:
        _create(monitors)
        with pytest.raises(AlreadyExists, match="keel monitor show"):
            _create(monitors)
        for bad in ("", "Upper", "../x", "a" * 65):
            with pytest.raises(InvalidArgument):
                _create(monitors, bad)
        with pytest.raises(InvalidArgument, match="60 seconds"):
            _create(monitors, "short", window_seconds=10)
        assert len(monitors.list()) == 1

    def test_unknown_monitor_is_not_found_with_the_fix(self, monitors: MonitorStore) -> None:
        for call in (monitors.get, monitors.reports, monitors.alerts, monitors.delete):
            with pytest.raises(NotFound, match="keel monitor create"):
                call("nope")

    def test_record_appends_reports_state_and_alerts_once(self, monitors: MonitorStore) -> None:
        _create(monitors)
        after = monitors.record(
            "credit-drift",
            [_report(0.0, drift_share=0.5), _report(3600.0, "no_data")],
            alert_state={"windows": 2},
            alerts=[_alert("k1")],
        )
        assert after.last_window_end == 7200.0
        assert after.alert_state == {"windows": 2}
        reports = monitors.reports("credit-drift")
        assert [(r.window_start, r.status) for r in reports] == [(0.0, "ok"), (3600.0, "no_data")]
        assert reports[0].summary == {"drift_share": 0.5}
        assert reports[0].report == {"section": {"rows": 1}}
        assert [r.window_start for r in monitors.reports("credit-drift", limit=1)] == [3600.0]
        # the same event key again is ignored; a new one is added
        monitors.record(
            "credit-drift",
            [_report(7200.0)],
            alert_state={"windows": 3},
            alerts=[_alert("k1"), _alert("k2", "resolved")],
            expected_last_window_end=7200.0,
        )
        alerts = monitors.alerts("credit-drift")
        assert [(a.key, a.status, a.delivered, a.attempts) for a in alerts] == [
            ("k1", "firing", False, 0),
            ("k2", "resolved", False, 0),
        ]

    def test_a_stale_run_is_refused_and_changes_nothing(self, monitors: MonitorStore) -> None:
        _create(monitors)
        monitors.record("credit-drift", [_report(0.0)], alert_state={})
        with pytest.raises(Conflict, match="run it again"):
            monitors.record(
                "credit-drift", [_report(0.0)], alert_state={"x": 1}, alerts=[_alert("k")]
            )
        assert len(monitors.reports("credit-drift")) == 1
        assert monitors.alerts("credit-drift") == []
        assert monitors.get("credit-drift").alert_state == {}

    def test_concurrent_runs_store_each_window_once(self, monitors: MonitorStore) -> None:
        _create(monitors)
        barrier = threading.Barrier(4)
        errors: list[Conflict] = []

        def run() -> None:
            barrier.wait()
            try:
                monitors.record("credit-drift", [_report(0.0)], alert_state={})
            except Conflict as error:
                errors.append(error)

        threads = [threading.Thread(target=run) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(monitors.reports("credit-drift")) == 1
        assert len(errors) == 3

    def test_delivery_attempts_are_counted(self, monitors: MonitorStore) -> None:
        _create(monitors)
        monitors.record("credit-drift", [], alert_state={}, alerts=[_alert("k")])
        (alert,) = monitors.alerts("credit-drift", undelivered=True)
        monitors.mark_delivery(alert.id, delivered_to=["log"], error="webhook: refused")
        (alert,) = monitors.alerts("credit-drift", undelivered=True)
        assert (alert.attempts, alert.last_error, alert.delivered_to) == (
            1,
            "webhook: refused",
            ("log",),
        )
        monitors.mark_delivery(alert.id, delivered_to=["log", "webhook:h"])
        assert monitors.alerts("credit-drift", undelivered=True) == []
        (alert,) = monitors.alerts("credit-drift")
        assert (alert.delivered, alert.attempts, alert.last_error) == (True, 2, None)
        with pytest.raises(NotFound):
            monitors.mark_delivery(alert.id + 1000)

    def test_delete_removes_reports_and_alerts(self, monitors: MonitorStore) -> None:
        _create(monitors)
        monitors.record("credit-drift", [_report(0.0)], alert_state={}, alerts=[_alert("k")])
        monitors.delete("credit-drift")
        assert monitors.list() == []
        _create(monitors)
        assert monitors.reports("credit-drift") == []
        assert monitors.alerts("credit-drift") == []
