"""Small shared utilities for Keel's benchmarks against its peers.

- :func:`median`, :func:`alternate` (A B A B ... runs, per shared PEERS.md)
- :func:`time_command` (median wall of a subprocess), :func:`peak_rss_mib` (of a subprocess)
- :func:`markdown_table`, :func:`machine_info`, :func:`append_results` (``benchmarks/RESULTS.md``)
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_MD = BENCH_DIR / "RESULTS.md"

A = TypeVar("A")
B = TypeVar("B")


def median(values: Sequence[float]) -> float:
    """Median of a non-empty sequence of numbers."""
    if not values:
        raise ValueError("median of an empty sequence")
    return float(statistics.median(values))


def alternate(
    fa: Callable[[], A], fb: Callable[[], B], repeats: int = 3
) -> tuple[list[A], list[B]]:
    """Call ``fa`` and ``fb`` alternately (A B A B ...), ``repeats`` times each.

    Returns ``(results_of_a, results_of_b)`` in call order. Alternation spreads slow drifts of
    the machine (thermal, page cache, other load) evenly over both sides.
    """
    ra: list[A] = []
    rb: list[B] = []
    for _ in range(repeats):
        ra.append(fa())
        rb.append(fb())
    return ra, rb


def compile_keel_bytecode(python: str | Path = sys.executable) -> None:
    """Compile Keel's bytecode, as ``pip install keel-mlops`` does when it installs the wheel.

    The peers are installed from wheels, so their bytecode exists; an editable install of
    Keel under PYTHONDONTWRITEBYTECODE never writes its own, and every fresh process would
    compile Keel's sources again. Fresh-process timings compare installed packages.
    """
    where = subprocess.run(
        [str(python), "-c", "import keel, os; print(os.path.dirname(keel.__file__))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    subprocess.run([str(python), "-m", "compileall", "-q", where], check=True)


def _env(env: Mapping[str, str] | None) -> dict[str, str]:
    out = dict(os.environ)
    out["OPENBLAS_NUM_THREADS"] = "1"
    if env:
        out.update(env)
    return out


def time_command(
    cmd: Sequence[str],
    k: int = 5,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | str | None = None,
    warmup: int = 0,
) -> float:
    """Median wall-clock seconds of running ``cmd`` ``k`` times (after ``warmup`` untimed runs).

    stdout/stderr are discarded; a non-zero exit raises ``CalledProcessError``. ``env`` is laid
    over ``os.environ`` plus ``OPENBLAS_NUM_THREADS=1`` (pass ``_peer_env.child_env(python)``
    for a peer).
    """
    full_env = _env(env)
    times = []
    for i in range(warmup + k):
        t0 = time.perf_counter()
        subprocess.run(
            list(cmd),
            check=True,
            env=full_env,
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return median(times)


def peak_rss_mib(
    cmd: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | str | None = None,
) -> tuple[float, str]:
    """Run ``cmd`` once; return (peak resident set size in MiB, its stdout).

    Uses ``os.wait4`` on that one child, so the figure is its own ``ru_maxrss`` (on Linux, the
    largest of the process and the descendants it waited for), unaffected by earlier children.
    stderr passes through; a non-zero exit raises ``CalledProcessError``.
    """
    with subprocess.Popen(
        list(cmd), env=_env(env), cwd=cwd, stdout=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stdout is not None
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        code = os.waitstatus_to_exitcode(status)
        proc.returncode = code  # already reaped: keep Popen from waiting again
    if code != 0:
        raise subprocess.CalledProcessError(code, list(cmd), out)
    return usage.ru_maxrss / 1024, out


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub markdown table; floats are shown with 4 significant digits."""

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(map(str, headers)) + " |"]
    lines.append("| " + " | ".join("---" for _ in headers) + " |")
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _mem_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024**2
    except OSError:
        pass
    return None


def machine_info() -> dict[str, Any]:
    """nproc, CPU model, memory, OS and Python version of this machine."""
    mem = _mem_gib()
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": _cpu_model(),
        "mem_gib": round(mem, 1) if mem is not None else None,
        "os": f"{platform.system()} {platform.release()} {platform.machine()}",
        "python": platform.python_version(),
    }


def append_results(
    section_title: str,
    markdown_table: str,
    command: str,
    *,
    peer_version: str | None = None,
    notes: str = "",
    path: Path | None = None,
) -> Path:
    """Write or replace the section ``## <section_title>`` in ``benchmarks/RESULTS.md``.

    The section gets the date (UTC), machine info (nproc, CPU, memory, OS, Python), the peer's
    version (e.g. ``"MLflow 3.17.2"``), the command that produced it, the table and optional
    notes. Other sections are kept as they are, in order; a new section goes at the end.
    Returns the file's path.
    """
    path = path or RESULTS_MD
    m = machine_info()
    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    mem = f", {m['mem_gib']} GiB" if m["mem_gib"] is not None else ""
    body = [
        f"## {section_title}",
        "",
        f"- Date: {now}",
        f"- Machine: nproc {m['nproc']}, {m['cpu']}{mem}, {m['os']}",
        f"- Python: {m['python']} (harness {sys.executable})",
    ]
    if peer_version:
        body.append(f"- Peer: {peer_version}")
    body += [f"- Command: `{command}`", "", markdown_table.strip(), ""]
    if notes.strip():
        body += [notes.strip(), ""]
    section = "\n".join(body)

    text = path.read_text() if path.exists() else "# Benchmark results\n\n"
    # Split into a preamble and "## " sections (headings of level 2 only).
    parts = re.split(r"(?m)^(?=## )", text)
    preamble, sections = parts[0], parts[1:]
    title_line = f"## {section_title}"
    replaced = False
    for i, sec in enumerate(sections):
        if sec.splitlines()[0].strip() == title_line:
            sections[i] = section + "\n"
            replaced = True
    if not replaced:
        if sections and not sections[-1].endswith("\n\n"):
            sections[-1] = sections[-1].rstrip("\n") + "\n\n"
        elif not sections and not preamble.endswith("\n\n"):
            preamble = preamble.rstrip("\n") + "\n\n"
        sections.append(section + "\n")
    path.write_text((preamble + "".join(sections)).rstrip("\n") + "\n")
    return path
