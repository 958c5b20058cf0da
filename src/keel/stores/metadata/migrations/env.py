"""Alembic environment: runs on the connection Keel hands it, never from alembic.ini."""

from __future__ import annotations

from alembic import context

from keel.stores.metadata._schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
