"""A file's chunks checked against a model signature, row by row, a column at a time.

The rules are the HTTP decoder's (``_decode.py``), applied with pyarrow, NumPy and
pandas operations on whole columns instead of cell by cell. A file has one set of
columns, so columns are judged once per file (:meth:`ChunkChecker.check_columns`):
a missing column, or a Parquet column whose type can never hold the logical type
(text for a ``float``, numbers for a ``bool``), means no row can be scored, and that is
one error rather than a reject per row. Unexpected columns are not an error here: they
never reach the model, and the caller decides whether they go to the output.

Cells are then judged per row (:meth:`ChunkChecker.check`): nulls and NaN where the
column is not nullable, infinities, non-whole or out-of-range values in ``int``
columns, text that is not a number, ``true``/``false`` or an ISO-8601 date-time. CSV
cells are all text, so they are parsed here (leading and trailing spaces ignored;
pyarrow's CSV null markers, such as an empty cell, ``NA`` or ``NaN``, are missing
values). Every failing cell is one :class:`CellProblems` entry; a row with any problem
is rejected and the rest go to the model exactly as the decoder would hand them over.

Date-times with a UTC offset are converted to UTC and reach the model as naive UTC
timestamps (microseconds), so every chunk of a file has one type whatever offsets it
mixes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from keel.core._models import ColumnSpec, ModelSignature
from keel.errors import InvalidInput
from keel.serving._decode import Decoded

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

__all__ = ["CellProblems", "CheckedChunk", "ChunkChecker", "Reason"]

INT64_MAX = 2**63 - 1
# What pyarrow's string -> float64 cast accepts (checked against it by a property test).
FLOAT_PATTERN = r"^[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)$"
INT_PATTERN = r"^[+-]?[0-9]+$"
_VALUE_CHARS = 200


class Reason:
    """Why a cell was rejected; constant texts, so rejects group by (column, reason)."""

    MISSING = "is missing but the column does not allow missing values"
    NAN = "is NaN but the column does not allow missing values"
    INFINITE = "is infinite; use a finite number"
    NOT_NUMBER = "is not a number"
    NOT_INTEGER = "is not an integer"
    NOT_WHOLE = "is not a whole number"
    BEYOND_INT64 = "is beyond the int64 range"
    NOT_BOOL = "is not true or false"
    NOT_DATETIME = "is not an ISO-8601 date-time"


@dataclass(frozen=True)
class CellProblems:
    """The cells of one column failing for one reason: chunk rows and their text."""

    column: str
    reason: str
    rows: np.ndarray[Any, Any]  # positions within the chunk, int64
    values: pa.Array  # the offending cells as text (null where missing)


@dataclass(frozen=True)
class CheckedChunk:
    """One chunk after the checks: which rows pass, their typed columns, the problems."""

    rows: int
    valid: np.ndarray[Any, Any]  # bool per row
    columns: dict[str, pa.Array]  # every signature column, typed, all rows
    problems: list[CellProblems]

    @property
    def rejected(self) -> int:
        return self.rows - int(self.valid.sum())

    @property
    def all_valid(self) -> bool:
        return not self.problems


class ChunkChecker:
    """Checks chunks of one file against one signature; ``text`` for CSV input."""

    def __init__(self, signature: ModelSignature, *, text: bool) -> None:
        self.signature = signature
        self.specs: tuple[ColumnSpec, ...] = signature.inputs
        self.names = [s.name for s in self.specs]
        self.text = text
        self.numeric = bool(self.specs) and all(
            s.type in ("float", "int") and not s.nullable for s in self.specs
        )

    # per file ------------------------------------------------------------------------

    def check_columns(self, schema: pa.Schema, *, where: str) -> None:
        """Raise ``InvalidInput`` if some column problem would reject every row."""
        present = set(schema.names)
        problems: list[dict[str, Any]] = []
        missing = [n for n in self.names if n not in present]
        for name in missing:
            problems.append(
                {"row": None, "column": name, "reason": "missing column: the model needs it"}
            )
        wrong: list[str] = []
        for spec in self.specs:
            if spec.name not in present:
                continue
            arrow_type = schema.field(spec.name).type
            if not _accepts(spec.type, arrow_type, text=self.text):
                reason = (
                    f"is {arrow_type} in the file but the model takes {spec.type}; "
                    f"{_WRITE_AS.get(spec.type, 'convert it')}"
                )
                problems.append({"row": None, "column": spec.name, "reason": reason})
                wrong.append(f"column {spec.name!r} {reason}")
        if not problems:
            return
        parts = []
        if missing:
            unused = [n for n in schema.names if n not in set(self.names)]
            hint = f"; the file has {_names(unused)}, which it does not take" if unused else ""
            parts.append(
                f"{where} has no column {_names(missing)}, which the model needs, so no row "
                f"can be scored; add {'it' if len(missing) == 1 else 'them'} "
                f"(the model takes {_names(self.names)}{hint})"
            )
        if wrong:
            parts.append(
                f"{where}: " + "; ".join(wrong) + " (no row of such a column can be scored)"
            )
        raise InvalidInput(". ".join(parts), problems=problems)

    # per chunk -----------------------------------------------------------------------

    def check(self, table: pa.Table) -> CheckedChunk:
        """The rows of ``table`` judged cell by cell (vectorised per column)."""
        import numpy as np

        rows = table.num_rows
        valid = np.ones(rows, dtype=bool)
        columns: dict[str, pa.Array] = {}
        problems: list[CellProblems] = []
        for spec in self.specs:
            raw = _combined(table.column(spec.name))
            clean, found = _CHECKS[spec.type](raw, spec)
            columns[spec.name] = clean
            for reason, mask in found:
                positions = np.flatnonzero(mask)
                if positions.size:
                    valid[positions] = False
                    problems.append(CellProblems(spec.name, reason, positions, _text(raw, mask)))
        return CheckedChunk(rows, valid, columns, problems)

    def model_input(self, chunk: CheckedChunk) -> Decoded:
        """The passing rows of ``chunk`` as the HTTP decoder would hand them to the model."""
        import numpy as np

        valid = None if chunk.all_valid else chunk.valid
        count = chunk.rows if valid is None else int(valid.sum())
        if self.numeric:
            # Filled column by column into Fortran order: contiguous writes, and BLAS
            # takes either order.
            matrix = np.empty((len(self.specs), count), dtype=np.float64).T
            for j, spec in enumerate(self.specs):
                values = chunk.columns[spec.name].to_numpy(zero_copy_only=False)
                matrix[:, j] = values if valid is None else values[valid]
            return Decoded(count, matrix=matrix)
        import pandas as pd

        data = {
            spec.name: _frame_column(chunk.columns[spec.name], spec, valid) for spec in self.specs
        }
        return Decoded(count, frame=pd.DataFrame(data, index=pd.RangeIndex(count)))

    @staticmethod
    def clean_type(spec: ColumnSpec) -> pa.DataType:
        """The Arrow type :meth:`check` gives the column (what the output file holds)."""
        import pyarrow as pa

        return {
            "float": pa.float64(),
            "int": pa.int64(),
            "bool": pa.bool_(),
            "datetime": pa.timestamp("us"),
        }.get(spec.type, pa.string())


# column types accepted per logical type -----------------------------------------------

_WRITE_AS = {
    "float": "write it as numbers",
    "int": "write it as whole numbers",
    "bool": "write it as true/false",
    "string": "write it as text",
    "category": "write it as text or numbers",
    "datetime": "write it as timestamps or ISO-8601 text",
}


def _accepts(kind: str, arrow_type: pa.DataType, *, text: bool) -> bool:
    import pyarrow as pa

    t = pa.types
    if t.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type
    if t.is_null(arrow_type):
        return True
    is_text = bool(t.is_string(arrow_type) or t.is_large_string(arrow_type))
    if text and is_text:
        return True  # CSV: every cell is parsed row by row
    number = bool(t.is_integer(arrow_type) or t.is_floating(arrow_type) or t.is_decimal(arrow_type))
    if kind in ("float", "int"):
        return number
    if kind == "bool":
        return bool(t.is_boolean(arrow_type))
    if kind == "string":
        return is_text
    if kind == "category":
        return bool(is_text or t.is_integer(arrow_type) or t.is_floating(arrow_type))
    if kind == "datetime":
        return bool(is_text or t.is_timestamp(arrow_type) or t.is_date(arrow_type))
    return False


# per-type checks: (clean array, [(reason, row mask), ...]) ------------------------------

_Found = list[tuple[str, "np.ndarray[Any, Any]"]]


def _float_check(raw: pa.Array, spec: ColumnSpec) -> tuple[pa.Array, _Found]:
    import numpy as np
    import pyarrow as pa

    found: _Found = []
    nulls = _nulls(raw)
    bad = None
    if _is_text(raw.type):
        values, bad = _parse_floats(raw)
        if bad is not None:
            found.append((Reason.NOT_NUMBER, bad))
    else:
        values = _float_values(raw)
    finite = np.isfinite(values)
    if nulls is None and bad is None and finite.all():
        return pa.array(values, type=pa.float64()), found
    unknown = _or(nulls, bad)
    nan = np.isnan(values) if unknown is None else np.isnan(values) & ~unknown
    if not spec.nullable:
        if nulls is not None:
            found.append((Reason.MISSING, nulls))
        found.append((Reason.NAN, nan))
    found.append((Reason.INFINITE, np.isinf(values)))
    return pa.array(values, type=pa.float64(), mask=unknown), found


def _int_check(raw: pa.Array, spec: ColumnSpec) -> tuple[pa.Array, _Found]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    found: _Found = []
    nulls = _nulls(raw)
    if pa.types.is_null(raw.type):
        clean = pa.nulls(len(raw), pa.int64())
    elif pa.types.is_integer(raw.type):
        clean = raw
        if raw.type == pa.uint64():
            over = _mask(pc.greater(raw, pa.scalar(INT64_MAX, pa.uint64())).fill_null(False))
            if over.any():
                found.append((Reason.BEYOND_INT64, over))
                clean = pc.if_else(pa.array(over), pa.scalar(None, pa.uint64()), raw)
        clean = clean.cast(pa.int64())
    elif _is_text(raw.type):
        clean, text_found = _parse_ints(raw, spec)
        found.extend(text_found)
    else:  # floating or decimal: whole values within int64
        values = _float_values(raw)
        missing = np.isnan(values)  # nulls and NaN
        if not spec.nullable:
            found.append((Reason.NAN, missing if nulls is None else missing & ~nulls))
        clean, whole_found = _whole(values, missing)
        found.extend(whole_found)
    if nulls is not None and not spec.nullable:
        found.append((Reason.MISSING, nulls))
    return clean, found


def _bool_check(raw: pa.Array, spec: ColumnSpec) -> tuple[pa.Array, _Found]:
    import pyarrow as pa
    import pyarrow.compute as pc

    found: _Found = []
    nulls = _nulls(raw)
    if pa.types.is_null(raw.type):
        clean = pa.nulls(len(raw), pa.bool_())
    elif _is_text(raw.type):
        lowered = pc.utf8_lower(pc.utf8_trim_whitespace(raw))
        true, false = pc.equal(lowered, "true"), pc.equal(lowered, "false")
        known = pc.or_(true, false)
        bad = ~_mask(known.fill_null(True))
        if bad.any():
            found.append((Reason.NOT_BOOL, bad))
        clean = pc.if_else(known, true, pa.scalar(None, pa.bool_()))
    else:
        clean = raw
    if nulls is not None and not spec.nullable:
        found.append((Reason.MISSING, nulls))
    return clean, found


def _text_check(raw: pa.Array, spec: ColumnSpec) -> tuple[pa.Array, _Found]:
    """``string`` and ``category``: text as is; numbers (category only) as text."""
    import numpy as np
    import pyarrow as pa

    found: _Found = []
    nulls = _nulls(raw)
    if pa.types.is_floating(raw.type):
        values = _float_values(raw)
        nan = np.isnan(values)
        if nulls is not None:
            nan &= ~nulls
        if not spec.nullable:
            found.append((Reason.NAN, nan))
        texts = values.astype(str)  # as str(value) spells a float: 1.0 -> "1.0"
        clean = pa.array(texts, type=pa.string(), mask=_or(nulls, nan))
    else:
        clean = raw.cast(pa.string())
    if nulls is not None and not spec.nullable:
        found.append((Reason.MISSING, nulls))
    return clean, found


def _datetime_check(raw: pa.Array, spec: ColumnSpec) -> tuple[pa.Array, _Found]:
    import pyarrow as pa

    found: _Found = []
    nulls = _nulls(raw)
    target = pa.timestamp("us")
    if pa.types.is_null(raw.type):
        clean = pa.nulls(len(raw), target)
    elif pa.types.is_timestamp(raw.type):
        naive = raw.view(pa.timestamp(raw.type.unit)) if raw.type.tz else raw  # UTC instants
        clean = naive.cast(target, safe=False)
    elif pa.types.is_date(raw.type):
        clean = raw.cast(target)
    else:
        clean, bad = _parse_datetimes(raw, nulls)
        if bad is not None:
            found.append((Reason.NOT_DATETIME, bad))
    if nulls is not None and not spec.nullable:
        found.append((Reason.MISSING, nulls))
    return clean, found


_CHECKS = {
    "float": _float_check,
    "int": _int_check,
    "bool": _bool_check,
    "string": _text_check,
    "category": _text_check,
    "datetime": _datetime_check,
}


# parsing text -------------------------------------------------------------------------


def _parse_floats(raw: pa.Array) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any] | None]:
    """Float64 values (NaN where empty or not a number) and where cells are not numbers.

    pyarrow's cast parses a clean column in one call; when it refuses, the cells that
    match its grammar (``FLOAT_PATTERN``; surrounding spaces ignored) are cast and the
    others marked, so a chunk gets the same values whichever way it went.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    try:  # the common case: every cell is a number as pyarrow spells them
        return raw.cast(pa.float64()).to_numpy(zero_copy_only=False), None
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    trimmed = pc.utf8_trim_whitespace(raw)
    number = pc.match_substring_regex(trimmed, FLOAT_PATTERN, ignore_case=True)
    bad = ~_mask(number.fill_null(True))
    parsed = pc.if_else(number, trimmed, pa.scalar(None, pa.string())).cast(pa.float64())
    return parsed.to_numpy(zero_copy_only=False), bad


