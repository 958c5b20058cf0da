"""The reference profile: a DataFrame profiled here equals keel.data's profile of it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from keel.data._profile import TableProfile, profile_frame
from keel.errors import InvalidArgument
from keel.monitoring._reference import as_profile, profile_reference

Mixed = Callable[..., pd.DataFrame]


def test_profile_reference_matches_the_data_profile(mixed: Mixed) -> None:
    frame = mixed(20_000, 5)
    frame.loc[frame.index[::50], "lognormal"] = np.nan
    frame.loc[frame.index[::70], "uniform"] = np.inf
    frame.loc[frame.index[::60], "city"] = None
    ours = profile_reference(frame)
    theirs = profile_frame(frame)
    assert ours.rows == theirs.rows
    assert list(ours.columns) == list(theirs.columns)
    for name, column in ours.columns.items():
        other = theirs.columns[name]
        assert (column.kind, column.rows, column.nulls) == (other.kind, other.rows, other.nulls)
        if column.edges is not None:
            assert other.edges is not None
            np.testing.assert_array_equal(column.edges, other.edges)
            np.testing.assert_array_equal(column.counts, other.counts)
            assert column.infinite == other.infinite
            assert column.moments[0] == other.moments[0]
            assert column.mean == pytest.approx(other.mean, rel=1e-12)
            assert column.std == pytest.approx(other.std, rel=1e-9)
            assert (column.min, column.max) == (other.min, other.max)
        if column.kind in ("string", "bool") or name in ("count", "code"):
            assert column.value_counts == other.value_counts, name
    assert ours.columns["code"].distinct == 4
    assert ours.columns["normal"].distinct > 1000  # not counted exactly: "more than 1000"
    back = TableProfile.from_dict(ours.to_dict())
    assert back.columns["city"].value_counts == ours.columns["city"].value_counts


def test_profile_reference_keeps_only_the_columns_asked_for(mixed: Mixed) -> None:
    profile = profile_reference(mixed(100, 1), columns=["city", "normal"])
    assert list(profile.columns) == ["normal", "city"]
    with pytest.raises(InvalidArgument, match="duplicate column names"):
        profile_reference(pd.DataFrame([[1, 2]], columns=["a", "a"]))


def test_references_from_files_and_dataset_profiles(mixed: Mixed, tmp_path: Path) -> None:
    frame = mixed(3000, 1)
    frame.to_parquet(tmp_path / "ref.parquet")
    from_file = as_profile(tmp_path / "ref.parquet", 100)
    assert from_file.rows == 3000
    assert from_file.format == "parquet"
    stored = {"files": {"ref.parquet": {"profile": from_file.to_dict()}}}
    assert as_profile(stored, 100).rows == 3000
    with pytest.raises(InvalidArgument, match="is a directory"):
        as_profile(tmp_path, 100)
    with pytest.raises(InvalidArgument, match="no reference file"):
        as_profile(tmp_path / "none.csv", 100)
    (tmp_path / "blob.bin").write_bytes(b"\x00\x01\x02")
    with pytest.raises(InvalidArgument, match="not a CSV, Parquet or JSON Lines file"):
        as_profile(tmp_path / "blob.bin", 100)
