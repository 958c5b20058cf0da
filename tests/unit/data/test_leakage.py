"""Leakage checks: planted duplicates, shared groups and target proxies are found; clean passes."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

from keel.data._leakage import LeakageReport, check_leakage, target_kind
from keel.demo._world import generate_credit_data
from keel.errors import InvalidArgument


@pytest.fixture(scope="module")
def credit() -> pd.DataFrame:
    return generate_credit_data(6_000, seed=1)


def halves(df: pd.DataFrame) -> dict[str, pd.DataFrame]:
    cut = int(len(df) * 0.75)
    return {"train": df.iloc[:cut], "test": df.iloc[cut:]}


def noise(n: int, scale: float, seed: int = 0) -> Any:
    return np.random.default_rng(seed).normal(0.0, scale, n)


def test_clean_splits_pass(credit: pd.DataFrame) -> None:
    report = check_leakage(halves(credit), "approved")
    assert report.passed
    assert report.findings == ()
    assert report.rows == {"train": 4_500, "test": 1_500}


def test_rows_copied_across_splits_are_exact_duplicates(credit: pd.DataFrame) -> None:
    splits = halves(credit)
    copied = splits["train"].iloc[[10, 20, 30, 40, 50, 60, 70]]
    splits["test"] = pd.concat([splits["test"], copied])
    report = check_leakage(splits, "approved")
    [finding] = report.of_kind("exact_duplicate")
    assert finding.count == 7
    assert finding.splits == ("train", "test")
    assert finding.severity == "error"
    assert list(finding.examples) == list(copied.index[:5])
    assert "drop_duplicates" in finding.message
    assert not report.passed
    assert not report.of_kind("conflicting_duplicate")


def test_same_features_with_another_label_are_conflicting(credit: pd.DataFrame) -> None:
    splits = halves(credit)
    flipped = splits["train"].iloc[:3].assign(approved=lambda d: 1 - d["approved"])
    splits["test"] = pd.concat([splits["test"], flipped])
    report = check_leakage(splits, "approved")
    [finding] = report.of_kind("conflicting_duplicate")
    assert finding.count == 3
    assert finding.severity == "warning"
    assert finding.columns == ("approved",)
    assert report.passed


def test_duplicates_are_found_between_every_pair_of_splits(credit: pd.DataFrame) -> None:
    splits = {
        "train": credit.iloc[:4000],
        "val": credit.iloc[4000:5000],
        "test": credit.iloc[5000:],
    }
    splits["test"] = pd.concat([splits["test"], splits["val"].iloc[:2]])
    [finding] = check_leakage(splits, "approved").of_kind("exact_duplicate")
    assert finding.splits == ("val", "test")
    assert finding.count == 2


def test_shared_groups_are_found(credit: pd.DataFrame) -> None:
    df = credit.assign(customer=np.arange(len(credit)) // 7)
    report = check_leakage(halves(df), "approved", group="customer")
    [finding] = report.of_kind("group_overlap")
    assert finding.count == 1  # the customer cut in two at row 4,500
    assert finding.examples == (642,)
    assert "group='customer'" in finding.message
    assert not report.passed


def test_group_column_is_not_a_feature(credit: pd.DataFrame) -> None:
    splits = halves(credit.assign(customer=np.arange(len(credit))))
    splits["test"] = pd.concat([splits["test"], splits["train"].iloc[:1].assign(customer=-1)])
    report = check_leakage(splits, "approved", group="customer")
    assert [f.kind for f in report.findings] == ["exact_duplicate"]


def test_a_feature_equal_to_the_target_plus_noise_is_a_proxy(credit: pd.DataFrame) -> None:
    df = credit.assign(
        outcome_score=credit["approved"] + noise(len(credit), 0.1),
        inverse=-credit["approved"] + noise(len(credit), 0.1, seed=1),
    )
    report = check_leakage(halves(df), "approved")
    found = {f.columns[0]: f for f in report.of_kind("target_proxy")}
    assert set(found) == {"outcome_score", "inverse"}
    scores = {name: f.score for name, f in found.items()}
    assert scores["outcome_score"] is not None
    assert scores["outcome_score"] >= 0.99
    assert scores["inverse"] is not None
    assert scores["inverse"] <= 0.01
    assert "drop it" in found["outcome_score"].message
    assert not report.passed


def test_a_category_naming_the_outcome_is_a_proxy(credit: pd.DataFrame) -> None:
    df = credit.assign(status=credit["approved"].map({0: "declined", 1: "granted"}))
    [finding] = check_leakage(halves(df), "approved").of_kind("target_proxy")
    assert finding.columns == ("status",)
    assert "learned on 'train'" in finding.message


def test_a_unique_id_is_not_mistaken_for_a_proxy(credit: pd.DataFrame) -> None:
    df = credit.assign(application=[f"app-{i}" for i in range(len(credit))])
    assert check_leakage(halves(df), "approved").passed


def test_missingness_that_gives_the_label_away_is_found(credit: pd.DataFrame) -> None:
    values = noise(len(credit), 1.0)
    df = credit.assign(closed_on=np.where(credit["approved"] == 1, np.nan, values))
    [finding] = check_leakage(halves(df), "approved").of_kind("target_proxy")
    assert finding.columns == ("closed_on",)


def test_datetime_features_are_checked(credit: pd.DataFrame) -> None:
    stamps = pd.Timestamp("2024-01-01") + pd.to_timedelta(credit["approved"] * 30, unit="D")
    df = credit.assign(decided=stamps)
    [finding] = check_leakage(halves(df), "approved").of_kind("target_proxy")
    assert finding.columns == ("decided",)


def test_multiclass_target_uses_class_rates(credit: pd.DataFrame) -> None:
    codes = credit["employment"].cat.codes.to_numpy()
    df = credit.assign(job_code=codes + noise(len(credit), 0.05))
    report = check_leakage(halves(df), "employment")
    assert [f.columns[0] for f in report.of_kind("target_proxy")] == ["job_code"]
    assert any("multiclass" in note for note in report.notes)
    assert check_leakage(halves(credit), "employment").passed


def test_continuous_target_uses_rank_correlation(credit: pd.DataFrame) -> None:
    df = credit.assign(
        salary=credit["income"] * 12 + noise(len(credit), 1.0),
        salary_band=pd.qcut(credit["income"], 200, labels=False).astype(str),
    )
    report = check_leakage(halves(df), "income")
    assert sorted(f.columns[0] for f in report.of_kind("target_proxy")) == [
        "salary",
        "salary_band",
    ]
    assert any("Spearman" in note for note in report.notes)


def test_one_split_only_is_noted(credit: pd.DataFrame) -> None:
    report = check_leakage({"all": credit}, "approved")
    assert report.passed
    assert any("one split only" in note for note in report.notes)


def test_a_constant_target_skips_the_proxy_check() -> None:
    df = pd.DataFrame({"x": range(10), "y": [1] * 10})
    report = check_leakage(halves(df), "y")
    assert any("fewer than two values" in note for note in report.notes)


def test_report_to_dict_is_json_ready(credit: pd.DataFrame) -> None:
    splits = halves(credit.assign(leak=credit["approved"] * 2))
    splits["test"] = pd.concat([splits["test"], splits["train"].iloc[:9]])
    data = check_leakage(splits, "approved").to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["passed"] is False
    duplicate = next(f for f in data["findings"] if f["kind"] == "exact_duplicate")
    assert duplicate["examples"] == [0, 1, 2, 3, 4]
    assert duplicate["count"] == 9
    assert LeakageReport().to_dict()["passed"] is True


@pytest.mark.parametrize(
    ("splits", "kwargs", "match"),
    [
        ({}, {}, "needs a mapping"),
        ({"train": [1]}, {}, "split 'train' is a list"),
        ({"train": pd.DataFrame({"x": [1]})}, {}, "split 'train' has no target column 'y'"),
        ({"train": pd.DataFrame({"x": [1], "y": [0]})}, {"group": "g"}, "no group column 'g'"),
        (
            {"a": pd.DataFrame({"x": [1], "y": [0]}), "b": pd.DataFrame({"z": [1], "y": [0]})},
            {},
            "differing: 'x', 'z'",
        ),
        ({"a": pd.DataFrame({"x": [1], "y": [0]})}, {"feature_auc_threshold": 0.5}, r"\(0.5, 1\]"),
    ],
)
def test_bad_input_is_refused(splits: Any, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidArgument, match=match):
        check_leakage(splits, "y", **kwargs)


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        ([0, 1, 1, 0], "binary"),
        ([True, False], "binary"),
        (["a", "b", "c"], "multiclass"),
        (list(range(21)), "regression"),
        ([float(i) for i in range(20)], "multiclass"),
        ([f"c{i}" for i in range(40)], "multiclass"),
    ],
)
def test_target_kind(values: list[Any], kind: str) -> None:
    assert target_kind(pd.Series(values)) == kind
