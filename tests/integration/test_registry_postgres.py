"""The registry conformance suite on PostgreSQL, and gapless versions across processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from keel.registry import ModelRegistryStore, RegistryService
from keel.stores.artifacts import LocalArtifactStore
from keel.stores.metadata import MetadataStore
from keel.testing.conformance_registry import RegistryConformance
from keel.tracking import TrackingService

pytestmark = pytest.mark.postgres


@pytest.fixture
def registry(fresh_postgres_uri: str, tmp_path: Path) -> Iterator[RegistryService]:
    store = MetadataStore.open(fresh_postgres_uri)
    tracking = TrackingService(store, LocalArtifactStore(tmp_path / "artifacts"))
    yield RegistryService(ModelRegistryStore(store.engine), tracking)
    tracking.close()
    store.close()


class TestPostgresRegistry(RegistryConformance):
    pass
