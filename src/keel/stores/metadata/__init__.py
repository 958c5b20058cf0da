"""The metadata store (SQLAlchemy Core; SQLite by default, PostgreSQL for teams).

The deployment and monitor stores load on first use: a process that only tracks runs
or loads a model does not import them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
