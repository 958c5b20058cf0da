"""Several processes logging to one KEEL_HOME at once, and durability after SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from keel.core._entities import RunStatus
from keel.stores.metadata import MetadataStore

WORKERS = 4
POINTS = 20_000


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env["KEEL_HOME"] = str(home)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture
def store_of(tmp_path: Path) -> Iterator[Callable[[], MetadataStore]]:
    """Opens the shared store on demand: only after the children, so they create it."""
    opened: list[MetadataStore] = []

    def open_store() -> MetadataStore:
        opened.append(MetadataStore.open(f"sqlite:///{tmp_path / 'shared-home' / 'keel.db'}"))
        return opened[-1]

    yield open_store
    for store in opened:
        store.close()


WORKER = textwrap.dedent(
    """
    import json, sys
    import keel

    worker = int(sys.argv[1])
    points = int(sys.argv[2])
    with keel.start_run(experiment="concurrent", run_name=f"worker-{worker}") as run:
        keel.log_params({"worker": worker, "points": points})
        for step in range(points):
            keel.log_metric("loss", worker + step / points, step=step)
            if step % 1000 == 0:
                keel.log_metrics({"acc": step / points}, step=step)
        keel.set_tag("done", "yes")
    print(json.dumps({"worker": worker, "run_id": run.id}))
    """
)


def test_concurrent_processes_each_keep_all_their_points(
    tmp_path: Path, store_of: Callable[[], MetadataStore]
) -> None:
    script = tmp_path / "worker.py"
    script.write_text(WORKER, encoding="utf-8")
    home = tmp_path / "shared-home"
    processes = [
        subprocess.Popen(
            [sys.executable, str(script), str(worker), str(POINTS)],
            env=_env(home),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for worker in range(WORKERS)
    ]
    outputs = [process.communicate(timeout=300) for process in processes]
    for process, (stdout, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stderr
        assert "Traceback" not in stderr
        assert stdout.strip()
    reported = [json.loads(stdout.strip().splitlines()[-1]) for stdout, _ in outputs]
    assert sorted(r["worker"] for r in reported) == list(range(WORKERS))

    store = store_of()
    experiment = store.get_experiment_by_name("concurrent")
    assert experiment is not None
    runs = store.search_runs([experiment.id], None)
    assert sorted(r.id for r in runs) == sorted(r["run_id"] for r in reported)
    for entry in reported:
        worker, run_id = entry["worker"], entry["run_id"]
        run = store.get_run(run_id)
        assert run.status is RunStatus.FINISHED
        assert run.name == f"worker-{worker}"
        assert run.params == {"worker": str(worker), "points": str(POINTS)}
        assert run.tags == {"done": "yes"}
        series = store.get_metric_history(run_id, "loss")
        assert sorted(series.steps) == list(range(POINTS))
        assert all(worker <= value < worker + 1 for value in series.values)
        assert run.metrics["loss"] == worker + (POINTS - 1) / POINTS
        acc = store.get_metric_history(run_id, "acc")
        assert sorted(acc.steps) == list(range(0, POINTS, 1000))


KILLED_CHILD = textwrap.dedent(
    """
    import sys, time
    import keel

    points = int(sys.argv[1])
    run = keel.start_run(experiment="durability", run_name="doomed")
    keel.log_param("points", points)
    for step in range(points):
        keel.log_metric("loss", step / points, step=step)
    keel.flush()
    print(run.id, flush=True)
    print("flushed", flush=True)
    time.sleep(600)
    """
)


def test_points_flushed_before_sigkill_survive(
    tmp_path: Path, store_of: Callable[[], MetadataStore]
) -> None:
    script = tmp_path / "child.py"
    script.write_text(KILLED_CHILD, encoding="utf-8")
    points = 5_000
    child = subprocess.Popen(
        [sys.executable, str(script), str(points)],
        env=_env(tmp_path / "shared-home"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        run_id = child.stdout.readline().strip()
        assert child.stdout.readline().strip() == "flushed", child.stderr
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL

    store = store_of()
    run = store.get_run(run_id)
    assert run.status is RunStatus.RUNNING  # killed: nothing got to end it
    assert run.params == {"points": str(points)}
    series = store.get_metric_history(run_id, "loss")
    assert list(series.steps) == list(range(points))
    assert run.metrics["loss"] == (points - 1) / points
