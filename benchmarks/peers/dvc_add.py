"""DVC peer for the data-versioning benchmark: time ``dvc add`` in a fresh repository.

    python dvc_add.py REPO DATA_PATH [--readd]

Prints one JSON line: {"seconds": wall seconds of the timed ``dvc add``}. Without
``--readd`` the repository is recreated (git init, dvc init, analytics off) and the
first add is timed (the copy is flushed with ``sync`` first, as the benchmark does for
Keel's copy); with ``--readd`` an unchanged re-add in the existing repo is timed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path


def main() -> None:
    repo, data = Path(sys.argv[1]), Path(sys.argv[2])
    dvc = [str(Path(sys.executable).with_name("dvc"))]
    if "--readd" not in sys.argv:
        shutil.rmtree(repo, ignore_errors=True)
        repo.mkdir(parents=True)
        subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
        subprocess.run([*dvc, "init", "-q"], cwd=repo, check=True)
        subprocess.run([*dvc, "config", "core.analytics", "false"], cwd=repo, check=True)
        target = repo / data.name
        if data.is_dir():
            shutil.copytree(data, target)
        else:
            shutil.copy2(data, target)
        os.sync()  # the copy's dirty pages are not flushed during the timed add
    started = time.perf_counter()
    subprocess.run([*dvc, "add", "-q", data.name], cwd=repo, check=True)
    print(json.dumps({"seconds": time.perf_counter() - started}))


if __name__ == "__main__":
    main()
