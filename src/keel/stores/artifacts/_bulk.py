"""Storing many files at once: stage every new object out of sight, then publish them.

``stage_files`` reads each file once and writes new content to temporary files that
no reader can see (docs/adr/0010-data-durability-and-packs.md):

- files under ``PACK_THRESHOLD`` (64 KiB) are read on the calling thread with one
  ``read``, hashed with one BLAKE3 call and appended to a temporary pack file
  (``_packs.py``): no file is created per object (threads only add GIL hand-offs at
  this size);
- files up to 1 MiB are read, hashed and written to a temporary object;
- larger files go to a thread pool: each is copied into its temporary object
  kernel-side (reflink, else ``copy_file_range``) while BLAKE3, on its own threads,
  hashes the *copy* a chunk behind. The digest is that of the bytes stored, so a
  source modified during the add yields a consistent snapshot, never an object whose
  content differs from its name.

``commit`` publishes. With sync ``normal`` it renames everything into place: objects
appear atomically and survive a crash of the process; the OS writes the data back and
every read verifies the digest. With ``full`` it first makes every staged file durable
(one ``syncfs`` for 64 or more files, else parallel ``fsync``), then renames and
fsyncs each touched directory (the packs directory once between a pack and its
index). ``discard`` (or any error before ``commit``) removes every staged file, so a
failed batch leaves the object namespace unchanged.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import mmap
import os
import queue
import stat
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import blake3

from keel.errors import Conflict, InvalidArgument, NotFound
from keel.stores.artifacts._base import (
    CHUNK_SIZE,
    ArtifactRef,
    SyncMode,
    temporary_name,
    validate_digest,
)
from keel.stores.artifacts._packs import PACK_THRESHOLD, PackIndex, PackWriter, SealedPack

__all__ = [
    "SourceFile",
    "StagedFiles",
    "clone_file",
    "copy_and_hash",
    "default_workers",
    "parallel_map",
]

_SMALL = 1024 * 1024  # below: read into memory; at or above: kernel copy, then hash
_COPY_STEP = 64 * 1024 * 1024  # bytes copied per copy_file_range; hashing trails by one
_WRITE_BITS = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
_FICLONE = 0x40049409  # linux/fs.h: _IOW(0x94, 9, int)
_SYNCFS_THRESHOLD = 64

T = TypeVar("T")
R = TypeVar("R")


def default_workers() -> int:
    """Threads for parallel hashing and I/O: enough to overlap system calls."""
    return min(32, (os.cpu_count() or 1) * 4)


def parallel_map(function: Callable[[T], R], items: Sequence[T], workers: int) -> list[R]:
    """``[function(x) for x in items]`` on a thread pool, in order; the first error wins."""
    if len(items) <= 1 or workers <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        # Chunk so that thousands of tiny files do not cost one future each.
        size = max(1, min(256, len(items) // (workers * 4)))
        chunks = [items[i : i + size] for i in range(0, len(items), size)]
        results = pool.map(lambda chunk: [function(x) for x in chunk], chunks)
        return [value for chunk in results for value in chunk]


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A file to store; ``digest`` when already known (a stat-cache hit).

    ``path`` may be a plain string: a batch of 20,000 files is cheaper without building
    20,000 ``Path`` objects.
    """

    path: str | os.PathLike[str]
    size: int
    digest: str | None = None


