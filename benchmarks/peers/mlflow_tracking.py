"""MLflow side of Keel's tracking benchmarks.

Runs inside the MLflow peer venv (``benchmarks/.venvs/mlflow``); imports only mlflow, numpy
and the standard library. Each subcommand prints exactly one JSON object as its last stdout
line. The store is always ``sqlite:///DIR/mlflow.db``; artifacts go to ``DIR/artifacts``.

Subcommands::

    log_metric N DIR      per-call mlflow.log_metric(key, value, step=i), N times -> points/s
    log_batch N DIR       MlflowClient().log_batch with 1,000 Metric per call, N points -> points/s
    runs N DIR            N x (start_run + end_run) -> runs/s
    fill_search N DIR     experiment of N runs, params p0..p4, metrics m0..m4 (seed 0); cached
    search DIR REPEATS    timed mlflow.search_runs(...) on the filled experiment -> median s, rows
    history N DIR         N points of one metric (untimed), timed get_metric_history, median of 3
    version               `mlflow --version` and `python -c "import mlflow"` wall, median of 5

Timed sections measure the loop only: database creation/migration and run creation are done
before the clock starts.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

BATCH = 1000  # MLflow's limit of metrics per log_batch call
SEARCH_FILTER = "metrics.m0 > 0.5 and params.p1 = 'x'"
SEARCH_MAX_RESULTS = 1000


def _emit(cmd: str, **fields: Any) -> None:
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = {"peer": "mlflow", "version": mlflow.__version__, "cmd": cmd, **fields}
    out["max_rss_mib"] = round(rss_mib, 1)
    print(json.dumps(out), flush=True)


def _setup(directory: str, experiment: str) -> tuple[MlflowClient, str]:
    """Point MLflow at sqlite:///DIR/mlflow.db and make/get ``experiment`` (untimed)."""
    d = Path(directory).resolve()
    d.mkdir(parents=True, exist_ok=True)
    os.chdir(d)  # anything MLflow writes relative to the cwd stays inside DIR
    mlflow.set_tracking_uri(f"sqlite:///{d / 'mlflow.db'}")
    client = MlflowClient()
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        exp_id = client.create_experiment(experiment, artifact_location=(d / "artifacts").as_uri())
    else:
        exp_id = exp.experiment_id
    mlflow.set_experiment(experiment_id=exp_id)
    return client, exp_id


def cmd_log_metric(n: int, directory: str) -> None:
    _setup(directory, "log_metric")
    with mlflow.start_run():
        t0 = time.perf_counter()
        for i in range(n):
            mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
        dt = time.perf_counter() - t0
    _emit("log_metric", n=n, seconds=dt, points_per_s=n / dt)


def cmd_log_batch(n: int, directory: str) -> None:
    client, _ = _setup(directory, "log_batch")
    with mlflow.start_run() as run:
        run_id = run.info.run_id
        t0 = time.perf_counter()
        step = 0
        while step < n:
            ts = int(time.time() * 1000)
            end = min(step + BATCH, n)
            metrics = [Metric("loss", 1.0 / (i + 1), ts, i) for i in range(step, end)]
            client.log_batch(run_id, metrics=metrics)
            step = end
        dt = time.perf_counter() - t0
    _emit("log_batch", n=n, batch=BATCH, seconds=dt, points_per_s=n / dt)


def cmd_runs(n: int, directory: str) -> None:
    _setup(directory, "runs")
    t0 = time.perf_counter()
    for _ in range(n):
        mlflow.start_run()
        mlflow.end_run()
    dt = time.perf_counter() - t0
    _emit("runs", n=n, seconds=dt, runs_per_s=n / dt)


def _marker(directory: Path, n: int) -> Path:
    return directory / f"filled-{n}.json"


