"""Drift detection, Keel against Evidently on the same data in the same run.

    python benchmarks/bench_drift.py [--sizes 10000 100000 1000000] [--repeats 3]
                                     [--evidently-repeats-1m 1] [--big 10000000]

The data of PEERS.md is generated once under ``benchmarks/.data/drift`` (Parquet, row
groups of 1M rows): 20 numeric columns of mixed distributions and 5 categorical
columns with 10 levels; the current side has a 0.2 population-sd shift in 5 numeric
columns and 10 points of probability moved between two levels of one categorical.
Every measurement is a fresh child process that loads both files into pandas and then
times the detection alone, Keel and Evidently alternating (K E K E ...). Evidently
0.7.23 runs in its own venv (``benchmarks/.venvs/evidently``, with ``pandas<3``).
Then Keel alone scores a 10M-row directory of Parquet files, read in chunks, against
the reference profile ``keel data add`` would store. Results go to RESULTS.md.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

DATA = HERE / ".data" / "drift"
CHUNK = 1_000_000
LEVELS = [f"level_{i}" for i in range(10)]


def _sd_weibull(k: float) -> float:
    return math.sqrt(math.gamma(1 + 2 / k) - math.gamma(1 + 1 / k) ** 2)


def _sd_beta(a: float, b: float) -> float:
    return math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))


def _sd_lognormal(mu: float, sigma: float) -> float:
    return math.sqrt((math.exp(sigma**2) - 1) * math.exp(2 * mu + sigma**2))


Sampler = Callable[[Any, int], Any]

# name, sampler(rng, n), population standard deviation
NUMERIC: list[tuple[str, Sampler, float]] = [
    ("normal", lambda r, n: r.normal(0.0, 1.0, n), 1.0),
    ("normal_wide", lambda r, n: r.normal(50.0, 10.0, n), 10.0),
    ("lognormal", lambda r, n: r.lognormal(0.0, 0.5, n), _sd_lognormal(0.0, 0.5)),
    ("lognormal_heavy", lambda r, n: r.lognormal(2.0, 1.0, n), _sd_lognormal(2.0, 1.0)),
    ("uniform", lambda r, n: r.uniform(0.0, 1.0, n), 1 / math.sqrt(12)),
    ("uniform_wide", lambda r, n: r.uniform(-5.0, 5.0, n), 10 / math.sqrt(12)),
    ("exponential", lambda r, n: r.exponential(1.0, n), 1.0),
    ("exponential_wide", lambda r, n: r.exponential(10.0, n), 10.0),
    ("gamma", lambda r, n: r.gamma(2.0, 2.0, n), math.sqrt(2.0) * 2.0),
    ("gamma_skewed", lambda r, n: r.gamma(0.5, 1.0, n), math.sqrt(0.5)),
    ("beta", lambda r, n: r.beta(2.0, 5.0, n), _sd_beta(2.0, 5.0)),
    ("student_t", lambda r, n: r.standard_t(5.0, n), math.sqrt(5 / 3)),
    ("chisquare", lambda r, n: r.chisquare(4.0, n), math.sqrt(8.0)),
    ("weibull", lambda r, n: r.weibull(1.5, n), _sd_weibull(1.5)),
    ("laplace", lambda r, n: r.laplace(0.0, 1.0, n), math.sqrt(2.0)),
    ("logistic", lambda r, n: r.logistic(0.0, 1.0, n), math.pi / math.sqrt(3)),
    ("gumbel", lambda r, n: r.gumbel(0.0, 1.0, n), math.pi / math.sqrt(6)),
    ("rayleigh", lambda r, n: r.rayleigh(1.0, n), math.sqrt((4 - math.pi) / 2)),
    ("triangular", lambda r, n: r.triangular(0.0, 1.0, 4.0, n), math.sqrt(13 / 18)),
    (
        "bimodal",
        lambda r, n: r.normal(0.0, 1.0, n) + r.choice([-2.0, 2.0], n),
        math.sqrt(5.0),
    ),
]
SHIFTED_NUMERIC = ["normal", "lognormal_heavy", "exponential", "student_t", "bimodal"]
SHIFT_SD = 0.2
# Category probabilities: geometric, a different ratio per column.
CATEGORICAL = [(f"cat_{i}", 0.7 + 0.05 * i) for i in range(5)]
SHIFTED_CATEGORICAL = "cat_0"
MASS_MOVED = 0.10  # from level_0 to level_5 in SHIFTED_CATEGORICAL
EXPECTED = sorted([*SHIFTED_NUMERIC, SHIFTED_CATEGORICAL])


def _probabilities(ratio: float, shifted: bool) -> Any:
    import numpy as np

    p = ratio ** np.arange(len(LEVELS))
    p /= p.sum()
    if shifted:
        p[0] -= MASS_MOVED
        p[5] += MASS_MOVED
    return p


def _table(rng: Any, n: int, current: bool) -> Any:
    import numpy as np
    import pyarrow as pa

    columns: dict[str, Any] = {}
    for name, sample, sd in NUMERIC:
        values = sample(rng, n)
        if current and name in SHIFTED_NUMERIC:
            values += SHIFT_SD * sd
        columns[name] = values
    dictionary = pa.array(LEVELS)
    for name, ratio in CATEGORICAL:
        p = _probabilities(ratio, current and name == SHIFTED_CATEGORICAL)
        codes = rng.choice(len(LEVELS), size=n, p=p).astype(np.int8)
        columns[name] = pa.DictionaryArray.from_arrays(pa.array(codes), dictionary)
    return pa.table(columns)


def generate(rows: int, role: str, *, files: int = 1) -> Path:
    """``benchmarks/.data/drift/{role}_{rows}.parquet`` (or a directory of ``files`` parts),
    written once in row groups of at most 1M rows; ``role`` is reference or current."""
    import numpy as np
    import pyarrow.parquet as pq

    target = DATA / (f"{role}_{rows}" + ("" if files > 1 else ".parquet"))
    if target.exists():
        return target
    DATA.mkdir(parents=True, exist_ok=True)
    seed = [rows, 0 if role == "reference" else 1]
    rng = np.random.default_rng(seed)
    tmp = target.with_name(target.name + ".tmp")
    per_file = -(-rows // files)
    if files > 1:
        tmp.mkdir(parents=True, exist_ok=True)
    for part in range(files):
        path = tmp / f"part-{part:03d}.parquet" if files > 1 else tmp
        todo = min(per_file, rows - part * per_file)
        writer = None
        for start in range(0, todo, CHUNK):
            table = _table(rng, min(CHUNK, todo - start), role == "current")
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table, row_group_size=CHUNK)
        assert writer is not None
        writer.close()
    tmp.rename(target)
    return target


# -- measurement (each in a fresh child process) --------------------------------------


def _memory() -> dict[str, float]:
    import re

    status = Path("/proc/self/status").read_text()
    found = {k: re.search(rf"^{k}:\s+(\d+) kB", status, re.M) for k in ("VmRSS", "VmHWM")}
    return {k: int(m.group(1)) / 1024 for k, m in found.items() if m}


def _reset_peak() -> None:
    """Start VmHWM afresh at the current resident set (Linux >= 4.0)."""
    Path("/proc/self/clear_refs").write_text("5")


def child_keel(reference_path: str, current_path: str) -> None:
    """Keel on two in-memory frames: ``DriftDetector().fit(reference).score(current)``."""
    import gc
    import json
    import time

    import pandas as pd
    import pyarrow as pa

    from keel.monitoring import DriftDetector

    reference = pd.read_parquet(reference_path)
    current = pd.read_parquet(current_path)
    gc.collect()
    pa.default_memory_pool().release_unused()  # what reading left behind is not Keel's
    loaded = _memory()["VmRSS"]
    _reset_peak()
    started = time.perf_counter()
    detector = DriftDetector().fit(reference)
    fitted = time.perf_counter()
    report = detector.score(current)
    done = time.perf_counter()
    methods = sorted({m for m in detector.methods_.values() if m})
    print(
        json.dumps(
            {
                "fit_s": fitted - started,
                "score_s": done - fitted,
                "seconds": done - started,
                "rss_loaded_mib": loaded,
                "peak_mib": _memory()["VmHWM"],
                "drifted": sorted(report.drifted_columns),
                "methods": methods,
                "rows": report.current_rows,
            }
        )
    )


def child_keel_stream(profile_path: str, current_dir: str) -> None:
    """Keel on a Parquet directory, read in chunks, against a stored reference profile."""
    import json
    import time

    from keel.monitoring import DriftDetector

    started = time.perf_counter()
    profile = json.loads(Path(profile_path).read_text())
    detector = DriftDetector().fit(profile)
    fitted = time.perf_counter()
    report = detector.score(current_dir)
    done = time.perf_counter()
    import resource

    print(
        json.dumps(
            {
                "fit_s": fitted - started,
                "score_s": done - fitted,
                "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "drifted": sorted(report.drifted_columns),
                "rows": report.current_rows,
            }
        )
    )


def stored_profile(rows: int) -> Path:
    """The reference's profile as ``keel data add`` stores it (made once, as JSON)."""
    import json

    from keel.data._profile import profile_file

    path = DATA / f"reference_{rows}.profile.json"
    if not path.exists():
        described = profile_file(generate(rows, "reference"))
        assert described is not None
        path.write_text(json.dumps(described["profile"]))
    return path