def _parse_ints(raw: pa.Array, spec: ColumnSpec) -> tuple[pa.Array, _Found]:
    """Integer text within int64, or whole numbers written as floats (``3.0``, ``1e3``)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    found: _Found = []
    trimmed = pc.utf8_trim_whitespace(raw)
    integer = _mask(pc.match_substring_regex(trimmed, INT_PATTERN).fill_null(False))
    # The range is judged on the digits, not by parsing: without its sign and leading
    # zeros, a 19-digit magnitude is compared as text with the limit for its sign.
    magnitude = pc.replace_substring_regex(trimmed, r"^[+-]?0*", "")
    length = np.asarray(pc.utf8_length(magnitude).fill_null(0).to_numpy(), dtype=np.int64)
    negative = pc.starts_with(trimmed, "-").fill_null(False)
    limit = pc.if_else(negative, "9223372036854775808", "9223372036854775807")
    at_most = _mask(pc.less_equal(magnitude, limit).fill_null(False))
    exact = integer & ((length < 19) | ((length == 19) & at_most))
    found.append((Reason.BEYOND_INT64, integer & ~exact))
    unsigned = pc.replace_substring_regex(trimmed, r"^\+", "")
    as_int = pc.if_else(pa.array(exact), unsigned, pa.scalar(None, pa.string()))
    ints = np.asarray(as_int.cast(pa.int64()).fill_null(0).to_numpy(), dtype=np.int64)
    keep = exact
    other = ~integer & ~_mask(raw.is_null())
    if other.any():  # decimals and exponents: accepted when whole and within int64
        number = other & _mask(
            pc.match_substring_regex(trimmed, FLOAT_PATTERN, ignore_case=True).fill_null(False)
        )
        found.append((Reason.NOT_INTEGER, other & ~number))
        as_float = pc.if_else(pa.array(number), trimmed, pa.scalar(None, pa.string()))
        values = as_float.cast(pa.float64()).to_numpy(zero_copy_only=False)
        nan = number & np.isnan(values)  # "NAN" is not one of the CSV null markers
        if not spec.nullable:
            found.append((Reason.NAN, nan))
        whole, whole_found = _whole(values, ~number | nan)
        found.extend(whole_found)
        converted = ~_mask(whole.is_null())
        ints = np.where(converted, np.asarray(whole.fill_null(0).to_numpy()), ints)
        keep = keep | converted
    return pa.array(ints, type=pa.int64(), mask=~keep), found


def _whole(values: np.ndarray[Any, Any], skip: np.ndarray[Any, Any]) -> tuple[pa.Array, _Found]:
    """Floats as int64: non-finite or fractional values, and those beyond int64, rejected."""
    import numpy as np
    import pyarrow as pa

    with np.errstate(invalid="ignore"):
        finite = np.isfinite(values)
        whole = finite & (values == np.round(values))
        inside = whole & (values >= -(2.0**63)) & (values < 2.0**63)
    considered = ~skip
    found: _Found = [
        (Reason.NOT_WHOLE, considered & ~whole),
        (Reason.BEYOND_INT64, considered & whole & ~inside),
    ]
    ints = np.where(inside, values, 0).astype(np.int64)
    return pa.array(ints, type=pa.int64(), mask=~(inside & considered)), found


def _parse_datetimes(
    raw: pa.Array, nulls: np.ndarray[Any, Any] | None
) -> tuple[pa.Array, np.ndarray[Any, Any] | None]:
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    texts = pd.Series(raw.to_numpy(zero_copy_only=False), dtype=object)
    try:
        parsed = pd.to_datetime(texts, format="ISO8601", errors="coerce")
    except (ValueError, TypeError):  # offsets mixed with naive or other offsets
        parsed = pd.to_datetime(texts, format="ISO8601", errors="coerce", utc=True)
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    parsed = parsed.astype("datetime64[us]")
    failed = parsed.isna().to_numpy()
    bad = failed if nulls is None else failed & ~nulls
    array = pa.array(parsed.to_numpy(), type=pa.timestamp("us"), mask=failed)
    return array, (bad if bool(np.any(bad)) else None)


# helpers ------------------------------------------------------------------------------


def _combined(column: pa.ChunkedArray) -> pa.Array:
    import pyarrow as pa

    array = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    return array


def _is_text(arrow_type: pa.DataType) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type))


def _nulls(raw: pa.Array) -> np.ndarray[Any, Any] | None:
    """Where ``raw`` is null, or None when nothing is (the common case costs nothing)."""
    if raw.null_count == 0:
        return None
    return _mask(raw.is_null())


def _mask(array: pa.Array) -> np.ndarray[Any, Any]:
    import numpy as np

    return np.asarray(array.to_numpy(zero_copy_only=False), dtype=bool)


def _or(
    a: np.ndarray[Any, Any] | None, b: np.ndarray[Any, Any] | None
) -> np.ndarray[Any, Any] | None:
    import numpy as np

    if a is None:
        return b
    if b is None:
        return a
    both: np.ndarray[Any, Any] = np.logical_or(a, b)
    return both


def _float_values(raw: pa.Array) -> np.ndarray[Any, Any]:
    """float64 values of a numeric (or null) column, NaN where null."""
    import numpy as np
    import pyarrow as pa

    if pa.types.is_null(raw.type):
        return np.full(len(raw), np.nan)
    if raw.type != pa.float64():
        raw = raw.cast(pa.float64(), safe=False)
    return np.asarray(raw.to_numpy(zero_copy_only=False), dtype=np.float64)


def _text(raw: pa.Array, mask: np.ndarray[Any, Any]) -> pa.Array:
    """The cells of ``raw`` under ``mask`` as (shortened) text for the rejects file."""
    import pyarrow as pa
    import pyarrow.compute as pc

    cells = raw.filter(pa.array(mask)).cast(pa.string())
    return pc.utf8_slice_codeunits(cells, 0, _VALUE_CHARS)


def _frame_column(array: pa.Array, spec: ColumnSpec, valid: np.ndarray[Any, Any] | None) -> Any:
    """One checked column as the decoder types it (``InputDecoder._frame``)."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    if valid is not None:
        array = array.filter(pa.array(valid))
    has_nulls = array.null_count > 0
    kind = spec.type
    if kind == "float":
        return pd.array(array.to_numpy(zero_copy_only=False), dtype="float64")
    if kind == "int":
        values = array.to_numpy(zero_copy_only=False)
        return pd.array(values, dtype="float64" if has_nulls else "int64")
    if kind == "bool":
        values = array.to_numpy(zero_copy_only=False)
        return pd.array(values, dtype="object" if has_nulls else "bool")
    if kind == "datetime":
        return pd.Series(array.to_numpy(zero_copy_only=False))
    if kind == "category" and spec.categories is not None:
        categories = pa.array(list(spec.categories), pa.string())
        known = pc.if_else(pc.is_in(array, value_set=categories), array, None)  # unseen -> missing
        values = np.asarray(known.to_numpy(zero_copy_only=False), dtype=object)
        return pd.Categorical(values, categories=list(spec.categories))
    values = np.asarray(array.to_numpy(zero_copy_only=False), dtype=object)
    return pd.array(cast(Any, values), dtype="object")


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:10])
    return shown + (f" and {len(names) - 10} more" if len(names) > 10 else "")
