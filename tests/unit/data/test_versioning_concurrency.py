"""Version numbers under concurrent writers, and what a failed or killed ``add`` leaves."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from keel.data import DataService
from keel.errors import InvalidArgument, NotFound
from keel.stores.artifacts import LocalArtifactStore
from keel.stores.artifacts._packs import decode_index
from keel.stores.metadata import MetadataStore
from keel.stores.metadata._datasets import DatasetCatalog

ADD = """
import sys
from pathlib import Path
import keel
for i in range(int(sys.argv[3])):
    d = Path(sys.argv[1]) / f"{sys.argv[2]}-{i}"
    d.mkdir(parents=True)
    (d / "f").write_text(f"{sys.argv[2]}-{i}")
    keel.data.add(d, "shared")
"""


def concurrent_adds(env: dict[str, str], work: Path, processes: int, each: int) -> None:
    """Run ``processes`` writers adding ``each`` distinct versions of one dataset."""
    children = [
        subprocess.Popen(
            [sys.executable, "-c", ADD, str(work), f"p{n}", str(each)],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(processes)
    ]
    for child in children:
        _, err = child.communicate(timeout=120)
        assert child.returncode == 0, err


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env.update(KEEL_HOME=str(home), KEEL_CAPTURE_ENVIRONMENT="false", **extra)
    return env


def test_concurrent_processes_get_gapless_versions(tmp_path: Path) -> None:
    home = tmp_path / "home"
    concurrent_adds(_env(home), tmp_path / "work", processes=4, each=3)
    store = MetadataStore.open(f"sqlite:///{home / 'keel.db'}")
    try:
        versions = DatasetCatalog(store.engine).list_versions("shared")
    finally:
        store.close()
    assert [v.version for v in versions] == list(range(1, 13))
    assert len({v.digest for v in versions}) == 12


def _service(tmp_path: Path, **kwargs: Any) -> tuple[DataService, MetadataStore]:
    store = MetadataStore.open(f"sqlite:///{tmp_path / 'keel.db'}")
    artifacts = LocalArtifactStore(tmp_path / "artifacts")
    service = DataService(
        DatasetCatalog(store.engine), artifacts, stat_cache=tmp_path / "sc.db", **kwargs
    )
    return service, store


def _visible_objects(root: Path) -> list[str]:
    """Digests of committed objects: loose files and the entries of pack indexes."""
    loose = [
        p.parent.name + p.name
        for p in (root / "artifacts" / "objects").rglob("*")
        if p.is_file() and not p.name.startswith(".tmp-")
    ]
    packed = [
        raw.hex()
        for index in (root / "artifacts" / "packs").glob("*.idx")
        for raw, _, _ in decode_index(index.read_bytes())
    ]
    return loose + packed


def test_failure_after_hashing_leaves_no_version_and_no_object(tmp_path: Path) -> None:
    def broken_profiler(path: Path) -> dict[str, Any] | None:
        raise InvalidArgument(f"{path} is not valid CSV")

    service, store = _service(tmp_path, profile=broken_profiler)
    data = tmp_path / "d"
    data.mkdir()
    for i in range(50):
        (data / f"part{i}.bin").write_bytes(os.urandom(64))
    (data / "table.csv").write_text("a\n1\n")
    try:
        with pytest.raises(InvalidArgument, match=r"table\.csv is not valid CSV"):
            service.add(data, "ds")
        assert _visible_objects(tmp_path) == []
        assert list((tmp_path / "artifacts").rglob("*.pack")) == []
        assert list((tmp_path / "artifacts").rglob(".tmp-*")) == []
        with pytest.raises(NotFound):
            service.list_versions("ds")
    finally:
        service.close()
        store.close()


# The child pauses at a chosen point of ``add`` (it writes a marker file, then sleeps)
# so the parent kills it exactly there, however loaded the machine is.
KILLED = """
import os, sys, time
from pathlib import Path
import keel
from keel.data import _service
from keel.stores.artifacts import _bulk

marker, point = Path(sys.argv[2]), sys.argv[3]

def pause():
    marker.write_text(str(os.getpid()))
    time.sleep(600)

if point == "staging":  # some objects are staged, none is published
    large = _bulk._Stager.large
    seen = []
    def pausing_large(self, source):
        result = large(self, source)
        seen.append(result)
        if len(seen) == 3:
            pause()
        return result
    _bulk._Stager.large = pausing_large
elif point == "publishing":  # half of the staged objects are renamed into place
    replace = _bulk.os.replace
    done = []
    def pausing_replace(src, dst):
        replace(src, dst)
        done.append(dst)
        if len(done) == 4:
            pause()
    _bulk.os.replace = pausing_replace
elif point == "recording":  # every object is stored, the version is not recorded
    commit_version = _service.DatasetCatalog.commit_version
    def pausing_commit(self, *args, **kwargs):
        pause()
        return commit_version(self, *args, **kwargs)
    _service.DatasetCatalog.commit_version = pausing_commit
keel.data.add(sys.argv[1], "big")
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
@pytest.mark.parametrize("point", ["staging", "publishing", "recording"])
def test_killed_add_leaves_no_version(tmp_path: Path, point: str) -> None:
    data = tmp_path / "d"
    data.mkdir()
    for i in range(8):
        (data / f"f{i}").write_bytes(os.urandom(8 * 1024 * 1024))
    home = tmp_path / "home"
    marker = tmp_path / "paused"
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED, str(data), str(marker), point], env=_env(home)
    )
    try:
        deadline = time.monotonic() + 120
        while not marker.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert marker.exists(), f"the child never reached {point!r} (exit {child.poll()})"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    service, store = _service(home)
    try:
        with pytest.raises(NotFound, match="no dataset 'big'"):
            service.list_versions("big")
        # Nothing visible but complete objects: every object matches its digest.
        visible = _visible_objects(home)
        for digest in visible:
            assert service.artifacts.get_bytes(digest)
        if point == "staging":
            assert visible == []
        # and the same add now succeeds
        assert service.add(data, "big").version == 1
    finally:
        service.close()
        store.close()
