"""Data versioning benchmarks: ``keel data add`` against ``dvc add`` (DVC 3.67) and floors.

    python benchmarks/bench_data.py [--repeats 3] [--quick]

Work (shared PEERS.md): one 1 GiB random file; 20,000 files of 4 KiB in 100 folders;
a re-add of the unchanged directory. Each first add runs in a fresh process with a
fresh store (Keel: a new KEEL_HOME; DVC: a new git + DVC repository), alternating
Keel and DVC; medians are reported. Floors for the 1 GiB file: ``b3sum`` and ``cp``
of the same file, measured right after each Keel run of it. Every tool starts with
its input in the page cache: DVC adds a copy inside its repository written (and
flushed with ``sync``) just before its timed run, and Keel's input and the floors' are
read once just before theirs. On a machine that pages out idle page cache (DAMON
reclaim) the input would otherwise come from disk for whichever tool runs after a
pause. Data lives in
``benchmarks/.data/data-bench`` and is removed at the end. Results go to
``benchmarks/RESULTS.md`` (section "Data versioning").
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _harness import alternate, append_results, markdown_table, median  # noqa: E402
from _peer_env import DATA_DIR, child_env, ensure_venv, package_version  # noqa: E402

KEEL = Path(sys.executable).with_name("keel")
WORK = DATA_DIR / "data-bench"
DVC_SCRIPT = HERE / "peers" / "dvc_add.py"


def _make_data(quick: bool) -> tuple[Path, Path]:
    big = WORK / "big" / "random.bin"
    small = WORK / "small" / "files"
    size = (64 if quick else 1024) * 1024 * 1024
    if not big.exists() or big.stat().st_size != size:
        big.parent.mkdir(parents=True, exist_ok=True)
        with big.open("wb") as out:
            for _ in range(size // (16 * 1024 * 1024)):
                out.write(os.urandom(16 * 1024 * 1024))
    count = 2_000 if quick else 20_000
    if not small.exists():
        for i in range(count):
            folder = small / f"d{i % 100:03}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"f{i:05}.bin").write_bytes(os.urandom(4096))
    time.sleep(0.1)  # past the stat cache's racy-clean window
    return big, small


def _timed(cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, cwd=cwd, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def _keel_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env.update(KEEL_HOME=str(home), KEEL_CAPTURE_ENVIRONMENT="false")
    return env


IN_PROCESS: dict[str, list[float]] = {}
"""Keel's own ``seconds`` (inside ``add``, no start-up) for each timed CLI run, by tag."""


def _keel_cli_add(path: Path, tag: str, warm: bool = False) -> float:
    home = WORK / f"keel-home-{tag}"
    cmd = [str(KEEL), "data", "add", str(path), "--name", "bench", "--json"]
    os.sync()  # every timed run starts with no dirty pages of an earlier one
    if warm:
        _warm(path)
    started = time.perf_counter()
    out = subprocess.run(cmd, check=True, env=_keel_env(home), capture_output=True, text=True)
    wall = time.perf_counter() - started
    IN_PROCESS.setdefault(tag, []).append(float(json.loads(out.stdout)["seconds"]))
    return wall


