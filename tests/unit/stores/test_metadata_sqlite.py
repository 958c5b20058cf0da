"""The metadata store conformance suite on SQLite, plus SQLite-specific behaviour."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from keel.errors import ConfigurationError
from keel.stores.metadata import HEAD_REVISION, MetadataStore, current_revision
from keel.testing.conformance import MetadataStoreConformance


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MetadataStore]:
    opened = MetadataStore.open(f"sqlite:///{tmp_path / 'keel.db'}")
    yield opened
    opened.close()


class TestSQLiteConformance(MetadataStoreConformance):
    pass


def test_schema_is_migrated_on_first_use(tmp_path: Path) -> None:
    store = MetadataStore.open(f"sqlite:///{tmp_path / 'sub' / 'keel.db'}")
    assert current_revision(store.engine) == HEAD_REVISION
    store.close()
    reopened = MetadataStore.open(f"sqlite:///{tmp_path / 'sub' / 'keel.db'}")
    assert current_revision(reopened.engine) == HEAD_REVISION
    reopened.close()


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    store = MetadataStore.open(f"sqlite:///{tmp_path / 'keel.db'}")
    store.close()
    with sqlite3.connect(tmp_path / "keel.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.parametrize("uri", ["not a url", "mysql://x/y", "mongodb://localhost/x"])
def test_unsupported_store_uri_names_the_fix(uri: str) -> None:
    with pytest.raises(ConfigurationError, match="sqlite"):
        MetadataStore.open(uri)
