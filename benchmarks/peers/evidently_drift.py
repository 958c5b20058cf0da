"""Evidently side of the drift benchmark; runs in its venv (benchmarks/.venvs/evidently).

    python evidently_drift.py REFERENCE.parquet CURRENT.parquet

Loads both frames with pandas, then times ``Dataset.from_pandas`` for both and
``Report([DataDriftPreset()]).run(current, reference)`` (PEERS.md). Memory: the resident
set after loading, and the peak while detecting (VmHWM, reset after loading through
``/proc/self/clear_refs``), both including the loaded frames. Prints one JSON line with
the seconds, the memory figures and the columns Evidently flags as drifted.
"""

from __future__ import annotations

import gc
import json
import re
import sys
import time
from pathlib import Path


def _memory() -> dict[str, float]:
    status = Path("/proc/self/status").read_text()
    found = {k: re.search(rf"^{k}:\s+(\d+) kB", status, re.M) for k in ("VmRSS", "VmHWM")}
    return {k: int(m.group(1)) / 1024 for k, m in found.items() if m}


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def _drifted(snapshot_dict: dict) -> list[str]:
    """Columns whose ValueDrift metric crossed its threshold (p-values: below it)."""
    out = []
    for metric in snapshot_dict["metrics"]:
        config = metric.get("config", {})
        if not str(config.get("type", "")).endswith("ValueDrift"):
            continue
        value, threshold = float(metric["value"]), float(config["threshold"])
        p_value = "p_value" in str(config.get("method", ""))
        if (value < threshold) if p_value else (value >= threshold):
            out.append(str(config["column"]))
    return sorted(out)


def main() -> None:
    import pandas as pd
    import pyarrow as pa
    from evidently import Dataset, Report
    from evidently import __version__ as version
    from evidently.presets import DataDriftPreset

    reference = pd.read_parquet(sys.argv[1])
    current = pd.read_parquet(sys.argv[2])
    gc.collect()
    pa.default_memory_pool().release_unused()  # what reading left behind is not Evidently's
    loaded = _memory()["VmRSS"]
    _reset_peak()
    started = time.perf_counter()
    ref = Dataset.from_pandas(reference)
    cur = Dataset.from_pandas(current)
    snapshot = Report([DataDriftPreset()]).run(cur, ref)
    seconds = time.perf_counter() - started
    peak = _memory()["VmHWM"]
    methods = sorted(
        {
            str(m["config"]["method"])
            for m in snapshot.dict()["metrics"]
            if "method" in m.get("config", {})
        }
    )
    print(
        json.dumps(
            {
                "seconds": seconds,
                "rss_loaded_mib": loaded,
                "peak_mib": peak,
                "drifted": _drifted(snapshot.dict()),
                "methods": methods,
                "rows": len(current),
                "version": version,
            }
        )
    )


if __name__ == "__main__":
    main()
