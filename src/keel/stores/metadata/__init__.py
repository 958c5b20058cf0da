"""The metadata store (SQLAlchemy Core; SQLite by default, PostgreSQL for teams)."""

from keel.stores.metadata._deployments import DeploymentStore
from keel.stores.metadata._engine import HEAD_REVISION, create_engine, current_revision, migrate
from keel.stores.metadata._monitors import MonitorStore
from keel.stores.metadata._store import MetadataStore, MetricRow, MetricSeries
from keel.stores.metadata._summary import parts as summary_parts
from keel.stores.metadata._summary import parts_of_many as summary_parts_of_many

__all__ = [
    "HEAD_REVISION",
    "DeploymentStore",
    "MetadataStore",
    "MetricRow",
    "MetricSeries",
    "MonitorStore",
    "create_engine",
    "current_revision",
    "migrate",
    "summary_parts",
    "summary_parts_of_many",
]
