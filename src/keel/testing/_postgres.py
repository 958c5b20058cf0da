"""Scratch PostgreSQL databases for tests: created fresh, dropped afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

DEFAULT_ADMIN_URI = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def admin_uri() -> str:
    """Where to create scratch databases (``KEEL_TEST_POSTGRES_URI`` overrides)."""
    return os.environ.get("KEEL_TEST_POSTGRES_URI", DEFAULT_ADMIN_URI)


def postgres_available(uri: str | None = None) -> bool:
    """Whether a PostgreSQL server answers at ``uri`` (default: the test server)."""
    try:
        import sqlalchemy as sa

        engine = sa.create_engine(uri or admin_uri(), connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        engine.dispose()
    except Exception:
        return False
    return True


@contextmanager
def scratch_database(prefix: str = "keel_test") -> Iterator[str]:
    """Create an empty database and yield its URI; drop it on exit."""
    import sqlalchemy as sa

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(admin_uri(), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        url = sa.make_url(admin_uri()).set(database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