def cmd_fill_search(n: int, directory: str) -> None:
    d = Path(directory).resolve()
    marker = _marker(d, n)
    if marker.exists() and (d / "mlflow.db").exists():
        info = json.loads(marker.read_text())
        _emit("fill_search", n=n, skipped=True, experiment_id=info["experiment_id"])
        return
    # No marker: a missing or half-filled store. Start over.
    if d.exists():
        shutil.rmtree(d)
    client, exp_id = _setup(str(d), f"search-{n}")
    rng = np.random.default_rng(0)
    metric_values = rng.random((n, 5))
    p1_is_x = rng.random(n) < 0.5
    p_random = rng.integers(0, 1_000_000, size=(n, 5))
    t0 = time.perf_counter()
    for i in range(n):
        run = client.create_run(exp_id, run_name=f"run-{i}")
        run_id = run.info.run_id
        ts = int(time.time() * 1000)
        params = [Param(f"p{j}", f"v{p_random[i, j]}") for j in range(5)]
        if p1_is_x[i]:
            params[1] = Param("p1", "x")
        metrics = [Metric(f"m{j}", float(metric_values[i, j]), ts, 0) for j in range(5)]
        client.log_batch(run_id, metrics=metrics, params=params)
        client.set_terminated(run_id)
    dt = time.perf_counter() - t0
    expected = int(np.sum((metric_values[:, 0] > 0.5) & p1_is_x))
    info = {"n": n, "experiment_id": exp_id, "expected_matches": expected, "fill_seconds": dt}
    marker.write_text(json.dumps(info))
    _emit(
        "fill_search",
        n=n,
        skipped=False,
        experiment_id=exp_id,
        seconds=dt,
        runs_per_s=n / dt,
        expected_matches=expected,
    )


def cmd_search(directory: str, repeats: int) -> None:
    d = Path(directory).resolve()
    markers = sorted(d.glob("filled-*.json"))
    if not markers:
        sys.exit(f"{d}: no filled-N.json marker; run fill_search first")
    info = json.loads(markers[-1].read_text())
    os.chdir(d)
    mlflow.set_tracking_uri(f"sqlite:///{d / 'mlflow.db'}")
    exp_id = info["experiment_id"]

    def once() -> tuple[float, int]:
        t0 = time.perf_counter()
        df = mlflow.search_runs(
            [exp_id], filter_string=SEARCH_FILTER, max_results=SEARCH_MAX_RESULTS
        )
        return time.perf_counter() - t0, len(df)

    first_s, rows = once()  # includes engine set-up and pandas warm-up; reported apart
    times = []
    for _ in range(repeats):
        dt, rows = once()
        times.append(dt)
    _emit(
        "search",
        runs_in_experiment=info["n"],
        filter=SEARCH_FILTER,
        max_results=SEARCH_MAX_RESULTS,
        rows=rows,
        expected_matches=info["expected_matches"],
        first_s=first_s,
        median_s=statistics.median(times),
        times_s=times,
    )


def cmd_history(n: int, directory: str) -> None:
    client, _ = _setup(directory, "history")
    with mlflow.start_run() as run:
        run_id = run.info.run_id
        ts = int(time.time() * 1000)
        for start in range(0, n, BATCH):
            end = min(start + BATCH, n)
            metrics = [Metric("loss", 1.0 / (i + 1), ts, i) for i in range(start, end)]
            client.log_batch(run_id, metrics=metrics)
    times = []
    points = 0
    for _ in range(3):
        t0 = time.perf_counter()
        hist = client.get_metric_history(run_id, "loss")
        times.append(time.perf_counter() - t0)
        points = len(hist)
    med = statistics.median(times)
    _emit("history", n=n, points=points, median_s=med, times_s=times, points_per_s=points / med)


def _median_wall(cmd: list[str], k: int) -> float:
    times = []
    for _ in range(k):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def cmd_version(k: int = 5) -> None:
    bindir = Path(sys.executable).parent
    cli = [str(bindir / "mlflow"), "--version"]
    out = subprocess.run(cli, check=True, capture_output=True, text=True).stdout.strip()
    cli_s = _median_wall(cli, k)
    import_s = _median_wall([sys.executable, "-c", "import mlflow"], k)
    _emit("version", cli=out, k=k, cli_median_s=cli_s, import_median_s=import_s)


USAGE = __doc__ or ""


def main(argv: list[str]) -> None:
    if not argv:
        sys.exit(USAGE)
    cmd, rest = argv[0], argv[1:]
    if cmd == "log_metric":
        cmd_log_metric(int(rest[0]), rest[1])
    elif cmd == "log_batch":
        cmd_log_batch(int(rest[0]), rest[1])
    elif cmd == "runs":
        cmd_runs(int(rest[0]), rest[1])
    elif cmd == "fill_search":
        cmd_fill_search(int(rest[0]), rest[1])
    elif cmd == "search":
        cmd_search(rest[0], int(rest[1]) if len(rest) > 1 else 5)
    elif cmd == "history":
        cmd_history(int(rest[0]), rest[1])
    elif cmd == "version":
        cmd_version(int(rest[0]) if rest else 5)
    else:
        sys.exit(f"unknown subcommand {cmd!r}\n{USAGE}")


if __name__ == "__main__":
    main(sys.argv[1:])