def _warm(path: Path) -> None:
    """Read every file under ``path`` once (untimed), so that it is in the page cache."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    buffer = bytearray(16 * 1024 * 1024)
    for file in files:
        with file.open("rb", buffering=0) as stream:
            while stream.readinto(buffer):
                pass


def keel_add(path: Path, tag: str) -> float:
    """First add into a fresh store; creating the store (like ``dvc init``) is not timed."""
    home = WORK / f"keel-home-{tag}"
    shutil.rmtree(home, ignore_errors=True)
    subprocess.run(
        [str(KEEL), "data", "list"], check=True, env=_keel_env(home), stdout=subprocess.DEVNULL
    )
    return _keel_cli_add(path, tag, warm=True)


def keel_readd(path: Path, tag: str) -> float:
    return _keel_cli_add(path, f"{tag}-readd")


def keel_readd_in_process(path: Path, tag: str) -> float:
    """The re-add inside one Python process (no interpreter or import start-up)."""
    code = (
        "import sys, time, keel\n"
        "svc = keel.data.service(); svc.catalog.list_datasets()\n"
        "t = time.perf_counter(); r = svc.add_detailed(sys.argv[1], 'bench')\n"
        "print(time.perf_counter() - t, r.created, r.hashed)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        check=True,
        env=_keel_env(WORK / f"keel-home-{tag}"),
        capture_output=True,
        text=True,
    ).stdout.split()
    assert out[1] == "False"
    assert out[2] == "0", out
    return float(out[0])


def dvc_add(python: Path, path: Path, tag: str, readd: bool = False) -> float:
    os.sync()
    args = [str(python), str(DVC_SCRIPT), str(WORK / f"dvc-{tag}"), str(path)]
    out = subprocess.run(
        [*args, "--readd"] if readd else args,
        check=True,
        env=child_env(python),
        capture_output=True,
        text=True,
    ).stdout
    return float(json.loads(out.strip().splitlines()[-1])["seconds"])


FLOORS: dict[str, list[float]] = {"b3sum": [], "cp": []}
"""Floor timings for the 1 GiB file, one of each after every Keel run (same conditions)."""


def keel_add_then_floor(big: Path) -> float:
    """``keel_add`` of the big file, then one floor measurement prepared the same way.

    The floor runs right after Keel's run and before DVC's, so both see the same disk
    state (write-back and discards of earlier runs); only Keel's time is returned.
    """
    seconds = keel_add(big, "big")
    dest = WORK / "cp-floor.bin"
    dest.unlink(missing_ok=True)
    os.sync()
    _warm(big)
    FLOORS["b3sum"].append(_timed(["b3sum", str(big)]) if shutil.which("b3sum") else _py_b3(big))
    os.sync()
    FLOORS["cp"].append(_timed(["cp", str(big), str(dest)]))
    return seconds


def _py_b3(path: Path) -> float:
    code = "import blake3,sys; blake3.blake3(max_threads=-1).update_mmap(sys.argv[1])"
    return _timed([sys.executable, "-c", code, str(path)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="small data, for a smoke run")
    parser.add_argument("--keep", action="store_true", help="keep benchmarks/.data/data-bench")
    args = parser.parse_args()
    python = ensure_venv("dvc", ["dvc==3.67.*"])
    big, small = _make_data(args.quick)
    r = args.repeats
    try:
        k_big, d_big = alternate(
            lambda: keel_add_then_floor(big), lambda: dvc_add(python, big, "big"), r
        )
        b3, cp = median(FLOORS["b3sum"]), median(FLOORS["cp"])
        floor = median([b + c for b, c in zip(FLOORS["b3sum"], FLOORS["cp"], strict=True)])
        print("per run, inside add:", IN_PROCESS["big"], "floors:", FLOORS, flush=True)
        k_small, d_small = alternate(
            lambda: keel_add(small, "small"), lambda: dvc_add(python, small, "small"), r
        )
        k_re, d_re = alternate(
            lambda: keel_readd(small, "small"),
            lambda: dvc_add(python, small, "small", readd=True),
            r,
        )
        k_re_in = [keel_readd_in_process(small, "small") for _ in range(r)]
    finally:
        if not args.keep:
            shutil.rmtree(WORK, ignore_errors=True)
    small_label = f"{'2,000' if args.quick else '20,000'} files x 4 KiB in 100 folders"
    in_big, in_small = median(IN_PROCESS["big"]), median(IN_PROCESS["small"])
    rows = [
        ["1 GiB random file, first add (CLI process)", median(k_big), median(d_big)],
        ["1 GiB random file, first add (inside `add`)", in_big, ""],
        ["floor: b3sum + cp of that file", floor, ""],
        [f"{small_label} (CLI process)", median(k_small), median(d_small)],
        [f"{small_label} (inside `add`)", in_small, ""],
        ["re-add, nothing changed (CLI process)", median(k_re), median(d_re)],
        ["re-add, nothing changed (in-process API)", median(k_re_in), ""],
    ]
    for row in rows:
        row.append(row[2] / row[1] if row[2] != "" else "")
    table = markdown_table(["work", "keel s", "dvc s", "dvc/keel"], rows)
    print(table)
    print(
        f"b3sum {b3:.3f} s, cp {cp:.3f} s; keel 1 GiB / (b3sum+cp) = "
        f"{median(k_big) / floor:.2f} (CLI), {in_big / floor:.2f} (inside add)"
    )
    if not args.quick:
        append_results(
            "Data versioning",
            table,
            f"python benchmarks/bench_data.py --repeats {r}",
            peer_version=f"DVC {package_version(python, 'dvc')}",
            notes=(
                f"Medians of {r} alternating runs, each a fresh process; first adds into a "
                "fresh store (creating it, like `dvc init`, is not timed); `sync` before "
                "every timed run; every input is in the page cache when its run starts "
                "(DVC adds a copy written into its repository just before; Keel's input "
                "and the floors' are read once just before). The floor (median of b3sum + "
                "cp) is measured right after each Keel run of the 1 GiB file, prepared the "
                f"same way: b3sum {b3:.3f} s, cp {cp:.3f} s (medians; Keel / floor = "
                f"{median(k_big) / floor:.2f} for the CLI process, "
                f"{in_big / floor:.2f} inside `add`). Keel runs with the default "
                "KEEL_SYNC=normal: objects appear atomically and every read verifies "
                "the digest, but data is not fsynced, the same guarantee `dvc add` and "
                "`cp` give. Small files are written into pack files. The CLI rows include "
                "interpreter start-up and imports (SQLAlchemy, Typer): "
                f"{median(k_big) - in_big:.2f} s between the CLI and 'inside `add`' rows "
                "of the 1 GiB add, which are the same runs ('inside `add`' is the time "
                "Keel reports). Per run, 1 GiB inside `add`: "
                + ", ".join(f"{x:.3f}" for x in IN_PROCESS["big"])
                + " s; the floor right after each: "
                + ", ".join(f"{b + c:.3f}" for b, c in zip(*FLOORS.values(), strict=True))
                + " s."
            ),
        )


if __name__ == "__main__":
    main()