@dataclass
class StagedFiles:
    """Objects hashed and written to temporary files, not yet visible in the store."""

    refs: list[ArtifactRef]
    _pending: list[tuple[str, str]] = field(default_factory=list)  # (temporary, final)
    _packs: list[SealedPack] = field(default_factory=list)
    _packed: int = 0
    _packs_directory: str = ""
    _sync: SyncMode = "normal"
    _workers: int = 8
    _done: bool = False

    @property
    def new_objects(self) -> int:
        """How many objects this batch adds to the store (loose and packed)."""
        return len(self._pending) + self._packed

    def commit(self) -> None:
        """Publish every staged object (durable first when sync is ``full``)."""
        if self._done:
            return
        try:
            if self._sync == "full":
                self._commit_durably()
            else:
                for temporary, final in self._pending:
                    os.replace(temporary, final)
                for pack in self._packs:
                    pack.publish(self._packs_directory)
        except BaseException:
            self.discard()  # whatever was not renamed yet; published objects are complete
            raise
        self._done = True

    def _commit_durably(self) -> None:
        temporaries = [t for t, _ in self._pending]
        temporaries += [p.pack_temporary for p in self._packs]
        temporaries += [p.index_temporary for p in self._packs]
        if not temporaries:
            return
        if len(temporaries) < _SYNCFS_THRESHOLD or not _syncfs(os.path.dirname(temporaries[0])):
            parallel_map(_fsync_path, temporaries, self._workers)
        directories: set[str] = set()
        for temporary, final in self._pending:
            os.replace(temporary, final)
            directories.add(os.path.dirname(final))
        packs = self._packs_directory
        for pack in self._packs:
            # The pack's name must be durable before an index can point at it.
            pack.publish(packs, between=lambda: _fsync_path(packs))
        if self._packs:
            directories.add(packs)
        parallel_map(_fsync_path, sorted(directories), self._workers)

    def discard(self) -> None:
        """Remove every staged temporary file (safe after commit: nothing is left)."""
        if self._done:
            return
        leftovers = [t for t, _ in self._pending]
        leftovers += [p.pack_temporary for p in self._packs]
        leftovers += [p.index_temporary for p in self._packs]
        for temporary in leftovers:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
        self._done = True

    def __enter__(self) -> StagedFiles:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


_Staged = tuple[ArtifactRef, "tuple[str, str] | None"]


class _Stager:
    """One ``stage_local`` call: what is stored, what this batch added, what it created."""

    def __init__(self, objects: Path, packs: PackIndex) -> None:
        self.objects = os.fspath(objects)
        self.packs = packs
        self.packed = packs.snapshot()  # the batch answers from this; see PackIndex.get
        self.created: list[str] = []  # list.append is atomic: pool threads record here
        self.batch: set[str] = set()  # digests this batch already holds
        self.writer = PackWriter(os.fspath(packs.directory), self.created)
        # Shard folders (objects/ab) that existed when the batch began: a digest whose
        # shard is absent cannot be stored loose, so it costs no stat. One created by
        # another process meanwhile can only mean content stored twice, never lost.
        try:
            self.shards = frozenset(os.listdir(self.objects))
        except FileNotFoundError:
            self.shards = frozenset()

    def stored(self, digest: str) -> bool:
        return (
            digest in self.batch
            or digest in self.packed
            or (digest[:2] in self.shards and os.path.isfile(_object_path(self.objects, digest)))
        )

    def small(self, source: SourceFile) -> _Staged:
        """Read, hash and pack (or write) a file expected to be under 1 MiB."""
        if source.digest is not None:
            validate_digest(source.digest)
            if self.stored(source.digest):
                return ArtifactRef(source.digest, source.size), None
        path = os.fspath(source.path)
        try:  # not ``with _reading(path)``: a context manager per 4 KiB file shows up
            descriptor = os.open(path, os.O_RDONLY)
            try:
                data = _read_small(descriptor, source.size)
            finally:
                os.close(descriptor)
        except OSError as error:
            raise _read_error(path, error) from None
        if data is None:  # it grew past 1 MiB since the scan
            return self.large(source)
        digest = blake3.blake3(data).hexdigest()
        _check_known(source, digest)
        ref = ArtifactRef(digest, len(data))
        if self.stored(digest):
            return ref, None
        self.batch.add(digest)
        if len(data) < PACK_THRESHOLD:
            self.writer.add(digest, data)
            return ref, None
        final = _object_path(self.objects, digest)
        os.makedirs(os.path.dirname(final), exist_ok=True)
        temporary = f"{self.objects}/{temporary_name()}"
        self.created.append(temporary)
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(descriptor, view) :]
        finally:
            os.close(descriptor)
        return ref, (temporary, final)

    def large(self, source: SourceFile) -> _Staged:
        """Copy kernel-side into a temporary object, hashing the copy."""
        if source.digest is not None:
            validate_digest(source.digest)
            if self.stored(source.digest):
                return ArtifactRef(source.digest, source.size), None
        path = os.fspath(source.path)
        temporary = f"{self.objects}/{temporary_name()}"
        self.created.append(temporary)
        with _reading(path):
            digest, size = copy_and_hash(path, temporary)
        _check_known(source, digest)
        ref = ArtifactRef(digest, size)
        if self.stored(digest):
            os.unlink(temporary)
            return ref, None
        os.chmod(temporary, stat.S_IMODE(os.stat(temporary).st_mode) & ~_WRITE_BITS)
        final = _object_path(self.objects, digest)
        os.makedirs(os.path.dirname(final), exist_ok=True)
        return ref, (temporary, final)

    def remove_created(self) -> None:
        self.writer.abandon()
        for leftover in self.created:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(leftover)


