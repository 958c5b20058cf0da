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

from keel._server import optimized_bytecode_ready

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


def _start(home: Path, *args: str) -> tuple[subprocess.Popen[str], str]:
    port = _free_port()
    server = subprocess.Popen(
        [KEEL, "serve", "models:/cli-model@champion", "--port", str(port), *args],
        env=_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return server, f"http://127.0.0.1:{port}"


def _wait_ready(server: subprocess.Popen[str], url: str) -> None:
    deadline = time.monotonic() + 120
    while True:
        assert server.poll() is None, server.communicate()
        try:
            if httpx.get(f"{url}/ready").status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "server not ready"
        time.sleep(0.2)


def _stop(server: subprocess.Popen[str]) -> str:
    server.send_signal(signal.SIGINT)
    try:
        _, errors = server.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        _, errors = server.communicate()
    return errors


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs /proc (Linux)")
def test_serve_becomes_the_lean_server_process(registered: Path) -> None:
    # The checked command replaces itself (same pid) with `python -m keel._server`, which
    # starts with the serving process's allocator and BLAS defaults in its environment.
    server, url = _start(registered)
    try:
        _wait_ready(server, url)
        cmdline = Path(f"/proc/{server.pid}/cmdline").read_bytes().split(b"\0")
        environ = Path(f"/proc/{server.pid}/environ").read_bytes().split(b"\0")
        body = {"columns": ["a", "b", "c"], "data": [[0.5, 0.1, -1.0]]}
        assert httpx.post(f"{url}/predict", json=body).json()["predictions"] == [1]
    finally:
        errors = _stop(server)
    assert b"keel._server" in cmdline, cmdline
    # -OO when its bytecode exists or may be written (test_optimized_bytecode_ready)
    assert (b"-OO" in cmdline) is optimized_bytecode_ready(), cmdline
    assert b"MALLOC_MMAP_THRESHOLD_=65536" in environ
    assert b"OPENBLAS_NUM_THREADS=1" in environ
    assert server.returncode == 0, errors


@pytest.mark.parametrize(
    ("environ", "bytecode", "optimized"),
    [
        ({}, True, True),
        ({}, False, False),  # no -OO bytecode and none may be written: compiling each start
        ({"KEEL_SERVE_OPTIMIZE": "false"}, True, False),
        ({"KEEL_SERVE_ALLOW_PICKLE": "true"}, True, False),  # pickled code may use asserts
    ],
)
def test_server_runs_optimized_unless_told_or_pickle_is_allowed(
    environ: dict[str, str], bytecode: bool, optimized: bool
) -> None:
    from keel._server import server_command
    from keel.config import load_settings

    settings = load_settings({"KEEL_HOME": "/nonexistent", **environ})
    command = server_command(settings, host="127.0.0.1", port=8000, workers=2, bytecode=bytecode)
    assert ("-OO" in command) is optimized
    assert command[0] == sys.executable
    assert command[-8:] == [
        "-m",
        "keel._server",
        "--host",
        "127.0.0.1",
        "--port",
        "8000",
        "--workers",
        "2",
    ]


def test_several_workers_serve_and_metrics_add_up(registered: Path) -> None:
    server, url = _start(registered, "--workers", "2")
    try:
        _wait_ready(server, url)
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
        errors = _stop(server)
    assert server.returncode == 0, errors


def test_optimized_bytecode_ready(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util
    import py_compile

    from keel._server import optimized_bytecode_ready

    package = tmp_path / "keel_probe_pkg"
    package.mkdir()
    source = package / "__init__.py"
    source.write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    names = ("keel_probe_pkg",)
    # Nothing compiled: ready only if bytecode may be written (the first start compiles).
    assert optimized_bytecode_ready(names, can_write=False) is False
    assert optimized_bytecode_ready(names, can_write=True) is True
    py_compile.compile(
        str(source),
        cfile=importlib.util.cache_from_source(str(source), optimization=2),
        optimize=2,
    )
    assert optimized_bytecode_ready(names, can_write=False) is True
