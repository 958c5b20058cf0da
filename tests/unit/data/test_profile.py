"""Streaming, mergeable profiles: exact merges, bounded summaries, clear errors on bad files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from keel.data._profile import TableProfile, profile_file, profile_frame
from keel.errors import InvalidArgument


def _frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.lognormal(size=n)
    x[::50] = np.nan
    return pd.DataFrame(
        {
            "x": x,
            "i": rng.integers(0, 7, n),
            "c": rng.choice(["a", "b", "c"], n),
            "s": [f"id{seed}-{k}" for k in range(n)],
            "b": rng.random(n) > 0.3,
            "t": pd.date_range("2024-01-01", periods=n, freq="min"),
        }
    )


def test_merge_equals_profile_of_concatenation() -> None:
    first, second = _frame(3000, 1), _frame(2000, 2)
    a = profile_frame(first)
    b = profile_frame(second, bins_from=a)
    merged = a.merge(b).to_dict()
    whole = profile_frame(pd.concat([first, second]), chunk_rows=3000).to_dict()
    for name, col in whole["columns"].items():
        got = merged["columns"][name]
        for key in ("rows", "nulls", "distinct", "top", "value_counts", "hll", "histogram", "min"):
            assert got.get(key) == col.get(key), (name, key)
        for key in ("mean", "std"):
            if col.get(key) is not None:
                assert got[key] == pytest.approx(col[key], rel=1e-9), (name, key)


def test_profile_summaries_are_right() -> None:
    df = _frame(5000)
    col = profile_frame(df, chunk_rows=700).columns
    x = df["x"].dropna()
    assert col["x"].nulls == 100
    assert col["x"].mean == pytest.approx(x.mean())
    assert col["x"].std == pytest.approx(x.std())
    assert (col["x"].min, col["x"].max) == (x.min(), x.max())
    quantiles = col["x"].quantiles()
    for q in (0.05, 0.5, 0.95):
        rank = (x <= quantiles[f"p{round(q * 100):02d}"]).mean()
        assert rank == pytest.approx(q, abs=0.02)
    assert col["c"].distinct == 3
    assert col["i"].distinct == 7
    assert col["s"].distinct == pytest.approx(5000, rel=0.05)
    assert sum(col["x"].counts) == len(x)  # every value in a bin, under- or overflow


def test_later_chunks_outside_the_first_range_land_in_overflow_bins() -> None:
    df = pd.DataFrame({"v": np.concatenate([np.linspace(0, 1, 500), [-5.0, 9.0, 10.0]])})
    column = profile_frame(df, chunk_rows=500).columns["v"]
    assert column.counts is not None
    assert column.counts[0] == 1
    assert column.counts[-1] == 2
    assert (column.min, column.max) == (-5.0, 10.0)


def test_profile_round_trips_through_json(tmp_path: Path) -> None:
    path = tmp_path / "data.parquet"
    _frame(1000).to_parquet(path)
    described = profile_file(path, chunk_rows=300)
    assert described is not None
    assert set(described) == {"schema", "profile"}
    again = TableProfile.from_dict(json.loads(json.dumps(described)))
    assert again.to_dict() == described["profile"]
    assert described["profile"]["rows"] == 1000
    assert described["schema"]["columns"]["c"]["type"] == "category"


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet", ""])
def test_formats_by_extension_and_sniffing(tmp_path: Path, suffix: str) -> None:
    df = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", None]})
    path = tmp_path / f"data{suffix}"
    if suffix in (".csv", ""):
        df.to_csv(path, index=False)
    elif suffix == ".jsonl":
        df.to_json(path, orient="records", lines=True)
    else:
        df.to_parquet(path)
    described = profile_file(path)
    assert described is not None
    columns = described["profile"]["columns"]
    assert columns["a"]["type"] == "int"
    assert columns["b"]["nulls"] == 1


def test_non_tabular_file_gives_none(tmp_path: Path) -> None:
    path = tmp_path / "image.bin"
    path.write_bytes(bytes(range(256)))
    assert profile_file(path) is None


def test_int_column_with_a_decimal_in_a_later_block_widens_to_float(tmp_path: Path) -> None:
    path = tmp_path / "late.csv"
    path.write_text("a\n" + "".join(f"{k}\n" for k in range(20000)) + "1.5\n")
    described = profile_file(path, chunk_rows=100)
    assert described is not None
    assert described["profile"]["columns"]["a"]["type"] == "float"
    assert described["profile"]["rows"] == 20001


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "empty \\(0 bytes\\)"),
        (b"a,s\n1,ok\n2,caf\xe9\n", "column 's' .*not valid UTF-8.*iconv"),
        (b"a\n" + b"".join(b"%d\n" % k for k in range(20000)) + b"oops\n", "column 'a' mixes"),
    ],
)
def test_bad_csv_names_file_column_and_fix(tmp_path: Path, content: bytes, match: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(InvalidArgument, match=match) as caught:
        profile_file(path, chunk_rows=100)
    assert "bad.csv" in caught.value.message


def test_truncated_parquet_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "cut.parquet"
    pq.write_table(pa.table({"x": list(range(1000))}), path)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(InvalidArgument, match=r"cut\.parquet.*not a readable Parquet file"):
        profile_file(path)


def test_all_null_and_mixed_type_frames() -> None:
    col = profile_frame(pd.DataFrame({"n": [None, None]})).columns["n"]
    assert (col.kind, col.nulls, col.rows) == ("null", 2, 2)
    assert math.isnan(col.mean)
    with pytest.raises(InvalidArgument, match="column 'm' mixes value types"):
        profile_frame(pd.DataFrame({"ok": [1, 2], "m": [1, "x"]}))
