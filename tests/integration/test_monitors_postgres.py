"""The monitor store conformance suite on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from keel.stores.metadata import MonitorStore, create_engine
from keel.testing.conformance_monitors import MonitorStoreConformance

pytestmark = pytest.mark.postgres


@pytest.fixture
def monitors(fresh_postgres_uri: str) -> Iterator[MonitorStore]:
    engine = create_engine(fresh_postgres_uri)
    yield MonitorStore(engine)
    engine.dispose()


class TestPostgresMonitors(MonitorStoreConformance):
    pass
