"""Read-only look-ups for loading a model from a SQLite store, without SQLAlchemy.

A process that only loads a registered model (a batch job, a notebook cell, a serving
worker) needs three answers from the metadata store: which package a ``models:/`` URI
names, whether its run is live, and the digest of each package file. Importing
SQLAlchemy and opening an engine costs more than the rest of the load together, so on
SQLite these come from the standard library's ``sqlite3`` instead (ADR 0020).

The reader only answers what it is sure of. It opens an existing database without
creating it, only at the schema revision this code writes (:data:`HEAD_REVISION`), and
returns ``None`` (or raises :class:`NotFound`) for anything it does not find or cannot
read; callers then take the full store, which migrates, explains and raises as usual.
The queries mirror :class:`ModelRegistryStore` and :class:`MetadataStore`; the
conformance tests hold them to the same answers.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from urllib.parse import quote

from keel.errors import NotFound
from keel.stores.metadata._revision import HEAD_REVISION

__all__ = ["SqliteReader", "sqlite_path"]

_BY_VERSION = (
    "SELECT v.source FROM model_versions v JOIN registered_models m ON m.id = v.model_id "
    "WHERE m.name = ? AND v.version = ?"
)
_BY_ALIAS = (
    "SELECT v.source FROM model_aliases a "
    "JOIN model_versions v ON v.id = a.version_id "
    "JOIN registered_models m ON m.id = a.model_id "
    "WHERE m.name = ? AND a.alias = ?"
)
_RUN = "SELECT deleted_at FROM runs WHERE id = ?"
_ARTIFACT = "SELECT digest FROM artifacts WHERE run_id = ? AND name = ?"


def sqlite_path(uri: str) -> Path | None:
    """The database file of a plain ``sqlite:///path`` URI; None for anything else.

    URIs with a driver, options or an in-memory database are left to SQLAlchemy.
    """
    prefix = "sqlite:///"
    if not uri.startswith(prefix):
        return None
    path = uri[len(prefix) :]
    if not path or path == ":memory:" or "?" in path or "#" in path:
        return None
    return Path(path)


class SqliteReader:
    """Look-ups over one SQLite metadata database, read-only, one connection."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._conn = connection
        self._lock = threading.Lock()

    @classmethod
    def open(cls, uri: str, *, timeout: float = 30.0) -> SqliteReader | None:
        """A reader of the database at ``uri``, or None unless it exists at the head revision."""
        path = sqlite_path(uri)
        if path is None or not path.is_file():
            return None
        target = f"file:{quote(str(path.resolve()))}?mode=rw"  # never creates the file
        try:
            conn = sqlite3.connect(target, uri=True, timeout=timeout, check_same_thread=False)
        except sqlite3.Error:
            return None
        try:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.Error:
            row = None
        if row is None or row[0] != HEAD_REVISION:
            conn.close()
            return None
        return cls(conn)

    def close(self) -> None:
        self._conn.close()

    def _one(self, query: str, *params: object) -> tuple[object, ...] | None:
        with self._lock:
            try:
                row: tuple[object, ...] | None = self._conn.execute(query, params).fetchone()
            except sqlite3.Error:
                return None
        return row

    def source(
        self, name: str, *, version: int | None = None, alias: str | None = None
    ) -> str | None:
        """The ``runs:/`` source of version ``version`` or alias ``alias`` of ``name``."""
        if alias is not None:
            row = self._one(_BY_ALIAS, name, alias)
        else:
            row = self._one(_BY_VERSION, name, version)
        return row[0] if row is not None and isinstance(row[0], str) else None

    def check_run(self, run_id: str) -> None:
        """NotFound unless ``run_id`` is a run that is not deleted."""
        row = self._one(_RUN, run_id)
        if row is None or row[0] is not None:
            raise NotFound(f"no run {run_id!r}; list runs with `keel runs list`")

    def digest(self, run_id: str, name: str) -> str | None:
        """The digest run ``run_id`` recorded for artifact ``name``, or None."""
        row = self._one(_ARTIFACT, run_id, name)
        return row[0] if row is not None and isinstance(row[0], str) else None
