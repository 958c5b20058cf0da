"""The content-addressed artifact store: digests, references and the shared read/write logic.

An object's name is its BLAKE3 digest, so identical content is stored once and every
read can be checked against the name it was asked for. Only validated digests ever
become part of a storage path; user-supplied names live in the metadata store.

Writes go to a temporary object (``.tmp-<random>`` next to where the object will live)
and are renamed into place only once complete, so a crash never leaves a partial
object visible. ``put_file`` hashes the source first and copies it only when the store
does not hold it yet: re-logging unchanged content costs one read and no write, and
the copy is hashed again while it streams so a source that changes mid-copy is caught
instead of being stored under the wrong name. Hard-linking the source was rejected:
the user could later modify the shared inode and corrupt the store.
"""

from __future__ import annotations

import abc
import io
import os
import re
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

import blake3

from keel.errors import Conflict, IntegrityError, InvalidArgument, NotFound, Unavailable

if TYPE_CHECKING:
    from keel.stores.artifacts._bulk import SourceFile, StagedFiles

__all__ = [
    "CHUNK_SIZE",
    "SYNC_MODES",
    "ArtifactRef",
    "ArtifactStore",
    "SyncMode",
    "TemporaryObject",
    "validate_digest",
]

SyncMode = Literal["normal", "full"]
"""How hard a local store pushes writes to disk (``KEEL_SYNC``; docs/adr/0010).

``normal``: objects appear atomically (temporary file + rename) and survive a crash of
the process; the OS writes the data back, and every read verifies the digest, so a
power cut can at worst make an object fail verification, never return wrong bytes.
``full``: objects and their directories are fsynced before they are visible.
"""
SYNC_MODES: tuple[SyncMode, ...] = ("normal", "full")

CHUNK_SIZE = 4 * 1024 * 1024
"""Bytes read or written per step when streaming: memory stays bounded by this."""

_SMALL_FILE = 1024 * 1024  # read in one go: one read instead of hash-then-copy
_PARALLEL_THRESHOLD = 1024 * 1024  # inputs at least this big are hashed on all cores
_DIGEST_RE = re.compile(r"[0-9a-f]{64}")
TEMP_PREFIX = ".tmp-"


def validate_digest(digest: object) -> str:
    """Check that ``digest`` is a BLAKE3 hex digest (64 lowercase hex characters)."""
    if not isinstance(digest, str) or not _DIGEST_RE.fullmatch(digest):
        shown = repr(digest) if not isinstance(digest, str) or len(digest) <= 80 else "(long)"
        raise InvalidArgument(
            f"invalid artifact digest {shown}: expected 64 lowercase hexadecimal characters, "
            "as returned in ArtifactRef.digest by put_bytes() or put_file()"
        )
    return digest


def new_hasher(size_hint: int) -> Any:
    """A BLAKE3 hasher, multi-threaded when the input is large enough to gain from it."""
    if size_hint >= _PARALLEL_THRESHOLD:
        return blake3.blake3(max_threads=blake3.blake3.AUTO)
    return blake3.blake3()


def temporary_name() -> str:
    """A fresh temporary object name; never a valid object name, so never visible as one."""
    return TEMP_PREFIX + secrets.token_hex(8)


@dataclass(frozen=True, slots=True)
class ArtifactRef:
    """A stored object: its BLAKE3 hex digest and its size in bytes."""

    digest: str
    size: int


class TemporaryObject(abc.ABC):
    """An object being written; invisible until ``commit`` moves it into place atomically."""

    @abc.abstractmethod
    def write(self, data: bytes | memoryview) -> None:
        """Append ``data``."""

    @abc.abstractmethod
    def commit(self) -> None:
        """Make the content durable and rename it to its object name."""

    @abc.abstractmethod
    def discard(self) -> None:
        """Remove the temporary object; safe to call more than once."""


