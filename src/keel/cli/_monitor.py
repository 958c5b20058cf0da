"""``keel monitor``: watch a deployment's predictions against a reference dataset."""

from __future__ import annotations

import logging
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from keel.cli._output import errors_reported, print_json, print_table
from keel.errors import InvalidArgument

if TYPE_CHECKING:
    from keel.monitoring._monitor import MonitorReport, MonitorService
    from keel.stores.metadata._monitors import Monitor

app = typer.Typer(
    help="Monitors: drift, data quality, latency and performance of a deployment, per window.",
    no_args_is_help=True,
)
log = logging.getLogger("keel.cli")

JSON = Annotated[bool, typer.Option("--json", help="Print JSON.")]
NAME = Annotated[str, typer.Argument(help="The monitor's name, e.g. credit-drift.")]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_GAUGES = {
    "drift_share": "keel_monitor_drift_share",
    "estimated_accuracy": "keel_monitor_estimated_accuracy",
    "estimated_roc_auc": "keel_monitor_estimated_roc_auc",
    "accuracy": "keel_monitor_accuracy",
}


def parse_window(text: str) -> timedelta:
    """``90``, ``30s``, ``15m``, ``1h`` or ``2d`` as a duration."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhd]?)\s*", text)
    if match is None or int(match[1]) == 0:
        raise InvalidArgument(
            f"cannot read window {text!r}; write a whole number with a unit: 30m, 1h, 1d"
        )
    return timedelta(seconds=int(match[1]) * _UNITS[match[2] or "s"])


def _service() -> MonitorService:
    from keel.context import get_context

    return get_context().monitors


def _when(stamp: float | None) -> str:
    if stamp is None:
        return "-"
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M")


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def _print_monitor(monitor: Monitor) -> None:
    rules = ", ".join(
        f"{r.get('metric')} {r.get('operator')} {r.get('threshold')} for {r.get('for_windows', 1)}"
        for r in monitor.rules
    )
    print_table(
        f"monitor {monitor.name}",
        ["field", "value"],
        [
            ["deployment", monitor.deployment],
            ["reference", monitor.reference],
            ["window", str(timedelta(seconds=monitor.window_seconds))],
            ["slices", ", ".join(monitor.slices) or "-"],
            ["rules", rules or "-"],
            ["webhook", (monitor.webhook or {}).get("url", "-")],
            ["last window end", _when(monitor.last_window_end)],
        ],
    )


def _print_reports(title: str, reports: list[MonitorReport]) -> None:
    rows = []
    for r in reports:
        m = r.metrics
        rows.append(
            [
                _when(r.window_start),
                r.status,
                int(m.get("rows", 0)),
                _num(m.get("drift_share")),
                _num(m.get("null_rate_max")),
                _num(m.get("p99_latency_seconds")),
                _num(m.get("accuracy")),
                _num(m.get("estimated_accuracy")),
                len(r.alerts),
            ]
        )
    columns = ["window", "status", "rows", "drift", "nulls max", "p99 s", "acc", "est acc"]
    print_table(title, [*columns, "alerts"], rows)


@app.command()
def create(
    name: NAME,
    deployment: Annotated[str, typer.Option("--deployment", help="The deployment to watch.")],
    reference: Annotated[
        str,
        typer.Option("--reference", help="Dataset version whose profile is the reference."),
    ] = "credit-train@v1",
    window: Annotated[str, typer.Option("--window", help="Window length: 30m, 1h, 1d.")] = "1h",
    slices: Annotated[
        list[str] | None,
        typer.Option("--slices", help="A column to report per value of (repeatable)."),
    ] = None,
    rules: Annotated[
        list[str] | None,
        typer.Option("--rule", help="An alert rule, e.g. 'drift_share > 0.3' (repeatable)."),
    ] = None,
    for_windows: Annotated[
        list[int] | None,
        typer.Option(
            "--for",
            help="Breaching windows before a rule fires: one for all rules, or one per --rule.",
        ),
    ] = None,
    webhook: Annotated[
        str | None, typer.Option("--webhook", metavar="URL", help="POST alerts here.")
    ] = None,
    allow_hosts: Annotated[
        list[str] | None,
        typer.Option("--allow-host", help="A host the webhook may reach (repeatable)."),
    ] = None,
    as_json: JSON = False,
) -> None:
    """Create a monitor of a deployment against a reference dataset version."""
    with errors_reported(as_json):
        rule_list = list(rules or [])
        counts = list(for_windows or [])
        if len(counts) > 1 and len(counts) != len(rule_list):
            raise InvalidArgument(
                f"{len(counts)} --for values for {len(rule_list)} --rule options; give one "
                "--for for all rules or one per rule"
            )
        specs: list[Any] = [
            {"expression": r, "for_windows": counts[i] if len(counts) > 1 else (counts or [1])[0]}
            for i, r in enumerate(rule_list)
        ]
        monitor = _service().create(
            name,
            deployment=deployment,
            reference=reference,
            window=parse_window(window),
            slices=slices or (),
            rules=specs,
            webhook=webhook,
            allowed_hosts=allow_hosts or (),
        )
    if as_json:
        print_json(monitor.to_dict())
    else:
        typer.echo(f"created monitor {monitor.name} of deployment {monitor.deployment}")


@app.command("list")
def list_monitors(as_json: JSON = False) -> None:
    """List monitors."""
    with errors_reported(as_json):
        found = _service().list()
    if as_json:
        print_json([m.to_dict() for m in found])
        return
    print_table(
        "monitors",
        ["name", "deployment", "reference", "window", "last window end"],
        [
            [
                m.name,
                m.deployment,
                m.reference,
                str(timedelta(seconds=m.window_seconds)),
                _when(m.last_window_end),
            ]
            for m in found
        ],
    )


@app.command()
def run(
    name: NAME,
    html: Annotated[
        Path | None, typer.Option("--html", help="Write the latest window's report here.")
    ] = None,
    as_json: JSON = False,
) -> None:
    """Process every complete window since the last run and deliver pending alerts."""
    with errors_reported(as_json):
        reports = _service().run(name)
        if html is not None and reports:
            reports[-1].to_html(html)
    if as_json:
        print_json([r.to_dict() for r in reports])
        return
    if not reports:
        typer.echo(f"monitor {name}: no complete window since the last run")
        return
    _print_reports(f"monitor {name}: {len(reports)} new window(s)", reports)
    if html is not None:
        typer.echo(f"wrote {html}")


@app.command()
def show(name: NAME, as_json: JSON = False) -> None:
    """Show a monitor's configuration and its latest window."""
    with errors_reported(as_json):
        service = _service()
        monitor = service.get(name)
        latest = service.reports(name, limit=1)
    if as_json:
        print_json(monitor.to_dict() | {"latest": [r.to_dict() for r in latest]})
        return
    _print_monitor(monitor)
    if latest:
        _print_reports("latest window", latest)


