"""The metadata store's tables, as SQLAlchemy Core metadata.

Latest metric values are denormalised into ``metrics_latest`` so run search never
scans metric history, and each run's latest params, metrics and tags into
``runs.summary`` so a page of results is one row per run (docs/adr/0018). The
history lives in ``metric_chunks``: one row per (run, key, flushed batch) holding
packed little-endian arrays of steps, timestamps and values (docs/adr/0003).
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)

ID = sa.String(32)
KEY = sa.String(250)

experiments = sa.Table(
    "experiments",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("name", sa.String(256), nullable=False, unique=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("deleted_at", sa.Float, nullable=True),
)

environments = sa.Table(
    "environments",
    metadata,
    sa.Column("digest", sa.String(64), primary_key=True),
    sa.Column("body", sa.Text, nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
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
    # Latest params, metrics and tags as JSON, rewritten by every write that changes
    # them (docs/adr/0018-run-summary-column.md).
    sa.Column("summary", sa.Text, nullable=False, server_default="{}"),
    sa.Index(None, "parent_id"),
)
# Search's default order (newest first, then id) straight from the index, with what
# the scan filters on before it visits the row.
sa.Index(
    "ix_runs_experiment_id_start_time_id",
    runs.c.experiment_id,
    runs.c.start_time.desc(),
    runs.c.id,
    runs.c.deleted_at,
)

params = sa.Table(
    "params",
    metadata,
    sa.Column("run_id", ID, sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("key", KEY, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Index(None, "key", "run_id"),
    sqlite_with_rowid=False,
)

tags = sa.Table(
    "tags",
    metadata,
    sa.Column("run_id", ID, sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("key", KEY, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Index(None, "key", "run_id"),
    sqlite_with_rowid=False,
)

metrics_latest = sa.Table(
    "metrics_latest",
    metadata,
    sa.Column("run_id", ID, sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("key", KEY, primary_key=True),
    # NULL stands for NaN: SQLite cannot store a NaN REAL.
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Column("timestamp", sa.Float, nullable=False),
    sa.Index(None, "key", "value"),
    sqlite_with_rowid=False,
)

metric_chunks = sa.Table(
    "metric_chunks",
    metadata,
    sa.Column("id", sa.Integer().with_variant(sa.BigInteger, "postgresql"), primary_key=True),
    sa.Column("run_id", ID, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("key", KEY, nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("steps", sa.LargeBinary, nullable=False),
    sa.Column("timestamps", sa.LargeBinary, nullable=False),
    sa.Column("values", sa.LargeBinary, nullable=False),
    sa.Index(None, "run_id", "key"),
)

artifacts = sa.Table(
    "artifacts",
    metadata,
    sa.Column("run_id", ID, sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("name", sa.String(1024), primary_key=True),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Index(None, "digest"),
)

# data versioning (docs/adr/0007-data-versioning.md) -----------------------------------

datasets = sa.Table(
    "datasets",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("created_at", sa.Float, nullable=False),
    # The highest version number handed out: bumped under the row's write lock, so
    # numbers are gapless and never reused.
    sa.Column("latest_version", sa.Integer, nullable=False, server_default="0"),
)

dataset_versions = sa.Table(
    "dataset_versions",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("dataset_id", ID, sa.ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False),
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
    sa.UniqueConstraint("dataset_id", "version"),
    sa.Index(None, "digest"),
)

dataset_parents = sa.Table(
    "dataset_parents",
    metadata,
    sa.Column(
        "version_id",
        ID,
        sa.ForeignKey("dataset_versions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column(
        "parent_id",
        ID,
        sa.ForeignKey("dataset_versions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Index(None, "parent_id"),
)

dataset_tags = sa.Table(
    "dataset_tags",
    metadata,
    sa.Column("dataset_id", ID, sa.ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("tag", sa.String(64), primary_key=True),
    sa.Column(
        "version_id", ID, sa.ForeignKey("dataset_versions.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("updated_at", sa.Float, nullable=False),
)

dataset_tag_history = sa.Table(
    "dataset_tag_history",
    metadata,
    sa.Column("id", sa.Integer().with_variant(sa.BigInteger, "postgresql"), primary_key=True),
    sa.Column("dataset_id", ID, sa.ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False),
    sa.Column("tag", sa.String(64), nullable=False),
    sa.Column(
        "version_id", ID, sa.ForeignKey("dataset_versions.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("previous_version_id", ID, nullable=True),
    sa.Column("moved_at", sa.Float, nullable=False),
    sa.Index(None, "dataset_id", "tag"),
)

run_inputs = sa.Table(
    "run_inputs",
    metadata,
    sa.Column("run_id", ID, sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column(
        "version_id",
        ID,
        sa.ForeignKey("dataset_versions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Index(None, "version_id"),
)

# model registry (docs/adr/0013-model-registry.md) --------------------------------------

registered_models = sa.Table(
    "registered_models",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", sa.Float, nullable=False),
    # The highest version number handed out: bumped under the row's write lock, so
    # numbers are gapless and never reused (as datasets.latest_version).
    sa.Column("latest_version", sa.Integer, nullable=False, server_default="0"),
)

model_versions = sa.Table(
    "model_versions",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column(
        "model_id", ID, sa.ForeignKey("registered_models.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("run_id", ID, sa.ForeignKey("runs.id"), nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, server_default="active"),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    # The run's keel.gate tag when the version was registered or last promoted.
    sa.Column("gate", sa.String(16), nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.UniqueConstraint("model_id", "version"),
    sa.Index(None, "run_id"),
)

model_version_tags = sa.Table(
    "model_version_tags",
    metadata,
    sa.Column(
        "version_id",
        ID,
        sa.ForeignKey("model_versions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("key", KEY, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Index(None, "key", "version_id"),
)

model_aliases = sa.Table(
    "model_aliases",
    metadata,
    sa.Column(
        "model_id", ID, sa.ForeignKey("registered_models.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("alias", sa.String(64), primary_key=True),
    sa.Column(
        "version_id", ID, sa.ForeignKey("model_versions.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Index(None, "version_id"),
)

model_alias_history = sa.Table(
    "model_alias_history",
    metadata,
    sa.Column("id", sa.Integer().with_variant(sa.BigInteger, "postgresql"), primary_key=True),
    sa.Column(
        "model_id", ID, sa.ForeignKey("registered_models.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("alias", sa.String(64), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),  # "set", "rollback", "delete"
    sa.Column("from_version", sa.Integer, nullable=True),
    sa.Column("to_version", sa.Integer, nullable=True),
    sa.Column("actor", sa.String(256), nullable=True),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("override", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("at", sa.Float, nullable=False),
    sa.Index(None, "model_id", "alias"),
)

model_approvals = sa.Table(
    "model_approvals",
    metadata,
    sa.Column("id", sa.Integer().with_variant(sa.BigInteger, "postgresql"), primary_key=True),
    sa.Column(
        "version_id", ID, sa.ForeignKey("model_versions.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("alias", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # "approval" or "override"
    sa.Column("approver", sa.String(256), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("gate", sa.String(16), nullable=True),  # the gate state when approved
    sa.Column("at", sa.Float, nullable=False),
    sa.Index(None, "version_id"),
)

# deployments: endpoints, their traffic policies and the append-only history of changes

deployments = sa.Table(
    "deployments",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("policy", sa.Text, nullable=False),  # DeploymentPolicy.to_dict() as JSON
    # Bumped by every policy change; servers poll it to notice one (compare-and-set).
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

deployment_events = sa.Table(
    "deployment_events",
    metadata,
    sa.Column("id", sa.Integer().with_variant(sa.BigInteger, "postgresql"), primary_key=True),
    sa.Column(
        "deployment_id", ID, sa.ForeignKey("deployments.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # "create", "update", "rollback"
    sa.Column("policy", sa.Text, nullable=False),
    sa.Column("actor", sa.String(256), nullable=True),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("details", sa.Text, nullable=False, server_default="{}"),
    sa.Column("at", sa.Float, nullable=False),
    sa.UniqueConstraint("deployment_id", "revision"),
)

# monitors: a deployment watched against a reference, its windows' reports and alerts

monitors = sa.Table(
    "monitors",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("deployment", sa.String(64), nullable=False),
    sa.Column("reference", sa.String(256), nullable=False),  # as given: "credit-train@v1"
    sa.Column("reference_version_id", ID, nullable=False),  # what it resolved to at creation
    sa.Column("window_seconds", sa.Integer, nullable=False),
    sa.Column("slices", sa.Text, nullable=False, server_default="[]"),
    sa.Column("rules", sa.Text, nullable=False, server_default="[]"),
    sa.Column("webhook", sa.Text, nullable=True),  # {"url": ..., "allowed_hosts": [...]}
    sa.Column("alert_state", sa.Text, nullable=False, server_default="{}"),
    sa.Column("last_window_end", sa.Float, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

monitor_reports = sa.Table(
    "monitor_reports",
    metadata,
    sa.Column("id", sa.Integer().with_variant(sa.BigInteger, "postgresql"), primary_key=True),
    sa.Column("monitor_id", ID, sa.ForeignKey("monitors.id", ondelete="CASCADE"), nullable=False),
    sa.Column("window_start", sa.Float, nullable=False),
    sa.Column("window_end", sa.Float, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # "ok" or "no_data"
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("summary", sa.Text, nullable=False),  # the flat metrics, JSON
    sa.Column("report", sa.Text, nullable=False),  # everything, JSON
    sa.UniqueConstraint("monitor_id", "window_start"),
)

monitor_alerts = sa.Table(
    "monitor_alerts",
    metadata,
    sa.Column("id", sa.Integer().with_variant(sa.BigInteger, "postgresql"), primary_key=True),
    sa.Column("monitor_id", ID, sa.ForeignKey("monitors.id", ondelete="CASCADE"), nullable=False),
    sa.Column("key", sa.String(250), nullable=False),  # the event id, recorded once
    sa.Column("rule", sa.String(250), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # "firing" or "resolved"
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("delivered", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text, nullable=True),
    # notifiers that accepted it, so a retry goes only to those that missed it
    sa.Column("delivered_to", sa.Text, nullable=False, server_default="[]"),
    sa.UniqueConstraint("monitor_id", "key"),
    sa.Index(None, "monitor_id", "delivered"),
)
