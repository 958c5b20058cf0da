"""Monitors in the metadata store: definitions, window reports and alert events.

``monitors`` holds one row per monitor with its configuration, its alert state (JSON)
and the end of the last window it processed. ``monitor_reports`` is append-only, one
row per (monitor, window start). ``monitor_alerts`` holds each alert event once (unique
per monitor and event key) with whether it was delivered, how many attempts it took
and the last error: a run records its reports, the new state and new events in one
transaction, then delivers what is still undelivered, so a failed webhook is retried
by the next run and a delivered event is never sent again.
"""

from __future__ import annotations

import builtins
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import sqlalchemy as sa

from keel.core._ids import new_id
from keel.errors import AlreadyExists, Conflict, IntegrityError, InvalidArgument, NotFound
from keel.stores.metadata._base import EngineStore
from keel.stores.metadata._schema import monitor_alerts, monitor_reports, monitors

__all__ = [
    "AlertRecord",
    "Monitor",
    "MonitorStore",
    "NewAlert",
    "NewReport",
    "StoredReport",
    "validate_monitor_name",
]

_NAME = re.compile(r"[a-z][a-z0-9_-]{0,63}")


def validate_monitor_name(name: object) -> str:
    """``name`` when it is a valid monitor name (``[a-z][a-z0-9_-]*``, at most 64)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidArgument(
            f"invalid monitor name {name!r}: use lower-case letters, digits, '-' and '_', "
            "starting with a letter, at most 64 characters (e.g. 'credit-drift')"
        )
    return name


@dataclass(frozen=True)
class Monitor:
    """A deployment watched window by window against a reference dataset version."""

    id: str
    name: str
    deployment: str
    reference: str
    reference_version_id: str
    window_seconds: int
    slices: tuple[str, ...] = ()
    rules: tuple[dict[str, Any], ...] = ()
    webhook: dict[str, Any] | None = None
    alert_state: dict[str, Any] = field(default_factory=dict)
    last_window_end: float | None = None
    created_at: float = 0.0
    updated_at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "deployment": self.deployment,
            "reference": self.reference,
            "reference_version_id": self.reference_version_id,
            "window_seconds": self.window_seconds,
            "slices": list(self.slices),
            "rules": [dict(r) for r in self.rules],
            "webhook": self.webhook,
            "last_window_end": self.last_window_end,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True)
class NewReport:
    """A window's report to append."""

    window_start: float
    window_end: float
    status: str
    summary: Mapping[str, Any]
    report: Mapping[str, Any]


