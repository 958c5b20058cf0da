"""The stat cache keeps one record per added root and reuses only unchanged files."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from keel.data import DataService
from keel.data._manifest import scan
from keel.data._statcache import StatCache, now_ns

OLD_NS = 1_600_000_000_000_000_000


def _tree(root: Path, files: dict[str, bytes]) -> Path:
    """Write ``files`` under ``root``, all with old timestamps."""
    for rel, content in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(content)
    _backdate(root)
    return root


def _backdate(root: Path, ns: int = OLD_NS) -> None:
    """Old mtimes: the stat cache does not treat the files as racily clean."""
    for path in [root, *root.rglob("*")]:
        os.utime(path, ns=(ns, ns))


def test_unchanged_readd_hashes_nothing(data: DataService, tmp_path: Path) -> None:
    root = _tree(tmp_path / "d", {"a": b"1", "s/b": b"22", "s/c": b"333"})
    first = data.add_detailed(root, "ds")
    assert first.hashed == 3
    again = data.add_detailed(root, "ds")
    assert (again.created, again.hashed, again.version.id) == (False, 0, first.version.id)


def test_a_touched_file_is_hashed_again_and_keeps_the_version(
    data: DataService, tmp_path: Path
) -> None:
    root = _tree(tmp_path / "d", {"a": b"1", "b": b"2"})
    first = data.add(root, "ds")
    os.utime(root / "a", ns=(OLD_NS + 10**9, OLD_NS + 10**9))  # same bytes, new mtime
    again = data.add_detailed(root, "ds")
    assert (again.hashed, again.created, again.version.id) == (1, False, first.id)
    assert data.add_detailed(root, "ds").hashed == 0  # the new stat was recorded


def test_same_size_edit_with_the_old_mtime_is_still_noticed(
    data: DataService, tmp_path: Path
) -> None:
    root = _tree(tmp_path / "d", {"a": b"aaaa", "b": b"b"})
    data.add(root, "ds")
    (root / "a").write_bytes(b"zzzz")  # same size; ctime (and usually inode data) moves
    os.utime(root / "a", ns=(OLD_NS, OLD_NS))  # the mtime goes back to the recorded one
    result = data.add_detailed(root, "ds")
    assert result.created
    assert result.hashed == 1
    assert {e.path: e.size for e in data.manifest(result.version)} == {"a": 4, "b": 1}


def test_size_change_added_and_removed_files(data: DataService, tmp_path: Path) -> None:
    root = _tree(tmp_path / "d", {"keep": b"k", "grow": b"g", "drop": b"d"})
    data.add(root, "ds")
    (root / "grow").write_bytes(b"grown")
    (root / "drop").unlink()
    (root / "new").write_bytes(b"n")
    for name in ("grow", "new"):
        os.utime(root / name, ns=(OLD_NS, OLD_NS))
    result = data.add_detailed(root, "ds")
    assert result.created
    assert result.hashed == 2  # grow and new; keep comes from the cache
    assert [e.path for e in data.manifest(result.version)] == ["grow", "keep", "new"]
    (root / "new").unlink()  # only a removal: every remaining file is cached
    removed = data.add_detailed(root, "ds")
    assert (removed.created, removed.hashed) == (True, 0)
    assert [e.path for e in data.manifest(removed.version)] == ["grow", "keep"]


def test_whole_tree_hit_under_another_name_still_versions_it(
    data: DataService, tmp_path: Path
) -> None:
    root = _tree(tmp_path / "d", {"a": b"1", "b": b"2"})
    first = data.add(root, "one")
    other = data.add_detailed(root, "two")
    assert other.created
    assert other.hashed == 0
    assert other.version.digest == first.digest


def test_racily_clean_files_are_not_cached(tmp_path: Path) -> None:
    root = tmp_path / "d"
    root.mkdir()
    (root / "old").write_bytes(b"o")
    os.utime(root / "old", ns=(OLD_NS, OLD_NS))
    (root / "new").write_bytes(b"n")  # modified just now
    kind, files = scan(root)
    cache = StatCache(tmp_path / "sc.db")
    digests = ["1" * 64, "2" * 64]
    cache.store(root, kind, files, digests, "m" * 64, now_ns())
    hit = cache.lookup(root, kind, files)
    by_path = dict(zip([f.relpath for f in files], hit.digests, strict=True))
    assert by_path == {"new": None, "old": digests[[f.relpath for f in files].index("old")]}
    assert hit.manifest is None  # not every file is known, so no whole-tree answer


def test_whole_tree_answer_only_for_the_same_root_and_kind(tmp_path: Path) -> None:
    root = _tree(tmp_path / "d", {"f": b"x"})
    kind, files = scan(root)
    cache = StatCache(tmp_path / "sc.db")
    cache.store(root, kind, files, ["a" * 64], "m" * 64, now_ns())
    assert cache.lookup(root, kind, files) == (["a" * 64], "m" * 64)
    assert cache.lookup(root, "file", files) == ([None], None)
    assert cache.lookup(tmp_path / "elsewhere", kind, files) == ([None], None)


def test_a_damaged_record_means_hashing_again(tmp_path: Path) -> None:
    root = _tree(tmp_path / "d", {"f": b"x", "g": b"y"})
    kind, files = scan(root)
    cache = StatCache(tmp_path / "sc.db")
    cache.store(root, kind, files, ["a" * 64, "b" * 64], "m" * 64, now_ns())
    cache.close()
    with sqlite3.connect(tmp_path / "sc.db") as conn:
        conn.execute("UPDATE roots SET scan = ?, digests = ?", (b"[[1", b"not json"))
    conn.close()
    reopened = StatCache(tmp_path / "sc.db")
    assert reopened.lookup(root, kind, files) == ([None, None], None)
    reopened.close()


def test_without_a_cache_file_every_file_is_hashed(tmp_path: Path) -> None:
    root = _tree(tmp_path / "d", {"f": b"x"})
    kind, files = scan(root)
    cache = StatCache(None)
    cache.store(root, kind, files, ["a" * 64], "m" * 64, now_ns())
    assert cache.lookup(root, kind, files) == ([None], None)
