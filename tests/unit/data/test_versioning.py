"""Dataset versioning on the embedded store: add, re-add, restore, load, tags, lineage."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

import keel
from keel.data import DataService
from keel.errors import Conflict, InvalidArgument, NotFound
from keel.stores.artifacts._packs import decode_index


def _tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, content in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    return root


def _old(root: Path) -> None:
    """Backdate mtimes so the stat cache does not treat the files as racily clean."""
    for path in [root, *root.rglob("*")]:
        os.utime(path, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))


def _objects(home: Path) -> set[str]:
    """Digests of every visible object: loose files and entries of pack indexes."""
    loose = {
        p.parent.name + p.name
        for p in (home / "artifacts" / "objects").rglob("*")
        if p.is_file() and not p.name.startswith(".tmp-")
    }
    packed = {
        raw.hex()
        for index in (home / "artifacts" / "packs").glob("*.idx")
        for raw, _, _ in decode_index(index.read_bytes())
    }
    return loose | packed


def test_add_directory_then_unchanged_readd_keeps_the_version(
    data: DataService, tmp_path: Path
) -> None:
    root = _tree(tmp_path / "d", {"a.txt": b"a", "sub/b.bin": b"\x00" * 10, "empty": b""})
    _old(root)
    first = data.add_detailed(root, "raw", message="first")
    assert first.created
    assert first.version.ref == "raw@v1"
    assert first.version.file_count == 3
    assert first.version.size == 11
    assert first.version.kind == "directory"
    assert first.version.message == "first"
    again = data.add_detailed(root, "raw")
    assert not again.created
    assert again.hashed == 0
    assert again.version.id == first.version.id
    assert [e.path for e in data.manifest("raw")] == ["a.txt", "empty", "sub/b.bin"]


def test_version_is_the_manifest_digest_and_objects_are_shared(
    data: DataService, keel_home: Path, tmp_path: Path
) -> None:
    a = data.add(_tree(tmp_path / "a", {"x": b"same", "y": b"same"}), "a")
    b = data.add(_tree(tmp_path / "b", {"x": b"same", "y": b"same"}), "b")
    assert a.digest == b.digest
    assert data.artifacts.exists(a.digest)
    # one object for the content, one for the manifest
    assert len(_objects(keel_home)) == 2


def test_changed_file_makes_a_new_version_and_diff_shows_it(
    data: DataService, tmp_path: Path
) -> None:
    root = _tree(tmp_path / "d", {"keep": b"1", "edit": b"old", "drop": b"x"})
    _old(root)
    data.add(root, "ds")
    (root / "edit").write_bytes(b"new content")
    (root / "drop").unlink()
    (root / "new").write_bytes(b"n")
    result = data.add_detailed(root, "ds")
    assert result.created
    assert result.version.version == 2
    assert result.hashed == 2
    diff = data.diff("ds@v1", "ds@v2")
    assert [e.path for e in diff.added] == ["new"]
    assert [e.path for e in diff.removed] == ["drop"]
    assert [old.path for old, _ in diff.modified] == ["edit"]
    assert diff.unchanged == 1
    assert [v.version for v in data.list_versions("ds")] == [1, 2]


def test_stat_cache_notices_a_same_size_edit(data: DataService, tmp_path: Path) -> None:
    root = _tree(tmp_path / "d", {"f": b"aaaa"})
    _old(root)
    data.add(root, "ds")
    (root / "f").write_bytes(b"bbbb")
    assert data.add(root, "ds").version == 2


def test_single_file_and_zero_byte_file(data: DataService, tmp_path: Path) -> None:
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    version = data.add(empty, "empty")
    assert version.kind == "file"
    assert version.size == 0
    assert version.file_count == 1
    out = data.get("empty@v1", tmp_path / "out")
    assert out == tmp_path / "out" / "empty.bin"
    assert out.read_bytes() == b""


def test_get_restores_and_never_overwrites_without_force(data: DataService, tmp_path: Path) -> None:
    root = _tree(tmp_path / "d", {"a": b"A", "s/b": b"B" * 2_000_000})
    data.add(root, "ds")
    dest = tmp_path / "out"
    assert data.get("ds", dest) == dest
    assert (dest / "a").read_bytes() == b"A"
    assert (dest / "s/b").read_bytes() == b"B" * 2_000_000
    (dest / "a").write_bytes(b"user edit")
    with pytest.raises(Conflict, match="--force"):
        data.get("ds", dest)
    assert (dest / "a").read_bytes() == b"user edit"
    data.get("ds", dest, force=True)
    assert (dest / "a").read_bytes() == b"A"
    # the restored file is the user's own copy: editing it leaves the store intact
    (dest / "s/b").write_bytes(b"changed")
    assert data.load is not None
    data.get("ds", tmp_path / "again")
    assert (tmp_path / "again" / "s/b").read_bytes() == b"B" * 2_000_000


def test_tags_move_and_keep_history(data: DataService, tmp_path: Path) -> None:
    f = tmp_path / "f.txt"
    f.write_text("1")
    data.add(f, "t")
    f.write_text("22")
    data.add(f, "t")
    assert data.tag("t@v1", "prod").tags == ("prod",)
    assert data.tag("t@v2", "prod").version == 2
    assert data.get_version("t@prod").version == 2
    assert data.get_version("t@v1").tags == ()
    moves = [(m.tag, m.version, m.previous_version) for m in data.tag_history("t")]
    assert moves == [("prod", 1, None), ("prod", 2, 1)]


def test_load_parquet_csv_jsonl_and_parquet_parts(data: DataService, tmp_path: Path) -> None:
    frame = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    frame.to_csv(tmp_path / "f.csv", index=False)
    frame.to_json(tmp_path / "f.jsonl", orient="records", lines=True)
    parts = tmp_path / "parts"
    parts.mkdir()
    frame.iloc[:2].to_parquet(parts / "part-0.parquet", index=False)
    frame.iloc[2:].to_parquet(parts / "part-1.parquet", index=False)
    data.add(tmp_path / "f.csv", "csv")
    data.add(tmp_path / "f.jsonl", "jsonl")
    data.add(parts, "parts")
    for name in ("csv", "jsonl", "parts"):
        pd.testing.assert_frame_equal(data.load(name), frame, check_dtype=False)


def test_load_refuses_non_tabular(data: DataService, tmp_path: Path) -> None:
    (tmp_path / "x.bin").write_bytes(b"\x01")
    data.add(tmp_path / "x.bin", "bin")
    with pytest.raises(InvalidArgument, match="no tabular file"):
        data.load("bin")


def test_add_frame_records_parents_and_lineage_lists_children_and_runs(
    data: DataService, tmp_path: Path
) -> None:
    (tmp_path / "src.csv").write_text("a\n1\n2\n")
    parent = data.add(tmp_path / "src.csv", "src")
    child = data.add_frame(pd.DataFrame({"a": [1]}), "train", parents=[parent])
    assert child.parents == ("src@v1",)
    with keel.start_run() as run:
        keel.log_input("src@v1")
        keel.log_input(parent)  # idempotent
    lineage = data.lineage("src@v1")
    assert [v.ref for v in lineage.children] == ["train@v1"]
    assert [r.run_id for r in lineage.runs] == [run.id]
    assert [v.ref for v in data.lineage("train").parents] == ["src@v1"]
    assert [v.ref for v in data.run_inputs(run.id)] == ["src@v1"]
    pd.testing.assert_frame_equal(keel.data.load("train"), pd.DataFrame({"a": [1]}))


def test_log_input_needs_an_active_run(data: DataService, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    data.add(tmp_path / "f", "f")
    with pytest.raises(InvalidArgument, match="no active run"):
        keel.log_input("f")


# bad input ----------------------------------------------------------------------------


def test_missing_path(data: DataService, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match=r"no file or directory .*nope"):
        data.add(tmp_path / "nope", "x")


def test_empty_directory_is_refused(data: DataService, tmp_path: Path) -> None:
    (tmp_path / "e" / "sub").mkdir(parents=True)
    with pytest.raises(InvalidArgument, match="empty directory"):
        data.add(tmp_path / "e", "x")


@pytest.mark.parametrize("name", ["a/b", "..", "a..b", "../x", "", "-x"])
def test_bad_names(data: DataService, tmp_path: Path, name: str) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(InvalidArgument, match="invalid dataset name"):
        data.add(tmp_path / "f", name)


def test_symlink_loop_is_refused(data: DataService, tmp_path: Path) -> None:
    root = _tree(tmp_path / "d", {"ok": b"1"})
    (root / "a").symlink_to(root / "b")
    (root / "b").symlink_to(root / "a")
    with pytest.raises(InvalidArgument, match="symbolic link loop"):
        data.add(root, "x")


def test_directory_link_to_an_ancestor_is_a_loop(data: DataService, tmp_path: Path) -> None:
    root = _tree(tmp_path / "d", {"sub/ok": b"1"})
    (root / "sub" / "up").symlink_to(root)
    with pytest.raises(InvalidArgument, match="loop"):
        data.add(root, "x")


def test_symlink_outside_is_refused_inside_is_followed(data: DataService, tmp_path: Path) -> None:
    root = _tree(tmp_path / "d", {"real": b"content"})
    (root / "alias").symlink_to(root / "real")
    version = data.add(root, "links")
    assert [(e.path, e.size) for e in data.manifest(version)] == [("alias", 7), ("real", 7)]
    (tmp_path / "secret").write_text("s")
    (root / "out").symlink_to(tmp_path / "secret")
    with pytest.raises(InvalidArgument, match="outside the directory"):
        data.add(root, "links")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file_leaves_no_version_and_no_object(
    data: DataService, keel_home: Path, tmp_path: Path
) -> None:
    files = {f"f{i:03}": os.urandom(100) for i in range(200)}
    root = _tree(tmp_path / "d", files)
    (root / "f150").chmod(0)
    before = _objects(keel_home) if (keel_home / "artifacts").exists() else set()
    try:
        with pytest.raises(InvalidArgument, match=r"cannot read .*f150.*chmod"):
            data.add(root, "x")
    finally:
        (root / "f150").chmod(0o644)
    assert _objects(keel_home) == before
    assert not list((keel_home / "artifacts").rglob(".tmp-*"))
    with pytest.raises(NotFound, match="no dataset 'x'"):
        data.list_versions("x")


def test_unknown_version_and_tag(data: DataService, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    data.add(tmp_path / "f", "ds")
    with pytest.raises(NotFound, match=r"no version v9.*keel data show ds"):
        data.get_version("ds@v9")
    with pytest.raises(NotFound, match=r"no tag .prod..*keel data tag"):
        data.get_version("ds@prod")
    with pytest.raises(NotFound, match=r"no dataset .other..*keel data add"):
        data.get_version("other")
    with pytest.raises(InvalidArgument, match="invalid dataset tag"):
        data.tag("ds@v1", "v2")
