"""The content-addressed artifact store, on real files and on fsspec's memory filesystem."""

from __future__ import annotations

import logging
import multiprocessing
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import blake3
import pytest

from keel.errors import Conflict, IntegrityError, InvalidArgument, NotFound, Unavailable
from keel.stores.artifacts import (
    ArtifactRef,
    ArtifactStore,
    FsspecArtifactStore,
    LocalArtifactStore,
    open_artifact_store,
    register_scheme,
)

BIG = 3 * 1024 * 1024 + 17  # above the small-file threshold: the streaming path


def _objects(root: Path) -> list[Path]:
    """Every committed object file under a local store's root."""
    return [
        path
        for path in (root / "objects").rglob("*")
        if path.is_file() and not path.name.startswith(".tmp-")
    ]


def _object_path(root: Path, digest: str) -> Path:
    return root / "objects" / digest[:2] / digest[2:]


def _tamper(path: Path, data: bytes) -> None:
    path.chmod(0o644)
    path.write_bytes(data)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def store(root: Path) -> ArtifactStore:
    return open_artifact_store(root.as_uri())


@pytest.fixture
def memory_store() -> Iterator[FsspecArtifactStore]:
    opened = open_artifact_store(f"memory://keel-test-{uuid.uuid4().hex}")
    assert isinstance(opened, FsspecArtifactStore)
    yield opened
    opened.fs.rm(opened.root, recursive=True)


@pytest.fixture
def big_file(tmp_path: Path) -> Path:
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(BIG))
    return path


# -- writing and reading ----------------------------------------------------------


def test_round_trip_bytes(store: ArtifactStore) -> None:
    ref = store.put_bytes(b"hello, keel")
    assert ref == ArtifactRef(blake3.blake3(b"hello, keel").hexdigest(), 11)
    assert store.exists(ref.digest)
    assert store.size(ref.digest) == 11
    assert store.get_bytes(ref.digest) == b"hello, keel"
    with store.open(ref.digest) as stream:
        assert stream.read() == b"hello, keel"


def test_round_trip_empty(store: ArtifactStore) -> None:
    ref = store.put_bytes(b"")
    assert ref.digest == blake3.blake3(b"").hexdigest()
    assert store.get_bytes(ref.digest) == b""


def test_round_trip_big_file(store: ArtifactStore, big_file: Path, tmp_path: Path) -> None:
    data = big_file.read_bytes()
    ref = store.put_file(big_file)
    assert ref == ArtifactRef(blake3.blake3(data).hexdigest(), len(data))
    assert store.get_bytes(ref.digest) == data
    with store.open(ref.digest) as stream:
        assert stream.read(10) == data[:10]
        assert stream.read() == data[10:]
    out = tmp_path / "out" / "deep" / "copy.bin"
    store.copy_to(ref.digest, out)
    assert out.read_bytes() == data
    assert list(out.parent.iterdir()) == [out]


def test_put_file_accepts_str_and_small_files(store: ArtifactStore, tmp_path: Path) -> None:
    path = tmp_path / "small.txt"
    path.write_bytes(b"small")
    assert store.put_file(str(path)) == store.put_bytes(b"small")


def test_put_bytes_accepts_bytearray_and_memoryview(store: ArtifactStore) -> None:
    expected = store.put_bytes(b"abc")
    assert store.put_bytes(bytearray(b"abc")) == expected
    assert store.put_bytes(memoryview(b"abc")) == expected  # type: ignore[arg-type]


def test_put_bytes_refuses_text(store: ArtifactStore) -> None:
    with pytest.raises(InvalidArgument, match="encode text first"):
        store.put_bytes("text")  # type: ignore[arg-type]


