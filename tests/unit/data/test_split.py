"""Splits: deterministic, balanced, group-aware, recorded with lineage, and every refusal."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pytest

from keel.core._data import DatasetVersion
from keel.data._split import BALANCE_TOLERANCE, SplitResult, split
from keel.demo._world import generate_credit_data
from keel.errors import InvalidArgument


@pytest.fixture(scope="module")
def credit() -> pd.DataFrame:
    return generate_credit_data(20_000)


@pytest.fixture(scope="module")
def customers(credit: pd.DataFrame) -> pd.DataFrame:
    """The credit data with a ``customer`` id: 1 to 5 rows per customer."""
    sizes = np.random.default_rng(7).integers(1, 6, size=len(credit))
    ids = np.repeat(np.arange(len(sizes)), sizes)[: len(credit)]
    return credit.assign(customer=[f"c{i}" for i in ids])


def version(name: str = "credit", number: int = 3) -> DatasetVersion:
    return DatasetVersion(
        id=f"{name}-{number}",
        name=name,
        version=number,
        digest="d" * 64,
        manifest_digest="m" * 64,
        file_count=1,
        size=1,
        created_at=0.0,
    )


def assert_partition(result: SplitResult, df: pd.DataFrame) -> None:
    indexes = [frame.index for frame in result.frames.values()]
    combined = indexes[0].append(indexes[1:])
    assert combined.is_unique
    assert sorted(combined) == sorted(df.index)


def test_sizes_follow_the_fractions_and_rows_are_a_partition(credit: pd.DataFrame) -> None:
    result = split(credit, "approved")
    assert {k: len(v) for k, v in result.frames.items()} == {
        "train": 14_000,
        "val": 2_000,
        "test": 4_000,
    }
    assert_partition(result, credit)


def test_rows_keep_their_index_labels_values_and_order(credit: pd.DataFrame) -> None:
    result = split(credit, "approved", seed=3)
    for frame in result.frames.values():
        assert frame.index.is_monotonic_increasing
        pd.testing.assert_frame_equal(frame, credit.loc[frame.index])


def test_same_seed_same_split_other_seed_other_split(credit: pd.DataFrame) -> None:
    first = split(credit, "approved", seed=11)
    again = split(credit, "approved", seed=11)
    other = split(credit, "approved", seed=12)
    for name in ("train", "val", "test"):
        assert first.frames[name].index.equals(again.frames[name].index)
    assert not first.test.index.equals(other.test.index)
    assert first.to_dict() == again.to_dict()


def test_class_balance_is_kept_and_reported(credit: pd.DataFrame) -> None:
    result = split(credit, "approved")
    whole = credit["approved"].value_counts(normalize=True)
    for name, frame in result.frames.items():
        share = frame["approved"].value_counts(normalize=True)
        assert (share - whole).abs().max() < 0.001
        reported = result.balance.splits[name]
        assert reported.rows == len(frame)
        assert reported.counts == {
            str(k): int(v) for k, v in frame["approved"].value_counts().items()
        }
        assert reported.max_deviation < 0.001
    assert result.balance.strata == "class"
    assert result.balance.stratified
    assert result.balance.within_tolerance
    assert result.balance.whole.counts["1"] == int(credit["approved"].sum())


def test_multiclass_target_keeps_every_class_in_proportion(credit: pd.DataFrame) -> None:
    result = split(credit, "employment", seed=1)
    assert len(result.balance.whole.counts) == 5
    assert result.balance.max_deviation < 0.002
    for frame in result.frames.values():
        assert frame["employment"].nunique() == 5


def test_unstratified_split_still_reports_its_balance(credit: pd.DataFrame) -> None:
    result = split(credit, "approved", stratify=False)
    assert not result.balance.stratified
    assert result.balance.max_deviation < 0.05
    assert "not stratified" in result.balance.notes[0]
    assert_partition(result, credit)


def test_val_zero_gives_two_splits(credit: pd.DataFrame) -> None:
    result = split(credit, "approved", test=0.25, val=0)
    assert result.val is None
    assert list(result.frames) == ["train", "test"]
    assert list(result.balance.splits) == ["train", "test"]
    assert (len(result.train), len(result.test)) == (15_000, 5_000)
    assert set(result.leakage.rows) == {"train", "test"}


def test_tiny_classes_at_the_limit_still_get_a_row_in_every_split() -> None:
    df = pd.DataFrame({"x": range(30), "y": ["a"] * 10 + ["b"] * 20})
    result = split(df, "y", test=0.2, val=0.1)
    for frame in result.frames.values():
        assert set(frame["y"]) == {"a", "b"}


def test_continuous_target_is_stratified_on_quantile_bins(credit: pd.DataFrame) -> None:
    result = split(credit, "income", seed=2)
    balance = result.balance
    assert balance.strata == "quantile"
    assert len(balance.whole.counts) == 10
    assert len(balance.edges) == 11
    assert balance.edges[0] == credit["income"].min()
    assert balance.edges[-1] == credit["income"].max()
    assert balance.max_deviation <= 0.001
    assert "continuous" in balance.notes[0]
    mean = credit["income"].mean()
    for name in ("train", "val", "test"):
        part = balance.splits[name]
        assert part.target_mean is not None
        assert abs(part.target_mean - mean) / mean < 0.02


def test_groups_never_straddle_splits_and_balance_is_close(customers: pd.DataFrame) -> None:
    result = split(customers, "approved", group="customer")
    seen = [set(frame["customer"]) for frame in result.frames.values()]
    assert sum(len(s) for s in seen) == len(set.union(*seen))
    assert_partition(result, customers)
    assert result.balance.max_deviation < BALANCE_TOLERANCE
    assert result.leakage.passed
    assert not result.leakage.of_kind("group_overlap")
    assert abs(len(result.test) / len(customers) - 0.2) < 0.01


def test_unstratified_group_split_hits_the_row_fractions(customers: pd.DataFrame) -> None:
    result = split(customers, "approved", group="customer", stratify=False, seed=5)
    for name, want in (("train", 0.7), ("val", 0.1), ("test", 0.2)):
        assert abs(len(result.frames[name]) / len(customers) - want) < 0.01
    assert not result.leakage.of_kind("group_overlap")
    again = split(customers, "approved", group="customer", stratify=False, seed=5)
    assert result.test.index.equals(again.test.index)


def test_a_few_large_groups_give_an_honest_best_effort_note() -> None:
    df = pd.DataFrame(
        {
            "g": ["a"] * 50 + ["b"] * 30 + ["c"] * 20 + ["d"] * 10,
            "x": range(110),
            "y": [1] * 50 + [0] * 30 + [1] * 20 + [0] * 10,
        }
    )
    result = split(df, "y", test=0.2, val=0, group="g")
    assert not result.balance.within_tolerance
    assert "best-effort" in result.balance.notes[-1]
    assert set(result.train["g"]).isdisjoint(result.test["g"])


def test_to_dict_is_json_ready(customers: pd.DataFrame) -> None:
    data = split(customers, "approved", group="customer").to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["rows"] == {k: v["rows"] for k, v in data["balance"]["splits"].items()}
    assert data["params"]["group"] == "customer"
    assert data["versions"] == {}


class FakeRecorder:
    """Stands in for ``DataService.add_frame``: checks the call shape, keeps the calls."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(
        self,
        df: pd.DataFrame,
        name: str,
        *,
        message: str,
        parents: Sequence[DatasetVersion],
        metadata: Mapping[str, Any],
    ) -> DatasetVersion:
        assert isinstance(df, pd.DataFrame)
        assert isinstance(message, str)
        assert message
        assert all(isinstance(p, DatasetVersion) for p in parents)
        json.dumps(metadata)
        self.calls.append(
            {"df": df, "name": name, "message": message, "parents": parents, "meta": metadata}
        )
        return version(name, 1)


