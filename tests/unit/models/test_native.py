"""XGBoost and LightGBM in their native formats (skipped when not installed)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from keel.models import ModelService


def test_xgboost_json_round_trip(
    service: ModelService, run_id: str, breast_cancer: tuple[Any, Any]
) -> None:
    xgboost = pytest.importorskip("xgboost", reason="xgboost is an optional extra")
    X, y = breast_cancer
    model = xgboost.XGBClassifier(n_estimators=10, max_depth=3).fit(X, y)
    info = service.log_model(run_id, model, input_example=X.iloc[:5])
    assert (info.flavor, info.format, info.model_class) == (
        "xgboost",
        "xgboost-json",
        "XGBClassifier",
    )
    # The distribution actually installed is pinned: xgboost, or the CPU-only xgboost-cpu.
    assert any(r.split("==")[0] in {"xgboost", "xgboost-cpu"} for r in info.requirements)
    loaded = service.load_model(info.uri)
    np.testing.assert_array_equal(loaded.predict(X.iloc[:20]), model.predict(X.iloc[:20]))
    np.testing.assert_allclose(loaded.predict_proba(X.iloc[:5]), model.predict_proba(X.iloc[:5]))


def test_lightgbm_text_round_trip(
    service: ModelService, run_id: str, breast_cancer: tuple[Any, Any]
) -> None:
    lightgbm = pytest.importorskip("lightgbm", reason="lightgbm is an optional extra")
    X, y = breast_cancer
    model = lightgbm.LGBMClassifier(n_estimators=10, verbose=-1).fit(X, y)
    info = service.log_model(run_id, model, input_example=X.iloc[:5])
    assert (info.flavor, info.format) == ("lightgbm", "lightgbm-text")
    loaded = service.load_model(info.uri)
    np.testing.assert_array_equal(loaded.predict(X.iloc[:20]), model.predict(X.iloc[:20]))
    np.testing.assert_allclose(loaded.predict_proba(X.iloc[:5]), model.predict_proba(X.iloc[:5]))
    bare = service.log_model(run_id, model, "no-example")
    again = service.load_model(bare.uri)
    np.testing.assert_array_equal(again.predict(X.iloc[:20]), model.predict(X.iloc[:20]))


def test_lightgbm_regressor(
    service: ModelService, run_id: str, breast_cancer: tuple[Any, Any]
) -> None:
    lightgbm = pytest.importorskip("lightgbm", reason="lightgbm is an optional extra")
    X, y = breast_cancer
    model = lightgbm.LGBMRegressor(n_estimators=5, verbose=-1).fit(X, y.astype(float))
    loaded = service.load_model(service.log_model(run_id, model, input_example=X.iloc[:5]).uri)
    np.testing.assert_allclose(loaded.predict(X.iloc[:10]), model.predict(X.iloc[:10]))
