"""The public tracking API end to end on PostgreSQL, from several processes at once."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from keel.config import load_settings
from keel.context import build_context

pytestmark = pytest.mark.postgres

WORKER = textwrap.dedent(
    """
    import sys
    import keel

    worker = int(sys.argv[1])
    with keel.start_run(experiment="pg-shared", run_name=f"worker-{worker}"):
        keel.log_params({"worker": worker})
        for step in range(5000):
            keel.log_metric("loss", 1.0 / (step + 1), step=step)
        keel.log_metric("special", float("nan"), step=1)
    """
)


def test_processes_log_to_one_postgres_store(
    fresh_postgres_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {
        "KEEL_HOME": str(tmp_path / "home"),
        "KEEL_STORE_URI": fresh_postgres_uri,
        "PATH": "/usr/bin:/bin",
    }
    workers = [subprocess.Popen([sys.executable, str(script), str(i)], env=env) for i in range(3)]
    assert [w.wait(timeout=120) for w in workers] == [0, 0, 0]

    monkeypatch.setenv("KEEL_HOME", env["KEEL_HOME"])
    monkeypatch.setenv("KEEL_STORE_URI", fresh_postgres_uri)
    context = build_context(load_settings())
    try:
        tracking = context.tracking
        found = tracking.search_runs(
            "pg-shared", "params.worker IN ('0', '1', '2')", ["run_name ASC"]
        )
        assert [r.name for r in found] == ["worker-0", "worker-1", "worker-2"]
        for run in found:
            assert run.status.value == "FINISHED"
            history = tracking.get_metric_history(run.id, "loss")
            assert len(history) == 5000
            assert history.values[-1] == pytest.approx(1 / 5000)
            assert math.isnan(run.metrics["special"])
        frame = tracking.search_runs_frame("pg-shared", "metrics.loss < 0.001")
        assert sorted(frame["run_name"]) == ["worker-0", "worker-1", "worker-2"]
    finally:
        context.close()