@app.command()
def reports(
    name: NAME,
    limit: Annotated[int, typer.Option("--limit", help="The latest N windows.")] = 24,
    as_json: JSON = False,
) -> None:
    """List a monitor's stored window reports."""
    with errors_reported(as_json):
        found = _service().reports(name, limit=limit)
    if as_json:
        print_json([r.to_dict() for r in found])
        return
    _print_reports(f"monitor {name}", found)


@app.command()
def alerts(name: NAME, as_json: JSON = False) -> None:
    """List a monitor's alert events and whether they were delivered."""
    with errors_reported(as_json):
        found = _service().store.alerts(name)
    if as_json:
        print_json([a.to_dict() for a in found])
        return
    print_table(
        f"alerts of monitor {name}",
        ["at", "rule", "status", "delivered", "attempts", "last error"],
        [
            [_when(a.at), a.rule, a.status, a.delivered, a.attempts, a.last_error or ""]
            for a in found
        ],
    )


def gauge_values(report: MonitorReport) -> dict[tuple[str, str], float]:
    """``{(gauge, slice): value}`` of a window; slice is ``""`` overall, else ``col=value``."""
    out: dict[tuple[str, str], float] = {}
    for key, value in report.metrics.items():
        if key.startswith("slice."):
            column, _, rest = key[len("slice.") :].partition(".")
            slice_value, _, metric = rest.rpartition(".")
            where = f"{column}={slice_value}"
        else:
            metric, where = key, ""
        if metric in _GAUGES:
            out[(_GAUGES[metric], where)] = value
    return out


@app.command()
def watch(
    name: NAME,
    every: Annotated[float, typer.Option("--every", help="Seconds between runs.")] = 60.0,
    metrics_port: Annotated[
        int | None,
        typer.Option("--metrics-port", help="Serve Prometheus gauges on this port."),
    ] = None,
    max_runs: Annotated[
        int | None, typer.Option("--max-runs", help="Stop after this many runs (default: never).")
    ] = None,
    as_json: JSON = False,
) -> None:
    """Run the monitor every few seconds; a failing run is logged and the loop goes on."""
    from keel.errors import KeelError

    if every <= 0:
        raise typer.BadParameter("--every must be positive seconds")
    gauges: dict[str, Any] = {}
    if metrics_port is not None:
        from prometheus_client import CollectorRegistry, Gauge, start_http_server

        registry = CollectorRegistry()
        gauges = {
            gauge: Gauge(
                gauge,
                f"Latest window's {metric} of a Keel monitor",
                ["monitor", "slice"],
                registry=registry,
            )
            for metric, gauge in _GAUGES.items()
        }
        start_http_server(metrics_port, addr="127.0.0.1", registry=registry)
    with errors_reported(as_json):
        service = _service()
        service.get(name)
    done = 0
    while max_runs is None or done < max_runs:
        if done:
            time.sleep(every)
        done += 1
        try:
            reports = service.run(name)
        except KeelError as error:
            log.error("monitor %s: run failed: %s", name, error.message)
            typer.echo(f"error: monitor {name}: {error.message}", err=True)
            continue
        except Exception as error:  # keep watching through an unexpected failure
            log.exception("monitor %s: run failed", name)
            typer.echo(f"error: monitor {name}: {error}", err=True)
            continue
        if gauges:
            for report in reports:
                for (gauge, where), value in gauge_values(report).items():
                    gauges[gauge].labels(monitor=name, slice=where).set(value)
        if as_json:
            print_json([r.to_dict() for r in reports])
        elif reports:
            _print_reports(f"monitor {name}", reports)
