"""The metadata store (SQLAlchemy Core; SQLite by default, PostgreSQL for teams).

Every name loads on first use: a process that only loads a registered model from a
SQLite store reads it through :class:`SqliteReader` and never imports SQLAlchemy, and
one that only tracks runs does not import the deployment and monitor stores.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from keel.core._lazy import lazy_exports
from keel.stores.metadata._revision import HEAD_REVISION

if TYPE_CHECKING:
    from keel.stores.metadata._deployments import DeploymentStore
    from keel.stores.metadata._engine import create_engine, current_revision, migrate
    from keel.stores.metadata._monitors import MonitorStore
    from keel.stores.metadata._reader import SqliteReader
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
    "SqliteReader",
    "create_engine",
    "current_revision",
    "migrate",
    "summary_parts",
    "summary_parts_of_many",
]

_LAZY = {
    "DeploymentStore": "keel.stores.metadata._deployments",
    "MetadataStore": "keel.stores.metadata._store",
    "MetricRow": "keel.stores.metadata._store",
    "MetricSeries": "keel.stores.metadata._store",
    "MonitorStore": "keel.stores.metadata._monitors",
    "SqliteReader": "keel.stores.metadata._reader",
    "create_engine": "keel.stores.metadata._engine",
    "current_revision": "keel.stores.metadata._engine",
    "migrate": "keel.stores.metadata._engine",
    "summary_parts": "keel.stores.metadata._summary:parts",
    "summary_parts_of_many": "keel.stores.metadata._summary:parts_of_many",
}

__getattr__ = lazy_exports(__name__, _LAZY)
