"""The monitor store conformance suite on SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from keel.stores.metadata import MonitorStore, create_engine
from keel.testing.conformance_monitors import MonitorStoreConformance


@pytest.fixture
def monitors(tmp_path: Path) -> Iterator[MonitorStore]:
    engine = create_engine(f"sqlite:///{tmp_path / 'keel.db'}")
    yield MonitorStore(engine)
    engine.dispose()


class TestSQLiteMonitors(MonitorStoreConformance):
    pass
