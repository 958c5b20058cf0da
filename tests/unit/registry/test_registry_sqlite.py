"""The registry conformance suite on SQLite, plus the migration and alias-history replay."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from keel.registry import AliasMove, ModelRegistryStore, RegistryService
from keel.stores.artifacts import LocalArtifactStore
from keel.stores.metadata import HEAD_REVISION, MetadataStore, current_revision
from keel.stores.metadata._registry_types import previous_holder
from keel.testing.conformance_registry import RegistryConformance
from keel.tracking import TrackingService


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RegistryService]:
    store = MetadataStore.open(f"sqlite:///{tmp_path / 'keel.db'}")
    tracking = TrackingService(store, LocalArtifactStore(tmp_path / "artifacts"))
    yield RegistryService(ModelRegistryStore(store.engine), tracking)
    tracking.close()
    store.close()


class TestSQLiteRegistry(RegistryConformance):
    pass


def test_registry_tables_come_with_the_head_revision(tmp_path: Path) -> None:
    store = MetadataStore.open(f"sqlite:///{tmp_path / 'keel.db'}")
    try:
        assert current_revision(store.engine) == HEAD_REVISION == "0006"
        assert ModelRegistryStore(store.engine).list_models() == []
    finally:
        store.close()


def _moves(*steps: tuple[str, int | None]) -> list[AliasMove]:
    return [AliasMove("champion", a, None, v, None, None, False, 0.0) for a, v in steps]


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        ((), None),
        ((("set", 1),), None),
        ((("set", 1), ("set", 2)), 1),
        ((("set", 1), ("set", 2), ("set", 2)), 1),
        ((("set", 1), ("set", 2), ("set", 3), ("rollback", 2)), 1),
        ((("set", 1), ("set", 2), ("rollback", 1), ("set", 3)), 1),
        ((("set", 1), ("set", 2), ("delete", None), ("set", 3)), None),
    ],
)
def test_previous_holder_replays_history(
    steps: tuple[tuple[str, int | None], ...], expected: int | None
) -> None:
    assert previous_holder(_moves(*steps)) == expected
