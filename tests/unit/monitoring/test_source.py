"""Every form of current data gives the same result as the in-memory DataFrame: Parquet
files and directories read in chunks, pyarrow tables, batches, datasets, CSV."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from keel.errors import InvalidArgument
from keel.monitoring import DriftDetector, DriftReport
from keel.monitoring._source import prefetch

Mixed = Callable[..., pd.DataFrame]


def _same(a: DriftReport, b: DriftReport) -> None:
    assert a.current_rows == b.current_rows
    assert a.drifted_columns == b.drifted_columns
    for name, column in a.columns.items():
        other = b.columns[name]
        assert (column.status, column.method) == (other.status, other.method), name
        assert column.current_count == other.current_count, name
        if column.statistic is None:
            assert other.statistic is None
        else:
            assert column.statistic == pytest.approx(other.statistic, rel=1e-9, abs=1e-12), name
        if column.current_mean is not None:
            assert column.current_mean == pytest.approx(other.current_mean, rel=1e-9), name


@pytest.fixture
def detector(mixed: Mixed) -> DriftDetector:
    return DriftDetector(chunk_rows=1000).fit(mixed(5000, 1))


@pytest.fixture
def current(mixed: Mixed) -> pd.DataFrame:
    frame = mixed(7000, 2, shift=0.4, moved=0.1)
    frame.loc[frame.index[::97], "normal"] = np.nan
    frame.loc[frame.index[::89], "city"] = None
    return frame


def test_streaming_a_parquet_directory_equals_the_in_memory_result(
    detector: DriftDetector, current: pd.DataFrame, tmp_path: Path
) -> None:
    folder = tmp_path / "window"
    (folder / "day=2").mkdir(parents=True)
    current.iloc[:3000].to_parquet(folder / "part-0.parquet", row_group_size=700)
    current.iloc[3000:6500].to_parquet(folder / "day=2" / "part-1.parquet")
    current.iloc[6500:].to_parquet(folder / "part-2.pq")
    current.iloc[:10].to_parquet(folder / "_ignored.parquet")  # hidden, like _SUCCESS
    (folder / "_SUCCESS").write_text("")
    in_memory = detector.score(current)
    streamed = detector.score(folder)
    _same(in_memory, streamed)
    assert sorted(streamed.drifted_columns) == ["city", "exponential", "normal"]
    single = tmp_path / "window.parquet"
    current.to_parquet(single)
    _same(in_memory, detector.score(str(single)))


def test_chunk_size_does_not_change_the_result(mixed: Mixed, current: pd.DataFrame) -> None:
    reference = mixed(5000, 1)
    whole = DriftDetector(chunk_rows=1_000_000).fit(reference).score(current)
    chunked = DriftDetector(chunk_rows=333).fit(reference).score(current)
    _same(whole, chunked)


def test_arrow_tables_batches_and_datasets(
    detector: DriftDetector, current: pd.DataFrame, tmp_path: Path
) -> None:
    expected = detector.score(current)
    table = pa.Table.from_pandas(current, preserve_index=False)
    _same(expected, detector.score(table))
    _same(expected, detector.score(table.to_batches(max_chunksize=1500)))
    _same(expected, detector.score(iter(table.to_batches(max_chunksize=2500))))

    def frames() -> Iterator[pd.DataFrame]:
        yield current.iloc[:4000]
        yield current.iloc[4000:]

    _same(expected, detector.score(frames()))
    encoded = table.set_column(
        table.schema.get_field_index("city"), "city", table.column("city").dictionary_encode()
    )
    _same(expected, detector.score(encoded))
    pq.write_table(table, tmp_path / "data.parquet")
    _same(expected, detector.score(ds.dataset(tmp_path / "data.parquet")))
    one_batch = table.combine_chunks().to_batches()[0]
    _same(expected, detector.score(one_batch))


def test_csv_and_json_lines_files(
    detector: DriftDetector, current: pd.DataFrame, tmp_path: Path
) -> None:
    expected = detector.score(current)
    csv = tmp_path / "window.csv"
    current.to_csv(csv, index=False)
    from_csv = detector.score(csv)
    assert from_csv.drifted_columns == expected.drifted_columns
    assert from_csv.columns["city"].statistic == pytest.approx(expected.columns["city"].statistic)
    assert from_csv.columns["normal"].statistic == pytest.approx(
        expected.columns["normal"].statistic, rel=1e-6
    )


def test_a_column_missing_from_some_files_counts_as_missing_there(
    detector: DriftDetector, current: pd.DataFrame, tmp_path: Path
) -> None:
    current.iloc[:3000].to_parquet(tmp_path / "a.parquet")
    current.iloc[3000:].drop(columns=["uniform"]).to_parquet(tmp_path / "b.parquet")
    report = detector.score(tmp_path)
    uniform = report.columns["uniform"]
    assert uniform.status == "ok"
    assert uniform.current_count == 3000
    assert uniform.current_missing_share == pytest.approx(4000 / 7000)


def test_timestamps_dates_and_integers_from_arrow(mixed: Mixed) -> None:
    reference = mixed(3000, 1)
    detector = DriftDetector(columns=["when", "count"]).fit(reference)
    table = pa.Table.from_pandas(mixed(3000, 2), preserve_index=False)
    as_ms = table.set_column(
        table.schema.get_field_index("when"),
        "when",
        table.column("when").cast(pa.timestamp("ms", tz="UTC")),
    )
    report = detector.score(as_ms)
    assert report.columns["when"].status == "ok"
    assert not report.columns["when"].drifted
    assert report.columns["when"].current_mean == pytest.approx(
        report.columns["when"].reference_mean, rel=1e-3
    )
    dates = pa.table({"when": pa.array(reference["when"].dt.date), "count": reference["count"]})
    assert detector.score(dates).columns["when"].status == "ok"


def test_bad_current_data_says_what_to_pass(
    detector: DriftDetector, current: pd.DataFrame, tmp_path: Path
) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_bytes(b"\x00\x01binary")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "part.parquet").write_bytes(b"PAR1 not really")
    cases: list[tuple[object, str]] = [
        (None, "no current data was given"),
        (tmp_path / "nowhere", "no file or directory"),
        (tmp_path / "empty", "no Parquet files under"),
        (tmp_path / "notes.txt", "not a Parquet, CSV or JSON Lines file"),
        (tmp_path / "broken", "cannot read"),
        (3.5, "cannot read a float as the current data"),
        ([1, 2, 3], "yielded a int"),
        (pd.DataFrame([[1.0, 2.0]], columns=["normal", "normal"]), "duplicate column names"),
    ]
    for value, message in cases:
        with pytest.raises(InvalidArgument, match=message):
            detector.score(value)


def test_prefetch_hands_over_errors_and_stops_early() -> None:
    def numbers() -> Iterator[int]:
        yield from range(3)
        raise ValueError("broken source")

    items = prefetch(numbers())
    assert [next(items) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(ValueError, match="broken source"):
        next(items)
    reader = prefetch(iter(range(1000)))
    assert next(reader) == 0
    reader.close()  # the producer thread is stopped and joined
