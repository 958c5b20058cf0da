"""The deployment store conformance suite on SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from keel.stores.metadata import DeploymentStore, create_engine
from keel.testing.conformance_deployments import DeploymentStoreConformance


@pytest.fixture
def deployments(tmp_path: Path) -> Iterator[DeploymentStore]:
    engine = create_engine(f"sqlite:///{tmp_path / 'keel.db'}")
    yield DeploymentStore(engine)
    engine.dispose()


class TestSQLiteDeployments(DeploymentStoreConformance):
    pass


def test_a_locked_database_is_unavailable(tmp_path: Path) -> None:
    import sqlite3

    from keel.core._deployments import DeploymentPolicy
    from keel.errors import Unavailable

    path = tmp_path / "keel.db"
    engine = create_engine(f"sqlite:///{path}", timeout=0.2)
    store = DeploymentStore(engine)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(Unavailable, match="KEEL_DB_TIMEOUT"):
            store.create("credit", DeploymentPolicy.single("models:/credit@champion"))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert store.create("credit", DeploymentPolicy.single("models:/credit/1")).revision == 1
    engine.dispose()
