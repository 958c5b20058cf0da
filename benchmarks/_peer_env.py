"""Isolated environments for the peers Keel is benchmarked against.

Each peer (MLflow, Evidently, DVC, ...) is installed into its own virtualenv under
``benchmarks/.venvs/<name>``, never into Keel's environment. A venv is created once and reused
while its requirement list is unchanged (a stamp file in the venv records the list).

Peer scripts (``benchmarks/peers/*.py``) run inside that venv's interpreter and print one JSON
object as their last stdout line; :func:`run_in` returns it as a dict.

Typical use::

    from _peer_env import MLFLOW_REQUIREMENTS, ensure_venv, run_in, PEERS_DIR
    py = ensure_venv("mlflow", MLFLOW_REQUIREMENTS)
    res = run_in(py, PEERS_DIR / "mlflow_tracking.py", "log_metric", "2000", str(tmpdir))
    res["points_per_s"]
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import venv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
VENVS_DIR = BENCH_DIR / ".venvs"
DATA_DIR = BENCH_DIR / ".data"
PEERS_DIR = BENCH_DIR / "peers"

#: Pinned requirements of the MLflow peer (see shared PEERS.md: MLflow 3.17).
MLFLOW_REQUIREMENTS: tuple[str, ...] = ("mlflow==3.17.*",)

_STAMP = ".keel-peer-requirements"


def venv_python(name: str) -> Path:
    """Path of the python executable of the peer venv ``name`` (whether it exists or not)."""
    return VENVS_DIR / name / "bin" / "python"


def ensure_venv(name: str, requirements: Sequence[str], *, quiet: bool = True) -> Path:
    """Create (once) the venv ``benchmarks/.venvs/<name>`` with ``requirements`` pip-installed.

    Returns the venv's python executable. If the venv exists and was built from the same
    requirement list, nothing is done (fast). If the list changed or an earlier build did not
    finish, the venv is rebuilt from scratch. Concurrent callers are serialised by a file lock.
    pip output goes to stderr unless ``quiet``; a failed install raises ``CalledProcessError``.
    """
    VENVS_DIR.mkdir(parents=True, exist_ok=True)
    root = VENVS_DIR / name
    python = venv_python(name)
    wanted = "\n".join(requirements) + "\n"
    with open(VENVS_DIR / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stamp = root / _STAMP
        if python.exists() and stamp.exists() and stamp.read_text() == wanted:
            return python
        print(f"[peer-env] building venv {root} with {' '.join(requirements)}", file=sys.stderr)
        venv.EnvBuilder(clear=True, with_pip=True, symlinks=True).create(root)
        pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check"]
        if quiet:
            pip.append("-q")
        out = subprocess.DEVNULL if quiet else sys.stderr
        subprocess.run([*pip, *requirements], check=True, stdout=out, env=child_env(python))
        stamp.write_text(wanted)
        return python


def child_env(python: Path | None = None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for a peer process.

    Copies ``os.environ``, then: ``OPENBLAS_NUM_THREADS=1`` (BLAS threads make timings on two
    cores noisy); drops ``PYTHONPATH``/``PYTHONHOME``/``VIRTUAL_ENV`` so Keel's environment does
    not leak in; puts the venv's ``bin/`` first on ``PATH`` when ``python`` is given (peers exec
    their own console scripts, e.g. ``mlflow``, ``uvicorn``); turns off MLflow's usage
    telemetry (the machine has no network beyond package registries). ``extra`` wins over all.
    """
    env = dict(os.environ)
    for var in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"):
        env.pop(var, None)
    env["OPENBLAS_NUM_THREADS"] = "1"
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    env["DO_NOT_TRACK"] = "true"
    env["PYTHONUNBUFFERED"] = "1"
    if python is not None:
        # No resolve(): the venv's bin/python is a symlink to the base interpreter.
        env["PATH"] = f"{Path(python).parent}{os.pathsep}{env.get('PATH', '')}"
        env["VIRTUAL_ENV"] = str(Path(python).parent.parent)
    if extra:
        env.update(extra)
    return env


def run_in(
    python: Path | str,
    script_path: Path | str,
    *args: str,
    env: Mapping[str, str] | None = None,
    cwd: Path | str | None = None,
    timeout: float | None = None,
    echo_stderr: bool = False,
) -> dict[str, Any]:
    """Run ``python script_path *args`` and return the JSON object printed as its last stdout line.

    ``env`` holds extra variables laid over :func:`child_env` (which sets
    ``OPENBLAS_NUM_THREADS=1`` and the venv's ``bin/`` on ``PATH``). The child's stderr (MLflow
    logs INFO lines there) is captured and shown only if ``echo_stderr`` or on failure. Raises
    ``RuntimeError`` (with the stdout/stderr tails) if the script exits non-zero or its last
    non-empty stdout line is not a JSON object; ``subprocess.TimeoutExpired`` after ``timeout``.
    """
    cmd = [str(python), str(script_path), *map(str, args)]
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        env=child_env(Path(python), env),
        cwd=cwd,
        timeout=timeout,
    )
    if echo_stderr and proc.stderr:
        sys.stderr.write(proc.stderr)
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    what = " ".join(cmd)
    tails = (
        "\n--- stdout tail ---\n"
        + "\n".join(lines[-5:])
        + "\n--- stderr tail ---\n"
        + "\n".join(proc.stderr.splitlines()[-20:])
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{what} exited {proc.returncode}{tails}")
    if not lines:
        raise RuntimeError(f"{what} printed nothing on stdout{tails}")
    try:
        result = json.loads(lines[-1])
    except json.JSONDecodeError as exc:
        raise RuntimeError(f"{what}: last stdout line is not JSON{tails}") from exc
    if not isinstance(result, dict):
        raise RuntimeError(f"{what}: last stdout line is not a JSON object{tails}")
    return result


def package_version(python: Path | str, distribution: str) -> str:
    """Installed version of ``distribution`` in the interpreter ``python`` (e.g. ``"3.17.2"``)."""
    code = f"import importlib.metadata as m; print(m.version({distribution!r}))"
    out = subprocess.run(
        [str(python), "-c", code],
        check=True,
        capture_output=True,
        text=True,
        env=child_env(Path(python)),
    )
    return out.stdout.strip()


def ensure_mlflow() -> Path:
    """The MLflow peer's python executable (``benchmarks/.venvs/mlflow``), built if needed."""
    return ensure_venv("mlflow", MLFLOW_REQUIREMENTS)


if __name__ == "__main__":
    # `python benchmarks/_peer_env.py [mlflow]` builds the peer venvs ahead of time.
    names = sys.argv[1:] or ["mlflow"]
    known = {"mlflow": MLFLOW_REQUIREMENTS}
    for peer in names:
        py = ensure_venv(peer, known[peer], quiet=False)
        print(f"{peer}: {py} ({package_version(py, peer)})")
