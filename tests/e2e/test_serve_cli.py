"""``keel serve`` as users run it: a subprocess, one or several workers, real HTTP."""

from __future__ import annotations

import os
import signal
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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def registered(keel_home: Path) -> Path:
    from sklearn.linear_model import LogisticRegression

    import keel

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(200, 3)), columns=["a", "b", "c"])
    y = (X["a"] > 0).astype(int)
    with keel.start_run(experiment="serve-cli"):
        info = keel.log_model(LogisticRegression().fit(X, y), input_example=X.iloc[:3])
    version = keel.register_model(info.uri, "cli-model")
    keel.set_alias("cli-model", "champion", version.version, override=True, actor="t", reason="t")
    keel.flush()
    return keel_home


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEEL_", "PROMETHEUS_"))}
    env.update(KEEL_HOME=str(home), KEEL_CAPTURE_ENVIRONMENT="false")
    return env


def test_serve_refuses_a_bad_target_with_the_fix(registered: Path) -> None:
    for args, expected in (
        (["models:/nope@champion"], "keel models list"),
        (["not-a-uri"], "models:/NAME"),
        ([], "name what to serve"),
        (["models:/cli-model@champion", "--deployment", "x"], "not both"),
        (["--deployment", "missing"], "keel deploy"),
    ):
        done = subprocess.run(
            [KEEL, "serve", *args, "--port", str(_free_port())],
            env=_env(registered),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        assert expected in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr


def test_several_workers_serve_and_metrics_add_up(registered: Path) -> None:
    port = _free_port()
    server = subprocess.Popen(
        [KEEL, "serve", "models:/cli-model@champion", "--port", str(port), "--workers", "2"],
        env=_env(registered),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, server.communicate()
            try:
                if httpx.get(f"{url}/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server not ready"
            time.sleep(0.2)
        body = {"columns": ["a", "b", "c"], "data": [[0.5, 0.1, -1.0]]}
        for _ in range(40):  # new connections land on either worker
            with httpx.Client() as client:
                assert client.post(f"{url}/predict", json=body).status_code == 200
        text = httpx.get(f"{url}/metrics").text
        total = sum(
            float(line.split()[-1])
            for line in text.splitlines()
            if line.startswith("keel_requests_total") and 'status="200"' in line
        )
        assert total == 40
    finally:
        server.send_signal(signal.SIGINT)
        try:
            _, errors = server.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            _, errors = server.communicate()
    assert server.returncode == 0, errors
