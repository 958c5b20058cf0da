"""The current window as a stream of chunks, whatever form it arrives in.

A chunk is a slice of rows from a pandas DataFrame or a pyarrow record batch, seen
through one small interface: numeric columns as float64 arrays (NaN for missing,
datetimes as epoch seconds), categorical columns as value counts (computed by pyarrow,
or from dictionary or pandas category codes without touching the strings), row masks
for slices. Parquet files and directories are read batch by batch with small read
buffers, so memory stays bounded by a chunk whatever the size of the window.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np

from keel.errors import InvalidArgument
from keel.monitoring._reference import numeric_values

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    from numpy.typing import NDArray

__all__ = ["Chunk", "Mismatch", "chunks_of"]

_READ_BUFFER = 1 << 20
_PREFETCH = 2
T = TypeVar("T")
_PARQUET_SUFFIXES = (".parquet", ".pq")


class Mismatch(Exception):
    """A column's type cannot be compared with the reference (e.g. text where the
    reference is numeric); carries the type found."""


class Chunk(Protocol):
    """Rows of the current window, column by column."""

    @property
    def num_rows(self) -> int: ...

    @property
    def names(self) -> set[str]: ...

    def numbers(self, name: str) -> NDArray[np.float64]: ...

    def categories(self, name: str) -> tuple[pa.Array, NDArray[np.int64], int]:
        """(distinct non-missing values, their counts, number of missing values)."""
        ...

    def groups(self, name: str) -> list[tuple[Any, NDArray[np.bool_]]]:
        """(value, row mask) per distinct non-missing value."""
        ...

    def select(self, mask: NDArray[np.bool_]) -> Chunk: ...


class FrameChunk:
    """A slice of a pandas DataFrame; numeric columns are read without a copy."""

    def __init__(self, df: pd.DataFrame) -> None:
        self.df = df
        self._labels = {str(c): c for c in df.columns}
        if len(self._labels) != len(df.columns):
            names = [str(c) for c in df.columns]
            duplicated = sorted({n for n in names if names.count(n) > 1})
            raise InvalidArgument(
                f"the current data has duplicate column names {duplicated}; rename them"
            )

    @property
    def num_rows(self) -> int:
        return len(self.df)

    @property
    def names(self) -> set[str]:
        return set(self._labels)

    def _series(self, name: str) -> pd.Series:
        return self.df[self._labels[name]]

    def numbers(self, name: str) -> NDArray[np.float64]:
        series = self._series(name)
        values = numeric_values(series)
        if values is None:
            raise Mismatch(str(series.dtype))
        return values

    def categories(self, name: str) -> tuple[pa.Array, NDArray[np.int64], int]:
        import pandas as pd
        import pyarrow as pa

        series = self._series(name)
        if isinstance(series.dtype, pd.CategoricalDtype):
            codes = series.cat.codes.to_numpy()
            counts = np.bincount(
                codes.astype(np.intp) + 1, minlength=len(series.cat.categories) + 1
            )
            values = _arrow_values(series.cat.categories)
            return values, counts[1:].astype(np.int64), int(counts[0])
        counts_series = series.value_counts(dropna=True, sort=False)
        missing = len(series) - int(counts_series.sum())
        try:
            values = _arrow_values(counts_series.index)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            values = pa.array([str(v) for v in counts_series.index.tolist()])
        return values, counts_series.to_numpy().astype(np.int64), missing

    def groups(self, name: str) -> list[tuple[Any, NDArray[np.bool_]]]:
        import pandas as pd

        codes, uniques = pd.factorize(self._series(name), sort=False)
        return [(_python(u), codes == i) for i, u in enumerate(uniques.tolist())]

    def select(self, mask: NDArray[np.bool_]) -> FrameChunk:
        return FrameChunk(self.df[mask])


def _arrow_values(index: Any) -> pa.Array:
    import pyarrow as pa

    return pa.array(np.asarray(index, dtype=object) if index.dtype == object else index)


def _python(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


class ArrowChunk:
    """A pyarrow record batch."""

    def __init__(self, batch: pa.RecordBatch) -> None:
        self.batch = batch

    @property
    def num_rows(self) -> int:
        return int(self.batch.num_rows)

    @property
    def names(self) -> set[str]:
        return set(self.batch.schema.names)

    def numbers(self, name: str) -> NDArray[np.float64]:
        import pyarrow as pa

        array = self.batch.column(name)
        t = pa.types
        if t.is_dictionary(array.type):
            array = array.dictionary_decode()
        kind = array.type
        if t.is_floating(kind) or t.is_integer(kind) or t.is_decimal(kind) or t.is_null(kind):
            floats = array if kind == pa.float64() else array.cast(pa.float64())
            return np.asarray(floats.to_numpy(zero_copy_only=False), dtype=np.float64)
        if t.is_timestamp(kind):
            unit = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}[kind.unit]
            ints = array.cast(pa.int64()).cast(pa.float64())
            return np.asarray(ints.to_numpy(zero_copy_only=False), dtype=np.float64) * unit
        if t.is_date(kind):
            days = array.cast(pa.date32()).cast(pa.int32()).cast(pa.float64())
            return np.asarray(days.to_numpy(zero_copy_only=False), dtype=np.float64) * 86400
        raise Mismatch(str(kind))

    def categories(self, name: str) -> tuple[pa.Array, NDArray[np.int64], int]:
        import pyarrow as pa
        import pyarrow.compute as pc

        array = self.batch.column(name)
        missing = array.null_count
        if pa.types.is_dictionary(array.type):
            dictionary = array.dictionary
            indices = array.indices.cast(pa.int32())
            if missing:
                indices = pc.fill_null(indices, len(dictionary))
            counts = np.bincount(
                np.asarray(indices.to_numpy(zero_copy_only=False), dtype=np.intp),
                minlength=len(dictionary) + 1,
            )[: len(dictionary)]
            return dictionary, counts.astype(np.int64), missing
        if missing:
            array = array.drop_null()
        found = pc.value_counts(array)
        counts = np.asarray(found.field("counts").to_numpy(zero_copy_only=False), dtype=np.int64)
        return found.field("values"), counts, missing

    def groups(self, name: str) -> list[tuple[Any, NDArray[np.bool_]]]:
        import pyarrow as pa
        import pyarrow.compute as pc

        array = self.batch.column(name)
        encoded = array if pa.types.is_dictionary(array.type) else pc.dictionary_encode(array)
        codes = np.asarray(
            pc.fill_null(encoded.indices.cast(pa.int32()), -1).to_numpy(zero_copy_only=False)
        )
        values = encoded.dictionary.to_pylist()
        present = np.flatnonzero(np.bincount(codes + 1, minlength=len(values) + 1)[1:])
        return [(values[i], codes == i) for i in present.tolist()]

    def select(self, mask: NDArray[np.bool_]) -> ArrowChunk:
        import pyarrow as pa

        return ArrowChunk(self.batch.filter(pa.array(mask)))


def _frame_chunks(df: pd.DataFrame, chunk_rows: int) -> Iterator[Chunk]:
    yield FrameChunk(df.iloc[:chunk_rows])
    for start in range(chunk_rows, len(df), chunk_rows):
        yield FrameChunk(df.iloc[start : start + chunk_rows])


def _table_chunks(table: pa.Table, chunk_rows: int) -> Iterator[Chunk]:
    import pyarrow as pa

    batches = table.to_batches(max_chunksize=chunk_rows)
    if not batches:  # a table with no rows still tells which columns exist
        batches = [pa.RecordBatch.from_pylist([], schema=table.schema)]
    for batch in batches:
        yield ArrowChunk(batch)


def parquet_files(path: Path) -> list[Path]:
    """The Parquet files of a directory, in name order (hidden and temporary files are
    skipped, as Spark and pyarrow do)."""
    files = sorted(
        p
        for p in path.rglob("*")
        if p.is_file()
        and p.suffix.lower() in _PARQUET_SUFFIXES
        and not any(part.startswith((".", "_")) for part in p.relative_to(path).parts)
    )
    if not files:
        raise InvalidArgument(
            f"no Parquet files under {str(path)!r}; give a directory of *.parquet files, "
            "one data file, a DataFrame or a pyarrow Table"
        )
    return files


def _parquet_chunks(
    files: Sequence[Path], columns: Sequence[str], chunk_rows: int
) -> Iterator[Chunk]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    for path in files:
        try:
            reader = pq.ParquetFile(path, buffer_size=_READ_BUFFER, pre_buffer=False)
        except (OSError, pa.ArrowException) as exc:
            raise InvalidArgument(
                f"cannot read {str(path)!r} as Parquet ({exc}); check the file or remove it"
            ) from exc
        schema = reader.schema_arrow
        wanted = [c for c in columns if c in schema.names]
        empty = pa.RecordBatch.from_pylist([], schema=pa.schema([schema.field(c) for c in wanted]))
        yield ArrowChunk(empty)  # the file's columns, even when it has no rows
        for batch in reader.iter_batches(batch_size=chunk_rows, columns=wanted, use_threads=True):
            yield ArrowChunk(batch)


class _Done:
    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


def prefetch(items: Iterator[T], depth: int = _PREFETCH) -> Iterator[T]:
    """``items`` produced by a background thread, at most ``depth`` ahead: Parquet
    decoding (which releases the GIL) overlaps with counting the previous chunk."""
    ready: queue.Queue[T | _Done] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        done = _Done()
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        ready.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            done = _Done(exc)
        while not stop.is_set():
            try:
                ready.put(done, timeout=0.1)
                return
            except queue.Full:
                continue

    thread = threading.Thread(target=produce, name="keel-drift-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = ready.get()
            if isinstance(item, _Done):
                if item.error is not None:
                    raise item.error
                return
            yield item
    finally:
        stop.set()
        thread.join()


def _path_chunks(
    path: Path, columns: Sequence[str], chunk_rows: int
) -> tuple[Iterator[Chunk] | None, str | None]:
    """Chunks of a Parquet file or directory; for CSV and JSON Lines, (None, format)."""
    from keel.data._read import detect_format

    if path.is_dir():
        return prefetch(_parquet_chunks(parquet_files(path), columns, chunk_rows)), None
    if not path.exists():
        raise InvalidArgument(f"no file or directory {str(path)!r}; check the path")
    fmt = detect_format(path)
    if fmt == "parquet":
        return prefetch(_parquet_chunks([path], columns, chunk_rows)), None
    if fmt is None:
        raise InvalidArgument(
            f"{str(path)!r} is not a Parquet, CSV or JSON Lines file; give a data file, a "
            "directory of Parquet files, a DataFrame or a pyarrow Table"
        )
    return None, fmt


def _items(items: Iterable[Any], chunk_rows: int) -> Iterator[Chunk]:
    import pandas as pd
    import pyarrow as pa

    for item in items:
        if isinstance(item, pa.RecordBatch):
            yield ArrowChunk(item)
        elif isinstance(item, pa.Table):
            yield from _table_chunks(item, chunk_rows)
        elif isinstance(item, pd.DataFrame):
            yield from _frame_chunks(item, chunk_rows)
        else:
            raise InvalidArgument(
                f"the current data yielded a {type(item).__name__}; an iterator must yield "
                "pyarrow RecordBatches or Tables, or pandas DataFrames"
            )


def _dataset_chunks(dataset: Any, columns: Sequence[str], chunk_rows: int) -> Iterator[Chunk]:
    import pyarrow as pa

    wanted = [c for c in columns if c in dataset.schema.names]
    schema = pa.schema([dataset.schema.field(c) for c in wanted])
    yield ArrowChunk(pa.RecordBatch.from_pylist([], schema=schema))  # the columns it has
    batches = dataset.to_batches(columns=wanted, batch_size=chunk_rows)
    yield from prefetch(ArrowChunk(b) for b in batches)


def chunks_of(
    current: Any, columns: Sequence[str], chunk_rows: int
) -> tuple[Iterator[Chunk] | None, Path | None, str | None]:
    """``(chunks, None, None)`` for data that streams here; ``(None, path, fmt)`` for a
    CSV or JSON Lines file, which the caller scans with ``keel.data._read.scan``."""
    import pandas as pd
    import pyarrow as pa

    if isinstance(current, pd.DataFrame):
        return _frame_chunks(current, chunk_rows), None, None
    if isinstance(current, pa.Table):
        return _table_chunks(current, chunk_rows), None, None
    if isinstance(current, pa.RecordBatch):
        return iter([ArrowChunk(current)]), None, None
    if isinstance(current, str | Path):
        chunks, fmt = _path_chunks(Path(current), columns, chunk_rows)
        return chunks, (None if chunks is not None else Path(current)), fmt
    if current is None:
        raise InvalidArgument(
            "no current data was given; pass a DataFrame, a pyarrow Table or batches, or "
            "the path of a Parquet file or directory"
        )
    import pyarrow.dataset as ds

    if isinstance(current, ds.Dataset):
        return _dataset_chunks(current, columns, chunk_rows), None, None
    if isinstance(current, Iterable) and not isinstance(current, bytes | dict):
        return _items(current, chunk_rows), None, None
    raise InvalidArgument(
        f"cannot read a {type(current).__name__} as the current data; pass a DataFrame, a "
        "pyarrow Table, RecordBatch or iterator of them, or the path of a Parquet file or "
        "directory"
    )


def arrow_chunks(batches: Iterable[pa.RecordBatch]) -> Iterator[Chunk]:
    """Record batches (from ``keel.data._read.scan``) as chunks."""
    for batch in batches:
        yield ArrowChunk(batch)
