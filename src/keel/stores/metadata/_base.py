"""What every table group of the metadata store shares: the engine and its transactions."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from keel.core._ids import new_id
from keel.errors import Unavailable
from keel.stores.metadata._engine import WRITE


class EngineStore:
    """A group of tables over one engine, with Keel's read and write transactions.

    Writes start with ``BEGIN IMMEDIATE`` on SQLite (the ``WRITE`` option); a database
    that stays locked past the timeout, or a server that cannot be reached, becomes
    ``Unavailable`` whether SQLAlchemy or the sqlite3 driver raised it.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name

    @property
    def _insert(self) -> Callable[[sa.Table], Any]:
        """The dialect's INSERT, which has ``on_conflict_do_*`` (the other dialect's
        module is never imported: a SQLite store does not load PostgreSQL's).
        """
        if self.dialect == "postgresql":
            from sqlalchemy.dialects import postgresql

            return postgresql.insert
        from sqlalchemy.dialects import sqlite

        return sqlite.insert

    @contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        try:
            with self.engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
                yield conn
        except (OperationalError, sqlite3.OperationalError) as exc:
            reason = getattr(exc, "orig", exc)
            raise Unavailable(
                f"the metadata store refused a write: {reason}; if another process holds "
                "the database, retry or raise KEEL_DB_TIMEOUT"
            ) from exc

    @contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        try:
            with self.engine.connect() as conn:
                yield conn
        except (OperationalError, sqlite3.OperationalError) as exc:
            reason = getattr(exc, "orig", exc)
            raise Unavailable(f"the metadata store refused a read: {reason}") from exc

    def _lock_counter(self, conn: sa.Connection, table: sa.Table, name: str) -> tuple[str, int]:
        """``(id, latest_version)`` of the row called ``name``, created if missing and
        locked for this transaction, so the next version number is gapless.

        SQLite's write transactions already hold the database lock (``BEGIN IMMEDIATE``);
        PostgreSQL locks the row with ``SELECT ... FOR UPDATE``.
        """
        conn.execute(
            self._insert(table)
            .values(id=new_id(), name=name, created_at=time.time(), latest_version=0)
            .on_conflict_do_nothing(index_elements=["name"])
        )
        query = sa.select(table.c.id, table.c.latest_version).where(table.c.name == name)
        if self.dialect == "postgresql":
            query = query.with_for_update()
        row_id, latest = conn.execute(query).one()
        return row_id, latest
