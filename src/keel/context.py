"""Composition root: settings -> stores -> services, built once per process.

Interfaces and the public API ask for ``get_context()``; nothing below this module
reads configuration.
"""

from __future__ import annotations

import atexit
import threading
from dataclasses import dataclass

from keel.config import Settings, load_settings
from keel.data._service import DataService
from keel.stores.artifacts import ArtifactStore, open_artifact_store
from keel.stores.metadata import MetadataStore
from keel.stores.metadata._datasets import DatasetCatalog
from keel.tracking import TrackingService

__all__ = ["Context", "build_context", "get_context", "reset_context"]


@dataclass
class Context:
    """The wired-up services of one process."""

    settings: Settings
    metadata: MetadataStore
    artifacts: ArtifactStore
    tracking: TrackingService
    data: DataService

    def close(self) -> None:
        try:
            self.tracking.close()
            self.data.close()
        finally:
            self.metadata.close()


def build_context(settings: Settings | None = None) -> Context:
    """Open the stores named by ``settings`` and wire the services on top."""
    settings = settings or load_settings()
    metadata = MetadataStore.open(
        settings.store_uri,
        timeout=settings.db_timeout,
        synchronous=settings.sqlite_synchronous,
    )
    artifacts = open_artifact_store(settings.artifact_uri)
    tracking = TrackingService(
        metadata,
        artifacts,
        flush_interval=settings.flush_interval,
        buffer_points=settings.buffer_points,
        capture_environment=settings.capture_environment,
    )
    data = DataService(
        DatasetCatalog(metadata.engine),
        artifacts,
        stat_cache=settings.home / "statcache.db",
        ignore=[settings.home],
    )
    return Context(settings, metadata, artifacts, tracking, data)


_lock = threading.Lock()
_context: Context | None = None


def get_context() -> Context:
    """This process's context, built from the environment on first use."""
    global _context
    if _context is None:
        with _lock:
            if _context is None:
                _context = build_context()
    return _context


def reset_context(context: Context | None = None) -> Context | None:
    """Close the current context and install ``context`` (tests, or a settings change)."""
    global _context
    with _lock:
        old, _context = _context, context
    if old is not None and old is not context:
        old.close()
    return _context


@atexit.register
def _close_at_exit() -> None:
    if _context is not None:
        _context.close()
