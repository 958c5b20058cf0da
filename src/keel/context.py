"""Composition root: settings -> stores -> services, built once per process.

Interfaces and the public API ask for ``get_context()``; nothing below this module
reads configuration.
"""

from __future__ import annotations

import atexit
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from keel.config import Settings, load_settings
from keel.stores.artifacts import ArtifactStore, SyncMode, open_artifact_store

if TYPE_CHECKING:
    from keel.data._service import DataService
    from keel.models import ModelService
    from keel.models._package import PackageFiles
    from keel.monitoring._monitor import MonitorService
    from keel.registry import RegistryService
    from keel.serving._deployments import DeploymentService
    from keel.stores.metadata import MetadataStore, SqliteReader
    from keel.tracking import TrackingService

__all__ = ["Context", "build_context", "get_context", "reset_context"]


@dataclass
class Context:
    """The wired-up services of one process.

    Every service is built on first use: importing the tracking service loads numpy,
    which a ``keel data`` command never needs, and loading a model needs neither the
    data service nor deployments and monitors. The metadata store opens (and migrates)
    on first use too: a process that only loads a registered model from a SQLite store
    reads it through :meth:`package_reader` instead (ADR 0020).
    """

    settings: Settings
    artifacts: ArtifactStore
    _metadata: MetadataStore | None = field(default=None, repr=False)
    _reader: SqliteReader | None = field(default=None, repr=False)
    _reader_checked: bool = field(default=False, repr=False)
    _data: DataService | None = field(default=None, repr=False)
    _tracking: TrackingService | None = field(default=None, repr=False)
    _models: ModelService | None = field(default=None, repr=False)
    _registry: RegistryService | None = field(default=None, repr=False)
    _deployments: DeploymentService | None = field(default=None, repr=False)
    _monitors: MonitorService | None = field(default=None, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    @property
    def metadata(self) -> MetadataStore:
        """The metadata store, opened (and migrated to the head revision) on first use."""
        if self._metadata is None:
            with self._lock:
                if self._metadata is None:
                    self._metadata = _open_metadata(self.settings)
        return self._metadata

    def package_reader(self) -> tuple[SqliteReader, PackageFiles] | None:
        """Read-only registry look-ups and package files, while the store is not open yet.

        Only for a SQLite store already at the head revision; None otherwise, and once the
        metadata store is open (its answers then include this process's own writes).
        """
        if self._metadata is not None:
            return None
        with self._lock:
            if not self._reader_checked:
                from keel.stores.metadata._reader import SqliteReader

                self._reader_checked = True
                self._reader = SqliteReader.open(
                    self.settings.store_uri, timeout=self.settings.db_timeout
                )
            reader = self._reader
        if reader is None:
            return None
        from keel.models._package import PackageFiles

        return reader, PackageFiles(reader.check_run, reader.digest, self.artifacts.get_bytes)

    @property
    def data(self) -> DataService:
        """Dataset versioning over this context's stores."""
        if self._data is None:
            with self._lock:
                if self._data is None:
                    from keel.data._service import DataService
                    from keel.stores.metadata._datasets import DatasetCatalog

                    self._data = DataService(
                        DatasetCatalog(self.metadata.engine),
                        self.artifacts,
                        stat_cache=self.settings.home / "statcache.db",
                        ignore=[self.settings.home],
                    )
        return self._data

    @property
    def tracking(self) -> TrackingService:
        """The tracking service over this context's stores."""
        if self._tracking is None:
            with self._lock:
                if self._tracking is None:
                    from keel.tracking import TrackingService

                    self._tracking = TrackingService(
                        self.metadata,
                        self.artifacts,
                        flush_interval=self.settings.flush_interval,
                        buffer_points=self.settings.buffer_points,
                        capture_environment=self.settings.capture_environment,
                    )
        return self._tracking

    @property
    def models(self) -> ModelService:
        """Model packaging and loading over this context's tracking service."""
        if self._models is None:
            with self._lock:
                if self._models is None:
                    from keel.models import ModelService

                    self._models = ModelService(self.tracking)
        return self._models

    @property
    def registry(self) -> RegistryService:
        """The model registry over this context's metadata store."""
        if self._registry is None:
            with self._lock:
                if self._registry is None:
                    from keel.registry import ModelRegistryStore, RegistryService

                    self._registry = RegistryService(
                        ModelRegistryStore(self.metadata.engine), self.tracking
                    )
        return self._registry

    @property
    def deployments(self) -> DeploymentService:
        """Deployments over this context's metadata store, checked against the registry."""
        if self._deployments is None:
            with self._lock:
                if self._deployments is None:
                    from keel.serving._deployments import DeploymentService
                    from keel.stores.metadata import DeploymentStore

                    self._deployments = DeploymentService(
                        DeploymentStore(self.metadata.engine), self.registry, self.models
                    )
        return self._deployments

    @property
    def monitors(self) -> MonitorService:
        """Monitors over this context's deployments, datasets and prediction log."""
        if self._monitors is None:
            with self._lock:
                if self._monitors is None:
                    from keel.monitoring._monitor import MonitorService
                    from keel.serving._predlog import PredictionLogReader
                    from keel.stores.metadata import MonitorStore

                    self._monitors = MonitorService(
                        MonitorStore(self.metadata.engine),
                        self.data,
                        PredictionLogReader(self.settings.prediction_log_dir),
                        self.deployments,
                    )
        return self._monitors

    def close(self) -> None:
        try:
            if self._tracking is not None:
                self._tracking.close()
            if self._data is not None:
                self._data.close()
        finally:
            if self._reader is not None:
                self._reader.close()
            if self._metadata is not None:
                self._metadata.close()


def build_context(settings: Settings | None = None) -> Context:
    """Open the stores named by ``settings`` and wire the services on top."""
    settings = settings or load_settings()
    artifacts = open_artifact_store(settings.artifact_uri, sync=_sync_mode(settings))
    return Context(settings, artifacts)


def _sync_mode(settings: Settings) -> SyncMode:
    return "full" if settings.sync == "full" else "normal"


def _open_metadata(settings: Settings) -> MetadataStore:
    from keel.stores.metadata import MetadataStore

    synchronous = settings.sqlite_synchronous
    if _sync_mode(settings) == "full" and synchronous in ("OFF", "NORMAL"):
        synchronous = "FULL"  # KEEL_SYNC=full: a committed version survives power loss too
    return MetadataStore.open(
        settings.store_uri, timeout=settings.db_timeout, synchronous=synchronous
    )


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
