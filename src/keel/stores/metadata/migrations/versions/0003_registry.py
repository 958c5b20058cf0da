"""Model registry: registered models, versions, version tags, aliases with history, approvals.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ID = sa.String(32)
_BIGINT_ID = sa.Integer().with_variant(sa.BigInteger, "postgresql")


def _fk(name: str, table: str, *, cascade: bool = True, **kwargs: object) -> sa.Column[str]:
    target = sa.ForeignKey(f"{table}.id", ondelete="CASCADE" if cascade else None)
    return sa.Column(name, ID, target, **kwargs)  # type: ignore[arg-type]


def upgrade() -> None:
    op.create_table(
        "registered_models",
        sa.Column("id", ID, primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("latest_version", sa.Integer, nullable=False, server_default="0"),
        sa.UniqueConstraint("name", name="uq_registered_models_name"),
    )
    op.create_table(
        "model_versions",
        sa.Column("id", ID, primary_key=True),
        _fk("model_id", "registered_models", nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        _fk("run_id", "runs", cascade=False, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="active"),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("gate", sa.String(16), nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.UniqueConstraint("model_id", "version", name="uq_model_versions_model_id_version"),
    )
    op.create_index("ix_model_versions_run_id", "model_versions", ["run_id"])
    op.create_table(
        "model_version_tags",
        _fk("version_id", "model_versions", primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_index(
        "ix_model_version_tags_key_version_id", "model_version_tags", ["key", "version_id"]
    )
    op.create_table(
        "model_aliases",
        _fk("model_id", "registered_models", primary_key=True),
        sa.Column("alias", sa.String(64), primary_key=True),
        _fk("version_id", "model_versions", nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("ix_model_aliases_version_id", "model_aliases", ["version_id"])
    op.create_table(
        "model_alias_history",
        sa.Column("id", _BIGINT_ID, primary_key=True),
        _fk("model_id", "registered_models", nullable=False),
        sa.Column("alias", sa.String(64), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("from_version", sa.Integer, nullable=True),
        sa.Column("to_version", sa.Integer, nullable=True),
        sa.Column("actor", sa.String(256), nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("override", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("at", sa.Float, nullable=False),
    )
    op.create_index(
        "ix_model_alias_history_model_id_alias", "model_alias_history", ["model_id", "alias"]
    )
    op.create_table(
        "model_approvals",
        sa.Column("id", _BIGINT_ID, primary_key=True),
        _fk("version_id", "model_versions", nullable=False),
        sa.Column("alias", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("approver", sa.String(256), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("gate", sa.String(16), nullable=True),
        sa.Column("at", sa.Float, nullable=False),
    )
    op.create_index("ix_model_approvals_version_id", "model_approvals", ["version_id"])


def downgrade() -> None:
    for table in (
        "model_approvals",
        "model_alias_history",
        "model_aliases",
        "model_version_tags",
        "model_versions",
        "registered_models",
    ):
        op.drop_table(table)
