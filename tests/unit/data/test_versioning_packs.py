"""Dataset versions over packed objects, and the KEEL_SYNC durability setting end to end."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import keel
from keel.context import get_context
from keel.errors import IntegrityError
from keel.stores.artifacts import LocalArtifactStore
from keel.stores.artifacts._packs import decode_index


def _tree(root: Path, count: int, size: int = 4096) -> dict[str, bytes]:
    files = {f"d{i % 5}/f{i:03}.bin": os.urandom(size) for i in range(count)}
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


@pytest.mark.parametrize("sync", ["normal", "full"])
def test_add_packs_small_files_and_get_restores_them(
    keel_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sync: str
) -> None:
    monkeypatch.setenv("KEEL_SYNC", sync)
    keel.context.reset_context()
    files = _tree(tmp_path / "data", 40)
    result = keel.data.service().add_detailed(tmp_path / "data", "small")
    assert result.created
    assert result.new_objects == 40
    packs = keel_home / "artifacts" / "packs"
    assert len(list(packs.glob("*.idx"))) == 1
    loose = [p for p in (keel_home / "artifacts" / "objects").rglob("*") if p.is_file()]
    assert [p.parent.name + p.name for p in loose] == [result.version.digest]  # the manifest
    out = keel.data.get("small@v1", tmp_path / "out")
    assert out == tmp_path / "out"
    for rel, data in files.items():
        assert (out / rel).read_bytes() == data
    assert not list(out.rglob(".*tmp-*"))


def test_sync_full_reaches_the_artifact_store_and_sqlite(
    keel_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEEL_SYNC", "full")
    keel.context.reset_context()
    context = get_context()
    assert isinstance(context.artifacts, LocalArtifactStore)
    assert context.artifacts.sync == "full"
    with context.metadata.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL


def test_sync_normal_is_the_default(keel_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KEEL_SYNC", raising=False)
    keel.context.reset_context()
    context = get_context()
    assert isinstance(context.artifacts, LocalArtifactStore)
    assert context.artifacts.sync == "normal"
    with context.metadata.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL


def test_restore_of_a_tampered_pack_writes_no_file(keel_home: Path, tmp_path: Path) -> None:
    _tree(tmp_path / "data", 3, size=64)
    keel.data.add(tmp_path / "data", "small")
    packs = keel_home / "artifacts" / "packs"
    (index,) = packs.glob("*.idx")
    (pack,) = packs.glob("*.pack")
    entries = decode_index(index.read_bytes())
    pack.chmod(0o644)
    with pack.open("r+b") as stream:
        stream.seek(entries[0][1])
        stream.write(b"\x00" * entries[0][2])
    with pytest.raises(IntegrityError, match="corrupt"):
        keel.data.get("small@v1", tmp_path / "out")
    restored = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert len(restored) < 3  # the corrupt file never landed
    assert not [p for p in restored if p.name.startswith(".")]


def test_same_small_content_in_another_dataset_adds_no_object(
    keel_home: Path, tmp_path: Path
) -> None:
    _tree(tmp_path / "a", 10)
    keel.data.add(tmp_path / "a", "a")
    os.rename(tmp_path / "a", tmp_path / "b")
    again = keel.data.service().add_detailed(tmp_path / "b", "b")
    assert again.created
    assert again.new_objects == 0
    assert len(list((keel_home / "artifacts" / "packs").glob("*.idx"))) == 1
