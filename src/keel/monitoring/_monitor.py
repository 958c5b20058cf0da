"""Monitors: a deployment's prediction log checked window by window against a reference.

``MonitorService.create`` records what to watch (a deployment, a dataset version whose
stored profile is the reference, the window length, slice columns, alert rules and an
optional webhook). ``run`` processes every complete window since the last one (window
boundaries are multiples of the window length since the epoch, in UTC), stores one
report per window, evaluates the alert rules on each window's flat metrics with the
stored alert state, records new alert events once (deduplicated by key) and then
delivers every undelivered event: to the log always, to the webhook when configured,
and to registered callbacks. A delivery that fails stays undelivered and is retried by
the next run; a delivered one is never sent again.
"""

from __future__ import annotations

import builtins
import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidArgument, KeelError, NotFound
from keel.monitoring._monitor_run import WindowAnalysis, flat_metrics

if TYPE_CHECKING:
    from keel.data._service import DataService
    from keel.monitoring._report import DriftReport
    from keel.serving._deployments import DeploymentService
    from keel.serving._predlog import PredictionLogReader
    from keel.stores.metadata._monitors import AlertRecord, Monitor, MonitorStore, NewAlert

__all__ = ["MonitorReport", "MonitorService", "report_html"]


def report_html(report: MonitorReport) -> str:
    """One HTML document of a window (see ``keel.monitoring._monitor_html``)."""
    from keel.monitoring._monitor_html import report_html as render

    return render(report)


log = logging.getLogger("keel.monitoring")

MAX_FIRST_WINDOWS = 168
"""A run processes at most this many windows (a week of hourly windows); older ones are
skipped with a warning, so a monitor created over a long log starts quickly."""


