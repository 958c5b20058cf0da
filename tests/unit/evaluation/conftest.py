"""Shared evaluation fixtures: the synthetic credit world and a model fitted on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from keel.demo._world import CATEGORICAL, NUMERIC, TARGET, generate_credit_data
from keel.evaluation import EvaluationReport, evaluate
from keel.stores.artifacts import LocalArtifactStore
from keel.stores.metadata import MetadataStore
from keel.tracking import TrackingService


def fit_credit_model(train: pd.DataFrame, c: float = 1.0) -> Pipeline:
    encode = ColumnTransformer(
        [
            ("num", StandardScaler(), NUMERIC),
            ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
        ]
    )
    model = make_pipeline(encode, LogisticRegression(C=c, max_iter=1000))
    return model.fit(train.drop(columns=TARGET), train[TARGET])


@pytest.fixture(scope="session")
def credit() -> tuple[Pipeline, pd.DataFrame]:
    """A logistic-regression pipeline and a 5,000-row holdout it never saw."""
    data = generate_credit_data(10_000, seed=7)
    train, holdout = data.iloc[:5000], data.iloc[5000:].reset_index(drop=True)
    return fit_credit_model(train), holdout


@pytest.fixture(scope="session")
def credit_report(credit: tuple[Pipeline, pd.DataFrame]) -> EvaluationReport:
    model, holdout = credit
    return evaluate(
        model,
        holdout,
        TARGET,
        slices=["gender", "age", ("gender", "employment")],
        bootstrap=50,
        permutation_repeats=2,
        max_rows_importance=1000,
    )


@pytest.fixture
def tracking(tmp_path: Path) -> Iterator[TrackingService]:
    store = MetadataStore.open(f"sqlite:///{tmp_path / 'keel.db'}")
    service = TrackingService(store, LocalArtifactStore(tmp_path / "artifacts"))
    yield service
    service.close()
    store.close()


@pytest.fixture
def run_id(tracking: TrackingService) -> str:
    return str(tracking.create_run("evaluation").id)