@dataclass(frozen=True)
class StoredReport:
    """A window's report as stored."""

    id: int
    monitor: str
    window_start: float
    window_end: float
    status: str
    created_at: float
    summary: dict[str, Any]
    report: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class NewAlert:
    """An alert event to record (ignored when its key is already recorded)."""

    key: str
    rule: str
    status: str
    at: float
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class AlertRecord:
    """An alert event as stored, with its delivery record."""

    id: int
    monitor: str
    key: str
    rule: str
    status: str
    at: float
    payload: dict[str, Any]
    delivered: bool
    attempts: int
    last_error: str | None
    delivered_to: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class MonitorStore(EngineStore):
    """Monitors, their reports and their alerts in the metadata store."""

    # writing ------------------------------------------------------------------------

    def create(
        self,
        name: str,
        *,
        deployment: str,
        reference: str,
        reference_version_id: str,
        window_seconds: int,
        slices: Sequence[str] = (),
        rules: Sequence[Mapping[str, Any]] = (),
        webhook: Mapping[str, Any] | None = None,
    ) -> Monitor:
        """Record a new monitor; ``AlreadyExists`` when the name is taken."""
        validate_monitor_name(name)
        if isinstance(window_seconds, bool) or not isinstance(window_seconds, int):
            raise InvalidArgument(f"window_seconds must be an integer, got {window_seconds!r}")
        if window_seconds < 60:
            raise InvalidArgument(
                f"a monitor window must last at least 60 seconds, got {window_seconds}; "
                "pass e.g. --window 1h"
            )
        now = time.time()
        monitor_id = new_id()
        values = {
            "id": monitor_id,
            "name": name,
            "deployment": deployment,
            "reference": reference,
            "reference_version_id": reference_version_id,
            "window_seconds": window_seconds,
            "slices": _dumps(list(slices), name),
            "rules": _dumps([dict(r) for r in rules], name),
            "webhook": None if webhook is None else _dumps(dict(webhook), name),
            "alert_state": "{}",
            "last_window_end": None,
            "created_at": now,
            "updated_at": now,
        }
        with self._write() as conn:
            conn.execute(
                self._insert(monitors)
                .values(**values)
                .on_conflict_do_nothing(index_elements=["name"])
            )
            row = self._row(conn, name)
            if row.id != monitor_id:
                raise AlreadyExists(
                    f"monitor {name!r} already exists; see it with `keel monitor show {name}`, "
                    "or pick another name"
                )
            return _monitor(row)

    def delete(self, name: str) -> None:
        """Remove a monitor with its reports and alerts."""
        with self._write() as conn:
            row = self._row(conn, name, lock=True)
            conn.execute(monitors.delete().where(monitors.c.id == row.id))

    def record(
        self,
        name: str,
        reports: Sequence[NewReport],
        *,
        alert_state: Mapping[str, Any],
        alerts: Sequence[NewAlert] = (),
        expected_last_window_end: float | None = None,
    ) -> Monitor:
        """Append window reports, new alert events and the new alert state at once.

        Refuses with ``Conflict`` when the monitor moved on since the caller read
        it (``expected_last_window_end`` differs): two runs at once never store a window
        twice. Alert events already recorded (same key) are left as they are.
        """
        now = time.time()
        state_text = _dumps(dict(alert_state), name)
        with self._write() as conn:
            row = self._row(conn, name, lock=True)
            if row.last_window_end != expected_last_window_end:
                raise Conflict(
                    f"monitor {name!r} was run by someone else meanwhile (its last window "
                    "moved); run it again"
                )
            if reports:
                conn.execute(
                    monitor_reports.insert(),
                    [
                        {
                            "monitor_id": row.id,
                            "window_start": r.window_start,
                            "window_end": r.window_end,
                            "status": r.status,
                            "created_at": now,
                            "summary": _dumps(dict(r.summary), name),
                            "report": _dumps(dict(r.report), name),
                        }
                        for r in reports
                    ],
                )
            for alert in alerts:
                conn.execute(
                    self._insert(monitor_alerts)
                    .values(
                        monitor_id=row.id,
                        key=alert.key,
                        rule=alert.rule,
                        status=alert.status,
                        at=alert.at,
                        payload=_dumps(dict(alert.payload), name),
                        delivered=False,
                        attempts=0,
                    )
                    .on_conflict_do_nothing(index_elements=["monitor_id", "key"])
                )
            last = max((r.window_end for r in reports), default=row.last_window_end)
            conn.execute(
                monitors.update()
                .where(monitors.c.id == row.id)
                .values(alert_state=state_text, last_window_end=last, updated_at=now)
            )
            return _monitor(self._row(conn, name))

    def mark_delivery(
        self, alert_id: int, *, delivered_to: Sequence[str] = (), error: str | None = None
    ) -> None:
        """Count a delivery attempt of an alert: delivered when ``error`` is None.

        ``delivered_to`` names every notifier that has accepted the event so far.
        """
        values: dict[str, Any] = {
            "attempts": monitor_alerts.c.attempts + 1,
            "delivered_to": _dumps(sorted(set(delivered_to)), "alert"),
        }
        if error is None:
            values.update(delivered=True, last_error=None)
        else:
            values["last_error"] = error[:2000]
        with self._write() as conn:
            changed = conn.execute(
                monitor_alerts.update().where(monitor_alerts.c.id == alert_id).values(**values)
            )
            if changed.rowcount != 1:
                raise NotFound(
                    f"no monitor alert with id {alert_id}; list them with "
                    "`keel monitor alerts NAME`"
                )

    # reading ------------------------------------------------------------------------

    def get(self, name: str) -> Monitor:
        with self._read() as conn:
            return _monitor(self._row(conn, name))

    def list(self) -> builtins.list[Monitor]:
        """Every monitor, by name."""
        with self._read() as conn:
            rows = conn.execute(sa.select(monitors).order_by(monitors.c.name)).all()
        return [_monitor(r) for r in rows]

    def reports(self, name: str, *, limit: int | None = None) -> builtins.list[StoredReport]:
        """A monitor's window reports, oldest first (the latest ``limit`` when given)."""
        with self._read() as conn:
            row = self._row(conn, name)
            query = (
                sa.select(monitor_reports)
                .where(monitor_reports.c.monitor_id == row.id)
                .order_by(monitor_reports.c.window_start.desc())
            )
            if limit is not None:
                query = query.limit(limit)
            found = conn.execute(query).all()
        return [
            StoredReport(
                id=r.id,
                monitor=name,
                window_start=r.window_start,
                window_end=r.window_end,
                status=r.status,
                created_at=r.created_at,
                summary=_loads(r.summary, name),
                report=_loads(r.report, name),
            )
            for r in reversed(found)
        ]

    def alerts(self, name: str, *, undelivered: bool = False) -> builtins.list[AlertRecord]:
        """A monitor's alert events, oldest first (only undelivered ones when asked)."""
        with self._read() as conn:
            row = self._row(conn, name)
            query = sa.select(monitor_alerts).where(monitor_alerts.c.monitor_id == row.id)
            if undelivered:
                query = query.where(monitor_alerts.c.delivered == sa.false())
            found = conn.execute(query.order_by(monitor_alerts.c.id)).all()
        return [
            AlertRecord(
                id=a.id,
                monitor=name,
                key=a.key,
                rule=a.rule,
                status=a.status,
                at=a.at,
                payload=_loads(a.payload, name),
                delivered=bool(a.delivered),
                attempts=a.attempts,
                last_error=a.last_error,
                delivered_to=tuple(_loads(a.delivered_to, name)),
            )
            for a in found
        ]

    # helpers ------------------------------------------------------------------------

    def _row(self, conn: sa.Connection, name: str, *, lock: bool = False) -> sa.Row[Any]:
        query = sa.select(monitors).where(monitors.c.name == name)
        if lock and self.dialect == "postgresql":
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            raise NotFound(
                f"no monitor {name!r}; list monitors with `keel monitor list`, or create it "
                f"with `keel monitor create {name} --deployment NAME --reference DATASET@vN`"
            )
        return row


def _dumps(value: Any, name: str) -> str:
    try:
        return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()
    except TypeError as error:
        raise InvalidArgument(
            f"a record of monitor {name!r} is not JSON-serialisable ({error}); pass strings, "
            "numbers, lists and dicts with string keys"
        ) from None


def _loads(text: str, name: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as error:
        raise IntegrityError(
            f"a stored record of monitor {name!r} is not valid JSON ({error}); restore the "
            "metadata store from a backup"
        ) from None


def _monitor(row: sa.Row[Any]) -> Monitor:
    webhook = None if row.webhook is None else _loads(row.webhook, row.name)
    return Monitor(
        id=row.id,
        name=row.name,
        deployment=row.deployment,
        reference=row.reference,
        reference_version_id=row.reference_version_id,
        window_seconds=row.window_seconds,
        slices=tuple(_loads(row.slices, row.name)),
        rules=tuple(_loads(row.rules, row.name)),
        webhook=webhook,
        alert_state=_loads(row.alert_state, row.name),
        last_window_end=row.last_window_end,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