def test_each_split_is_recorded_with_its_parent(credit: pd.DataFrame) -> None:
    recorder = FakeRecorder()
    parent = version("credit", 3)
    result = split(credit, "approved", record=recorder, parent=parent, seed=4)
    assert [c["name"] for c in recorder.calls] == ["credit-train", "credit-val", "credit-test"]
    for call in recorder.calls:
        split_name = call["meta"]["split"]
        assert call["df"] is result.frames[split_name]
        assert list(call["parents"]) == [parent]
        assert "credit@v3" in call["message"]
        assert call["meta"]["params"]["seed"] == 4
        assert call["meta"]["balance"] == result.balance.splits[split_name].to_dict()
        assert call["meta"]["leakage_passed"] is True
    assert {k: v.name for k, v in result.versions.items()} == {
        "train": "credit-train",
        "val": "credit-val",
        "test": "credit-test",
    }
    assert result.to_dict()["versions"]["test"] == "credit-test@v1"


def test_recording_without_a_parent_uses_the_given_name(credit: pd.DataFrame) -> None:
    recorder = FakeRecorder()
    result = split(credit, "approved", val=0, record=recorder, name="loans")
    assert [c["name"] for c in recorder.calls] == ["loans-train", "loans-test"]
    assert all(list(c["parents"]) == [] for c in recorder.calls)
    assert set(result.versions) == {"train", "test"}