def stage_local(
    objects: Path,
    packs: PackIndex,
    files: Sequence[SourceFile],
    *,
    workers: int,
    sync: SyncMode,
) -> StagedFiles:
    """Hash ``files`` and stage the new ones (see the module docstring)."""
    packs.refresh()  # once: lookups below answer from memory
    stager = _Stager(objects, packs)
    staged: list[_Staged | None] = [None] * len(files)
    large = [i for i, f in enumerate(files) if f.size >= _SMALL]
    try:
        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(large)))) as pool:
            futures: list[tuple[int, Future[_Staged]]] = [
                (i, pool.submit(stager.large, files[i])) for i in large
            ]
            try:
                for index, source in enumerate(files):
                    if source.size < _SMALL:
                        staged[index] = stager.small(source)
            except BaseException:
                for _, future in futures:
                    future.cancel()
                raise
            for index, future in futures:
                staged[index] = future.result()
        sealed = stager.writer.seal()
    except BaseException:
        stager.remove_created()
        raise
    pending: list[tuple[str, str]] = []
    seen: set[str] = set()
    refs: list[ArtifactRef] = []
    for item in staged:
        assert item is not None
        ref, move = item
        refs.append(ref)
        if move is None:
            continue
        if move[1] in seen:  # the same large content twice in one batch
            os.unlink(move[0])
            continue
        seen.add(move[1])
        pending.append(move)
    return StagedFiles(
        refs,
        pending,
        sealed,
        _packed=sum(p.count for p in sealed),
        _packs_directory=os.fspath(packs.directory),
        _sync=sync,
        _workers=workers,
    )


def _read_small(descriptor: int, hint: int) -> bytes | None:
    """The file's bytes when under 1 MiB, else None; one ``read`` when ``hint`` is right."""
    data = os.read(descriptor, hint + 1)
    if len(data) <= hint:
        return data  # a short read of a regular file is its end
    parts = [data]
    total = len(data)
    while chunk := os.read(descriptor, CHUNK_SIZE):
        total += len(chunk)
        if total >= _SMALL:
            return None
        parts.append(chunk)
    return b"".join(parts)


@contextlib.contextmanager
def _reading(path: str) -> Iterator[None]:
    try:
        yield
    except OSError as error:
        raise _read_error(path, error) from None


def _read_error(path: str, error: OSError) -> Exception:
    """The Keel error for ``error`` raised while reading the source file ``path``."""
    if isinstance(error, FileNotFoundError):
        return NotFound(
            f"{path} disappeared while it was being added; "
            "add again once nothing is moving files in that directory"
        )
    if isinstance(error, PermissionError):
        return InvalidArgument(
            f"cannot read {path}: {error.strerror}; give yourself read access "
            f"(chmod u+r '{path}') or move it out of the dataset"
        )
    if isinstance(error, IsADirectoryError):
        return InvalidArgument(f"{path} is a directory, not a file")
    return error


def _object_path(objects: str, digest: str) -> str:
    return f"{objects}/{digest[:2]}/{digest[2:]}"


def _check_known(source: SourceFile, digest: str) -> None:
    if source.digest is not None and source.digest != digest:
        raise Conflict(
            f"{source.path} changed while it was being added; add it again once nothing "
            "is writing to it"
        )


