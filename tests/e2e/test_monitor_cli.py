"""``keel monitor`` end to end: the installed CLI in a subprocess over a seeded KEEL_HOME."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

KEEL = str(Path(sys.executable).with_name("keel"))


def _frame(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {"x": rng.normal(size=n) + shift, "gender": np.resize(np.array(["F", "M"]), n)}
    )


@pytest.fixture
def home(keel_home: Path) -> Path:
    """Model 'credit' deployed as 'credit', reference 'credit-train@v1', and a log of the
    last three complete hours (the last one drifted)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    import keel
    from keel.context import get_context, reset_context
    from keel.serving._predlog import LogEntry, PredictionLogWriter

    X = _frame(400, 0)
    y = (X["x"] > 0).astype(int).rename("y")
    model = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [("g", OneHotEncoder(handle_unknown="ignore"), ["gender"])],
                    remainder="passthrough",
                ),
            ),
            ("clf", LogisticRegression()),
        ]
    ).fit(X, y)
    with keel.start_run(experiment="monitor-e2e"):
        info = keel.log_model(model, name="model", input_example=X.iloc[:5])
    keel.register_model(info.uri, "credit")
    ctx = get_context()
    ctx.deployments.create("credit", {"routes": [{"model": "models:/credit/1"}]})
    keel.data.add_frame(pd.concat([X, y], axis=1), "credit-train")
    writer = PredictionLogWriter(ctx.settings.prediction_log_dir, "credit", flush_interval=0.05)
    start = (time.time() // 3600) * 3600 - 3 * 3600
    for hour, shift in ((0, 0.0), (1, 0.0), (2, 4.0)):
        frame = _frame(200, hour + 1, shift)
        proba = model.predict_proba(frame)
        writer.append(
            LogEntry(
                start + hour * 3600 + 60,
                f"r{hour}",
                "primary",
                "1",
                0.004,
                frame,
                proba.argmax(1),
                proba,
                [0, 1],
            )
        )
    writer.close()
    reset_context()
    return keel_home


def keel_cli(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KEEL_HOME": str(home), "COLUMNS": "200"}
    done = subprocess.run(
        [KEEL, "monitor", *args], env=env, capture_output=True, text=True, timeout=120
    )
    if check:
        assert done.returncode == 0, done.stderr + done.stdout
    return done


def test_create_run_show_reports_alerts(home: Path, tmp_path: Path) -> None:
    made = keel_cli(
        home,
        "create",
        "credit-mon",
        "--deployment",
        "credit",
        "--reference",
        "credit-train@v1",
        "--window",
        "1h",
        "--slices",
        "gender",
        "--rule",
        "drift_share > 0.3",
        "--for",
        "1",
        "--json",
    )
    assert json.loads(made.stdout)["window_seconds"] == 3600
    out = keel_cli(home, "run", "credit-mon", "--json", "--html", str(tmp_path / "r.html"))
    windows = json.loads(out.stdout)
    assert [w["status"] for w in windows] == ["ok", "ok", "ok"]
    assert windows[-1]["metrics"]["drift_share"] == 0.5  # x of x and gender
    assert windows[0]["metrics"]["drift_share"] == 0.0
    assert "slice.gender.F.drift_share" in windows[-1]["metrics"]
    assert [a["event"]["status"] for a in windows[-1]["alerts"]] == ["firing"]
    assert "<table>" in (tmp_path / "r.html").read_text()
    again = keel_cli(home, "run", "credit-mon")
    assert "no complete window" in again.stdout
    shown = keel_cli(home, "show", "credit-mon")
    assert "credit-train@v1" in shown.stdout
    assert len(json.loads(keel_cli(home, "reports", "credit-mon", "--json").stdout)) == 3
    alerts = json.loads(keel_cli(home, "alerts", "credit-mon", "--json").stdout)
    assert [(a["status"], a["delivered"]) for a in alerts] == [("firing", True)]
    assert "credit-mon" in keel_cli(home, "list").stdout


def test_errors_name_the_fix(home: Path) -> None:
    missing = keel_cli(home, "run", "nope", check=False)
    assert missing.returncode == 1
    assert "keel monitor create" in missing.stderr
    bad = keel_cli(home, "create", "m", "--deployment", "nope", "--json", check=False)
    assert bad.returncode == 1
    assert "keel deploy list" in json.loads(bad.stdout)["error"]["message"]
    window = keel_cli(
        home, "create", "m", "--deployment", "credit", "--window", "soon", check=False
    )
    assert "30m, 1h, 1d" in window.stderr


def test_watch_serves_gauges(home: Path) -> None:
    keel_cli(home, "create", "credit-mon", "--deployment", "credit", "--slices", "gender")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "KEEL_HOME": str(home)}
    proc = subprocess.Popen(
        [
            KEEL,
            "monitor",
            "watch",
            "credit-mon",
            "--every",
            "1",
            "--max-runs",
            "4",
            "--metrics-port",
            str(port),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        body = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "keel_monitor_drift_share{" not in body:
            with contextlib.suppress(httpx.TransportError):
                body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            time.sleep(0.2)
        assert 'keel_monitor_drift_share{monitor="credit-mon",slice=""} 0.5' in body
        assert 'slice="gender=F"' in body
        assert "keel_monitor_estimated_accuracy{" in body
        _stdout, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 0, stderr
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
