"""Registry concurrency: 8 processes registering 1,000 versions of one model at once.

    python benchmarks/bench_registry.py [--processes 8] [--each 125] [--no-postgres]

Each worker process opens the store, waits at a start barrier (a file), then
registers ``each`` versions of the model ``shared`` from its own run (created
beforehand by the parent, with a minimal package descriptor). The parent checks that
the versions are exactly 1..N with no gap and no duplicate and that no worker saw an
error, and records wall time (first start to last finish) and versions/s, on SQLite
(WAL, BEGIN IMMEDIATE) and on PostgreSQL (row lock; a scratch database, skipped when
no server answers). Results go to ``benchmarks/RESULTS.md`` ("Registry concurrency").
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent

WORKER = r"""
import json, sys, time
from pathlib import Path
from keel.registry import ModelRegistryStore, RegistryService
from keel.stores.artifacts import LocalArtifactStore
from keel.stores.metadata import MetadataStore
from keel.tracking import TrackingService

uri, artifacts, run_id, each, go = sys.argv[1:6]
each, go = int(each), Path(go)
store = MetadataStore.open(uri)
tracking = TrackingService(store, LocalArtifactStore(artifacts), capture_environment=False)
registry = RegistryService(ModelRegistryStore(store.engine), tracking)
while not go.exists():
    time.sleep(0.001)
started = time.time()
numbers, errors = [], []
for _ in range(each):
    try:
        numbers.append(registry.register_model(f"runs:/{run_id}/model", "shared").version)
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
finished = time.time()
tracking.close()
store.close()
print(json.dumps({"started": started, "finished": finished, "numbers": numbers, "errors": errors}))
"""


@dataclass(frozen=True)
class Outcome:
    """What a concurrent registration round produced."""

    versions: list[int]  # every registered version of ``shared``, in order
    returned: list[int]  # the numbers the workers were handed, sorted
    errors: list[str]
    wall: float

    @property
    def rate(self) -> float:
        return len(self.returned) / self.wall if self.wall > 0 else float("nan")


def concurrent_registrations(
    uri: str, artifacts: Path, *, processes: int = 8, each: int = 125
) -> Outcome:
    """Run ``processes`` workers registering ``each`` versions of one model at once."""
    from keel.core._models import DESCRIPTOR
    from keel.registry import ModelRegistryStore, RegistryService
    from keel.stores.artifacts import LocalArtifactStore
    from keel.stores.metadata import MetadataStore
    from keel.tracking import TrackingService

    store = MetadataStore.open(uri)
    tracking = TrackingService(store, LocalArtifactStore(artifacts), capture_environment=False)
    run_ids = []
    for n in range(processes):
        run = tracking.create_run("registry-bench", f"worker-{n}")
        tracking.log_bytes(run.id, b'{"flavor": "pyfunc"}', f"model/{DESCRIPTOR}")
        run_ids.append(run.id)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    with tempfile.TemporaryDirectory() as scratch:
        go = Path(scratch) / "go"
        children = [
            subprocess.Popen(
                [sys.executable, "-c", WORKER, uri, str(artifacts), run_id, str(each), str(go)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for run_id in run_ids
        ]
        time.sleep(1.0 + 0.1 * processes)  # let every worker import and connect
        go.touch()
        reports, errors = [], []
        for child in children:
            out, err = child.communicate(timeout=600)
            if child.returncode != 0:
                errors.append(f"worker exited {child.returncode}: {err.strip()[-500:]}")
                continue
            reports.append(json.loads(out.strip().splitlines()[-1]))
    registry = RegistryService(ModelRegistryStore(store.engine), tracking)
    versions = [v.version for v in registry.list_versions("shared")]
    tracking.close()
    store.close()
    errors += [e for r in reports for e in r["errors"]]
    wall = max(r["finished"] for r in reports) - min(r["started"] for r in reports)
    returned = sorted(n for r in reports for n in r["numbers"])
    return Outcome(versions, returned, errors, wall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--each", type=int, default=125)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from _harness import append_results, markdown_table

    total = args.processes * args.each
    expected = list(range(1, total + 1))
    rows = []
    with tempfile.TemporaryDirectory() as work:
        backends = [("SQLite (WAL)", f"sqlite:///{Path(work) / 'keel.db'}", None)]
        if not args.no_postgres:
            from keel.testing import postgres_available, scratch_database

            if postgres_available():
                backends.append(("PostgreSQL", "", scratch_database("keel_bench")))
            else:
                print("no PostgreSQL server answers; skipping it")
        for label, uri, database in backends:
            if database is not None:
                with database as scratch_uri:
                    outcome = concurrent_registrations(
                        scratch_uri,
                        Path(work) / "pg-artifacts",
                        processes=args.processes,
                        each=args.each,
                    )
            else:
                outcome = concurrent_registrations(
                    uri, Path(work) / "artifacts", processes=args.processes, each=args.each
                )
            ok = outcome.versions == expected and outcome.returned == expected
            rows.append(
                (
                    label,
                    f"{args.processes} x {args.each}",
                    f"{outcome.versions[0] if outcome.versions else '-'}.."
                    f"{outcome.versions[-1] if outcome.versions else '-'}",
                    "yes" if ok else "NO",
                    len(outcome.errors),
                    outcome.wall,
                    outcome.rate,
                )
            )
            print(
                label,
                "gapless" if ok else "GAP OR DUPLICATE",
                f"{outcome.wall:.2f} s",
                f"{outcome.rate:.0f} versions/s",
                f"errors={len(outcome.errors)}",
            )
            for error in outcome.errors[:5]:
                print("  ", error)
    table = markdown_table(
        [
            "backend",
            "processes x versions",
            "versions",
            "exactly 1..N",
            "errors",
            "wall s",
            "versions/s",
        ],
        rows,
    )
    command = "python benchmarks/bench_registry.py"
    if (args.processes, args.each) != (8, 125):
        command += f" --processes {args.processes} --each {args.each}"
    append_results(
        "Registry concurrency",
        table,
        command,
        notes=(
            "Each registration reads the run and its artifact list (package descriptor "
            "check), then runs one write transaction: bump "
            "`registered_models.latest_version` under the write lock "
            "(SQLite `BEGIN IMMEDIATE`; PostgreSQL `SELECT ... FOR UPDATE`), insert the "
            "version. Wall time runs from the first worker's start to the last one's end; "
            "process start-up is excluded (workers wait at a barrier)."
        ),
    )


if __name__ == "__main__":
    main()
