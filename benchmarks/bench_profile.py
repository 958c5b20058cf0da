"""Data profiling: schema + profile of a 10-million-row Parquet file in bounded memory.

    python benchmarks/bench_profile.py [--rows 10000000] [--repeats 3]

The file (10 numeric and 3 categorical columns, row groups of 1M rows) is generated
once under ``benchmarks/.data``. Each measurement runs in a fresh child process; peak
RSS is that child's ``ru_maxrss``. As a reference point, pandas ``read_parquet`` +
``describe()`` on the same file (it loads everything). Target (issue 3): < 1 GiB RSS.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _harness import append_results, markdown_table, median, peak_rss_mib  # noqa: E402

DATA = HERE / ".data"

KEEL = """
import json, sys, time
from pathlib import Path
from keel.data._profile import profile_file
t0 = time.perf_counter()
out = profile_file(Path(sys.argv[1]))
elapsed = time.perf_counter() - t0
print(json.dumps({"seconds": elapsed, "rows": out["profile"]["rows"],
                  "columns": len(out["schema"]["columns"]), "bytes": len(json.dumps(out))}))
"""

PANDAS = """
import json, sys, time
import pandas as pd
t0 = time.perf_counter()
df = pd.read_parquet(sys.argv[1])
df.describe(include="all")
print(json.dumps({"seconds": time.perf_counter() - t0, "rows": len(df)}))
"""


def generate(path: Path, rows: int, chunk: int = 1_000_000) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    tmp = path.with_suffix(".tmp")
    writer = None
    for start in range(0, rows, chunk):
        n = min(chunk, rows - start)
        cols = {f"num_{k}": rng.normal(k, 1 + k, n) for k in range(8)}
        cols["income"] = rng.lognormal(10, 1, n)
        cols["age"] = rng.integers(18, 90, n)
        cols["region"] = rng.choice(["north", "south", "east", "west"], n)
        cols["product"] = rng.choice([f"p{i:03d}" for i in range(200)], n)
        cols["flag"] = rng.random(n) < 0.1
        table = pa.table(cols)
        if writer is None:
            writer = pq.ParquetWriter(tmp, table.schema)
        writer.write_table(table, row_group_size=chunk)
    assert writer is not None
    writer.close()
    tmp.rename(path)


def measure(script: str, path: Path) -> tuple[float, float, dict[str, object]]:
    t0 = time.perf_counter()
    rss, out = peak_rss_mib([sys.executable, "-c", script, str(path)])
    wall = time.perf_counter() - t0
    return rss, wall, json.loads(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-pandas", action="store_true")
    args = parser.parse_args()
    path = DATA / f"profile_{args.rows}.parquet"
    generate(path, args.rows)
    keel = [measure(KEEL, path) for _ in range(args.repeats)]
    rows = [
        (
            "Keel profile_file (schema + profile)",
            max(r[0] for r in keel),
            median([r[2]["seconds"] for r in keel]),  # type: ignore[misc]
            median([r[1] for r in keel]),
        )
    ]
    if not args.no_pandas:
        pandas = measure(PANDAS, path)
        rows.append(
            ("pandas read_parquet + describe()", pandas[0], pandas[2]["seconds"], pandas[1])  # type: ignore[arg-type]
        )
    table = markdown_table(["what", "peak RSS MiB", "profile s", "process wall s"], rows)
    print(table)
    size = path.stat().st_size / 2**20
    notes = (
        f"{args.rows:,} rows, 13 columns (10 numeric, 3 categorical), {size:.0f} MiB Parquet, "
        f"row groups of 1M rows. Keel: max RSS and median time of {args.repeats} runs, each "
        f"in a fresh process; profile JSON {keel[0][2]['bytes']} bytes. "
        "Target: < 1024 MiB peak RSS. pandas loads the whole table (reference point only)."
    )
    command = f"python benchmarks/bench_profile.py --rows {args.rows} --repeats {args.repeats}"
    append_results("Data profiling", table, command, notes=notes)


if __name__ == "__main__":
    main()
