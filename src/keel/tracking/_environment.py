"""What a run ran on: code version (git), Python, platform, packages, command, user.

The environment (interpreter, platform, installed packages) cannot change under a
running interpreter in a way that matters to its imports, so it is captured once per
process and stored once, keyed by its digest. The git state can change between two
runs of one process (a notebook), so it is re-read whenever HEAD, the index or the
reflog changes, and otherwise once its reading is two seconds old
(docs/adr/0004-run-provenance-capture.md).
"""

from __future__ import annotations

import functools
import getpass
import hashlib
import importlib.metadata
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson

_env_lock = threading.Lock()
_environment: tuple[str, dict[str, Any]] | None = None
_git_cache: dict[str, tuple[tuple[Any, ...], float, dict[str, Any]]] = {}
GIT_REFRESH_SECONDS = 2.0


def environment() -> tuple[str, dict[str, Any]]:
    """(digest, body) of this interpreter's environment; computed once per process."""
    global _environment
    with _env_lock:
        if _environment is None:
            packages = sorted(
                {
                    f"{dist.metadata['Name']}=={dist.version}"
                    for dist in importlib.metadata.distributions()
                    if dist.metadata["Name"]
                }
            )
            body: dict[str, Any] = {
                "python": platform.python_version(),
                "implementation": platform.python_implementation(),
                "platform": platform.platform(),
                "machine": platform.machine(),
                "packages": packages,
            }
            digest = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()
            _environment = (digest, body)
        return _environment


@functools.cache
def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


def process_source() -> dict[str, Any]:
    """The command line, user and host of this process, plus its git state."""
    source: dict[str, Any] = {
        "command": [sys.executable, *sys.argv],
        "user": _user(),
        "host": platform.node(),
        "pid": os.getpid(),
    }
    git = code_version(Path(os.getcwd()))
    if git:
        source["git"] = git
    return source


@functools.lru_cache(maxsize=64)
def _git_root(start: Path) -> Path | None:
    for candidate in (start, *start.parents):
        if (candidate / ".git").exists():
            return candidate
    return None


def _fingerprint(root: Path) -> tuple[Any, ...]:
    # HEAD moves on checkout, the index on add, the reflog on every commit.
    stamps: list[Any] = []
    for name in ("HEAD", "index", "logs/HEAD"):
        try:
            st = os.stat(f"{root}/.git/{name}")
            stamps.append((st.st_mtime_ns, st.st_size))
        except OSError:
            stamps.append(None)
    return tuple(stamps)


def code_version(cwd: Path) -> dict[str, Any]:
    """git commit, branch, dirty flag and digest of the uncommitted diff; {} outside git."""
    root = _git_root(cwd)
    git = _git_executable()
    if root is None or git is None:
        return {}
    key = str(root)
    fingerprint = _fingerprint(root)
    cached = _git_cache.get(key)
    now = time.monotonic()
    if cached and cached[0] == fingerprint and now - cached[1] < GIT_REFRESH_SECONDS:
        return cached[2]
    info = _read_git(git, root)
    _git_cache[key] = (fingerprint, now, info)
    return info


@functools.cache
def _git_executable() -> str | None:
    return shutil.which("git")


def _run_git(git: str, root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run([git, *args], cwd=root, capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.decode("utf-8", errors="replace")


def _read_git(git: str, root: Path) -> dict[str, Any]:
    commit = _run_git(git, root, "rev-parse", "HEAD")
    if commit is None:
        return {"repository": str(root), "commit": None}
    branch = _run_git(git, root, "rev-parse", "--abbrev-ref", "HEAD")
    diff = _run_git(git, root, "diff", "HEAD", "--no-color", "--no-ext-diff") or ""
    untracked = _run_git(git, root, "ls-files", "--others", "--exclude-standard") or ""
    dirty = bool(diff.strip() or untracked.strip())
    hasher = hashlib.sha256(diff.encode())
    hasher.update(untracked.encode())
    return {
        "repository": str(root),
        "commit": commit.strip(),
        "branch": (branch or "").strip() or None,
        "dirty": dirty,
        "diff_digest": hasher.hexdigest() if dirty else None,
    }
