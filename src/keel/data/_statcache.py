"""The stat cache: one record per added root, (stat of every file) -> BLAKE3 digests.

A local SQLite file beside the store (``$KEEL_HOME/statcache.db``), not a table in
the metadata store: inode and device numbers only mean something on the machine that
read them, and a team's shared PostgreSQL must not hand one machine's stat results to
another. Losing the file costs one re-hash, nothing else.

A record holds, for the file or directory added at one absolute ``root``, the scan
(every file's relative path, path, size, mtime, ctime, inode and device, serialised
as one JSON document), each file's digest, and the manifest digest when every file
was cacheable. A re-add compares its own scan with the stored one as two byte
strings: when they are equal nothing changed and the stored manifest digest is the
version's, with no per-file work at all. Otherwise files are matched by path, and a
file is reused only when its whole stat is unchanged (a file added, removed, resized,
touched or replaced misses).

Racily clean files (modified within the filesystem's timestamp granularity of the
scan) are not cached, as in git: a second write in the same tick would leave the
stat unchanged. Filesystems with whole-second timestamps get a two-second window.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import orjson

from keel.data._manifest import ScannedFile

__all__ = ["CacheHit", "StatCache", "now_ns"]

log = logging.getLogger(__name__)

_FINE_WINDOW_NS = 50_000_000
_COARSE_WINDOW_NS = 2_000_000_000
_SCHEMA = """
CREATE TABLE IF NOT EXISTS roots (
    root TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    manifest TEXT,
    scan BLOB NOT NULL,
    digests BLOB NOT NULL
) WITHOUT ROWID
"""
# The per-file table of earlier versions: its rows are never read again.
_DROP_OLD = "DROP TABLE IF EXISTS files"


class CacheHit(NamedTuple):
    """What the cache knows about a scan: a digest per file (None: hash it), and the
    manifest digest when the whole scan is unchanged and every file was cached."""

    digests: list[str | None]
    manifest: str | None


class StatCache:
    """Digests of files whose stat has not changed since they were hashed."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self.lock = threading.Lock()

    def _connect(self) -> sqlite3.Connection | None:
        if self.path is None:
            return None
        if self._conn is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(
                    self.path, timeout=30, isolation_level=None, check_same_thread=False
                )
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute(_SCHEMA)
                conn.execute(_DROP_OLD)
                self._conn = conn
            except sqlite3.Error as error:
                log.warning("stat cache %s unusable (%s); hashing every file", self.path, error)
                self.path = None
                return None
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def lookup(self, root: Path, kind: str, files: Sequence[ScannedFile]) -> CacheHit:
        """The cached digest of each file of the scan of ``root`` (None: hash it)."""
        with self.lock:
            return self._lookup(str(root), kind, files)

    def _lookup(self, root: str, kind: str, files: Sequence[ScannedFile]) -> CacheHit:
        miss = CacheHit([None] * len(files), None)
        conn = self._connect()
        if conn is None or not files:
            return miss
        try:
            row = conn.execute(
                "SELECT kind, manifest, scan, digests FROM roots WHERE root = ?", (root,)
            ).fetchone()
        except sqlite3.Error as error:
            log.warning("stat cache %s unreadable (%s); hashing every file", self.path, error)
            return miss
        if row is None or row[0] != kind:
            return miss
        manifest, scan, digests_blob = row[1:]
        try:
            digests: list[str | None] = orjson.loads(digests_blob)
            if scan == _encode_scan(files):
                return CacheHit(digests, manifest)
            stored = list(map(tuple, orjson.loads(scan)))
            if len(stored) != len(digests):
                raise ValueError("scan and digests differ in length")
        except (orjson.JSONDecodeError, ValueError, TypeError) as error:
            log.warning("stat cache record for %s unreadable (%s); hashing it", root, error)
            return miss
        # Something changed: match by path, reuse a digest only for an identical stat.
        known = {s[1]: (s, d) for s, d in zip(stored, digests, strict=True)}
        return CacheHit(
            [
                hit[1] if (hit := known.get(f.path)) is not None and hit[0] == f else None
                for f in files
            ],
            None,
        )

    def store(
        self,
        root: Path,
        kind: str,
        files: Sequence[ScannedFile],
        digests: Sequence[str],
        manifest: str,
        scan_started_ns: int,
    ) -> None:
        """Remember the digests of the scan of ``root`` (racily clean files left out)."""
        with self.lock:
            conn = self._connect()
            if conn is None:
                return
            racy_after = scan_started_ns - _FINE_WINDOW_NS
            coarse_after = scan_started_ns - _COARSE_WINDOW_NS
            kept: list[str | None] = [
                None
                if f.mtime_ns >= racy_after
                or (f.mtime_ns >= coarse_after and f.mtime_ns % 1_000_000_000 == 0)
                else d
                for f, d in zip(files, digests, strict=True)
            ]
            complete = None not in kept
            if not complete and not any(kept):
                return
            try:
                conn.execute(
                    "INSERT OR REPLACE INTO roots VALUES (?, ?, ?, ?, ?)",
                    (
                        str(root),
                        kind,
                        manifest if complete else None,
                        _encode_scan(files),
                        orjson.dumps(kept),
                    ),
                )
            except sqlite3.Error as error:
                log.warning("stat cache %s not updated (%s)", self.path, error)


def _encode_scan(files: Sequence[ScannedFile]) -> bytes:
    """The scan as canonical bytes: equal bytes, equal stats of the same files."""
    return orjson.dumps(list(map(tuple, files)))


def now_ns() -> int:
    return time.time_ns()
