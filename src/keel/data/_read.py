"""Streaming reads of tabular files (CSV, Parquet, JSON Lines) in record batches.

Memory stays bounded by one batch: Parquet is read batch by batch within row groups,
CSV and JSON Lines through pyarrow's streaming readers in blocks. Column types come from
the first block; when a later block needs a wider type (an integer column with a
decimal further down), the scan restarts once with that column widened rather than
failing. Every pyarrow failure becomes an ``InvalidArgument`` naming the file, the
column where known, the problem and the fix.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from keel.errors import InvalidArgument

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["SUFFIXES", "detect_format", "scan"]

T = TypeVar("T")

SUFFIXES = {
    ".csv": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
_COMPRESSED = (".gz", ".bz2", ".zst")
_MAX_RESTARTS = 8
_PARQUET_BATCH = 1 << 18
_CSV_ERROR = re.compile(r"In CSV column #(\d+): CSV conversion error to (\w+): (.*)")


def detect_format(path: Path) -> str | None:
    """``csv``, ``parquet`` or ``jsonl`` from the file name, else by sniffing; None if
    the file is not one of them."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSED:
        suffixes = suffixes[:-1]
    if suffixes and suffixes[-1] in SUFFIXES:
        return SUFFIXES[suffixes[-1]]
    try:
        with path.open("rb") as handle:
            head = handle.read(65536)
    except OSError as exc:
        raise InvalidArgument(f"cannot read {str(path)!r}: {exc.strerror or exc}") from exc
    if head[:4] == b"PAR1":
        return "parquet"
    if b"\x00" in head:
        return None
    first = head.lstrip()[:1]
    if first == b"{":
        return "jsonl"
    lines = head.splitlines()
    if len(lines) >= 2 and (b"," in lines[0] or b"\t" in lines[0]):
        return "csv"
    return None


def scan(
    path: Path,
    fmt: str,
    consume: Callable[[Iterator[pa.RecordBatch]], T],
    *,
    chunk_rows: int = 1_000_000,
) -> T:
    """Call ``consume`` on the file's batches; restart it if a column must be widened."""
    if chunk_rows < 1:
        raise InvalidArgument(f"chunk_rows must be at least 1, not {chunk_rows}")
    _check_readable(path)
    widened: dict[str, str] = {}
    for _ in range(_MAX_RESTARTS):
        try:
            return consume(_batches(path, fmt, chunk_rows, widened))
        except _Widen as again:
            widened[again.column] = "float64"
    raise InvalidArgument(  # pragma: no cover - needs more than 8 widening columns
        f"{str(path)!r}: column types keep changing between blocks; give explicit types"
    )


class _Widen(Exception):
    def __init__(self, column: str) -> None:
        super().__init__(column)
        self.column = column


def _check_readable(path: Path) -> None:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise InvalidArgument(f"no file {str(path)!r}; check the path") from None
    except OSError as exc:
        raise InvalidArgument(f"cannot read {str(path)!r}: {exc.strerror or exc}") from exc
    if not path.is_file():
        raise InvalidArgument(f"{str(path)!r} is not a file; give one CSV, Parquet or JSONL file")
    if size == 0:
        raise InvalidArgument(
            f"{str(path)!r} is empty (0 bytes); write the data again or remove the file"
        )


def _batches(
    path: Path, fmt: str, chunk_rows: int, widened: dict[str, str]
) -> Iterator[pa.RecordBatch]:
    import pyarrow as pa

    try:
        if fmt == "parquet":
            yield from _parquet(path, chunk_rows)
        elif fmt == "csv":
            yield from _csv(path, chunk_rows, widened)
        elif fmt == "jsonl":
            yield from _jsonl(path, chunk_rows, widened)
        else:
            raise InvalidArgument(f"{str(path)!r}: unknown format {fmt!r}; use csv, parquet, jsonl")
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
        raise _translate(path, fmt, exc) from exc


def _parquet(path: Path, chunk_rows: int) -> Iterator[pa.RecordBatch]:
    import pyarrow.parquet as pq

    # Without pre-buffering and with batches of at most 256Ki rows, pyarrow holds about
    # one column chunk at a time: 10M rows x 13 columns peak near 250 MiB instead of 1.1 GiB.
    with pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20) as reader:
        yield from reader.iter_batches(batch_size=min(chunk_rows, _PARQUET_BATCH))