class ArtifactStore(abc.ABC):
    """Objects addressed by their BLAKE3 digest, laid out as ``objects/ab/cdef...``.

    Subclasses provide storage primitives (the ``_``-prefixed abstract methods), which
    receive only validated digests; hashing, verification and error messages live here
    so every back-end behaves the same. Instances hold no mutable state and are safe to
    share between threads; concurrent puts of the same content, from threads or
    processes, each write their own temporary object and the renames are idempotent.
    """

    def __init__(self, uri: str) -> None:
        self.uri = uri

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.uri!r})"

    # -- storage primitives -------------------------------------------------------

    @abc.abstractmethod
    def _exists(self, digest: str) -> bool: ...

    @abc.abstractmethod
    def _size(self, digest: str) -> int:
        """Raise ``FileNotFoundError`` when absent."""

    @abc.abstractmethod
    def _open(self, digest: str) -> BinaryIO:
        """Raise ``FileNotFoundError`` when absent."""

    @abc.abstractmethod
    def _delete(self, digest: str) -> bool: ...

    @abc.abstractmethod
    def _create_temporary(self, digest: str) -> TemporaryObject: ...

    @abc.abstractmethod
    def cleanup_temporary(self, older_than_seconds: float) -> int:
        """Remove temporary objects left by crashed writers; return how many were removed.

        Pick an age longer than any write can take: a younger temporary object may
        belong to a put still in progress.
        """

    # -- writing ------------------------------------------------------------------

    def put_bytes(self, data: bytes) -> ArtifactRef:
        """Store ``data`` (once, however often it is put) and return its reference."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise InvalidArgument(
                f"put_bytes() needs bytes, got {type(data).__name__}; "
                "encode text first, for example text.encode('utf-8')"
            )
        if not isinstance(data, bytes):
            data = bytes(data)  # a snapshot: mutable input must not change after hashing
        digest = new_hasher(len(data)).update(data).hexdigest()
        with self._errors("store an object"):
            if not self._exists(digest):
                self._write(digest, [memoryview(data)])
        return ArtifactRef(digest, len(data))

    def put_file(self, path: os.PathLike[str] | str) -> ArtifactRef:
        """Store the file at ``path``, streaming it with bounded memory."""
        source = Path(path)
        small: bytes | None = None
        try:
            size = source.stat().st_size
            if not source.is_file():
                raise InvalidArgument(f"{source} is not a regular file; pass a file's path")
            if size < _SMALL_FILE:
                small = source.read_bytes()
            else:
                digest = _hash_file(source, size)
        except FileNotFoundError:
            raise NotFound(f"no file {source}; check the path") from None
        except PermissionError as error:
            raise InvalidArgument(
                f"cannot read {source}: {error.strerror}; check its permissions"
            ) from None
        if small is not None:
            return self.put_bytes(small)
        with self._errors("store an object"):
            if self._exists(digest):
                return ArtifactRef(digest, self._size(digest))
            size = self._write(digest, _read_chunks(source), source=source)
        return ArtifactRef(digest, size)

    def _write(
        self,
        digest: str,
        chunks: Iterator[memoryview] | list[memoryview],
        source: Path | None = None,
    ) -> int:
        """Write ``chunks`` to a temporary object, check them against ``digest``, commit."""
        temporary = self._create_temporary(digest)
        try:
            hasher = new_hasher(_PARALLEL_THRESHOLD) if source is not None else None
            size = 0
            for chunk in chunks:
                if hasher is not None:
                    hasher.update(chunk)
                temporary.write(chunk)
                size += len(chunk)
            if hasher is not None and hasher.hexdigest() != digest:
                raise Conflict(
                    f"{source} changed while it was being stored; "
                    "log it again once nothing is writing to it"
                )
            temporary.commit()
        except BaseException:
            temporary.discard()
            raise
        return size

    def stage_files(self, files: Sequence[SourceFile], *, workers: int = 8) -> StagedFiles:
        """Hash and store many files; objects become visible at ``commit()`` of the result.

        This generic version stores each file at once (``commit`` has nothing left to
        do); the local store stages them and makes them durable in one parallel batch.
        """
        from keel.stores.artifacts._bulk import StagedFiles, parallel_map

        refs = parallel_map(lambda f: self._stage_generic(f), files, workers)
        return StagedFiles(refs, _workers=workers)

    def _stage_generic(self, source: SourceFile) -> ArtifactRef:
        if source.digest is not None and self.exists(source.digest):
            return ArtifactRef(source.digest, source.size)
        return self.put_file(source.path)

    def local_path(self, digest: str) -> Path | None:
        """The object's path when the store is a local filesystem, else None (read-only!)."""
        validate_digest(digest)
        return None

    # -- reading ------------------------------------------------------------------

    def exists(self, digest: str) -> bool:
        """Whether the store holds the object ``digest``."""
        validate_digest(digest)
        with self._errors("look up an object"):
            return self._exists(digest)

    def size(self, digest: str) -> int:
        """The size in bytes of the object ``digest``."""
        validate_digest(digest)
        with self._errors("look up an object"), self._missing(digest):
            return self._size(digest)

    def delete(self, digest: str) -> bool:
        """Remove the object ``digest``; return whether it was there (for garbage collection)."""
        validate_digest(digest)
        with self._errors("delete an object"):
            return self._delete(digest)

    def open(self, digest: str) -> BinaryIO:
        """A forward-only stream of the object that raises IntegrityError at EOF if corrupt.

        Bytes are handed out as they are read, so a consumer that stops early has read
        unverified data; use ``get_bytes`` or ``copy_to`` when that matters.
        """
        validate_digest(digest)
        with self._errors("read an object"), self._missing(digest):
            raw = self._open(digest)
        return io.BufferedReader(_VerifyingReader(raw, digest, self), CHUNK_SIZE)

    def get_bytes(self, digest: str) -> bytes:
        """The whole object, verified before it is returned."""
        validate_digest(digest)
        with self._errors("read an object"), self._missing(digest), self._open(digest) as stream:
            data = stream.read()
        if new_hasher(len(data)).update(data).hexdigest() != digest:
            raise self._corrupt(digest)
        return data

    def copy_to(self, digest: str, dest_path: os.PathLike[str] | str) -> None:
        """Write the object to ``dest_path``; nothing lands there unless it verifies.

        The copy streams to a temporary file beside ``dest_path`` and is renamed over it
        only after the digest matched. It is not fsynced: the store keeps the durable
        copy and the file can be fetched again.
        """
        validate_digest(digest)
        dest = Path(dest_path)
        if dest.is_dir():
            raise InvalidArgument(f"{dest} is a directory; pass the path of the file to write")
        dest.parent.mkdir(parents=True, exist_ok=True)
        temporary = dest.with_name(f".{dest.name}{temporary_name()}")
        try:
            with self._errors("read an object"), self._missing(digest):
                stream = self._open(digest)
            hasher = new_hasher(_PARALLEL_THRESHOLD)
            with stream, temporary.open("xb") as out:
                while chunk := stream.read(CHUNK_SIZE):
                    hasher.update(chunk)
                    out.write(chunk)
            if hasher.hexdigest() != digest:
                raise self._corrupt(digest)
            os.replace(temporary, dest)
        finally:
            temporary.unlink(missing_ok=True)

    # -- errors -------------------------------------------------------------------

    def _corrupt(self, digest: str) -> IntegrityError:
        return IntegrityError(
            f"artifact object {digest} in {self.uri} is corrupt: its content no longer "
            "matches its digest, so it was not used. Delete it with delete() and log the "
            "artifact again from its source",
            digest=digest,
        )

    @contextmanager
    def _missing(self, digest: str) -> Iterator[None]:
        try:
            yield
        except FileNotFoundError:
            raise NotFound(
                f"no artifact object {digest} in {self.uri}; it was never stored here or "
                "was garbage-collected. Log the artifact again",
                digest=digest,
            ) from None

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except FileNotFoundError:
            raise
        except OSError as error:
            raise Unavailable(
                f"could not {action} in artifact store {self.uri}: {error}; "
                "check that it is reachable, writable and not full"
            ) from error