def copy_and_hash(source: str, dest: str, *, step: int = _COPY_STEP) -> tuple[str, int]:
    """Copy ``source`` to the new file ``dest`` kernel-side; the BLAKE3 digest and size of the copy.

    Reflink where the filesystem shares blocks, else ``copy_file_range`` in 64 MiB steps
    with the previous step hashed (memory-mapped, on BLAKE3's threads) meanwhile, else
    a stream that hashes what it writes. Memory-mapping is safe here: ``dest`` is our
    own new file and nobody else truncates it.
    """
    hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
    with open(source, "rb", buffering=0) as src:
        out = os.open(dest, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            if _reflink(src.fileno(), out):
                size = os.fstat(out).st_size
                _hash_range(hasher, out, 0, size)
            else:
                copied = _copy_range_hashing(src.fileno(), out, hasher, step)
                size = copied if copied is not None else _stream_hashing(src, out, hasher)
        finally:
            os.close(out)
    return str(hasher.hexdigest()), size


def _reflink(source: int, dest: int) -> bool:
    try:
        fcntl.ioctl(dest, _FICLONE, source)
    except OSError as error:
        if error.errno not in _NO_REFLINK:
            raise
        return False
    return True


def _copy_range_hashing(source: int, dest: int, hasher: Any, step: int) -> int | None:
    """Copy with ``copy_file_range``, hashing behind; None if the kernel cannot."""
    size = os.fstat(source).st_size
    try:
        first = os.copy_file_range(source, dest, min(step, size)) if size else 0
    except OSError as error:
        if error.errno not in _NO_COPY_RANGE:
            raise
        return None
    ranges: queue.SimpleQueue[tuple[int, int] | None] = queue.SimpleQueue()
    failures: list[BaseException] = []

    def hash_behind() -> None:
        while (item := ranges.get()) is not None:
            if not failures:
                try:
                    _hash_range(hasher, dest, *item)
                except BaseException as error:  # re-raised on the copying thread
                    failures.append(error)

    worker = threading.Thread(target=hash_behind, name="keel-hash", daemon=True)
    worker.start()
    done = first
    try:
        if first:
            ranges.put((0, first))
        while first and done < size and not failures:
            count = os.copy_file_range(source, dest, min(step, size - done))
            if count == 0:
                break  # the source shrank: the copy is what was there
            ranges.put((done, done + count))
            done += count
    finally:
        ranges.put(None)
        worker.join()
    if failures:
        raise failures[0]
    return done


def _hash_range(hasher: Any, descriptor: int, start: int, end: int) -> None:
    if end <= start:
        return
    base = start - start % mmap.ALLOCATIONGRANULARITY
    with mmap.mmap(descriptor, end - base, offset=base, access=mmap.ACCESS_READ) as mapped:
        view = memoryview(mapped)
        part = view[start - base :]
        try:
            hasher.update(part)
        finally:
            part.release()
            view.release()


def _stream_hashing(source: Any, dest: int, hasher: Any) -> int:
    source.seek(0)
    os.lseek(dest, 0, os.SEEK_SET)
    os.ftruncate(dest, 0)
    buffer = bytearray(CHUNK_SIZE)
    view = memoryview(buffer)
    total = 0
    while count := source.readinto(buffer):
        chunk = view[:count]
        hasher.update(chunk)
        while chunk:
            chunk = chunk[os.write(dest, chunk) :]
        total += count
    return total


def clone_file(source: Path, dest: Path) -> str:
    """Copy ``source`` to the new file ``dest``: reflink, else in-kernel copy, else stream.

    Returns which method worked (``reflink``, ``copy_file_range`` or ``stream``).
    """
    with source.open("rb", buffering=0) as src, dest.open("xb", buffering=0) as out:
        if _reflink(src.fileno(), out.fileno()):
            return "reflink"
        size = os.fstat(src.fileno()).st_size
        try:
            copied = 0
            while copied < size:
                count = os.copy_file_range(src.fileno(), out.fileno(), size - copied)
                if count == 0:
                    break
                copied += count
            if copied == size:
                return "copy_file_range"
        except OSError as error:
            if error.errno not in _NO_COPY_RANGE:
                raise
        src.seek(0)
        out.seek(0)
        out.truncate()
        while chunk := src.read(CHUNK_SIZE):
            out.write(chunk)
        return "stream"


_NO_REFLINK = {errno.EOPNOTSUPP, errno.ENOTTY, errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EBADF}
_NO_COPY_RANGE = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EBADF}


def _syncfs(directory: str) -> bool:
    """Flush the whole filesystem holding ``directory`` (Linux ``syncfs``); False if absent."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.syncfs
    except (OSError, AttributeError):
        return False
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        return bool(function(descriptor) == 0)
    finally:
        os.close(descriptor)


def _fsync_path(path: str) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
