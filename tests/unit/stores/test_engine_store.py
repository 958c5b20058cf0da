"""The transactions every metadata table group shares (``EngineStore``)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from keel.errors import Unavailable
from keel.stores.metadata import create_engine
from keel.stores.metadata._base import EngineStore
from keel.stores.metadata._datasets import DatasetCatalog
from keel.stores.metadata._registry import ModelRegistryStore
from keel.stores.metadata._store import MetadataStore


@pytest.mark.parametrize("kind", [MetadataStore, DatasetCatalog, ModelRegistryStore])
def test_a_locked_database_is_unavailable_for_every_store(
    tmp_path: Path, kind: type[EngineStore]
) -> None:
    path = tmp_path / "keel.db"
    engine = create_engine(f"sqlite:///{path}", timeout=0.2)
    store = kind(engine)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(Unavailable, match="KEEL_DB_TIMEOUT"), store._write() as conn:
            conn.exec_driver_sql("SELECT 1")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with store._write() as conn:  # the lock is gone: writes work again
        assert conn.exec_driver_sql("SELECT 1").scalar() == 1
    engine.dispose()
