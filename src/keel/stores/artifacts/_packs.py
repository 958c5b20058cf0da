"""Pack files: many small objects in one file, found through a sorted binary index.

Creating a file costs far more than writing 4 KiB into one, so objects smaller than
``PACK_THRESHOLD`` that arrive in a batch (``stage_files``) are appended to
``packs/<name>.pack`` instead of getting a file each. ``packs/<name>.idx`` lists them:

    header   8-byte magic b"KEELIDX\\0", u32 format version (1), u32 entry count
    entries  sorted by digest: 32-byte raw BLAKE3 digest, u64 offset, u64 size
    trailer  32-byte BLAKE3 digest of everything before it

(all integers little-endian). ``<name>`` is the BLAKE3 digest of the header and
entries: the entries' digests pin the bytes at their offsets, so the name identifies
the pack's content. Both files are written as ``.tmp-*`` files and renamed into place,
the ``.pack`` first and the ``.idx`` last: only indexes are ever listed, so a pack
without its index is invisible, and ``cleanup_temporary`` removes it once it is old.

Packs are immutable. An object inside one is read with one ``pread`` of its slice and
verified against its digest like any other object; removing packed objects means
rewriting packs (repacking), which belongs to garbage collection.
"""

from __future__ import annotations

import logging
import os
import stat
import struct
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, NamedTuple

import blake3

from keel.stores.artifacts._base import temporary_name

__all__ = [
    "PACK_MAX_BYTES",
    "PACK_MAX_ENTRIES",
    "PACK_THRESHOLD",
    "PackIndex",
    "PackWriter",
    "PackedObject",
    "SealedPack",
    "decode_index",
    "encode_index",
    "read_packed",
]

log = logging.getLogger(__name__)

PACK_THRESHOLD = 64 * 1024
"""Objects smaller than this (bytes) are packed when stored in a batch."""
PACK_MAX_BYTES = 64 * 1024 * 1024
PACK_MAX_ENTRIES = 10_000

_MAGIC = b"KEELIDX\x00"
_FORMAT_VERSION = 1
_HEADER = struct.Struct("<8sII")
_ENTRY = struct.Struct("<32sQQ")
_TRAILER = 32
_READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH


class PackedObject(NamedTuple):
    """Where a packed object lives: its pack file, offset and size."""

    pack: str
    offset: int
    size: int


def encode_index(entries: list[tuple[bytes, int, int]]) -> tuple[str, bytes]:
    """The pack name and index bytes for ``entries`` (raw digest, offset, size)."""
    entries = sorted(entries)
    body = bytearray(_HEADER.pack(_MAGIC, _FORMAT_VERSION, len(entries)))
    for entry in entries:
        body += _ENTRY.pack(*entry)
    name = blake3.blake3(body).hexdigest()
    return name, bytes(body) + blake3.blake3(body).digest()


def decode_index(data: bytes) -> list[tuple[bytes, int, int]]:
    """The entries of index bytes; ``ValueError`` if they are not a valid version-1 index."""
    if len(data) < _HEADER.size + _TRAILER:
        raise ValueError("too short to be a pack index")
    magic, version, count = _HEADER.unpack_from(data)
    if magic != _MAGIC:
        raise ValueError("not a Keel pack index")
    if version != _FORMAT_VERSION:
        raise ValueError(f"pack index format {version} is newer than this Keel understands")
    if len(data) != _HEADER.size + count * _ENTRY.size + _TRAILER:
        raise ValueError("truncated pack index")
    body = memoryview(data)[:-_TRAILER]
    if blake3.blake3(body).digest() != data[-_TRAILER:]:
        raise ValueError("pack index checksum mismatch")
    return list(_ENTRY.iter_unpack(body[_HEADER.size :]))


def read_packed(location: PackedObject) -> bytes:
    """The bytes at ``location`` (short if the pack is truncated: verification catches it)."""
    descriptor = os.open(location.pack, os.O_RDONLY)
    try:
        return os.pread(descriptor, location.size, location.offset)
    finally:
        os.close(descriptor)


