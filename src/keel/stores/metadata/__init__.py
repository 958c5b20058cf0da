"""The metadata store (SQLAlchemy Core; SQLite by default, PostgreSQL for teams).

The deployment and monitor stores load on first use: a process that only tracks runs
or loads a model does not import them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from keel.core._lazy import lazy_exports
from keel.stores.metadata._engine import HEAD_REVISION, create_engine, current_revision, migrate
from keel.stores.metadata._store import MetadataStore, MetricRow, MetricSeries
from keel.stores.metadata._summary import parts as summary_parts
from keel.stores.metadata._summary import parts_of_many as summary_parts_of_many

if TYPE_CHECKING:
    from keel.stores.metadata._deployments import DeploymentStore
    from keel.stores.metadata._monitors import MonitorStore

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

_LAZY = {
    "DeploymentStore": "keel.stores.metadata._deployments",
    "MonitorStore": "keel.stores.metadata._monitors",
}

__getattr__ = lazy_exports(__name__, _LAZY)
