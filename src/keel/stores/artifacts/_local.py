"""The artifact store on a local (or locally mounted) filesystem, using ``os`` directly.

Plain ``os`` calls rather than fsspec's local filesystem: the hot paths (``stat`` for
dedupe, ``os.replace`` for the atomic commit, ``fsync`` of file and directory for
durability) are one system call each, and ``import fsspec`` is not needed at all.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from keel.errors import Unavailable
from keel.stores.artifacts._base import (
    TEMP_PREFIX,
    ArtifactStore,
    TemporaryObject,
    temporary_name,
    validate_digest,
)
from keel.stores.artifacts._bulk import SourceFile, StagedFiles, stage_local

__all__ = ["LocalArtifactStore"]

_WRITE_BITS = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH


class LocalArtifactStore(ArtifactStore):
    """Objects as read-only files under ``<root>/objects/ab/cdef...``."""

    def __init__(self, root: os.PathLike[str] | str, uri: str | None = None) -> None:
        self.root = Path(root)
        super().__init__(uri or self.root.as_uri())
        self._objects = self.root / "objects"
        try:
            self._objects.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise Unavailable(
                f"cannot create artifact store at {self.root}: {error.strerror or error}; "
                "check the path and that it is writable"
            ) from error

    def _path(self, digest: str) -> Path:
        return self._objects / digest[:2] / digest[2:]

    def local_path(self, digest: str) -> Path | None:
        validate_digest(digest)
        return self._path(digest)

    def stage_files(self, files: Sequence[SourceFile], *, workers: int = 8) -> StagedFiles:
        with self._errors("store objects"):
            return stage_local(self._objects, files, workers)

    def _exists(self, digest: str) -> bool:
        return self._path(digest).is_file()

    def _size(self, digest: str) -> int:
        return self._path(digest).stat().st_size

    def _open(self, digest: str) -> BinaryIO:
        return self._path(digest).open("rb")

    def _delete(self, digest: str) -> bool:
        try:
            self._path(digest).unlink()
        except FileNotFoundError:
            return False
        return True

    def _create_temporary(self, digest: str) -> TemporaryObject:
        final = self._path(digest)
        final.parent.mkdir(exist_ok=True)
        return _LocalTemporary(final.parent / temporary_name(), final)

    def cleanup_temporary(self, older_than_seconds: float) -> int:
        """Remove ``.tmp-*`` files older than ``older_than_seconds``; return how many."""
        cutoff = time.time() - older_than_seconds
        removed = 0
        with self._errors("clean up temporary objects"):
            for shard in os.scandir(self._objects):
                if not shard.is_dir(follow_symlinks=False):
                    continue
                for entry in os.scandir(shard.path):
                    if not entry.name.startswith(TEMP_PREFIX):
                        continue
                    try:
                        if entry.stat(follow_symlinks=False).st_mtime <= cutoff:
                            os.unlink(entry.path)
                            removed += 1
                    except FileNotFoundError:
                        continue  # another cleaner or the writer got there first
        return removed


class _LocalTemporary(TemporaryObject):
    """A ``.tmp-<random>`` file in the object's own directory, renamed into place."""

    def __init__(self, path: Path, final: Path) -> None:
        self._path = path
        self._final = final
        self._file = path.open("xb")

    def write(self, data: bytes | memoryview) -> None:
        self._file.write(data)

    def commit(self) -> None:
        self._file.flush()
        descriptor = self._file.fileno()
        os.fsync(descriptor)
        mode = os.fstat(descriptor).st_mode
        self._file.close()
        self._path.chmod(stat.S_IMODE(mode) & ~_WRITE_BITS)  # objects are immutable
        try:
            os.replace(self._path, self._final)
        except PermissionError:
            # Windows will not replace a read-only file; the object is already there.
            if not self._final.is_file():
                raise
            self.discard()
            return
        _fsync_directory(self._final.parent)

    def discard(self) -> None:
        self._file.close()
        self._path.unlink(missing_ok=True)


def _fsync_directory(path: Path) -> None:
    """Make a rename in ``path`` durable (POSIX); Windows cannot open directories."""
    if os.name == "nt":  # pragma: no cover
        return
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