def frame() -> pd.DataFrame:
    return pd.DataFrame({"x": range(100), "y": [0, 1] * 50, "g": [i // 2 for i in range(100)]})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"df": [1, 2]}, "needs a pandas DataFrame"),
        ({"df": pd.DataFrame({"x": [], "y": []})}, "frame is empty"),
        ({"target": "nope"}, "no target column 'nope'.*'x', 'y', 'g'"),
        ({"group": "nope"}, "no group column 'nope'"),
        ({"group": "y"}, "group and target are both 'y'"),
        ({"test": 0}, r"test must be in \(0, 1\)"),
        ({"test": 1.0}, r"test must be in \(0, 1\)"),
        ({"test": -0.2}, r"test must be in \(0, 1\)"),
        ({"test": True}, "test must be a fraction"),
        ({"test": "0.2"}, "test must be a fraction"),
        ({"test": math.nan}, "test must be a fraction"),
        ({"val": -0.1}, r"val must be in \[0, 1\)"),
        ({"val": 1}, r"val must be in \[0, 1\)"),
        ({"test": 0.5, "val": 0.5}, "leaves no rows for training"),
        ({"test": 0.7, "val": 0.4}, "keep their sum below 1"),
        ({"seed": -1}, "seed must be a non-negative integer"),
        ({"seed": 1.5}, "seed must be a non-negative integer"),
        ({"name": "x"}, "pass record= too"),
        ({"parent": version()}, "pass record= too"),
        ({"record": FakeRecorder()}, "needs name="),
        ({"record": FakeRecorder(), "name": "a/b"}, "invalid dataset name"),
        ({"record": FakeRecorder(), "parent": "credit@v3"}, "parent must be a DatasetVersion"),
        ({"record": "add_frame", "name": "x"}, "record must be callable"),
    ],
)
def test_bad_arguments_are_refused_with_the_fix(kwargs: dict[str, Any], match: str) -> None:
    arguments: dict[str, Any] = {"df": frame(), "target": "y", **kwargs}
    with pytest.raises(InvalidArgument, match=match):
        split(**arguments)


def test_missing_target_values_are_named() -> None:
    df = frame().astype({"y": "float64"})
    df.loc[[3, 8], "y"] = np.nan
    with pytest.raises(InvalidArgument, match=r"2 missing values \(rows 3, 8…\).*dropna"):
        split(df, "y")


def test_missing_group_ids_are_refused() -> None:
    df = frame().astype({"g": "float64"})
    df.loc[5, "g"] = np.nan
    with pytest.raises(InvalidArgument, match="group 'g' has 1 missing values"):
        split(df, "y", group="g")


def test_a_rare_class_is_named_with_its_count() -> None:
    df = pd.DataFrame({"x": range(100), "y": ["common"] * 96 + ["rare"] * 4})
    with pytest.raises(InvalidArgument, match=r"class 'rare' of 'y' has 4 rows.*at least 10"):
        split(df, "y")
    assert len(split(df, "y", stratify=False).test) == 20


def test_a_frame_too_small_for_a_fraction_is_refused() -> None:
    df = pd.DataFrame({"x": range(5), "y": [0, 1, 0, 1, 0]})
    with pytest.raises(InvalidArgument, match=r"5 rows: a val fraction of 0\.1 gets no row"):
        split(df, "y", stratify=False)


def test_repeated_column_names_are_refused() -> None:
    df = pd.DataFrame([[1, 2, 0], [3, 4, 1]], columns=["a", "a", "y"])
    with pytest.raises(InvalidArgument, match=r"column names repeat \(a\)"):
        split(df, "y")


def test_too_few_groups_for_the_splits_are_refused() -> None:
    df = pd.DataFrame({"x": range(100), "y": [0, 1] * 50, "g": [0] * 98 + [1, 2]})
    with pytest.raises(InvalidArgument, match="no whole group of 'g' fits the"):
        split(df, "y", group="g", stratify=False)
