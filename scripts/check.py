"""Every check Keel's CI runs, in order: lint, format, types, layers, tests.

Run it from the repository root with the development install active:
``python scripts/check.py`` (``--fast`` skips the slow and PostgreSQL tests).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    candidate = BIN / name
    return str(candidate) if candidate.exists() else name


def main() -> int:
    fast = "--fast" in sys.argv[1:]
    pytest_args = [sys.executable, "-m", "pytest", "-q", "--cov=keel", "--cov-report=term"]
    pytest_args += ["--durations=15"]  # the slowest tests, to keep CI well under 20 minutes
    if fast:
        pytest_args += ["-m", "not slow and not postgres"]
    steps = [
        ("ruff check", [tool("ruff"), "check", "src", "tests", "benchmarks", "scripts"]),
        (
            "ruff format",
            [tool("ruff"), "format", "--check", "src", "tests", "benchmarks", "scripts"],
        ),
        ("mypy --strict", [tool("mypy")]),
        ("import-linter", [tool("lint-imports")]),
        ("pytest", pytest_args),
    ]
    failed = []
    for title, command in steps:
        print(f"\n=== {title}", flush=True)
        started = time.monotonic()
        code = subprocess.call(command, cwd=ROOT, env=os.environ.copy())
        print(
            f"=== {title}: {'ok' if code == 0 else f'FAILED ({code})'} "
            f"in {time.monotonic() - started:.1f}s",
            flush=True,
        )
        if code != 0:
            failed.append(title)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
        return 1
    print("\nall checks passed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
