"""The metadata store conformance suite on SQLite, plus SQLite-specific behaviour."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from keel.errors import ConfigurationError
from keel.stores.metadata import HEAD_REVISION, MetadataStore, current_revision
from keel.testing.conformance import MetadataStoreConformance, check_summary_migration


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


def test_migration_fills_summaries_of_existing_runs(tmp_path: Path) -> None:
    check_summary_migration(f"sqlite:///{tmp_path / 'keel.db'}")


def test_run_ids_sort_in_creation_order(monkeypatch: pytest.MonkeyPatch) -> None:
    from keel.core._ids import is_id
    from keel.stores.metadata._store import new_run_id

    made = []
    for millis in (1_700_000_000_000, 1_700_000_000_001, 1_800_000_000_000):
        monkeypatch.setattr("time.time_ns", lambda millis=millis: millis * 1_000_000)
        made.append(new_run_id())
    assert made == sorted(made)
    assert all(is_id(run_id) for run_id in made)
    monkeypatch.setattr("time.time_ns", lambda: 1_700_000_000_000 * 1_000_000)
    assert len({new_run_id() for _ in range(100)}) == 100
