"""The artifact store on a local (or locally mounted) filesystem, using ``os`` directly.

Plain ``os`` calls rather than fsspec's local filesystem: the hot paths (``stat`` for
dedupe, ``os.replace`` for the atomic commit, ``fsync`` when sync is ``full``) are one
system call each, and ``import fsspec`` is not needed at all.

An object is either *loose* (``objects/ab/cdef...``, one read-only file) or *packed*
(a slice of ``packs/<name>.pack``, listed in ``packs/<name>.idx``; see ``_packs.py``).
Lookups try the loose file first, then the pack indexes, which are loaded on first
use and looked for again whenever a digest is not found.
"""

from __future__ import annotations

import io
import os
import stat
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

from keel.errors import Conflict, IntegrityError, InvalidArgument, Unavailable
from keel.stores.artifacts._base import (
    SYNC_MODES,
    TEMP_PREFIX,
    ArtifactStore,
    SyncMode,
    TemporaryObject,
    temporary_name,
    validate_digest,
)
from keel.stores.artifacts._bulk import SourceFile, StagedFiles, stage_local
from keel.stores.artifacts._packs import PackedObject, PackIndex, read_packed

__all__ = ["LocalArtifactStore"]

_WRITE_BITS = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH


class LocalArtifactStore(ArtifactStore):
    """Objects as read-only files under ``<root>/objects/ab/cdef...`` or in ``<root>/packs``.

    ``sync`` is the durability of writes (``normal`` or ``full``, see ``SyncMode``).
    The only mutable state is the cache of pack indexes, which is replaced atomically,
    so an instance is safe to share between threads.
    """

    def __init__(
        self,
        root: os.PathLike[str] | str,
        uri: str | None = None,
        *,
        sync: SyncMode = "normal",
    ) -> None:
        if sync not in SYNC_MODES:
            raise InvalidArgument(f"sync must be 'normal' or 'full', got {sync!r}")
        self.root = Path(root)
        super().__init__(uri or self.root.as_uri())
        self.sync: SyncMode = sync
        self._objects = self.root / "objects"
        self._packs = PackIndex(self.root / "packs")
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
        """The loose object's path; None when the object is packed (read it instead)."""
        validate_digest(digest)
        path = self._path(digest)
        if not path.is_file() and self._packs.get(digest) is not None:
            return None
        return path

    def stage_files(self, files: Sequence[SourceFile], *, workers: int = 8) -> StagedFiles:
        with self._errors("store objects"):
            return stage_local(self._objects, self._packs, files, workers=workers, sync=self.sync)

    def _exists(self, digest: str) -> bool:
        return self._path(digest).is_file() or self._packs.get(digest) is not None

    def _size(self, digest: str) -> int:
        try:
            return self._path(digest).stat().st_size
        except FileNotFoundError:
            return self._packed(digest).size

    def _open(self, digest: str) -> BinaryIO:
        try:
            return self._path(digest).open("rb")
        except FileNotFoundError:
            location = self._packed(digest)
        try:
            return io.BytesIO(read_packed(location))
        except FileNotFoundError:
            self._packs.refresh()  # the pack may have been removed since it was indexed
            if self._packs.get(digest, refresh=False) is None:
                raise
            raise IntegrityError(
                f"artifact object {digest} is listed in {location.pack[:-5]}.idx but its "
                f"pack file is missing from {self.uri}; remove that .idx and add the data "
                "again from its source",
                digest=digest,
            ) from None

    def _packed(self, digest: str) -> PackedObject:
        location = self._packs.get(digest)
        if location is None:
            raise FileNotFoundError(digest)
        return location

    def _delete(self, digest: str) -> bool:
        location = self._packs.get(digest)
        if location is not None:
            raise Conflict(
                f"artifact object {digest} is stored in pack {location.pack} together with "
                "other objects; packs are immutable and only garbage collection (repacking) "
                "removes objects from them. To drop a corrupt pack, remove its .idx file "
                "and add the affected data again from its source"
            )
        try:
            self._path(digest).unlink()
        except FileNotFoundError:
            return False
        return True

    def _corrupt(self, digest: str) -> IntegrityError:
        location = self._packs.get(digest, refresh=False)
        if location is None or self._path(digest).is_file():
            return super()._corrupt(digest)
        return IntegrityError(
            f"artifact object {digest} in pack {location.pack} is corrupt: its content no "
            "longer matches its digest, so it was not used. Remove that pack's .idx file "
            "and add the affected data again from its source",
            digest=digest,
        )

    def _create_temporary(self, digest: str) -> TemporaryObject:
        final = self._path(digest)
        final.parent.mkdir(exist_ok=True)
        return _LocalTemporary(final.parent / temporary_name(), final, self.sync)

    def cleanup_temporary(self, older_than_seconds: float) -> int:
        """Remove leftovers of crashed writers older than ``older_than_seconds``; say how many.

        Leftovers are ``.tmp-*`` files (in ``objects/``, its shards and ``packs/``) and
        ``.pack`` files without an ``.idx`` (a crash between the two renames).
        """
        cutoff = time.time() - older_than_seconds
        removed = 0
        with self._errors("clean up temporary objects"):
            directories = [self._objects]
            directories += [
                Path(shard.path)
                for shard in os.scandir(self._objects)
                if shard.is_dir(follow_symlinks=False)
            ]
            for directory in directories:
                removed += _remove_old(directory, cutoff, lambda name: name.startswith(TEMP_PREFIX))
            packs = self._packs.directory
            if packs.is_dir():
                indexed = {n[:-4] for n in os.listdir(packs) if n.endswith(".idx")}
                removed += _remove_old(
                    packs,
                    cutoff,
                    lambda name: (
                        name.startswith(TEMP_PREFIX)
                        or (name.endswith(".pack") and name[:-5] not in indexed)
                    ),
                )
        return removed


def _remove_old(directory: Path, cutoff: float, matches: Callable[[str], bool]) -> int:
    removed = 0
    for entry in os.scandir(directory):
        if not matches(entry.name):
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

    def __init__(self, path: Path, final: Path, sync: SyncMode) -> None:
        self._path = path
        self._final = final
        self._sync = sync
        self._file = path.open("xb")

    def write(self, data: bytes | memoryview) -> None:
        self._file.write(data)

    def commit(self) -> None:
        self._file.flush()
        descriptor = self._file.fileno()
        if self._sync == "full":
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
        if self._sync == "full":
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
