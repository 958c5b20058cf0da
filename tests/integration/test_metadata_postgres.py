"""The metadata store conformance suite on a real PostgreSQL server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from keel.stores.metadata import MetadataStore
from keel.testing.conformance import MetadataStoreConformance, check_summary_migration

pytestmark = pytest.mark.postgres


@pytest.fixture
def store(fresh_postgres_uri: str) -> Iterator[MetadataStore]:
    opened = MetadataStore.open(fresh_postgres_uri)
    yield opened
    opened.close()


class TestPostgresConformance(MetadataStoreConformance):
    pass


def test_migration_fills_summaries_of_existing_runs(fresh_postgres_uri: str) -> None:
    check_summary_migration(fresh_postgres_uri)
