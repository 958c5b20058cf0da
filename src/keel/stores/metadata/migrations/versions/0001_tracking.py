"""Tracking: experiments, runs, params, tags, metrics, artifacts, environments.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID = sa.String(32)
KEY = sa.String(250)


def _run_fk() -> sa.Column[str]:
    return sa.Column("run_id", ID, sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("id", ID, primary_key=True),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("deleted_at", sa.Float, nullable=True),
        sa.UniqueConstraint("name", name="uq_experiments_name"),
    )
    op.create_table(
        "environments",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("body", sa.Text, nullable=False),
    )
    op.create_table(
        "runs",
        sa.Column("id", ID, primary_key=True),
        sa.Column(
            "experiment_id",
            ID,
            sa.ForeignKey("experiments.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("start_time", sa.Float, nullable=False),
        sa.Column("end_time", sa.Float, nullable=True),
        sa.Column("parent_id", ID, nullable=True),
        sa.Column("source", sa.Text, nullable=False, server_default="{}"),
        sa.Column("environment_digest", sa.String(64), nullable=True),
        sa.Column("deleted_at", sa.Float, nullable=True),
    )
    op.create_index("ix_runs_experiment_id_start_time", "runs", ["experiment_id", "start_time"])
    op.create_index("ix_runs_parent_id", "runs", ["parent_id"])
    for table in ("params", "tags"):
        op.create_table(
            table,
            _run_fk(),
            sa.Column("key", KEY, primary_key=True),
            sa.Column("value", sa.Text, nullable=False),
            sqlite_with_rowid=False,
        )
        op.create_index(f"ix_{table}_key_run_id", table, ["key", "run_id"])
    op.create_table(
        "metrics_latest",
        _run_fk(),
        sa.Column("key", KEY, primary_key=True),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("step", sa.BigInteger, nullable=False),
        sa.Column("timestamp", sa.Float, nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_metrics_latest_key_value", "metrics_latest", ["key", "value"])
    op.create_table(
        "metric_chunks",
        sa.Column("id", sa.Integer().with_variant(sa.BigInteger, "postgresql"), primary_key=True),
        sa.Column("run_id", ID, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("key", KEY, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("steps", sa.LargeBinary, nullable=False),
        sa.Column("timestamps", sa.LargeBinary, nullable=False),
        sa.Column("values", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_metric_chunks_run_id_key", "metric_chunks", ["run_id", "key"])
    op.create_table(
        "artifacts",
        _run_fk(),
        sa.Column("name", sa.String(1024), primary_key=True),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_artifacts_digest", "artifacts", ["digest"])


def downgrade() -> None:
    for table in (
        "artifacts",
        "metric_chunks",
        "metrics_latest",
        "tags",
        "params",
        "runs",
        "environments",
        "experiments",
    ):
        op.drop_table(table)
