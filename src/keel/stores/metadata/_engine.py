"""Engines for the metadata store: SQLite (embedded default) and PostgreSQL.

SQLite runs in WAL mode with a busy timeout so several processes can log to one file;
write transactions start with ``BEGIN IMMEDIATE`` so a read-then-write never fails
half-way with "database is locked". Migrations are applied on first use.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from keel.errors import ConfigurationError, Unavailable
from keel.stores.metadata._revision import HEAD_REVISION

log = logging.getLogger(__name__)

_MIGRATIONS = Path(__file__).with_name("migrations")
_migrate_lock = threading.Lock()

WRITE = "keel_write"
"""Execution option: a transaction that will write starts with BEGIN IMMEDIATE on SQLite."""


def create_engine(uri: str, *, timeout: float = 30.0, synchronous: str = "NORMAL") -> Engine:
    """An engine for ``uri`` with Keel's connection settings, schema migrated to head."""
    try:
        url = make_url(uri)
    except ArgumentError as exc:
        raise ConfigurationError(
            f"store URI {uri!r} is not a database URL; use sqlite:///path/keel.db or "
            "postgresql+psycopg://user@host:5432/db"
        ) from exc
    backend = url.get_backend_name()
    if backend == "sqlite":
        engine = _sqlite_engine(url, timeout=timeout, synchronous=synchronous)
    elif backend == "postgresql":
        if url.drivername == "postgresql":
            url = url.set(drivername="postgresql+psycopg")
        try:
            engine = sa.create_engine(url, pool_pre_ping=True, pool_size=8, max_overflow=16)
        except ModuleNotFoundError as exc:
            raise ConfigurationError(
                "PostgreSQL needs the psycopg driver; install it with "
                "`pip install 'keel-mlops[postgres]'`"
            ) from exc
    else:
        raise ConfigurationError(
            f"unsupported metadata store {backend!r} in {uri!r}; use sqlite or postgresql"
        )
    migrate(engine)
    return engine


def _sqlite_engine(url: sa.URL, *, timeout: float, synchronous: str) -> Engine:
    database = url.database or ""
    if database and database != ":memory:":
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": timeout, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        # Take over transaction control from the driver so BEGIN IMMEDIATE is possible.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA case_sensitive_like=ON")
        # Reads (run search) go through the OS page cache instead of copies per connection.
        cursor.execute("PRAGMA mmap_size=268435456")
        cursor.execute("PRAGMA cache_size=-32768")
        cursor.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        immediate = conn.get_execution_options().get(WRITE, False)
        # Straight to the driver: this runs for every transaction.
        conn.connection.driver_connection.execute(  # type: ignore[union-attr]
            "BEGIN IMMEDIATE" if immediate else "BEGIN"
        )

    return engine


def current_revision(engine: Engine) -> str | None:
    """The schema revision recorded in the database, or None for an empty database."""
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("alembic_version"):
            return None
        return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()


def migrate(engine: Engine) -> None:
    """Bring the schema to head; cheap when it is already there."""
    try:
        revision = current_revision(engine)
    except OperationalError as exc:
        raise Unavailable(
            f"cannot open the metadata store at {engine.url.render_as_string()}: "
            f"{exc.orig}; check that the server runs and the URI is right"
        ) from exc
    if revision == HEAD_REVISION:
        return
    from alembic import command
    from alembic.config import Config

    with _migrate_lock, engine.connect().execution_options(**{WRITE: True}) as conn:
        # Serialise concurrent first uses: SQLite takes its write lock at BEGIN IMMEDIATE,
        # PostgreSQL an advisory lock; then look again, another process may have finished.
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(4242001)")
        else:
            conn.exec_driver_sql("SELECT 1")
        if sa.inspect(conn).has_table("alembic_version"):
            revision = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
            if revision == HEAD_REVISION:
                conn.rollback()
                return
        config = Config()
        config.set_main_option("script_location", os.fspath(_MIGRATIONS))
        config.attributes["connection"] = conn
        log.info("migrating metadata store from %s to %s", revision, HEAD_REVISION)
        command.upgrade(config, "head")
        conn.commit()
