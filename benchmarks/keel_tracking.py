"""Keel side of the tracking benchmarks: the same work as ``peers/mlflow_tracking.py``.

Runs in Keel's own environment, one fresh process per measurement, with
``KEEL_HOME=DIR``. Each subcommand prints one JSON object as its last stdout line.
Timed sections include ``keel.flush()``: a point counts once it is durable.

Subcommands::

    log_metric N DIR      per-call keel.log_metric(key, value, step=i), N times, then flush
    log_batch N DIR       keel.log_metrics({1,000 keys}, step=s) until N points, then flush
    runs N DIR            N x (start_run + end) with provenance capture on -> runs/s
    fill_search N DIR     experiment of N runs, params p0..p4, metrics m0..m4 (seed 0); cached
    search DIR REPEATS    timed keel.search_runs(...) on the filled experiment -> median s
    history N DIR         N points of one metric (untimed), timed get_metric_history, median of 3
    version               `keel --help` / `keel --version` wall, median of 5
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

SEARCH_FILTER = "metrics.m0 > 0.5 and params.p1 = 'x'"
SEARCH_MAX_RESULTS = 1000
BATCH = 1000
# Bumped when stores filled by an older Keel no longer stand for what Keel writes now
# (2: time-ordered run ids), so a cached store is filled again.
FILL_FORMAT = 2


def _emit(cmd: str, **fields: Any) -> None:
    import keel

    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = {"peer": "keel", "version": keel.__version__, "cmd": cmd, **fields}
    out["max_rss_mib"] = round(rss_mib, 1)
    print(json.dumps(out), flush=True)


def _home(directory: str) -> Path:
    d = Path(directory).resolve()
    d.mkdir(parents=True, exist_ok=True)
    os.environ["KEEL_HOME"] = str(d)
    os.chdir(d)
    return d


def cmd_log_metric(n: int, directory: str) -> None:
    _home(directory)
    import keel

    with keel.start_run(experiment="log_metric"):
        t0 = time.perf_counter()
        for i in range(n):
            keel.log_metric("loss", 1.0 / (i + 1), step=i)
        keel.flush()
        dt = time.perf_counter() - t0
    _emit("log_metric", n=n, seconds=dt, points_per_s=n / dt)


def cmd_log_batch(n: int, directory: str) -> None:
    _home(directory)
    import keel

    keys = [f"m{j}" for j in range(BATCH)]
    with keel.start_run(experiment="log_batch"):
        t0 = time.perf_counter()
        step = 0
        done = 0
        while done < n:
            count = min(BATCH, n - done)
            keel.log_metrics(dict.fromkeys(keys[:count], 1.0 / (step + 1)), step=step)
            done += count
            step += 1
        keel.flush()
        dt = time.perf_counter() - t0
    _emit("log_batch", n=n, batch=BATCH, seconds=dt, points_per_s=n / dt)


def cmd_runs(n: int, directory: str) -> None:
    _home(directory)
    import keel

    keel.set_experiment("runs")
    t0 = time.perf_counter()
    for _ in range(n):
        keel.start_run()
        keel.end_run()
    dt = time.perf_counter() - t0
    _emit("runs", n=n, seconds=dt, runs_per_s=n / dt)


def cmd_fill_search(n: int, directory: str) -> None:
    d = Path(directory).resolve()
    marker = d / f"filled-{n}.json"
    if (
        marker.exists()
        and (d / "keel.db").exists()
        and json.loads(marker.read_text()).get("format") == FILL_FORMAT
    ):
        _emit("fill_search", n=n, skipped=True)
        return
    if d.exists():
        shutil.rmtree(d)
    _home(str(d))
    import numpy as np

    import keel

    rng = np.random.default_rng(0)
    metric_values = rng.random((n, 5))
    p1_is_x = rng.random(n) < 0.5
    p_random = rng.integers(0, 1_000_000, size=(n, 5))
    t0 = time.perf_counter()
    if n <= 10_000:
        keel.set_experiment(f"search-{n}")
        for i in range(n):
            with keel.start_run(run_name=f"run-{i}"):
                params = {f"p{j}": f"v{p_random[i, j]}" for j in range(5)}
                if p1_is_x[i]:
                    params["p1"] = "x"
                keel.log_params(params)
                keel.log_metrics({f"m{j}": float(metric_values[i, j]) for j in range(5)})
    else:
        _bulk_fill(n, metric_values, p1_is_x, p_random)
    dt = time.perf_counter() - t0
    expected = int(np.sum((metric_values[:, 0] > 0.5) & p1_is_x))
    marker.write_text(json.dumps({"n": n, "expected_matches": expected, "format": FILL_FORMAT}))
    _emit("fill_search", n=n, skipped=False, seconds=dt, runs_per_s=n / dt)


def _bulk_fill(n: int, metric_values: Any, p1_is_x: Any, p_random: Any) -> None:
    """Large stores are set up with one multi-row insert per table (setup, not timed)."""
    from keel.context import get_context
    from keel.stores.metadata._schema import metrics_latest, params, runs
    from keel.stores.metadata._store import new_run_id
    from keel.stores.metadata._summary import encode

    context = get_context()
    experiment = context.tracking.experiment(f"search-{n}")
    now = time.time()
    ids = [new_run_id() for _ in range(n)]
    run_rows, param_rows, metric_rows = [], [], []
    for i, run_id in enumerate(ids):
        logged = {f"p{j}": "x" if j == 1 and p1_is_x[i] else f"v{p_random[i, j]}" for j in range(5)}
        latest = {f"m{j}": float(metric_values[i, j]) for j in range(5)}
        run_rows.append(
            {
                "id": run_id,
                "experiment_id": experiment.id,
                "name": f"run-{i}",
                "status": "FINISHED",
                "start_time": now + i * 1e-3,
                "end_time": now + i * 1e-3,
                "source": "{}",
                # the summary every write through the store keeps (docs/adr/0018)
                "summary": encode(logged, latest, {}),
            }
        )
        for j in range(5):
            param_rows.append({"run_id": run_id, "key": f"p{j}", "value": logged[f"p{j}"]})
            metric_rows.append(
                {
                    "run_id": run_id,
                    "key": f"m{j}",
                    "value": latest[f"m{j}"],
                    "step": 0,
                    "timestamp": now,
                }
            )
    with context.metadata.engine.begin() as conn:
        conn.execute(runs.insert(), run_rows)
        conn.execute(params.insert(), param_rows)
        conn.execute(metrics_latest.insert(), metric_rows)


def cmd_search(directory: str, repeats: int) -> None:
    d = Path(directory).resolve()
    markers = sorted(d.glob("filled-*.json"))
    if not markers:
        sys.exit(f"{d}: no filled-N.json marker; run fill_search first")
    info = json.loads(markers[-1].read_text())
    _home(str(d))
    import keel

    experiment = f"search-{info['n']}"

    def once() -> tuple[float, int]:
        t0 = time.perf_counter()
        df = keel.search_runs(
            experiment=experiment, filter=SEARCH_FILTER, max_results=SEARCH_MAX_RESULTS
        )
        return time.perf_counter() - t0, len(df)

    first_s, rows = once()  # includes opening the store; reported apart
    times = []
    for _ in range(repeats):
        dt, rows = once()
        times.append(dt)
    _emit(
        "search",
        runs_in_experiment=info["n"],
        rows=rows,
        expected_matches=info["expected_matches"],
        first_s=first_s,
        median_s=statistics.median(times),
        times_s=times,
    )


def cmd_history(n: int, directory: str) -> None:
    _home(directory)
    import keel

    with keel.start_run(experiment="history") as run:
        for i in range(n):
            keel.log_metric("loss", 1.0 / (i + 1), step=i)
    keel.flush()
    times = []
    points = 0
    for _ in range(3):
        t0 = time.perf_counter()
        hist = keel.get_metric_history(run.id, "loss")
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
    cli = str(Path(sys.executable).parent / "keel")
    help_s = _median_wall([cli, "--help"], k)
    version_s = _median_wall([cli, "--version"], k)
    import_s = _median_wall([sys.executable, "-c", "import keel"], k)
    _emit("version", k=k, help_median_s=help_s, cli_median_s=version_s, import_median_s=import_s)


def main(argv: list[str]) -> None:
    if not argv:
        sys.exit(__doc__ or "")
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
        cmd_version()
    else:
        sys.exit(f"unknown subcommand {cmd!r}\n{__doc__}")


if __name__ == "__main__":
    main(sys.argv[1:])
