"""Tracking benchmarks, Keel against MLflow on the same machine in the same run.

    python benchmarks/bench_tracking.py [--repeats 3] [--quick]

Each measurement runs in a fresh process and a fresh store directory, alternating
Keel and MLflow (K M K M ...); the table quotes medians and the ratio Keel/MLflow.
Keel's timings include ``flush()``: points count once durable. The 10k-run search
stores are filled once and reused (``benchmarks/.data``). Results are written to
``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _harness import (  # noqa: E402
    alternate,
    append_results,
    compile_keel_bytecode,
    markdown_table,
    median,
)
from _peer_env import DATA_DIR, ensure_mlflow, package_version, run_in  # noqa: E402

KEEL_SCRIPT = HERE / "keel_tracking.py"
MLFLOW_SCRIPT = HERE / "peers" / "mlflow_tracking.py"


def _fresh(tag: str) -> str:
    return tempfile.mkdtemp(prefix=f"bench-{tag}-")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="smaller N, for a smoke run")
    args = parser.parse_args()
    quick = args.quick
    mlflow_py = ensure_mlflow()
    mlflow_version = package_version(mlflow_py, "mlflow")
    keel_py = sys.executable
    compile_keel_bytecode(keel_py)  # fresh processes (CLI start-up) as from an installed wheel

    def keel(*a: str) -> dict[str, Any]:
        return run_in(keel_py, KEEL_SCRIPT, *a, env={"KEEL_CAPTURE_ENVIRONMENT": "true"})

    def mlflow(*a: str) -> dict[str, Any]:
        return run_in(mlflow_py, MLFLOW_SCRIPT, *a)

    rows: list[list[Any]] = []

    def pair(
        label: str,
        fk: Callable[[], dict[str, Any]],
        fm: Callable[[], dict[str, Any]],
        field: str,
        unit: str,
        higher_is_better: bool,
        target: str,
    ) -> None:
        ks, ms = alternate(fk, fm, args.repeats)
        k = median([r[field] for r in ks])
        m = median([r[field] for r in ms])
        ratio = k / m if higher_is_better else m / k
        rows.append([label, f"{k:,.4g} {unit}", f"{m:,.4g} {unit}", f"{ratio:,.1f}x", target])
        print(f"{label}: keel {k:,.4g} {unit}  mlflow {m:,.4g} {unit}  ratio {ratio:,.1f}x")

    # (label, subcommand, N for Keel, N for MLflow, quick Ns, target): rates, higher is better.
    rates = [
        ("per-call log_metric", "log_metric", (1_000_000, 2_000), (200_000, 300), ">= 1000x"),
        (
            "batched log_metrics / log_batch (1,000 per call)",
            "log_batch",
            (2_000_000, 50_000),
            (200_000, 5_000),
            ">= 20x",
        ),
        ("run creation (start + end)", "runs", (3_000, 200), (500, 30), ">= 20x"),
    ]
    for label, sub, full_n, quick_n, target in rates:
        n_k, n_m = quick_n if quick else full_n
        field = "runs_per_s" if sub == "runs" else "points_per_s"
        pair(
            label,
            lambda sub=sub, n_k=n_k: keel(sub, str(n_k), _fresh("k")),
            lambda sub=sub, n_m=n_m: mlflow(sub, str(n_m), _fresh("m")),
            field,
            field.removesuffix("_per_s").replace("_", "") + "/s",
            True,
            target,
        )
    n_search = 1_000 if quick else 10_000
    keel_search = DATA_DIR / f"keel-search-{n_search}"
    mlflow_search = DATA_DIR / f"mlflow-search-{n_search // 1000}k"
    keel("fill_search", str(n_search), str(keel_search))
    mlflow("fill_search", str(n_search), str(mlflow_search))
    pair(
        f"search_runs over {n_search:,} runs (1,000 results)",
        lambda: keel("search", str(keel_search), "5"),
        lambda: mlflow("search", str(mlflow_search), "5"),
        "median_s",
        "s",
        False,
        ">= 50x",
    )
    n_history = 10_000 if quick else 100_000
    pair(
        f"metric history of {n_history:,} points",
        lambda: keel("history", str(n_history), _fresh("k")),
        lambda: mlflow("history", str(n_history), _fresh("m")),
        "median_s",
        "s",
        False,
        ">= 30x",
    )
    kv, mv = alternate(lambda: keel("version"), lambda: mlflow("version"), args.repeats)
    k_help = median([r["help_median_s"] for r in kv])
    k_ver = median([r["cli_median_s"] for r in kv])
    m_ver = median([r["cli_median_s"] for r in mv])
    rows.append(["`keel --help` cold start", f"{k_help:.3f} s", "", "", "<= 0.3 s"])
    rows.append(
        ["`--version` cold start", f"{k_ver:.3f} s", f"{m_ver:.3f} s", f"{m_ver / k_ver:.1f}x", ""]
    )
    if not quick:
        n_big = 100_000
        big = DATA_DIR / f"keel-search-{n_big}"
        keel("fill_search", str(n_big), str(big))
        results = [keel("search", str(big), "5") for _ in range(args.repeats)]
        k_big = median([r["median_s"] for r in results])
        rows.append(
            [f"search_runs over {n_big:,} runs (Keel only)", f"{k_big:.4f} s", "", "", "< 0.1 s"]
        )
        print(f"search 100k: {k_big:.4f} s")

    table = markdown_table(["workload", "Keel", "MLflow", "ratio", "target"], rows)
    print(table)
    command = "python benchmarks/bench_tracking.py" + (" --quick" if quick else "")
    append_results(
        "Tracking" + (" (quick)" if quick else ""),
        table,
        command,
        peer_version=f"MLflow {mlflow_version} (sqlite store)",
        notes=(
            f"Medians of {args.repeats} alternating runs (Keel, MLflow, ...), each in a fresh "
            "process and store. Rates are per second of the timed section; Keel's includes "
            "`keel.flush()` (every point durable), MLflow's per-call loop commits each point. "
            "Keel's batch is `log_metrics` of 1,000 keys per call; MLflow's is `log_batch` of "
            "1,000 `Metric`s. Ratios: higher is better for Keel. Search stores are filled once "
            "by the Keel under test (refilled when `FILL_FORMAT` in keel_tracking.py changes); "
            "each search is `keel.search_runs` returning a DataFrame, median of 5 calls after "
            "a first call that opens the store. Keel's bytecode is compiled before the runs, "
            "as installing the wheel does (the peer is installed from wheels); CLI start-up "
            "is the median wall time of 5 fresh `keel --help` / `--version` processes."
        ),
    )


if __name__ == "__main__":
    main()
