"""Prediction input checked against the signature before the model is called."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from keel.errors import InvalidArgument
from keel.models import ModelService, UnseenCategoryWarning


@pytest.fixture
def mixed() -> tuple[Any, pd.DataFrame]:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(0)
    n = 200
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n),
            "income": rng.normal(50, 10, n),
            "region": pd.Categorical(rng.choice(["north", "south"], n)),
            "owner": rng.random(n) > 0.5,
            "name": [f"c{i}" for i in range(n)],
        }
    )
    frame.loc[3, "income"] = np.nan
    y = (frame["age"] > 40).astype(int)
    pre = ColumnTransformer(
        [
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["region"]),
            ("num", "passthrough", ["age", "owner"]),
        ]
    )
    model = Pipeline([("pre", pre), ("clf", LogisticRegression(max_iter=1000))]).fit(frame, y)
    return model, frame


def test_signature_types_from_a_frame(
    service: ModelService, run_id: str, mixed: tuple[Any, pd.DataFrame]
) -> None:
    model, frame = mixed
    info = service.log_model(run_id, model, input_example=frame.iloc[:10])
    sig = info.signature
    assert sig is not None
    types = {c.name: (c.type, c.nullable, c.categories) for c in sig.inputs}
    assert types == {
        "age": ("int", False, None),
        "income": ("float", True, None),
        "region": ("category", False, ("north", "south")),
        "owner": ("bool", False, None),
        "name": ("string", False, None),
    }


def test_every_problem_is_listed(
    service: ModelService, run_id: str, mixed: tuple[Any, pd.DataFrame]
) -> None:
    model, frame = mixed
    info = service.log_model(run_id, model, input_example=frame.iloc[:10])
    loaded = service.load_model(info.uri)
    bad = frame.iloc[:5].drop(columns=["owner"]).astype({"age": object})
    bad.loc[1, "age"] = "forty"
    bad.loc[2, "age"] = None
    bad["extra"] = 1
    with pytest.raises(InvalidArgument) as caught:
        loaded.predict(bad)
    message = str(caught.value)
    assert "unexpected column(s) ['extra']" in message
    assert "missing column(s) ['owner']" in message
    assert "row 1 ('forty')" in message
    assert "is not an int" in message
    assert "row 2 (None)" in message
    assert "not nullable" in message
    assert len(caught.value.details["problems"]) == 4
    assert loaded.problems(bad) == caught.value.details["problems"]


def test_ints_accepted_for_floats_and_strings_refused(
    service: ModelService, run_id: str, pipeline: Any, breast_cancer: tuple[Any, Any]
) -> None:
    X, _ = breast_cancer
    loaded = service.load_model(service.log_model(run_id, pipeline, input_example=X.iloc[:5]).uri)
    ints = X.iloc[:3].round().astype(int)
    assert len(loaded.predict(ints)) == 3
    strings = X.iloc[:3].astype({"mean radius": str})
    with pytest.raises(InvalidArgument, match="'mean radius' \\(float\\): row 0"):
        loaded.predict(strings)
    nan = X.iloc[:3].copy()
    nan.iloc[0, 0] = np.nan
    with pytest.raises(InvalidArgument, match="not nullable"):
        loaded.predict(nan)


def test_extra_columns_drop_mode_warns(
    service: ModelService, run_id: str, pipeline: Any, breast_cancer: tuple[Any, Any]
) -> None:
    X, _ = breast_cancer
    info = service.log_model(run_id, pipeline, input_example=X.iloc[:5])
    loaded = service.load_model(info.uri, extra_columns="drop")
    wider = X.iloc[:3].assign(note="x")
    with pytest.warns(UserWarning, match="dropped column"):
        out = loaded.predict(wider)
    np.testing.assert_array_equal(out, pipeline.predict(X.iloc[:3]))
    with pytest.raises(InvalidArgument, match="extra_columns"):
        service.load_model(info.uri, extra_columns="keep")  # type: ignore[arg-type]


def test_unseen_category_is_reported_not_fatal(
    service: ModelService, run_id: str, mixed: tuple[Any, pd.DataFrame]
) -> None:
    model, frame = mixed
    loaded = service.load_model(service.log_model(run_id, model, input_example=frame).uri)
    rows = frame.iloc[:3].astype({"region": object})
    rows.loc[0, "region"] = "west"
    with pytest.warns(UnseenCategoryWarning, match="'west'"):
        out = loaded.predict(rows)
    assert len(out) == 3


def test_problem_list_is_capped(
    service: ModelService, run_id: str, pipeline: Any, breast_cancer: tuple[Any, Any]
) -> None:
    X, _ = breast_cancer
    loaded = service.load_model(service.log_model(run_id, pipeline, input_example=X.iloc[:5]).uri)
    with pytest.raises(InvalidArgument, match="and 10 more") as caught:
        loaded.predict(X.iloc[:2].astype(str))
    assert len(caught.value.details["problems"]) == 30


def test_wrong_shape_array(
    service: ModelService, run_id: str, pipeline: Any, breast_cancer: tuple[Any, Any]
) -> None:
    X, _ = breast_cancer
    loaded = service.load_model(service.log_model(run_id, pipeline, input_example=X.iloc[:5]).uri)
    with pytest.raises(InvalidArgument, match="1-D array"):
        loaded.predict(X.to_numpy()[0])
    with pytest.raises(InvalidArgument, match="missing column"):
        loaded.predict(X.to_numpy()[:2, :5])


def test_all_numeric_inputs_are_checked_in_one_pass_with_the_same_verdicts() -> None:
    """Numeric frames take a vectorised check; every verdict must match the
    column-by-column one, whatever the column order, nulls or int columns hold."""
    from keel.core._models import ColumnSpec, ModelSignature
    from keel.models._check import check_input, find_problems

    signature = ModelSignature(
        inputs=(
            ColumnSpec("a", "float", False),
            ColumnSpec("n", "int", False),
            ColumnSpec("m", "float", True),
        )
    )
    good = pd.DataFrame({"a": [0.5, 1.5], "n": [1, 2], "m": [np.nan, 3.0]})
    assert find_problems(good, signature, "error") == ([], {}, [])
    reordered = good[["m", "a", "n"]]
    checked = check_input(reordered, signature, extra_columns="error", uri="u")
    assert list(checked.columns) == ["a", "n", "m"]
    assert find_problems(good.astype({"n": "float64"}), signature, "error")[0] == []
    cases = {
        "not nullable": good.assign(a=[np.nan, 1.0]),
        "whole number": good.assign(n=[1.5, 2.0]),
        "not nullable, int": good.assign(n=[np.nan, 2.0]),
        "unexpected": good.assign(extra=[1, 2]),
        "missing": good.drop(columns=["m"]).assign(other=[1.0, 2.0]),
        "bool": good.assign(a=[True, False]),
    }
    for label, frame in cases.items():
        problems = find_problems(frame, signature, "error")[0]
        assert problems, label
        with pytest.raises(InvalidArgument):
            check_input(frame, signature, extra_columns="error", uri="u")