# -- the run ---------------------------------------------------------------------------

EVIDENTLY_REQUIREMENTS = ("evidently==0.7.23", "pandas<3", "pyarrow")
EVIDENTLY_SCRIPT = HERE / "peers" / "evidently_drift.py"
THIS = Path(__file__).resolve()


def _fmt_rows(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 else f"{n // 1000}k"


def main() -> None:
    import argparse

    from _harness import append_results, markdown_table, median
    from _peer_env import ensure_venv, package_version, run_in

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--evidently-repeats-1m",
        type=int,
        default=1,
        help="Evidently runs at 1M rows and above (each takes minutes and GiBs)",
    )
    parser.add_argument("--big", type=int, default=10_000_000, help="0 to skip")
    args = parser.parse_args()

    evidently = ensure_venv("evidently", EVIDENTLY_REQUIREMENTS)
    versions = {
        "evidently": package_version(evidently, "evidently"),
        "evidently_pandas": package_version(evidently, "pandas"),
        "keel_pandas": package_version(sys.executable, "pandas"),
        "numpy": package_version(sys.executable, "numpy"),
        "pyarrow": package_version(sys.executable, "pyarrow"),
    }
    rows: list[list[Any]] = []
    raw: dict[str, Any] = {}
    for size in args.sizes:
        ref, cur = generate(size, "reference"), generate(size, "current")
        keel_runs: list[dict[str, Any]] = []
        peer_runs: list[dict[str, Any]] = []
        peer_repeats = args.evidently_repeats_1m if size >= 1_000_000 else args.repeats
        for i in range(max(args.repeats, peer_repeats)):  # K E K E ...
            if i < args.repeats:
                keel_runs.append(run_in(sys.executable, THIS, "child-keel", str(ref), str(cur)))
                print(f"[{_fmt_rows(size)}] keel {keel_runs[-1]}", file=sys.stderr)
            if i < peer_repeats:
                peer_runs.append(run_in(evidently, EVIDENTLY_SCRIPT, str(ref), str(cur)))
                print(f"[{_fmt_rows(size)}] evidently {peer_runs[-1]}", file=sys.stderr)
        keel_s = median([r["seconds"] for r in keel_runs])
        peer_s = median([r["seconds"] for r in peer_runs])
        keel_flags = {tuple(r["drifted"]) for r in keel_runs}
        peer_flags = {tuple(r["drifted"]) for r in peer_runs}
        exact = keel_flags == {tuple(EXPECTED)}
        rows.append(
            [
                f"{size:,} + {size:,}",
                f"{keel_s:.3f} s",
                f"{median([r['fit_s'] for r in keel_runs]):.3f} + "
                f"{median([r['score_s'] for r in keel_runs]):.3f}",
                f"{peer_s:.2f} s" + ("" if len(peer_runs) > 1 else " (1 run)"),
                f"{peer_s / keel_s:,.0f}x",
                f"{max(r['peak_mib'] for r in keel_runs):.0f}",
                f"{max(r['peak_mib'] for r in peer_runs):.0f}",
                f"{median([r['rss_loaded_mib'] for r in keel_runs]):.0f} / "
                f"{median([r['rss_loaded_mib'] for r in peer_runs]):.0f}",
                "exactly the 6" if exact else f"{sorted(keel_flags)}",
                "same" if keel_flags == peer_flags else f"{sorted(peer_flags)}",
            ]
        )
        raw[str(size)] = {"keel": keel_runs, "evidently": peer_runs}
    table = markdown_table(
        [
            "rows (reference + current)",
            "Keel fit + score",
            "of which fit + score s",
            "Evidently",
            "speed-up",
            "Keel peak RSS MiB",
            "Evidently peak RSS MiB",
            "RSS with data loaded, Keel / Evidently MiB",
            "Keel flags",
            "Evidently flags",
        ],
        rows,
    )
    big_note = ""
    if args.big:
        profile = stored_profile(1_000_000)
        directory = generate(args.big, "current", files=10)
        runs = [
            run_in(sys.executable, THIS, "child-keel-stream", str(profile), str(directory))
            for _ in range(args.repeats)
        ]
        for r in runs:
            print(f"[{_fmt_rows(args.big)} stream] keel {r}", file=sys.stderr)
        flags = {tuple(r["drifted"]) for r in runs}
        size_mib = sum(f.stat().st_size for f in directory.glob("*.parquet")) / 2**20
        table += "\n\n" + markdown_table(
            ["Keel alone", "score s (median)", "runs s", "peak RSS MiB", "flags"],
            [
                [
                    f"{args.big:,} rows, {size_mib:,.0f} MiB Parquet in 10 files, "
                    "against a stored 1M-row reference profile",
                    f"{median([r['score_s'] for r in runs]):.2f}",
                    ", ".join(f"{r['score_s']:.2f}" for r in runs),
                    f"{max(r['peak_mib'] for r in runs):.0f}",
                    "exactly the 6" if flags == {tuple(EXPECTED)} else str(sorted(flags)),
                ]
            ],
        )
        big_note = (
            f" The {_fmt_rows(args.big)} row is `DriftDetector().fit(stored_profile)"
            ".score(directory)` in a fresh process: the profile is the JSON `keel data add` "
            "stores for the 1M reference file; the directory is read in chunks of 131,072 "
            "rows; peak RSS is the whole process (interpreter, libraries, reader)."
        )
    print(table)
    notes = (
        "Data (PEERS.md): 20 numeric columns of mixed distributions and 5 categorical "
        "columns with 10 levels; the current data has a 0.2 population-sd shift in 5 numeric "
        "columns (normal, lognormal_heavy, exponential, student_t, bimodal) and 10 points "
        "of probability moved between two levels of cat_0. Reference and current have the "
        "same number of rows, generated once into Parquet and loaded with pandas in each "
        "fresh child process before timing. Keel: `DriftDetector().fit(reference)"
        ".score(current)` on the two DataFrames; Evidently: `Dataset.from_pandas` of both "
        "and `Report([DataDriftPreset()]).run(current, reference)`. Imports and loading are "
        f"outside the timings on both sides. Medians of {args.repeats} alternating runs "
        f"(Keel, Evidently, ...); Evidently ran {args.evidently_repeats_1m} time(s) at 1M "
        "rows. Peak RSS is VmHWM of the child while detecting (reset after loading, so it "
        "includes the loaded frames); the column before the flags gives the RSS with the "
        "frames loaded, before detection. Both sides pick Wasserstein (normed) for numeric "
        "and Jensen-Shannon for categorical columns at these sizes, threshold 0.1. "
        f"Versions: Keel side pandas {versions['keel_pandas']}, NumPy {versions['numpy']}, "
        f"pyarrow {versions['pyarrow']}; Evidently side pandas {versions['evidently_pandas']}. "
        "OPENBLAS_NUM_THREADS=1 on both sides. The loaded frames take less memory on Keel's "
        "side (pandas 3 keeps Arrow's buffers; pandas 2 copies them into NumPy blocks); what "
        "detection itself adds is peak minus loaded: "
        + ", ".join(
            f"Keel {max(r['peak_mib'] - r['rss_loaded_mib'] for r in v['keel']):.0f} MiB and "
            f"Evidently {max(r['peak_mib'] - r['rss_loaded_mib'] for r in v['evidently']):.0f}"
            f" MiB at {_fmt_rows(int(k))}"
            for k, v in raw.items()
        )
        + "."
        + big_note
    )
    command = (
        "python benchmarks/bench_drift.py --sizes "
        + " ".join(map(str, args.sizes))
        + f" --repeats {args.repeats} --evidently-repeats-1m {args.evidently_repeats_1m}"
        + f" --big {args.big}"
    )
    append_results(
        "Drift detection",
        table,
        command,
        peer_version=f"Evidently {versions['evidently']}",
        notes=notes,
    )
    (DATA / "last_run.json").write_text(__import__("json").dumps(raw, indent=1))


if __name__ == "__main__":
    if sys.argv[1:2] == ["child-keel"]:
        child_keel(sys.argv[2], sys.argv[3])
    elif sys.argv[1:2] == ["child-keel-stream"]:
        child_keel_stream(sys.argv[2], sys.argv[3])
    else:
        main()
