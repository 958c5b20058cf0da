"""The stat cache: (path, size, mtime, ctime, inode, device) -> BLAKE3 digest.

A local SQLite file beside the store (``$KEEL_HOME/statcache.db``), not a table in
the metadata store: inode and device numbers only mean something on the machine that
read them, and a team's shared PostgreSQL must not hand one machine's stat results to
another. Losing the file costs one re-hash, nothing else.

Racily clean files (modified within the filesystem's timestamp granularity of the
scan) are not cached, as in git: a second write in the same tick would leave the
stat unchanged. Filesystems with whole-second timestamps get a two-second window.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from keel.data._manifest import ScannedFile

__all__ = ["StatCache"]

log = logging.getLogger(__name__)

_FINE_WINDOW_NS = 50_000_000
_COARSE_WINDOW_NS = 2_000_000_000
_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    device INTEGER NOT NULL,
    digest TEXT NOT NULL
) WITHOUT ROWID
"""


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

    def lookup(self, root: Path, files: Sequence[ScannedFile]) -> list[str | None]:
        """The cached digest of each file, or None where it must be hashed."""
        with self.lock:
            return self._lookup(root, files)

    def _lookup(self, root: Path, files: Sequence[ScannedFile]) -> list[str | None]:
        conn = self._connect()
        if conn is None or not files:
            return [None] * len(files)
        try:
            if len(files) == 1:
                rows = conn.execute(
                    "SELECT path, size, mtime_ns, ctime_ns, inode, device, digest FROM files "
                    "WHERE path = ?",
                    (files[0].path,),
                ).fetchall()
            else:
                prefix = str(root).rstrip("/") + "/"
                rows = conn.execute(
                    "SELECT path, size, mtime_ns, ctime_ns, inode, device, digest FROM files "
                    "WHERE path >= ? AND path < ?",
                    (prefix, prefix[:-1] + "0"),
                ).fetchall()
        except sqlite3.Error as error:
            log.warning("stat cache %s unreadable (%s); hashing every file", self.path, error)
            return [None] * len(files)
        known = {row[0]: row for row in rows}
        missing = (None,) * 7
        # (size, mtime, ctime, inode, device) are fields 2..6 of a ScannedFile, 1..5 of a row
        return [row[6] if (row := known.get(f[1], missing))[1:6] == f[2:7] else None for f in files]

    def store(self, entries: Iterable[tuple[ScannedFile, str]], scan_started_ns: int) -> None:
        """Remember digests of files that were not racily clean at ``scan_started_ns``."""
        with self.lock:
            self._store(list(entries), scan_started_ns)

    def _store(self, entries: list[tuple[ScannedFile, str]], scan_started_ns: int) -> None:
        conn = self._connect()
        if conn is None:
            return
        rows = [
            (f.path, f.size, f.mtime_ns, f.ctime_ns, f.inode, f.device, digest)
            for f, digest in entries
            if not _racy(f, scan_started_ns)
        ]
        if not rows:
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            conn.execute("COMMIT")
        except sqlite3.Error as error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            log.warning("stat cache %s not updated (%s)", self.path, error)


def _racy(f: ScannedFile, scan_started_ns: int) -> bool:
    newest = f.mtime_ns
    window = _COARSE_WINDOW_NS if newest % 1_000_000_000 == 0 else _FINE_WINDOW_NS
    return newest >= scan_started_ns - window


def now_ns() -> int:
    return time.time_ns()
