"""Monitors: deployments watched against a reference, their window reports and alerts.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

ID = sa.String(32)
_BIGINT_ID = sa.Integer().with_variant(sa.BigInteger, "postgresql")


def _monitor_fk(table: str) -> sa.Column[str]:
    return sa.Column(
        "monitor_id",
        ID,
        sa.ForeignKey("monitors.id", ondelete="CASCADE", name=f"fk_{table}_monitor_id_monitors"),
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "monitors",
        sa.Column("id", ID, primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("deployment", sa.String(64), nullable=False),
        sa.Column("reference", sa.String(256), nullable=False),
        sa.Column("reference_version_id", ID, nullable=False),
        sa.Column("window_seconds", sa.Integer, nullable=False),
        sa.Column("slices", sa.Text, nullable=False, server_default="[]"),
        sa.Column("rules", sa.Text, nullable=False, server_default="[]"),
        sa.Column("webhook", sa.Text, nullable=True),
        sa.Column("alert_state", sa.Text, nullable=False, server_default="{}"),
        sa.Column("last_window_end", sa.Float, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.UniqueConstraint("name", name="uq_monitors_name"),
    )
    op.create_table(
        "monitor_reports",
        sa.Column("id", _BIGINT_ID, primary_key=True),
        _monitor_fk("monitor_reports"),
        sa.Column("window_start", sa.Float, nullable=False),
        sa.Column("window_end", sa.Float, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("report", sa.Text, nullable=False),
        sa.UniqueConstraint(
            "monitor_id", "window_start", name="uq_monitor_reports_monitor_id_window_start"
        ),
    )
    op.create_table(
        "monitor_alerts",
        sa.Column("id", _BIGINT_ID, primary_key=True),
        _monitor_fk("monitor_alerts"),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("rule", sa.String(250), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("delivered", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("delivered_to", sa.Text, nullable=False, server_default="[]"),
        sa.UniqueConstraint("monitor_id", "key", name="uq_monitor_alerts_monitor_id_key"),
    )
    op.create_index(
        "ix_monitor_alerts_monitor_id_delivered", "monitor_alerts", ["monitor_id", "delivered"]
    )


def downgrade() -> None:
    for table in ("monitor_alerts", "monitor_reports", "monitors"):
        op.drop_table(table)
