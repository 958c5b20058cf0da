"""Batched staging into the local store: pack files for small objects, large-file copies, sync."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import blake3
import pytest

from keel.errors import Conflict, IntegrityError, InvalidArgument
from keel.stores.artifacts import (
    LocalArtifactStore,
    SourceFile,
    open_artifact_store,
)
from keel.stores.artifacts._bulk import copy_and_hash
from keel.stores.artifacts._packs import (
    PACK_THRESHOLD,
    PackWriter,
    decode_index,
    encode_index,
)


def _digest(data: bytes) -> str:
    return blake3.blake3(data).hexdigest()


def _files(directory: Path, contents: dict[str, bytes]) -> list[SourceFile]:
    directory.mkdir(parents=True, exist_ok=True)
    sources = []
    for name, data in contents.items():
        path = directory / name
        path.write_bytes(data)
        sources.append(SourceFile(path, len(data)))
    return sources


def _loose(root: Path) -> list[Path]:
    return [
        p for p in (root / "objects").rglob("*") if p.is_file() and not p.name.startswith(".tmp-")
    ]


def _packs(root: Path, suffix: str) -> list[Path]:
    return sorted((root / "packs").glob(f"*{suffix}"))


def _flip_byte(path: Path, offset: int) -> None:
    path.chmod(0o644)
    with path.open("r+b") as stream:
        stream.seek(offset)
        byte = stream.read(1)
        stream.seek(offset)
        stream.write(bytes([byte[0] ^ 0xFF]))


@pytest.fixture(params=["normal", "full"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> LocalArtifactStore:
    return LocalArtifactStore(tmp_path / "store", sync=request.param)


def test_small_files_go_into_one_pack_and_read_back_verified(
    store: LocalArtifactStore, tmp_path: Path
) -> None:
    contents = {f"f{i}": os.urandom(100 + i) for i in range(50)}
    contents["empty"] = b""
    staged = store.stage_files(_files(tmp_path / "src", contents))
    assert staged.new_objects == 51
    assert _packs(store.root, ".pack") == []  # nothing visible before commit
    staged.commit()
    assert _loose(store.root) == []
    assert len(_packs(store.root, ".pack")) == 1
    assert len(_packs(store.root, ".idx")) == 1
    for ref, data in zip(staged.refs, contents.values(), strict=True):
        assert ref.digest == _digest(data)
        assert store.exists(ref.digest)
        assert store.size(ref.digest) == len(data)
        assert store.get_bytes(ref.digest) == data
        with store.open(ref.digest) as stream:
            assert stream.read() == data
        assert store.local_path(ref.digest) is None  # packed: read it, do not copy a path
    target = tmp_path / "out" / "f7"
    store.copy_to(staged.refs[7].digest, target)
    assert target.read_bytes() == contents["f7"]
    assert not list((store.root / "packs").glob(".tmp-*"))


def test_a_fresh_store_instance_finds_packed_objects(tmp_path: Path) -> None:
    first = LocalArtifactStore(tmp_path / "store")
    second = LocalArtifactStore(tmp_path / "store")
    assert not second.exists(_digest(b"later"))  # indexes loaded (none yet)
    with first.stage_files(_files(tmp_path / "src", {"a": b"later"})):
        pass
    assert second.get_bytes(_digest(b"later")) == b"later"  # a miss looks for new packs


def test_medium_and_large_files_stay_loose(store: LocalArtifactStore, tmp_path: Path) -> None:
    medium = os.urandom(PACK_THRESHOLD)
    large = os.urandom(2 * 1024 * 1024 + 3)
    with store.stage_files(_files(tmp_path / "src", {"m": medium, "l": large})) as staged:
        pass
    assert [r.digest for r in staged.refs] == [_digest(medium), _digest(large)]
    assert sorted(p.parent.name + p.name for p in _loose(store.root)) == sorted(
        [_digest(medium), _digest(large)]
    )
    assert store.get_bytes(_digest(large)) == large
    assert (store.local_path(_digest(large)) or Path()).is_file()


def test_a_file_larger_than_its_scanned_size_is_stored_whole(
    store: LocalArtifactStore, tmp_path: Path
) -> None:
    data = os.urandom(1024 * 1024 + 5)
    (tmp_path / "grew").write_bytes(data)
    with store.stage_files([SourceFile(tmp_path / "grew", 10)]) as staged:
        pass
    assert staged.refs[0].digest == _digest(data)
    assert staged.refs[0].size == len(data)
    assert store.get_bytes(_digest(data)) == data


def test_flipped_byte_in_a_pack_raises_integrity_error(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    contents = {"a": b"first object", "b": b"second object"}
    with store.stage_files(_files(tmp_path / "src", contents)) as staged:
        pass
    (pack,) = _packs(store.root, ".pack")
    entries = {
        raw.hex(): offset
        for raw, offset, _ in decode_index(_packs(store.root, ".idx")[0].read_bytes())
    }
    bad, good = staged.refs[1].digest, staged.refs[0].digest
    _flip_byte(pack, entries[bad])
    with pytest.raises(IntegrityError, match=r"in pack .*\.pack is corrupt"):
        store.get_bytes(bad)
    with pytest.raises(IntegrityError), store.open(bad) as stream:
        stream.read()
    target = tmp_path / "restored"
    with pytest.raises(IntegrityError):
        store.copy_to(bad, target)
    assert not target.exists()
    assert store.get_bytes(good) == b"first object"  # the rest of the pack is fine


def test_a_pack_without_its_index_is_invisible_and_cleaned_up(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    staged = store.stage_files(_files(tmp_path / "src", {"a": b"crash between renames"}))
    (pack,) = staged._packs

    def crash() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pack.publish(staged._packs_directory, between=crash)  # the .pack renamed, no .idx
    assert len(_packs(store.root, ".pack")) == 1
    assert _packs(store.root, ".idx") == []
    assert not LocalArtifactStore(tmp_path / "store").exists(_digest(b"crash between renames"))
    assert store.cleanup_temporary(older_than_seconds=3600) == 0  # young: may be in flight
    assert store.cleanup_temporary(older_than_seconds=0) == 2  # the orphan .pack, the .idx temp
    assert list((store.root / "packs").iterdir()) == []


def test_discarded_batch_leaves_nothing(store: LocalArtifactStore, tmp_path: Path) -> None:
    big = os.urandom(1024 * 1024 + 1)
    staged = store.stage_files(_files(tmp_path / "src", {"a": b"x", "b": big}))
    staged.discard()
    assert _loose(store.root) == []
    assert [p for p in store.root.rglob("*") if p.is_file()] == []


def test_failed_staging_removes_its_temporary_files(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    sources = _files(tmp_path / "src", {"a": b"x", "b": os.urandom(1024 * 1024 + 1)})
    sources.append(SourceFile(tmp_path / "src" / "missing", 3))
    with pytest.raises(Exception, match="disappeared"):
        store.stage_files(sources)
    assert [p for p in store.root.rglob("*") if p.is_file()] == []


def test_dedupe_across_loose_packed_and_within_a_batch(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    loose = store.put_bytes(b"stored loose first")
    sources = _files(tmp_path / "src", {"a": b"stored loose first", "b": b"twice", "c": b"twice"})
    with store.stage_files(sources) as staged:
        pass
    assert staged.new_objects == 1  # only "twice", once
    (index,) = _packs(store.root, ".idx")
    assert [raw.hex() for raw, _, _ in decode_index(index.read_bytes())] == [_digest(b"twice")]
    assert (
        store.local_path(loose.digest)
        == store.root / "objects" / loose.digest[:2] / loose.digest[2:]
    )
    # packed content is not written again, neither by put_bytes nor by another batch
    store.put_bytes(b"twice")
    assert len(_loose(store.root)) == 1
    with store.stage_files(_files(tmp_path / "again", {"b": b"twice"})) as again:
        pass
    assert again.new_objects == 0
    assert len(_packs(store.root, ".idx")) == 1
    # a known digest that is already stored is not even read
    known = SourceFile(tmp_path / "does-not-exist", 5, _digest(b"twice"))
    with store.stage_files([known]) as known_batch:
        pass
    assert known_batch.refs[0].digest == _digest(b"twice")


def test_deleting_a_packed_object_is_refused_explicitly(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    with store.stage_files(_files(tmp_path / "src", {"a": b"packed"})):
        pass
    with pytest.raises(Conflict, match=r"packs are immutable.*garbage collection"):
        store.delete(_digest(b"packed"))
    assert store.get_bytes(_digest(b"packed")) == b"packed"
    loose = store.put_bytes(b"loose")
    assert store.delete(loose.digest) is True
    assert store.delete(loose.digest) is False


def test_packs_roll_over_at_their_entry_limit(tmp_path: Path) -> None:
    created: list[str] = []
    writer = PackWriter(os.fspath(tmp_path), created, max_entries=3, max_bytes=1 << 20)
    for i in range(7):
        data = f"object {i}".encode()
        writer.add(_digest(data), data)
    sealed = writer.seal()
    assert [p.count for p in sealed] == [3, 3, 1]
    assert len(created) == 6  # a pack and an index each


def test_index_round_trip_and_damage_is_detected() -> None:
    entries = [(bytes([i]) * 32, i * 10, 10) for i in (3, 1, 2)]
    name, data = encode_index(entries)
    assert decode_index(data) == sorted(entries)
    assert len(name) == 64
    with pytest.raises(ValueError, match="checksum"):
        decode_index(data[:20] + bytes([data[20] ^ 1]) + data[21:])
    with pytest.raises(ValueError, match="truncated"):
        decode_index(data[:-1])
    with pytest.raises(ValueError, match="not a Keel pack index"):
        decode_index(b"x" * len(data))


def test_a_damaged_index_is_skipped_and_its_objects_stored_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    with store.stage_files(_files(tmp_path / "src", {"a": b"indexed"})):
        pass
    (index,) = _packs(store.root, ".idx")
    _flip_byte(index, 20)
    fresh = LocalArtifactStore(tmp_path / "store")
    with caplog.at_level(logging.WARNING):
        assert not fresh.exists(_digest(b"indexed"))
    assert "checksum" in caplog.text
    with fresh.stage_files(_files(tmp_path / "again", {"a": b"indexed"})) as staged:
        pass
    assert staged.new_objects == 1
    assert fresh.get_bytes(_digest(b"indexed")) == b"indexed"


def test_copy_and_hash_hashes_the_copy_in_unaligned_steps(tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 7)
    (tmp_path / "src").write_bytes(data)
    digest, size = copy_and_hash(
        os.fspath(tmp_path / "src"), os.fspath(tmp_path / "dst"), step=1024 * 1024 + 5
    )
    assert (digest, size) == (_digest(data), len(data))
    assert (tmp_path / "dst").read_bytes() == data


def test_sync_mode_is_validated_and_passed_by_uri(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="normal' or 'full"):
        LocalArtifactStore(tmp_path, sync="sometimes")  # type: ignore[arg-type]
    opened = open_artifact_store((tmp_path / "a").as_uri(), sync="full")
    assert isinstance(opened, LocalArtifactStore)
    assert opened.sync == "full"
    bare = open_artifact_store(str(tmp_path / "b"))
    assert isinstance(bare, LocalArtifactStore)
    assert bare.sync == "normal"


def test_put_file_and_put_bytes_in_both_sync_modes(
    store: LocalArtifactStore, tmp_path: Path
) -> None:
    big = tmp_path / "big"
    big.write_bytes(os.urandom(2 * 1024 * 1024))
    ref = store.put_file(big)
    small = store.put_bytes(b"tracking artifact")
    assert store.get_bytes(ref.digest) == big.read_bytes()
    assert store.get_bytes(small.digest) == b"tracking artifact"
    assert not list(store.root.rglob(".tmp-*"))