@dataclass
class PackIndex:
    """The objects in the packs under ``directory``, loaded lazily, refreshed on demand.

    ``get`` answers from memory; ``refresh`` lists the directory and loads indexes that
    appeared (dropping packs that disappeared). An index that cannot be read or fails its
    checksum is logged and skipped: its objects count as absent, so the next batch that
    holds their content stores them again.
    """

    directory: Path
    _objects: dict[str, PackedObject] = field(default_factory=dict)
    _loaded: set[str] = field(default_factory=set)
    _damaged: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (inode, mtime)
    _listed: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, digest: str, *, refresh: bool = True) -> PackedObject | None:
        """Where ``digest`` is packed, or None; on a miss, look for new packs first."""
        found = self._objects.get(digest)
        if found is None and (refresh or not self._listed):
            self.refresh()
            found = self._objects.get(digest)
        return found

    def snapshot(self) -> Mapping[str, PackedObject]:
        """Every packed object known now (listing the packs first if never done)."""
        if not self._listed:
            self.refresh()
        return self._objects

    def refresh(self) -> None:
        """Load indexes written since the last look; forget packs that were removed."""
        with self._lock:
            try:
                names = {
                    entry[:-4]
                    for entry in os.listdir(self.directory)
                    if entry.endswith(".idx") and not entry.startswith(".")
                }
            except FileNotFoundError:
                names = set()
            self._listed = True
            if self._loaded - names:
                self._objects = {}
                self._loaded = set()
            objects = dict(self._objects)
            for name in sorted(names - self._loaded):
                self._loaded.add(name)
                self._load(name, objects)
            self._objects = objects

    def _load(self, name: str, into: dict[str, PackedObject]) -> None:
        index = self.directory / f"{name}.idx"
        pack = os.fspath(self.directory / f"{name}.pack")
        signature = (0, 0)
        try:
            with index.open("rb") as stream:
                info = os.fstat(stream.fileno())
                signature = (info.st_ino, info.st_mtime_ns)
                if self._damaged.get(name) == signature:
                    self._loaded.discard(name)  # known bad; look again once it is replaced
                    return
                entries = decode_index(stream.read())
        except FileNotFoundError:
            self._loaded.discard(name)  # removed between listing and reading
            return
        except (OSError, ValueError) as error:
            log.warning("pack index %s skipped (%s); its objects count as absent", index, error)
            self._loaded.discard(name)
            self._damaged[name] = signature
            return
        self._damaged.pop(name, None)
        for raw, offset, size in entries:
            into.setdefault(raw.hex(), PackedObject(pack, offset, size))


@dataclass(frozen=True, slots=True)
class SealedPack:
    """A finished pack and its index, both still temporary files."""

    name: str
    pack_temporary: str
    index_temporary: str
    count: int

    def publish(self, directory: str, between: Callable[[], None] | None = None) -> None:
        """Rename the pack, then (after ``between``, e.g. a directory fsync) its index."""
        os.replace(self.pack_temporary, f"{directory}/{self.name}.pack")
        if between is not None:
            between()
        os.replace(self.index_temporary, f"{directory}/{self.name}.idx")


class PackWriter:
    """Appends objects to temporary pack files in ``directory``; ``seal`` writes indexes."""

    def __init__(
        self,
        directory: str,
        created: list[str],
        *,
        max_bytes: int = PACK_MAX_BYTES,
        max_entries: int = PACK_MAX_ENTRIES,
    ) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self._created = created  # every temporary file, for cleanup on failure
        self._sealed: list[SealedPack] = []
        self._file: _OpenPack | None = None

    def add(self, digest: str, data: bytes) -> None:
        """Append ``data`` (whose digest is ``digest``) to the current pack."""
        current = self._file
        if current is None or (
            current.entries
            and (
                current.size + len(data) > self.max_bytes
                or len(current.entries) >= self.max_entries
            )
        ):
            self._close_current()
            current = self._file = self._open()
        current.stream.write(data)
        current.entries.append((bytes.fromhex(digest), current.size, len(data)))
        current.size += len(data)

    def seal(self) -> list[SealedPack]:
        """Close the packs and write their indexes; nothing is visible yet."""
        self._close_current()
        return self._sealed

    def abandon(self) -> None:
        """Close any open pack file (the caller removes the temporary files)."""
        current, self._file = self._file, None
        if current is not None:
            current.stream.close()

    def _open(self) -> _OpenPack:
        os.makedirs(self.directory, exist_ok=True)
        path = f"{self.directory}/{temporary_name()}"
        self._created.append(path)
        return _OpenPack(path, open(path, "xb", buffering=1024 * 1024))

    def _close_current(self) -> None:
        current, self._file = self._file, None
        if current is None:
            return
        current.stream.close()
        os.chmod(current.path, _READ_ONLY)
        name, index = encode_index(current.entries)
        index_path = f"{self.directory}/{temporary_name()}"
        self._created.append(index_path)
        descriptor = os.open(index_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _READ_ONLY)
        try:
            view = memoryview(index)
            while view:
                view = view[os.write(descriptor, view) :]
        finally:
            os.close(descriptor)
        self._sealed.append(SealedPack(name, current.path, index_path, len(current.entries)))


@dataclass
class _OpenPack:
    path: str
    stream: BinaryIO
    entries: list[tuple[bytes, int, int]] = field(default_factory=list)
    size: int = 0
