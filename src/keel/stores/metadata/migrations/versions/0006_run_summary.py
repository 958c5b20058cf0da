"""Run summaries: each run's latest params, metrics and tags as one JSON column, filled
for existing runs; the search index gains the default order's tie-breaker.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from keel.stores.metadata._summary import rebuild

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BATCH = 2000


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("summary", sa.Text, nullable=False, server_default="{}"))
    op.drop_index("ix_runs_experiment_id_start_time", table_name="runs")
    op.create_index(
        "ix_runs_experiment_id_start_time_id",
        "runs",
        ["experiment_id", sa.text("start_time DESC"), "id", "deleted_at"],
    )
    conn = op.get_bind()
    after = ""
    while True:
        ids = list(
            conn.execute(
                sa.text("SELECT id FROM runs WHERE id > :after ORDER BY id LIMIT :n"),
                {"after": after, "n": BATCH},
            ).scalars()
        )
        if not ids:
            break
        rebuild(conn, ids)
        after = ids[-1]


def downgrade() -> None:
    op.drop_index("ix_runs_experiment_id_start_time_id", table_name="runs")
    op.create_index("ix_runs_experiment_id_start_time", "runs", ["experiment_id", "start_time"])
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("summary")
