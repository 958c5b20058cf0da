"""The artifact store on any fsspec filesystem (``s3://``, ``gs://``, ``memory://``, ...).

fsspec is imported only when such a store is opened, so ``import keel`` stays light.
The commit is ``fs.mv`` of a fully written temporary object: a real rename where the
filesystem has one, and on object stores (where an upload only becomes visible once
complete anyway) a server-side copy, so a reader still never sees a partial object.
"""

from __future__ import annotations

import contextlib
import posixpath
import time
from datetime import datetime
from typing import Any, BinaryIO, cast

from keel.errors import InvalidArgument, Unavailable
from keel.stores.artifacts._base import (
    TEMP_PREFIX,
    ArtifactStore,
    TemporaryObject,
    temporary_name,
)

__all__ = ["FsspecArtifactStore"]

_MODIFIED_KEYS = ("mtime", "LastModified", "last_modified", "updated", "modified", "created")


class FsspecArtifactStore(ArtifactStore):
    """Objects under ``<root>/objects/ab/cdef...`` on the fsspec filesystem named by ``uri``."""

    def __init__(self, uri: str, **storage_options: Any) -> None:
        super().__init__(uri)
        try:
            import fsspec.core

            self.fs, root = fsspec.core.url_to_fs(uri, **storage_options)
        except ImportError as error:
            raise Unavailable(
                f"artifact store {uri} needs a driver that is not installed ({error}); "
                "install it, for example `pip install keel-mlops[s3]` for s3://"
            ) from error
        except ValueError as error:
            raise InvalidArgument(
                f"artifact store {uri} has an unknown scheme ({error}); use file://, s3:// "
                "or another fsspec protocol, or register one with register_scheme()"
            ) from error
        self.root = str(root).rstrip("/")
        self._objects = f"{self.root}/objects"

    def _path(self, digest: str) -> str:
        return f"{self._objects}/{digest[:2]}/{digest[2:]}"

    def _exists(self, digest: str) -> bool:
        return bool(self.fs.isfile(self._path(digest)))

    def _size(self, digest: str) -> int:
        return int(self.fs.size(self._path(digest)))

    def _open(self, digest: str) -> BinaryIO:
        return cast(BinaryIO, self.fs.open(self._path(digest), "rb"))

    def _delete(self, digest: str) -> bool:
        try:
            self.fs.rm_file(self._path(digest))
        except FileNotFoundError:
            return False
        return True

    def _create_temporary(self, digest: str) -> TemporaryObject:
        final = self._path(digest)
        directory = posixpath.dirname(final)
        self.fs.makedirs(directory, exist_ok=True)
        return _FsspecTemporary(self.fs, f"{directory}/{temporary_name()}", final)

    def cleanup_temporary(self, older_than_seconds: float) -> int:
        """Remove ``.tmp-*`` objects older than ``older_than_seconds``; return how many.

        Filesystems that report no modification time have their temporary objects
        removed only when ``older_than_seconds`` is 0 or less.
        """
        cutoff = time.time() - older_than_seconds
        removed = 0
        with self._errors("clean up temporary objects"):
            if not self.fs.exists(self._objects):
                return 0
            found = self.fs.find(self._objects, detail=True)
            for path, info in found.items():
                if not posixpath.basename(path).startswith(TEMP_PREFIX):
                    continue
                modified = _modified_time(info)
                old = older_than_seconds <= 0 if modified is None else modified <= cutoff
                if old:
                    try:
                        self.fs.rm_file(path)
                    except FileNotFoundError:
                        continue
                    removed += 1
        return removed


class _FsspecTemporary(TemporaryObject):
    """A ``.tmp-<random>`` object beside the final one, moved into place on commit."""

    def __init__(self, fs: Any, path: str, final: str) -> None:
        self._fs = fs
        self._path = path
        self._final = final
        self._file = fs.open(path, "wb")

    def write(self, data: bytes | memoryview) -> None:
        self._file.write(data)

    def commit(self) -> None:
        self._file.close()
        self._fs.mv(self._path, self._final)

    def discard(self) -> None:
        if not self._file.closed:
            discard = getattr(self._file, "discard", None)
            if callable(discard):
                discard()  # abort an upload rather than completing it
            self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self._fs.rm_file(self._path)


def _modified_time(info: dict[str, Any]) -> float | None:
    """The modification time in an fsspec ``info`` record, as a POSIX timestamp."""
    for key in _MODIFIED_KEYS:
        value = info.get(key)
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None