class _VerifyingReader(io.RawIOBase):
    """Passes an object's bytes through, hashing them; raises IntegrityError at EOF."""

    def __init__(self, raw: BinaryIO, digest: str, store: ArtifactStore) -> None:
        self._raw = raw
        self._digest = digest
        self._store = store
        self._hasher = blake3.blake3()
        self._verified = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._raw.read(len(view))
        if data:
            self._hasher.update(data)
            view[: len(data)] = data
            return len(data)
        if not self._verified and len(view):
            if self._hasher.hexdigest() != self._digest:
                raise self._store._corrupt(self._digest)
            self._verified = True
        return 0

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


def _hash_file(path: Path, size_hint: int) -> str:
    """The BLAKE3 digest of a file, read in chunks.

    Not ``update_mmap``: it is a little faster, but a file truncated while mapped
    raises SIGBUS and kills the whole process.
    """
    hasher = new_hasher(size_hint)
    for chunk in _read_chunks(path):
        hasher.update(chunk)
    return str(hasher.hexdigest())


def _read_chunks(path: Path) -> Iterator[memoryview]:
    """The file's bytes in ``CHUNK_SIZE`` pieces, reusing one buffer."""
    buffer = bytearray(CHUNK_SIZE)
    view = memoryview(buffer)
    with path.open("rb", buffering=0) as stream:
        while count := stream.readinto(buffer):
            yield view[:count]
