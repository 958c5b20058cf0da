"""Monitors over a prediction log written directly (nothing is served)."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from keel.errors import InvalidArgument, NotFound

BASE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
HOUR = 3600.0


def world(
    n: int, seed: int, *, shift: float = 0.0, shift_gender: str | None = None
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "band": rng.choice(["a", "b", "c"], size=n),
            "gender": rng.choice(["F", "M"], size=n),
        }
    )
    if shift:
        moved = frame["gender"] == shift_gender if shift_gender else np.ones(n, bool)
        frame.loc[moved, "x"] += shift
    return frame


def target(frame: pd.DataFrame) -> pd.Series:
    return ((frame["x"] > 0) | (frame["band"] == "a")).astype(int).rename("y")


@pytest.fixture
def setup(keel_home: Path) -> dict[str, Any]:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    import keel
    from keel.context import get_context

    X = world(600, 0)
    y = target(X)
    pipe = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [("cat", OneHotEncoder(handle_unknown="ignore"), ["band", "gender"])],
                    remainder="passthrough",
                ),
            ),
            ("clf", LogisticRegression()),
        ]
    ).fit(X, y)
    with keel.start_run(experiment="monitoring"):
        info = keel.log_model(pipe, name="model", input_example=X.iloc[:5])
    keel.register_model(info.uri, "credit")
    ctx = get_context()
    ctx.deployments.create("credit", {"routes": [{"model": "models:/credit/1"}]})
    keel.data.add_frame(pd.concat([X, y], axis=1), "credit-train")
    return {"ctx": ctx, "model": pipe, "log": ctx.settings.prediction_log_dir}


def write_log(
    root: Path,
    windows: dict[int, pd.DataFrame],
    model: Any,
    *,
    labels: dict[int, bool] | None = None,
) -> None:
    """Rows of hour ``h`` logged at ``BASE + h`` hours, one request per 10 rows."""
    from keel.serving._predlog import FeedbackEntry, LogEntry, PredictionLogWriter

    writer = PredictionLogWriter(root, "credit", flush_interval=0.05)
    for hour, frame in windows.items():
        for i, start in enumerate(range(0, len(frame), 10)):
            chunk = frame.iloc[start : start + 10].reset_index(drop=True)
            ts = BASE.timestamp() + hour * HOUR + i
            request = f"r{hour}-{i}"
            proba = model.predict_proba(chunk)
            writer.append(
                LogEntry(
                    timestamp=ts,
                    request_id=request,
                    variant="primary",
                    model_version="1",
                    latency_seconds=0.001 * (1 + i % 10),
                    features=chunk,
                    labels=proba.argmax(axis=1),
                    proba=proba,
                    classes=[0, 1],
                )
            )
            if labels and labels.get(hour):
                truth = target(chunk)
                for row, value in enumerate(truth):
                    writer.append(FeedbackEntry(ts + 1, request, row, json.dumps(int(value))))
    writer.close()


def test_drift_quality_operational_and_performance_per_window(setup: dict[str, Any]) -> None:
    ctx, model = setup["ctx"], setup["model"]
    drifted = world(400, 2, shift=3.0, shift_gender="F")
    broken = world(200, 3)
    broken.loc[:20, "band"] = "zzz"  # unseen category
    write_log(setup["log"], {0: world(400, 1), 2: drifted, 3: broken}, model, labels={0: True})
    ctx.monitors.create(
        "credit-mon", deployment="credit", reference="credit-train@v1", slices=["gender"]
    )
    reports = ctx.monitors.run("credit-mon", now=BASE + dt.timedelta(hours=4, minutes=5))
    assert [r.window_start - BASE.timestamp() for r in reports] == [0, HOUR, 2 * HOUR, 3 * HOUR]
    first, empty, shifted, odd = reports
    assert first.status == "ok"
    assert first.metrics["rows"] == 400
    assert first.metrics["requests"] == 40
    assert first.metrics["drift_share"] < 0.5
    assert first.metrics["labelled_rows"] == 400
    assert first.metrics["accuracy"] > 0.7  # realized, from the labels
    assert "estimated_accuracy" in first.metrics
    assert first.metrics["p99_latency_seconds"] == pytest.approx(0.01, abs=1e-3)
    assert first.section["prediction_drift"]["against"] == "target"
    assert empty.status == "no_data"
    assert empty.metrics["rows"] == 0
    assert shifted.section["drift"]["columns"]["x"]["drifted"]
    assert (
        shifted.metrics["slice.gender.F.drift_share"]
        > shifted.metrics["slice.gender.M.drift_share"]
    )
    assert "accuracy" not in shifted.metrics  # no labels in that window
    assert odd.section["quality"]["unseen_categories"]["band"]["rows"] == 21
    assert odd.metrics["unseen_category_rows"] == 21
    # nothing new on a second run; reports are stored
    assert ctx.monitors.run("credit-mon", now=BASE + dt.timedelta(hours=4, minutes=30)) == []
    stored = ctx.monitors.reports("credit-mon")
    assert [r.status for r in stored] == ["ok", "no_data", "ok", "ok"]
    assert stored[2].metrics["drift_share"] == shifted.metrics["drift_share"]


def test_missing_and_all_nan_columns_are_quality_findings(
    setup: dict[str, Any], tmp_path: Path
) -> None:
    ctx, model = setup["ctx"], setup["model"]
    from keel.serving._predlog import LogEntry, PredictionLogWriter

    frame = world(50, 4)
    proba = model.predict_proba(frame)
    frame = frame.drop(columns=["band"])
    frame["x"] = np.nan
    writer = PredictionLogWriter(setup["log"], "credit", flush_interval=0.05)
    writer.append(
        LogEntry(
            BASE.timestamp() + 5, "r", "primary", "1", 0.002, frame, proba.argmax(1), proba, [0, 1]
        )
    )
    writer.close()
    ctx.monitors.create("m", deployment="credit", reference="credit-train@v1")
    (report,) = ctx.monitors.run("m", now=BASE + dt.timedelta(hours=1))
    quality = report.section["quality"]
    assert quality["missing_columns"] == ["band"]
    assert quality["null_rate"]["x"] == 1.0
    assert report.metrics["null_rate_max"] == 1.0
    assert report.metrics["missing_columns"] == 1
    html = report.to_html(tmp_path / "r.html").read_text()
    assert "band is missing" in html


def test_no_log_at_all_gives_one_no_data_window(setup: dict[str, Any]) -> None:
    ctx = setup["ctx"]
    ctx.monitors.create("m", deployment="credit", reference="credit-train@v1")
    (report,) = ctx.monitors.run("m", now=BASE + dt.timedelta(minutes=90))
    assert report.status == "no_data"
    assert report.window_start == BASE.timestamp()


def test_create_refuses_unknown_deployment_reference_and_slice(setup: dict[str, Any]) -> None:
    monitors = setup["ctx"].monitors
    with pytest.raises(NotFound, match="keel deploy list"):
        monitors.create("m", deployment="nope", reference="credit-train@v1")
    with pytest.raises(NotFound, match="keel data add"):
        monitors.create("m", deployment="credit", reference="missing@v1")
    with pytest.raises(InvalidArgument, match="slice"):
        monitors.create("m", deployment="credit", reference="credit-train@v1", slices=["zip"])
    with pytest.raises(InvalidArgument, match="alert rule"):
        monitors.create("m", deployment="credit", reference="credit-train@v1", rules=["drift >"])
    assert monitors.list() == []


class _Hook(http.server.BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []
    handler = type("Hook", (_Hook,), {"received": received})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()
    server.server_close()


def test_alerts_fire_after_n_windows_once_resolve_once_and_post_once(
    setup: dict[str, Any], hook: tuple[str, list[dict[str, Any]]]
) -> None:
    ctx, model = setup["ctx"], setup["model"]
    url, received = hook
    windows = {0: world(300, 5), 1: world(300, 6, shift=3.0), 2: world(300, 7, shift=3.0)}
    windows |= {3: world(300, 8, shift=3.0), 4: world(300, 9)}
    write_log(setup["log"], windows, model)
    ctx.monitors.create(
        "m",
        deployment="credit",
        reference="credit-train@v1",
        rules=["drift_share > 0.3"],
        for_windows=2,
        webhook=url,
        allowed_hosts=["127.0.0.1"],
    )
    ctx.monitors.run("m", now=BASE + dt.timedelta(hours=3))
    alerts = ctx.monitors.store.alerts("m")
    assert [(a.status, a.delivered) for a in alerts] == [("firing", True)]
    assert [e["status"] for e in received] == ["firing"]
    ctx.monitors.run("m", now=BASE + dt.timedelta(hours=5))
    alerts = ctx.monitors.store.alerts("m")
    assert [(a.status, a.delivered) for a in alerts] == [("firing", True), ("resolved", True)]
    assert [e["status"] for e in received] == ["firing", "resolved"]
    assert alerts[0].payload["window_start"] == "2026-01-01T02:00:00Z"  # second breach
    assert alerts[0].payload["event"]["started"] == "2026-01-01T01:00:00Z"


def test_an_unreachable_webhook_is_retried_next_run_without_duplicates(
    setup: dict[str, Any], hook: tuple[str, list[dict[str, Any]]]
) -> None:
    ctx, model = setup["ctx"], setup["model"]
    url, received = hook
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    write_log(setup["log"], {0: world(300, 5, shift=3.0)}, model)
    ctx.monitors.create(
        "m",
        deployment="credit",
        reference="credit-train@v1",
        rules=["drift_share > 0.3"],
        webhook=f"http://127.0.0.1:{dead}/hook",
        allowed_hosts=["127.0.0.1"],
    )
    ctx.monitors.run("m", now=BASE + dt.timedelta(hours=1))
    (alert,) = ctx.monitors.store.alerts("m")
    assert not alert.delivered
    assert alert.attempts == 1
    assert alert.last_error
    assert alert.delivered_to == ("log",)
    # the receiver comes back on the same address: point the stored webhook at it
    from keel.stores.metadata._schema import monitors

    with ctx.metadata.engine.begin() as conn:
        conn.execute(
            monitors.update().values(
                webhook=json.dumps({"url": url, "allowed_hosts": ["127.0.0.1"]})
            )
        )
    assert ctx.monitors.run("m", now=BASE + dt.timedelta(hours=1, minutes=30)) == []
    (alert,) = ctx.monitors.store.alerts("m")
    assert alert.delivered
    assert alert.attempts == 2
    assert len(received) == 1
    ctx.monitors.run("m", now=BASE + dt.timedelta(hours=1, minutes=40))
    assert len(received) == 1


def test_without_a_target_predictions_are_compared_with_the_first_window(
    setup: dict[str, Any],
) -> None:
    import keel

    ctx, model = setup["ctx"], setup["model"]
    keel.data.add_frame(world(600, 0), "features-only")
    write_log(setup["log"], {0: world(300, 1), 1: world(300, 2, shift=3.0)}, model)
    ctx.monitors.create("m", deployment="credit", reference="features-only@v1")
    first, second = ctx.monitors.run("m", now=BASE + dt.timedelta(hours=2))
    assert first.section["prediction_drift"]["against"] == "first_window"
    assert not first.section["prediction_drift"]["drifted"]
    assert second.section["prediction_drift"]["drifted"]
    assert second.metrics["prediction_drifted"] == 1.0


def test_stored_reports_render_as_escaped_html(setup: dict[str, Any]) -> None:
    from keel.monitoring import report_html

    ctx, model = setup["ctx"], setup["model"]
    frame = world(100, 1)
    frame.loc[:5, "band"] = "<script>alert(1)</script>"
    write_log(setup["log"], {0: frame}, model)
    ctx.monitors.create("m", deployment="credit", reference="credit-train@v1")
    (fresh,) = ctx.monitors.run("m", now=BASE + dt.timedelta(hours=1))
    (stored,) = ctx.monitors.reports("m")
    assert stored.metrics == fresh.metrics
    for page in (report_html(fresh), report_html(stored)):
        assert "<script>" not in page
        assert "feature drift share" in page
    assert "Drifted columns" in report_html(fresh) or "<h2>Columns</h2>" in report_html(fresh)


def test_watch_logs_a_failing_run_and_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from keel.cli import _monitor
    from keel.cli._app import app
    from keel.errors import Unavailable

    calls: list[str] = []

    class Service:
        def get(self, name: str) -> None:
            pass

        def run(self, name: str) -> list[Any]:
            calls.append(name)
            if len(calls) == 1:
                raise Unavailable("the database is locked")
            return []

    monkeypatch.setattr(_monitor, "_service", Service)
    result = CliRunner().invoke(
        app, ["monitor", "watch", "m", "--every", "0.01", "--max-runs", "3"]
    )
    assert result.exit_code == 0, result.output
    assert calls == ["m", "m", "m"]
    assert "the database is locked" in result.output


def test_first_run_is_capped_to_the_latest_windows_and_slice_rules_fire(
    setup: dict[str, Any],
) -> None:
    ctx, model = setup["ctx"], setup["model"]
    drifted = world(400, 9, shift=3.0, shift_gender="F")
    write_log(setup["log"], {0: world(300, 1), 1: world(300, 2), 3: drifted}, model)
    ctx.monitors.max_windows = 2
    ctx.monitors.create(
        "m",
        deployment="credit",
        reference="credit-train@v1",
        slices=["gender"],
        rules=["slice.gender.F.drift_share > 0.3", "slice.gender.M.drift_share > 0.3"],
    )
    reports = ctx.monitors.run("m", now=BASE + dt.timedelta(hours=4))
    assert [r.window_start - BASE.timestamp() for r in reports] == [2 * HOUR, 3 * HOUR]
    assert [a.rule for a in ctx.monitors.store.alerts("m")] == ["slice.gender.F.drift_share > 0.3"]
