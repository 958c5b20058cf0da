"""Deployments: named endpoints with a traffic policy, and the history of policy changes.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

ID = sa.String(32)
_BIGINT_ID = sa.Integer().with_variant(sa.BigInteger, "postgresql")


def upgrade() -> None:
    op.create_table(
        "deployments",
        sa.Column("id", ID, primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("policy", sa.Text, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.UniqueConstraint("name", name="uq_deployments_name"),
    )
    op.create_table(
        "deployment_events",
        sa.Column("id", _BIGINT_ID, primary_key=True),
        sa.Column(
            "deployment_id",
            ID,
            sa.ForeignKey(
                "deployments.id",
                ondelete="CASCADE",
                name="fk_deployment_events_deployment_id_deployments",
            ),
            nullable=False,
        ),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("policy", sa.Text, nullable=False),
        sa.Column("actor", sa.String(256), nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("details", sa.Text, nullable=False, server_default="{}"),
        sa.Column("at", sa.Float, nullable=False),
        sa.UniqueConstraint(
            "deployment_id", "revision", name="uq_deployment_events_deployment_id_revision"
        ),
    )


def downgrade() -> None:
    for table in ("deployment_events", "deployments"):
        op.drop_table(table)
