"""Data versioning: datasets, versions, parents, tags (with history), run inputs.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ID = sa.String(32)
_BIGINT_ID = sa.Integer().with_variant(sa.BigInteger, "postgresql")


def _fk(name: str, table: str, **kwargs: object) -> sa.Column[str]:
    return sa.Column(name, ID, sa.ForeignKey(f"{table}.id", ondelete="CASCADE"), **kwargs)  # type: ignore[arg-type]


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", ID, primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("latest_version", sa.Integer, nullable=False, server_default="0"),
        sa.UniqueConstraint("name", name="uq_datasets_name"),
    )
    op.create_table(
        "dataset_versions",
        sa.Column("id", ID, primary_key=True),
        _fk("dataset_id", "datasets", nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("file_count", sa.BigInteger, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("message", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("schema", sa.Text, nullable=True),
        sa.Column("profile", sa.Text, nullable=True),
        sa.Column("extra", sa.Text, nullable=False, server_default="{}"),
        sa.UniqueConstraint("dataset_id", "version", name="uq_dataset_versions_dataset_id_version"),
    )
    op.create_index("ix_dataset_versions_digest", "dataset_versions", ["digest"])
    op.create_table(
        "dataset_parents",
        _fk("version_id", "dataset_versions", primary_key=True),
        _fk("parent_id", "dataset_versions", primary_key=True),
    )
    op.create_index("ix_dataset_parents_parent_id", "dataset_parents", ["parent_id"])
    op.create_table(
        "dataset_tags",
        _fk("dataset_id", "datasets", primary_key=True),
        sa.Column("tag", sa.String(64), primary_key=True),
        _fk("version_id", "dataset_versions", nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "dataset_tag_history",
        sa.Column("id", _BIGINT_ID, primary_key=True),
        _fk("dataset_id", "datasets", nullable=False),
        sa.Column("tag", sa.String(64), nullable=False),
        _fk("version_id", "dataset_versions", nullable=False),
        sa.Column("previous_version_id", ID, nullable=True),
        sa.Column("moved_at", sa.Float, nullable=False),
    )
    op.create_index(
        "ix_dataset_tag_history_dataset_id_tag", "dataset_tag_history", ["dataset_id", "tag"]
    )
    op.create_table(
        "run_inputs",
        _fk("run_id", "runs", primary_key=True),
        _fk("version_id", "dataset_versions", primary_key=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_run_inputs_version_id", "run_inputs", ["version_id"])


def downgrade() -> None:
    for table in (
        "run_inputs",
        "dataset_tag_history",
        "dataset_tags",
        "dataset_parents",
        "dataset_versions",
        "datasets",
    ):
        op.drop_table(table)