def test_put_file_missing_or_directory(store: ArtifactStore, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no file"):
        store.put_file(tmp_path / "absent.bin")
    with pytest.raises(InvalidArgument, match="not a regular file"):
        store.put_file(tmp_path)


def test_objects_are_laid_out_by_digest_and_read_only(store: ArtifactStore, root: Path) -> None:
    ref = store.put_bytes(b"layout")
    path = _object_path(root, ref.digest)
    assert _objects(root) == [path]
    assert path.stat().st_mode & 0o222 == 0


def test_open_reads_lines_and_chunks(store: ArtifactStore) -> None:
    data = b"".join(f"line {i}\n".encode() for i in range(10_000))
    ref = store.put_bytes(data)
    with store.open(ref.digest) as stream:
        assert stream.readline() == b"line 0\n"
        rest = b"".join(iter(lambda: stream.read(4096), b""))
    assert rest == data[len(b"line 0\n") :]


def test_open_closed_early_is_not_an_error(store: ArtifactStore, root: Path) -> None:
    ref = store.put_bytes(b"x" * 100_000)
    _tamper(_object_path(root, ref.digest), b"y" * 100_000)
    with store.open(ref.digest) as stream:
        stream.read(10)  # never reaches EOF, so nothing is verified


# -- dedupe -----------------------------------------------------------------------


def test_same_content_is_stored_once(store: ArtifactStore, root: Path, big_file: Path) -> None:
    first = store.put_bytes(b"same")
    assert store.put_bytes(b"same") == first
    big = store.put_file(big_file)
    assert store.put_file(big_file) == big
    assert store.put_bytes(big_file.read_bytes()) == big
    assert sorted(_objects(root)) == sorted(
        [_object_path(root, first.digest), _object_path(root, big.digest)]
    )


# -- integrity --------------------------------------------------------------------


@pytest.mark.parametrize("corruption", [b"tampered content", b"", b"hello, keeL"])
def test_tampered_object_is_never_returned(
    store: ArtifactStore, root: Path, tmp_path: Path, corruption: bytes
) -> None:
    ref = store.put_bytes(b"hello, keel")
    _tamper(_object_path(root, ref.digest), corruption)

    with pytest.raises(IntegrityError, match=r"corrupt.*log the artifact again"):
        store.get_bytes(ref.digest)
    with pytest.raises(IntegrityError, match="corrupt"), store.open(ref.digest) as stream:
        stream.read()

    dest = tmp_path / "dest" / "file.bin"
    with pytest.raises(IntegrityError, match="corrupt"):
        store.copy_to(ref.digest, dest)
    assert not dest.parent.exists() or list(dest.parent.iterdir()) == []


def test_copy_to_keeps_existing_file_when_object_is_corrupt(
    store: ArtifactStore, root: Path, tmp_path: Path, big_file: Path
) -> None:
    ref = store.put_file(big_file)
    path = _object_path(root, ref.digest)
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    _tamper(path, bytes(data))
    dest = tmp_path / "keep.bin"
    dest.write_bytes(b"previous")
    with pytest.raises(IntegrityError):
        store.copy_to(ref.digest, dest)
    assert dest.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.bin", "keep.bin", "store"]


def test_corrupt_object_can_be_deleted_and_logged_again(store: ArtifactStore, root: Path) -> None:
    ref = store.put_bytes(b"repair me")
    _tamper(_object_path(root, ref.digest), b"broken")
    assert store.delete(ref.digest)
    assert store.put_bytes(b"repair me") == ref
    assert store.get_bytes(ref.digest) == b"repair me"


class _ChangesSourceWhileStoring(LocalArtifactStore):
    """A store whose dedupe lookup is slow enough for the source file to change."""

    def __init__(self, root: Path, source: Path) -> None:
        super().__init__(root)
        self.source = source

    def _exists(self, digest: str) -> bool:
        found = super()._exists(digest)
        self.source.write_bytes(os.urandom(BIG))
        return found


def test_source_changing_mid_put_is_refused(tmp_path: Path, big_file: Path) -> None:
    store = _ChangesSourceWhileStoring(tmp_path / "store", big_file)
    with pytest.raises(Conflict, match="changed while it was being stored"):
        store.put_file(big_file)
    assert _objects(tmp_path / "store") == []
    assert list((tmp_path / "store" / "objects").rglob(".tmp-*")) == []


# -- digests and missing objects --------------------------------------------------

BAD_DIGESTS = [
    "../x",
    "../../etc/passwd",
    "A" * 64,
    "ab" * 31 + "AB",
    "a" * 63,
    "a" * 65,
    "",
    "g" * 64,
    "a" * 64 + "\n",
    "\u0660" * 64,  # Arabic-Indic digits are digits, but not hex
    "objects/" + "a" * 56,
    None,
    123,
]


@pytest.mark.parametrize("digest", BAD_DIGESTS)
def test_invalid_digests_are_refused(store: ArtifactStore, tmp_path: Path, digest: object) -> None:
    calls = [
        store.exists,
        store.size,
        store.open,
        store.get_bytes,
        store.delete,
        lambda d: store.copy_to(d, tmp_path / "out.bin"),
    ]
    for call in calls:
        with pytest.raises(InvalidArgument, match="64 lowercase hexadecimal"):
            call(digest)
    assert not (tmp_path / "out.bin").exists()


def test_missing_object(store: ArtifactStore, tmp_path: Path) -> None:
    digest = blake3.blake3(b"never stored").hexdigest()
    assert not store.exists(digest)
    assert store.delete(digest) is False
    for call in (store.size, store.open, store.get_bytes):
        with pytest.raises(NotFound, match=r"(?i)log the artifact again"):
            call(digest)
    with pytest.raises(NotFound):
        store.copy_to(digest, tmp_path / "out.bin")
    assert not (tmp_path / "out.bin").exists()


def test_delete(store: ArtifactStore) -> None:
    ref = store.put_bytes(b"delete me")
    assert store.delete(ref.digest) is True
    assert not store.exists(ref.digest)
    assert store.delete(ref.digest) is False


# -- concurrency ------------------------------------------------------------------


def test_concurrent_puts_from_threads(store: ArtifactStore, root: Path, big_file: Path) -> None:
    barrier = threading.Barrier(8)
    results: list[ArtifactRef] = []
    errors: list[BaseException] = []

    def put(index: int) -> None:
        try:
            barrier.wait()
            if index % 2:
                results.append(store.put_file(big_file))
            else:
                results.append(store.put_bytes(big_file.read_bytes()))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=put, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(set(results)) == 1
    assert len(results) == 8
    assert _objects(root) == [_object_path(root, results[0].digest)]
    assert list(root.rglob(".tmp-*")) == []
    assert store.get_bytes(results[0].digest) == big_file.read_bytes()


def _put_in_child(uri: str, source: str, barrier: threading.Barrier, queue: object) -> None:
    barrier.wait()
    queue.put(open_artifact_store(uri).put_file(source).digest)  # type: ignore[attr-defined]


def test_concurrent_puts_from_processes(root: Path, big_file: Path) -> None:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(4)
    queue = context.Queue()
    processes = [
        context.Process(target=_put_in_child, args=(root.as_uri(), str(big_file), barrier, queue))
        for _ in range(4)
    ]
    for process in processes:
        process.start()
    digests = [queue.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=120)
        assert process.exitcode == 0
    queue.close()
    queue.join_thread()
    expected = blake3.blake3(big_file.read_bytes()).hexdigest()
    assert digests == [expected] * 4
    assert _objects(root) == [_object_path(root, expected)]
    assert list(root.rglob(".tmp-*")) == []


# -- crashes and temporary objects ------------------------------------------------


def test_crash_mid_write_leaves_only_a_temporary(store: ArtifactStore, root: Path) -> None:
    data = b"interrupted"
    digest = blake3.blake3(data).hexdigest()
    shard = root / "objects" / digest[:2]
    shard.mkdir(parents=True)
    stale = shard / ".tmp-0123456789abcdef"
    stale.write_bytes(data[:5])  # the writer died before its rename
    an_hour_ago = time.time() - 3600
    os.utime(stale, (an_hour_ago, an_hour_ago))
    fresh = shard / ".tmp-fedcba9876543210"
    fresh.write_bytes(data[:3])  # a put still in progress

    assert not store.exists(digest)
    with pytest.raises(NotFound):
        store.get_bytes(digest)
    assert store.cleanup_temporary(older_than_seconds=600) == 1
    assert not stale.exists()
    assert fresh.exists()
    assert store.cleanup_temporary(older_than_seconds=0) == 1
    assert not fresh.exists()
    assert store.cleanup_temporary(older_than_seconds=0) == 0

    assert store.put_bytes(data).digest == digest
    assert store.get_bytes(digest) == data


# -- fsspec back-end --------------------------------------------------------------


def test_memory_store_through_fsspec(
    memory_store: FsspecArtifactStore, big_file: Path, tmp_path: Path
) -> None:
    data = big_file.read_bytes()
    small = memory_store.put_bytes(b"in memory")
    big = memory_store.put_file(big_file)
    assert memory_store.put_file(big_file) == big
    assert big == ArtifactRef(blake3.blake3(data).hexdigest(), len(data))
    assert memory_store.get_bytes(small.digest) == b"in memory"
    assert memory_store.size(big.digest) == len(data)
    with memory_store.open(big.digest) as stream:
        assert stream.read() == data
    memory_store.copy_to(big.digest, tmp_path / "from-memory.bin")
    assert (tmp_path / "from-memory.bin").read_bytes() == data
    files = memory_store.fs.find(memory_store.root)
    assert sorted(files) == sorted(
        f"{memory_store.root}/objects/{ref.digest[:2]}/{ref.digest[2:]}" for ref in (small, big)
    )


def test_memory_store_detects_tampering(memory_store: FsspecArtifactStore) -> None:
    ref = memory_store.put_bytes(b"original")
    memory_store.fs.pipe(
        f"{memory_store.root}/objects/{ref.digest[:2]}/{ref.digest[2:]}", b"tampered"
    )
    with pytest.raises(IntegrityError):
        memory_store.get_bytes(ref.digest)
    with pytest.raises(IntegrityError), memory_store.open(ref.digest) as stream:
        stream.read()


def test_memory_store_cleanup_and_delete(memory_store: FsspecArtifactStore) -> None:
    ref = memory_store.put_bytes(b"keep")
    temporary = f"{memory_store.root}/objects/{ref.digest[:2]}/.tmp-00000000deadbeef"
    memory_store.fs.pipe(temporary, b"partial")
    assert memory_store.cleanup_temporary(older_than_seconds=3600) == 0
    assert memory_store.cleanup_temporary(older_than_seconds=0) == 1
    assert not memory_store.fs.exists(temporary)
    assert memory_store.exists(ref.digest)
    assert memory_store.delete(ref.digest)
    assert not memory_store.exists(ref.digest)


# -- opening stores by URI --------------------------------------------------------


def test_bare_absolute_path_and_file_uris(tmp_path: Path) -> None:
    for location in (str(tmp_path), tmp_path.as_uri(), f"file://localhost{tmp_path}"):
        opened = open_artifact_store(location)
        assert isinstance(opened, LocalArtifactStore)
        assert opened.root == tmp_path
    ref = open_artifact_store(str(tmp_path)).put_bytes(b"shared")
    assert open_artifact_store(tmp_path.as_uri()).get_bytes(ref.digest) == b"shared"


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("", "non-empty"),
        ("relative/path", "neither a URI nor an absolute path"),
        ("file://otherhost/data", "not a local file URI"),
        ("file://", "no absolute path"),
        ("nosuchproto-keel://bucket/x", "unknown scheme"),
    ],
)
def test_bad_locations_are_refused(location: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        open_artifact_store(location)


def test_register_scheme(tmp_path: Path) -> None:
    def factory(uri: str) -> ArtifactStore:
        return LocalArtifactStore(tmp_path / uri.split("://", 1)[1], uri=uri)

    register_scheme("keel-test-custom", factory)
    opened = open_artifact_store("keel-test-custom://team-a")
    assert isinstance(opened, LocalArtifactStore)
    assert opened.root == tmp_path / "team-a"
    assert opened.uri == "keel-test-custom://team-a"
    with pytest.raises(InvalidArgument, match="lowercase URI scheme"):
        register_scheme("Bad Scheme://", factory)


def test_entry_point_plugins_load_lazily_and_broken_ones_are_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "keel_test_plugin.py").write_text(
        "from keel.stores.artifacts import LocalArtifactStore\n"
        "def factory(uri):\n"
        "    return LocalArtifactStore(uri.split('://', 1)[1], uri=uri)\n"
    )
    dist_info = tmp_path / "keel_test_plugin-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: keel-test-plugin\n")
    (dist_info / "entry_points.txt").write_text(
        "[keel.artifact_stores]\n"
        "keeltestgood = keel_test_plugin:factory\n"
        "keeltestbroken = keel_test_plugin_missing_module:factory\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))

    good = open_artifact_store(f"keeltestgood://{tmp_path / 'plugged'}")
    assert isinstance(good, LocalArtifactStore)
    assert good.root == tmp_path / "plugged"

    with (
        caplog.at_level(logging.WARNING, logger="keel.stores.artifacts._registry"),
        pytest.raises(InvalidArgument, match="unknown scheme"),
    ):
        open_artifact_store("keeltestbroken://x")
    assert "plugin 'keeltestbroken'" in caplog.text
    assert "failed to load and was skipped" in caplog.text


def test_importing_the_store_does_not_import_fsspec(tmp_path: Path) -> None:
    code = (
        "import sys, keel.stores.artifacts as a\n"
        "assert 'fsspec' not in sys.modules, 'fsspec imported eagerly'\n"
        "a.open_artifact_store(sys.argv[1]).put_bytes(b'x')\n"
        "assert 'fsspec' not in sys.modules, 'fsspec imported for a local store'\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "lazy")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_copy_to_a_directory_is_refused(store: ArtifactStore, tmp_path: Path) -> None:
    ref = store.put_bytes(b"file")
    with pytest.raises(InvalidArgument, match="is a directory"):
        store.copy_to(ref.digest, tmp_path)


def test_unusable_location_is_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"")
    with pytest.raises(Unavailable, match="cannot create artifact store"):
        open_artifact_store(str(blocker / "store"))