@dataclass
class MonitorReport:
    """One window of one monitor: its figures (``section``), flat metrics and alerts."""

    monitor: str
    window_start: float
    window_end: float
    section: dict[str, Any]
    metrics: dict[str, float]
    alerts: list[dict[str, Any]] = field(default_factory=list)
    drift: DriftReport | None = None  # the full drift report, while in memory

    @property
    def status(self) -> str:
        return str(self.section.get("status", "ok"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "monitor": self.monitor,
            "window_start": _iso(self.window_start),
            "window_end": _iso(self.window_end),
            "status": self.status,
            "metrics": self.metrics,
            "alerts": self.alerts,
            "report": self.section,
        }

    def to_html(self, path: Path | str) -> Path:
        """Write one self-contained HTML file; returns its path."""
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        from keel.monitoring._monitor_html import report_html

        out.write_text(report_html(self), encoding="utf-8")
        return out


class MonitorService:
    """Create monitors and run them over the prediction log (see the module docstring)."""

    def __init__(
        self,
        store: MonitorStore,
        data: DataService,
        predictions: PredictionLogReader,
        deployments: DeploymentService,
        *,
        max_windows: int = MAX_FIRST_WINDOWS,
    ) -> None:
        self.store = store
        self.data = data
        self.predictions = predictions
        self.deployments = deployments
        self.max_windows = max_windows

    # defining -----------------------------------------------------------------------

    def create(
        self,
        name: str,
        *,
        deployment: str,
        reference: str = "credit-train@v1",
        window: dt.timedelta = dt.timedelta(hours=1),
        slices: Sequence[str] = (),
        rules: Sequence[str | Mapping[str, Any]] = (),
        webhook: str | Mapping[str, Any] | None = None,
        allowed_hosts: Sequence[str] = (),
        for_windows: int = 1,
    ) -> Monitor:
        """A new monitor; the deployment must exist and the reference have a profile.

        ``rules`` are strings like ``"drift_share > 0.3"`` (each firing after
        ``for_windows`` breaching windows) or mappings with ``expression``,
        ``for_windows``, ``name`` and ``severity``; ``webhook`` is a URL whose host must
        be in ``allowed_hosts``.
        """
        try:
            self.deployments.get(deployment)
        except NotFound:
            raise NotFound(
                f"monitor {name!r} watches deployment {deployment!r}, which does not exist; "
                "list deployments with `keel deploy list`, or create it with "
                f"`keel deploy create {deployment} --model URI`"
            ) from None
        try:
            version = self.data.get_version(reference)
        except NotFound as error:
            raise NotFound(
                f"the reference {reference!r} of monitor {name!r} does not exist "
                f"({error.message}); add it with `keel data add NAME FILE` and pass NAME@vN"
            ) from None
        profile = self.data.profile_of(version)
        columns = profile.get("columns") or {}
        unknown = [s for s in slices if s not in columns]
        if unknown:
            raise InvalidArgument(
                f"slice columns {unknown} are not in the reference {version.ref}; slice by "
                f"one of its columns: {', '.join(sorted(columns))}"
            )
        seconds = window.total_seconds()
        if seconds != int(seconds):
            raise InvalidArgument(f"a monitor window is whole seconds, got {window}")
        return self.store.create(
            name,
            deployment=deployment,
            reference=reference,
            reference_version_id=version.id,
            window_seconds=int(seconds),
            slices=list(dict.fromkeys(slices)),
            rules=[_rule(r, for_windows) for r in rules],
            webhook=_webhook(webhook, allowed_hosts),
        )

    def get(self, name: str) -> Monitor:
        return self.store.get(name)

    def list(self) -> builtins.list[Monitor]:
        return self.store.list()

    def delete(self, name: str) -> None:
        self.store.delete(name)

    # running ------------------------------------------------------------------------

    def run(self, name: str, *, now: dt.datetime | None = None) -> builtins.list[MonitorReport]:
        """Process every complete window since the last run; deliver pending alerts."""
        from keel.stores.metadata._monitors import NewReport

        monitor = self.store.get(name)
        moment = (now or dt.datetime.now(dt.UTC)).timestamp()
        starts = self._window_starts(monitor, moment)
        reports: builtins.list[MonitorReport] = []
        if starts:
            analysis = self._analysis(monitor, starts[0])
            state = monitor.alert_state
            alerts: builtins.list[NewAlert] = []
            for start in starts:
                report = self._window(monitor, analysis, start)
                state, new = self._evaluate(monitor, state, report)
                alerts.extend(new)
                reports.append(report)
            self.store.record(
                name,
                [
                    NewReport(
                        r.window_start,
                        r.window_end,
                        r.status,
                        r.metrics,
                        {"section": r.section, "alerts": r.alerts},
                    )
                    for r in reports
                ],
                alert_state=state,
                alerts=alerts,
                expected_last_window_end=monitor.last_window_end,
            )
        self.deliver(name)
        return reports

    def deliver(self, name: str) -> int:
        """Send every undelivered alert event of a monitor; the number fully delivered.

        Each event goes only to the notifiers that have not accepted it yet, so a
        failed webhook is retried without the log or callbacks seeing it twice.
        """
        monitor = self.store.get(name)
        pending = self.store.alerts(name, undelivered=True)
        if not pending:
            return 0
        notifiers = self._notifiers(monitor)
        delivered = 0
        for record in pending:
            done, error = self._send(notifiers, record)
            self.store.mark_delivery(record.id, delivered_to=done, error=error)
            delivered += error is None
        return delivered

    def reports(self, name: str, *, limit: int | None = None) -> builtins.list[MonitorReport]:
        """Stored window reports, oldest first."""
        return [
            MonitorReport(
                monitor=name,
                window_start=r.window_start,
                window_end=r.window_end,
                section=dict(r.report.get("section", {})),
                metrics={k: float(v) for k, v in r.summary.items()},
                alerts=list(r.report.get("alerts", [])),
            )
            for r in self.store.reports(name, limit=limit)
        ]

    # helpers ------------------------------------------------------------------------

    def _window_starts(self, monitor: Monitor, moment: float) -> builtins.list[float]:
        width = monitor.window_seconds
        end = (moment // width) * width  # the end of the last complete window
        if monitor.last_window_end is not None:
            first = monitor.last_window_end
        else:
            segments = self.predictions.segments(monitor.deployment)
            earliest = _segment_hour(segments[0]) if segments else None
            first = end - width if earliest is None else (earliest // width) * width
        starts = []
        start = first
        while start + width <= end:
            starts.append(start)
            start += width
        if len(starts) > self.max_windows:
            log.warning(
                "monitor %s: %d windows to process; skipping the oldest %d",
                monitor.name,
                len(starts),
                len(starts) - self.max_windows,
            )
            starts = starts[-self.max_windows :]
        return starts

    def _analysis(self, monitor: Monitor, first_start: float) -> WindowAnalysis:
        version = self.data.catalog.get_by_id(monitor.reference_version_id)
        profile = self.data.profile_of(version)
        columns = list((profile.get("columns") or {}).keys())
        inputs = self._model_inputs(monitor.deployment) or []
        if not inputs:
            inputs = [c for c in columns if c not in monitor.slices] or columns
        extra = [c for c in columns if c not in inputs]
        target = extra[0] if len(extra) == 1 else None
        baseline = None
        if target is None:
            baseline = self._baseline(monitor, first_start)
        return WindowAnalysis(profile, inputs, monitor.slices, target, baseline).fit()

    def _model_inputs(self, deployment: str) -> builtins.list[str] | None:
        """The input columns of the deployment's first variant's model, when known."""
        try:
            view = self.deployments.describe(deployment)
            source = next(v.source for v in view.variants if v.source)
            info = self.deployments.models.get_info(source)
        except (KeelError, StopIteration):
            return None
        signature = getattr(info, "signature", None)
        if signature is None:
            return None
        return [str(c.name) for c in signature.inputs]

    def _baseline(self, monitor: Monitor, first_start: float) -> Any:
        """The predictions of the first window with rows (stored or about to be)."""
        import pandas as pd

        stored = [r for r in self.store.reports(monitor.name) if r.status == "ok"]
        start = stored[0].window_start if stored else first_start
        width = monitor.window_seconds
        for _ in range(self.max_windows):
            table = self.predictions.read(monitor.deployment, _utc(start), _utc(start + width))
            if table.num_rows and "keel_prediction" in table.column_names:
                values = table.column("keel_prediction").to_pandas()
                return pd.DataFrame({"prediction": values.to_numpy()})
            if stored:
                return None
            start += width
        return None

    def _window(self, monitor: Monitor, analysis: WindowAnalysis, start: float) -> MonitorReport:
        end = start + monitor.window_seconds
        table = self.predictions.read(
            monitor.deployment, _utc(start), _utc(end), with_feedback=True
        )
        section, drift = analysis.analyse(table)
        if drift is not None:
            drift.title = f"Monitor {monitor.name}: {_iso(start)} to {_iso(end)}"
        return MonitorReport(monitor.name, start, end, section, flat_metrics(section), drift=drift)

    def _evaluate(
        self, monitor: Monitor, state: dict[str, Any], report: MonitorReport
    ) -> tuple[dict[str, Any], builtins.list[NewAlert]]:
        if not monitor.rules:
            return state, []
        from keel.monitoring import _alerts
        from keel.stores.metadata._monitors import NewAlert

        rules = [_alerts.AlertRule.from_dict(r) for r in monitor.rules]
        new_state, events = _alerts.evaluate_alerts(
            rules,
            report.metrics,
            _alerts.AlertState.from_dict(state),
            window=_iso(report.window_start),
        )
        out = []
        for event in events:
            record = {
                "monitor": monitor.name,
                "deployment": monitor.deployment,
                "window_start": _iso(report.window_start),
                "window_end": _iso(report.window_end),
                "event": event.to_dict(),
            }
            report.alerts.append(record)
            out.append(
                NewAlert(event.id, event.rule[:250], event.status, report.window_end, record)
            )
        return new_state.to_dict(), out

    def _notifiers(self, monitor: Monitor) -> builtins.list[Any]:
        from keel.monitoring import _alerts

        notifiers: builtins.list[Any] = [_alerts.LogNotifier()]
        if monitor.webhook:
            notifiers.append(
                _alerts.WebhookNotifier(
                    monitor.webhook["url"], list(monitor.webhook.get("allowed_hosts", ()))
                )
            )
        notifiers.extend(
            _alerts.CallbackNotifier(fn, name=f"callback:{name}")
            for name, fn in sorted(_alerts.alert_callbacks().items())
        )
        return notifiers

    def _send(
        self, notifiers: Sequence[Any], record: AlertRecord
    ) -> tuple[builtins.list[str], str | None]:
        """Deliver one recorded event to the notifiers that have not accepted it yet."""
        from keel.monitoring import _alerts

        event = _alerts.AlertEvent.from_dict(record.payload["event"])
        done = set(record.delivered_to)
        pending = [n for n in notifiers if _alerts.notifier_name(n) not in done]
        errors = []
        for result in _alerts.deliver_all([event], pending):
            if result.ok:
                done.add(result.notifier)
            else:
                errors.append(f"{result.notifier}: {result.error}")
        return sorted(done), "; ".join(errors) or None


def _rule(rule: str | Mapping[str, Any], for_windows: int = 1) -> dict[str, Any]:
    """A rule as stored (``AlertRule.to_dict``), checked by parsing it now."""
    from keel.monitoring import _alerts

    if isinstance(rule, str):
        parsed = _alerts.AlertRule.parse(rule, for_windows=for_windows)
    elif isinstance(rule, Mapping):
        parsed = (
            _alerts.AlertRule.from_dict(rule)
            if "metric" in rule
            else _alerts.AlertRule.parse(
                rule.get("expression"),  # type: ignore[arg-type]
                for_windows=int(rule.get("for_windows", for_windows)),
                name=rule.get("name"),
                severity=str(rule.get("severity", "warning")),
            )
        )
    else:
        raise InvalidArgument(
            "an alert rule is a string like 'drift_share > 0.3' or a mapping with "
            f"'expression', got {type(rule).__name__}"
        )
    return parsed.to_dict()


def _webhook(
    webhook: str | Mapping[str, Any] | None, allowed_hosts: Sequence[str]
) -> dict[str, Any] | None:
    if webhook is None:
        return None
    if isinstance(webhook, str):
        spec: dict[str, Any] = {"url": webhook, "allowed_hosts": list(allowed_hosts)}
    else:
        spec = {"url": webhook.get("url"), "allowed_hosts": list(webhook.get("allowed_hosts", ()))}
    from keel.monitoring import _alerts

    _alerts.WebhookNotifier(spec["url"], spec["allowed_hosts"])  # refuses a bad URL now
    return spec


def _segment_hour(path: Path) -> float:
    moment = dt.datetime.strptime(f"{path.parent.parent.name} {path.parent.name}", "%Y-%m-%d %H")
    return moment.replace(tzinfo=dt.UTC).timestamp()


def _utc(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def _iso(seconds: float) -> str:
    return _utc(seconds).isoformat().replace("+00:00", "Z")
