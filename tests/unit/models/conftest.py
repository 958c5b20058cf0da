from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from keel.models import ModelService


@pytest.fixture
def tracking(keel_home: Path) -> Iterator[Any]:
    from keel.context import get_context

    return get_context().tracking


@pytest.fixture
def service(tracking: Any) -> ModelService:
    return ModelService(tracking)


@pytest.fixture
def run_id(tracking: Any) -> str:
    return str(tracking.create_run("models").id)


@pytest.fixture(scope="session")
def breast_cancer() -> tuple[Any, Any]:
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return X, y


@pytest.fixture(scope="session")
def pipeline(breast_cancer: tuple[Any, Any]) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = breast_cancer
    return Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=5000))]).fit(
        X, y
    )
