"""Storing many files at once: hash in parallel, stage, make durable in a batch, publish.

``stage_files`` hashes and writes every new object to a temporary file in a thread
pool (BLAKE3 and file I/O release the GIL) without an fsync each; ``commit`` then
fsyncs the staged files in parallel, renames them into place and fsyncs each touched
shard directory once. An object therefore only ever becomes visible once its bytes
are durable, yet the cost of durability is paid in one parallel batch instead of one
synchronous round trip per file. ``discard`` (or any error before ``commit``) removes
every staged file, so a failed batch leaves the object namespace unchanged.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import stat
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import blake3

from keel.errors import Conflict, InvalidArgument, NotFound
from keel.stores.artifacts._base import (
    CHUNK_SIZE,
    ArtifactRef,
    new_hasher,
    temporary_name,
    validate_digest,
)

__all__ = ["SourceFile", "StagedFiles", "clone_file", "default_workers", "parallel_map"]

_SMALL = 1024 * 1024
_WRITE_BITS = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
_FICLONE = 0x40049409  # linux/fs.h: _IOW(0x94, 9, int)

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
    """A file to store; ``digest`` when already known (a stat-cache hit)."""

    path: Path
    size: int
    digest: str | None = None


@dataclass
class StagedFiles:
    """Objects hashed and written to temporary files, not yet visible in the store."""

    refs: list[ArtifactRef]
    _pending: list[tuple[Path, Path]] = field(default_factory=list)
    _workers: int = 8
    _done: bool = False

    @property
    def new_objects(self) -> int:
        """How many objects this batch adds to the store."""
        return len(self._pending)

    def commit(self) -> None:
        """Make every staged object durable, then visible under its digest."""
        if self._done:
            return
        if len(self._pending) >= _SYNCFS_THRESHOLD and _syncfs(self._pending[0][0].parent):
            pass  # one flush of the filesystem covers every staged file
        else:
            parallel_map(lambda pair: _fsync_path(pair[0]), self._pending, self._workers)
        directories: set[Path] = set()
        for temporary, final in self._pending:
            os.replace(temporary, final)
            directories.add(final.parent)
        parallel_map(_fsync_path, sorted(directories), self._workers)
        self._done = True

    def discard(self) -> None:
        """Remove every staged temporary file (safe after commit: nothing is left)."""
        if self._done:
            return
        for temporary, _ in self._pending:
            temporary.unlink(missing_ok=True)
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


def stage_local(objects: Path, files: Sequence[SourceFile], workers: int) -> StagedFiles:
    """Hash ``files`` and stage the new ones under ``objects`` (see the module docstring).

    Small files are staged on this thread: per-file cost is a handful of system calls
    and threads only add GIL hand-offs (measured: 1 thread beats 8 on 4 KiB files).
    Large files go to the pool, each also hashed on BLAKE3's own threads.
    """
    created: list[str] = []  # list.append is atomic: workers record their temporaries
    base = os.fspath(objects)
    for shard in range(256):
        os.makedirs(os.path.join(base, f"{shard:02x}"), exist_ok=True)

    def stage(source: SourceFile) -> tuple[ArtifactRef, str | None, str]:
        return _stage_one(base, source, created)

    try:
        large = [i for i, f in enumerate(files) if f.size >= _SMALL]
        staged: list[tuple[ArtifactRef, str | None, str] | None] = [None] * len(files)
        for index, result in zip(
            large, parallel_map(stage, [files[i] for i in large], workers), strict=True
        ):
            staged[index] = result
        for index, source in enumerate(files):
            if staged[index] is None:
                staged[index] = stage(source)
    except BaseException:
        for leftover in created:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(leftover)
        raise
    pending: list[tuple[Path, Path]] = []
    seen: set[str] = set()
    refs: list[ArtifactRef] = []
    for item in staged:
        assert item is not None
        ref, temporary, final = item
        refs.append(ref)
        if temporary is None:
            continue
        if final in seen:  # the same content twice in one batch
            os.unlink(temporary)
            continue
        seen.add(final)
        pending.append((Path(temporary), Path(final)))
    return StagedFiles(refs, pending, workers)


def _object_path(objects: str, digest: str) -> str:
    return f"{objects}/{digest[:2]}/{digest[2:]}"


def _stage_one(
    objects: str, source: SourceFile, created: list[str]
) -> tuple[ArtifactRef, str | None, str]:
    if source.digest is not None:
        validate_digest(source.digest)
        final = _object_path(objects, source.digest)
        if os.path.isfile(final):
            return ArtifactRef(source.digest, source.size), None, final
    path = os.fspath(source.path)
    try:
        if source.size < _SMALL:
            with open(path, "rb", buffering=0) as stream:
                data = stream.read()
            digest = blake3.blake3(data).hexdigest()
            final = _object_path(objects, digest)
            _check_known(source, digest)
            if os.path.isfile(final):
                return ArtifactRef(digest, len(data)), None, final
            temporary = _temporary(final)
            created.append(temporary)
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(descriptor, view) :]
            finally:
                os.close(descriptor)
            return ArtifactRef(digest, len(data)), temporary, final
        digest = _hash_path(Path(path), source.size)
        _check_known(source, digest)
        final = _object_path(objects, digest)
        if os.path.isfile(final):
            return ArtifactRef(digest, source.size), None, final
        temporary = _temporary(final)
        created.append(temporary)
        clone_file(Path(path), Path(temporary))
        os.chmod(temporary, stat.S_IMODE(os.stat(temporary).st_mode) & ~_WRITE_BITS)
        if _hash_path(Path(temporary), source.size) != digest:
            os.unlink(temporary)
            raise Conflict(
                f"{path} changed while it was being stored; "
                "add it again once nothing is writing to it"
            )
        return ArtifactRef(digest, source.size), temporary, final
    except FileNotFoundError:
        raise NotFound(
            f"{path} disappeared while it was being added; "
            "add again once nothing is moving files in that directory"
        ) from None
    except PermissionError as error:
        raise InvalidArgument(
            f"cannot read {path}: {error.strerror}; give yourself read access "
            f"(chmod u+r '{path}') or move it out of the dataset"
        ) from None
    except IsADirectoryError:
        raise InvalidArgument(f"{path} is a directory, not a file") from None


def _check_known(source: SourceFile, digest: str) -> None:
    if source.digest is not None and source.digest != digest:
        raise Conflict(
            f"{source.path} changed while it was being added; add it again once nothing "
            "is writing to it"
        )


def _temporary(final: str) -> str:
    return f"{final[: final.rindex('/')]}/{temporary_name()}"


def _hash_path(path: Path, size: int) -> str:
    hasher = new_hasher(size)
    buffer = bytearray(CHUNK_SIZE)
    view = memoryview(buffer)
    with path.open("rb", buffering=0) as stream:
        while count := stream.readinto(buffer):
            hasher.update(view[:count])
    return str(hasher.hexdigest())


def clone_file(source: Path, dest: Path) -> str:
    """Copy ``source`` to the new file ``dest``: reflink, else in-kernel copy, else stream.

    Returns which method worked (``reflink``, ``copy_file_range`` or ``stream``).
    """
    with source.open("rb", buffering=0) as src, dest.open("xb", buffering=0) as out:
        try:
            fcntl.ioctl(out.fileno(), _FICLONE, src.fileno())
            return "reflink"
        except OSError as error:
            if error.errno not in _NO_REFLINK:
                raise
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


_SYNCFS_THRESHOLD = 64


def _syncfs(directory: Path) -> bool:
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


def _fsync_path(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