def _block_size(chunk_rows: int) -> int:
    return int(min(64 << 20, max(1 << 16, chunk_rows * 64)))


def _csv(path: Path, chunk_rows: int, widened: dict[str, str]) -> Iterator[pa.RecordBatch]:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    delimiter = "\t" if ".tsv" in [s.lower() for s in path.suffixes] else ","
    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=_block_size(chunk_rows)),
        parse_options=pacsv.ParseOptions(delimiter=delimiter),
        convert_options=pacsv.ConvertOptions(
            column_types={k: pa.float64() for k in widened}, strings_can_be_null=True
        ),
    )
    names = reader.schema.names
    for index, field in enumerate(reader.schema):
        if pa.types.is_binary(field.type) or pa.types.is_large_binary(field.type):
            raise _not_utf8(path, names[index])
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except pa.ArrowInvalid as exc:
            match = _CSV_ERROR.search(str(exc))
            if not match:
                raise
            column = names[int(match.group(1))]
            target, problem = match.group(2), match.group(3)
            if "UTF8" in problem:
                raise _not_utf8(path, column) from exc
            value = problem.partition("invalid value ")[2].strip("'")
            if target == "int64" and _is_number(value) and column not in widened:
                raise _Widen(column) from exc
            raise InvalidArgument(
                f"{str(path)!r}: column {column!r} mixes types: earlier rows are {target} "
                f"but a later row holds {value!r}; fix that value, or quote the column's "
                "values so it reads as text"
            ) from exc
        yield batch


def _jsonl(path: Path, chunk_rows: int, widened: dict[str, str]) -> Iterator[pa.RecordBatch]:
    import pyarrow as pa
    import pyarrow.json as pajson

    if not hasattr(pajson, "open_json"):  # pyarrow < 19: no streaming JSON reader
        yield from pajson.read_json(path).to_batches(max_chunksize=chunk_rows)
        return
    schema = None
    if widened:
        first = pajson.open_json(
            path, read_options=pajson.ReadOptions(block_size=_block_size(chunk_rows))
        ).schema
        fields = [
            pa.field(f.name, pa.float64()) if pa.types.is_integer(f.type) else f for f in first
        ]
        schema = pa.schema(fields)
    reader = pajson.open_json(
        path,
        read_options=pajson.ReadOptions(block_size=_block_size(chunk_rows)),
        parse_options=pajson.ParseOptions(explicit_schema=schema),
    )
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except pa.ArrowInvalid as exc:
            text = str(exc)
            if "convert JSON to int64" in text and not widened:
                raise _Widen("*integers*") from exc
            raise
        yield batch


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _not_utf8(path: Path, column: str) -> InvalidArgument:
    return InvalidArgument(
        f"{str(path)!r}: column {column!r} is not valid UTF-8 text; re-encode the file as "
        "UTF-8 (e.g. `iconv -f latin1 -t utf-8 in.csv > out.csv`)"
    )


def _translate(path: Path, fmt: str, exc: Exception) -> InvalidArgument:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    name = str(path)
    if fmt == "parquet":
        return InvalidArgument(
            f"{name!r} is not a readable Parquet file ({text}): it is truncated, corrupt or "
            "another format; write it again or restore it with `keel data get`"
        )
    if fmt == "csv" and "Empty CSV" in text:
        return InvalidArgument(f"{name!r} has no header row; write the data again")
    if fmt == "jsonl":
        match = re.search(r"Column\((/[^)]*)\) changed from (\w+) to (\w+)", text)
        if match:
            return InvalidArgument(
                f"{name!r}: field {match.group(1)[1:]!r} mixes types ({match.group(2)} in "
                f"earlier lines, {match.group(3)} later); make every line use one type"
            )
        return InvalidArgument(
            f"{name!r} is not valid JSON Lines ({text}); write one JSON object per line"
        )
    return InvalidArgument(f"{name!r} could not be read as {fmt.upper()} ({text}); fix the file")
