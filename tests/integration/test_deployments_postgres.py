"""The deployment store conformance suite on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from keel.stores.metadata import DeploymentStore, create_engine
from keel.testing.conformance_deployments import DeploymentStoreConformance

pytestmark = pytest.mark.postgres


@pytest.fixture
def deployments(fresh_postgres_uri: str) -> Iterator[DeploymentStore]:
    engine = create_engine(fresh_postgres_uri)
    yield DeploymentStore(engine)
    engine.dispose()


class TestPostgresDeployments(DeploymentStoreConformance):
    pass
