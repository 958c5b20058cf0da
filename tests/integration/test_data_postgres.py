"""Dataset versioning on PostgreSQL: the same behaviour, and gapless numbers under load."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from keel.data import DataService
from keel.stores.artifacts import LocalArtifactStore
from keel.stores.metadata import MetadataStore
from keel.stores.metadata._datasets import DatasetCatalog

pytestmark = pytest.mark.postgres

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


def test_versions_tags_lineage_on_postgres(fresh_postgres_uri: str, tmp_path: Path) -> None:
    store = MetadataStore.open(fresh_postgres_uri)
    service = DataService(
        DatasetCatalog(store.engine), LocalArtifactStore(tmp_path / "a"), stat_cache=None
    )
    try:
        f = tmp_path / "f.csv"
        f.write_text("a\n1\n")
        v1 = service.add(f, "ds")
        assert service.add(f, "ds").id == v1.id
        f.write_text("a\n2\n")
        v2 = service.add(f, "ds")
        assert v2.version == 2
        service.tag("ds@v1", "prod")
        service.tag("ds@v2", "prod")
        assert service.get_version("ds@prod").id == v2.id
        assert [m.previous_version for m in service.tag_history("ds")] == [None, 1]
        exp = store.create_experiment("e")
        run = store.create_run(exp.id, "r")
        service.log_input(run.id, "ds@v2")
        assert [r.run_id for r in service.lineage("ds@v2").runs] == [run.id]
        assert service.diff("ds@v1", "ds@v2").modified
    finally:
        service.close()
        store.close()


def test_concurrent_processes_get_gapless_versions(fresh_postgres_uri: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env.update(
        KEEL_HOME=str(tmp_path / "home"),
        KEEL_STORE_URI=fresh_postgres_uri,
        KEEL_CAPTURE_ENVIRONMENT="false",
    )
    children = [
        subprocess.Popen(
            [sys.executable, "-c", ADD, str(tmp_path / "w"), f"p{n}", "3"],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    for child in children:
        _, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
    store = MetadataStore.open(fresh_postgres_uri)
    try:
        versions = DatasetCatalog(store.engine).list_versions("shared")
    finally:
        store.close()
    assert [v.version for v in versions] == list(range(1, 13))
