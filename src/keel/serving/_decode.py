"""Request bodies turned into model input, checked against the signature first.

Two accepted shapes for ``/predict`` (records ``[{"age": 41, ...}]`` or columns
``{"columns": [...], "data": [[...]]}``) and MLflow's two for ``/invocations``
(``{"dataframe_split": ...}``, ``{"dataframe_records": ...}``) all reduce to a list of
rows in signature order. All-numeric signatures take fast paths: a columns body is read
by simdjson straight into a float matrix, without a Python object per cell; a parsed body
needs one type scan and one ``np.array`` call. Anything a fast path cannot vouch for
falls back to a cell-by-cell check that names every problem (row, column, reason) before
the model runs.

Rules, per logical type: ``float`` takes ints and floats (never bools or strings) and
must be finite; ``int`` takes ints and whole floats within int64; ``bool`` takes
``true``/``false``; ``string`` takes strings; ``category`` takes strings or numbers
(unseen values reach the model as missing, as ``LoadedModel.predict`` does);
``datetime`` takes ISO-8601 strings. ``null`` (and NaN from lenient JSON) is accepted
only where the signature says the column is nullable.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import orjson

from keel.core._models import ColumnSpec, ModelSignature
from keel.errors import InvalidInput, MalformedRequest, PayloadTooLarge

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = ["Decoded", "InputDecoder", "Problem", "parse_body", "rows_of"]

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
MAX_PROBLEMS = 20
_NUMBER_TYPES = frozenset({int, float})


@dataclass(frozen=True)
class Problem:
    """One reason a request cannot be predicted on: where (row, column) and why."""

    reason: str
    row: int | None = None
    column: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "reason": self.reason}

    def __str__(self) -> str:
        where = []
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        return f"{', '.join(where)}: {self.reason}" if where else self.reason


@dataclass(frozen=True)
class Decoded:
    """Checked rows: a float matrix (all-numeric signatures) or a typed DataFrame."""

    rows: int
    matrix: np.ndarray[Any, Any] | None = None
    frame: pd.DataFrame | None = None


def parse_body(body: bytes) -> Any:
    """The JSON document in ``body``; NaN and Infinity are read too (the signature judges)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        try:  # NaN / Infinity are not JSON, but Python clients send them
            return json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise MalformedRequest(
                f"the body is not valid JSON ({error}); send a JSON document"
            ) from None


def rows_of(payload: Any, *, endpoint: str) -> tuple[list[Any], list[str] | None]:
    """(rows, column names) of a parsed body; names is None for records (dict rows)."""
    if endpoint == "invocations":
        if not isinstance(payload, Mapping):
            raise MalformedRequest(_INVOCATIONS_HELP)
        if "dataframe_split" in payload:
            return _split(payload["dataframe_split"], "dataframe_split")
        if "dataframe_records" in payload:
            return _records(payload["dataframe_records"], "dataframe_records"), None
        raise MalformedRequest(_INVOCATIONS_HELP)
    if isinstance(payload, list):
        return _records(payload, "body"), None
    if isinstance(payload, Mapping) and "columns" in payload and "data" in payload:
        return _split(payload, "body")
    raise MalformedRequest(_PREDICT_HELP)


_PREDICT_HELP = (
    'send a JSON list of records, [{"age": 41, ...}], or columns and rows, '
    '{"columns": ["age", ...], "data": [[41, ...]]}'
)
_INVOCATIONS_HELP = (
    'send {"dataframe_split": {"columns": [...], "data": [[...]]}} or '
    '{"dataframe_records": [{...}]} (MLflow scoring protocol)'
)


def _records(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise MalformedRequest(f"{where} must be a list of records; {_PREDICT_HELP}")
    if not value:
        raise MalformedRequest(f"{where} holds no rows; send at least one record")
    return value


def _split(value: Any, where: str) -> tuple[list[Any], list[str]]:
    if not isinstance(value, Mapping):
        raise MalformedRequest(f"{where} must be an object with 'columns' and 'data'")
    columns, data = value.get("columns"), value.get("data")
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise MalformedRequest(f"{where}.columns must be a list of column names (strings)")
    if len(set(columns)) != len(columns):
        raise MalformedRequest(f"{where}.columns names a column twice; name each column once")
    if not isinstance(data, list):
        raise MalformedRequest(f"{where}.data must be a list of rows (lists of values)")
    if not data:
        raise MalformedRequest(f"{where}.data holds no rows; send at least one row")
    return data, columns


class InputDecoder:
    """Turns request rows into model input for one signature, or says what is wrong."""

    def __init__(self, signature: ModelSignature | None, *, max_rows: int) -> None:
        self.signature = signature
        self.max_rows = max_rows
        self.specs: tuple[ColumnSpec, ...] = signature.inputs if signature else ()
        self.names = [s.name for s in self.specs]
        self._index = {n: i for i, n in enumerate(self.names)}
        self._getter = itemgetter(*self.names) if len(self.names) > 1 else None
        self.numeric = bool(self.specs) and all(
            s.type in ("float", "int") and not s.nullable for s in self.specs
        )
        self._int_columns = [i for i, s in enumerate(self.specs) if s.type == "int"]
        # The columns-body reader counts '[' in the raw body; a name holding one would
        # make that count ambiguous, so such signatures keep the parsed path.
        self._direct = self.numeric and not any("[" in n for n in self.names)

    def decode_body(self, body: bytes, *, endpoint: str = "predict") -> Decoded:
        """The raw request ``body`` checked and converted; raises with every problem."""
        if self._direct:
            matrix = _direct_matrix(body, self.names, self.max_rows, endpoint)
            if matrix is not None and self._vetted(matrix):
                return Decoded(len(matrix), matrix=matrix)
        return self.decode(parse_body(body), endpoint=endpoint, raw=body)

    def decode(
        self, payload: Any, *, endpoint: str = "predict", raw: bytes | None = None
    ) -> Decoded:
        """``payload`` (parsed JSON) checked and converted; raises with every problem.

        ``raw``, the body it was parsed from, lets the numeric fast path skip its type
        scan: a body without ``true``/``false`` tokens holds no booleans, and NumPy
        itself refuses strings, nulls and nested lists in a float matrix.
        """
        rows, columns = rows_of(payload, endpoint=endpoint)
        if len(rows) > self.max_rows:
            raise PayloadTooLarge(
                f"request has {len(rows)} rows, over the cap of {self.max_rows}; split it into "
                "smaller requests or raise --max-rows"
            )
        if self.signature is None:
            raise InvalidInput(
                "this model was logged without a signature, so requests cannot be checked; "
                "log it again with input_example=..."
            )
        if columns is not None:
            tuples = self._order_split(rows, columns)
        else:
            tuples = self._order_records(rows)
        if tuples is not None and self.numeric:
            no_bools = raw is not None and b"true" not in raw and b"false" not in raw
            matrix = self._numeric_matrix(tuples, scanned=no_bools)
            if matrix is not None:
                return Decoded(len(rows), matrix=matrix)
        return self._checked(rows, columns)

    # fast path ---------------------------------------------------------------------

    def _order_split(self, rows: list[Any], columns: list[str]) -> list[Any] | None:
        if columns != self.names:
            return None
        width = len(columns)
        if not all(type(r) is list and len(r) == width for r in rows):
            return None
        return rows

    def _order_records(self, rows: list[Any]) -> list[Any] | None:
        width = len(self.names)
        if not all(type(r) is dict and len(r) == width for r in rows):
            return None
        try:
            if self._getter is None:
                name = self.names[0]
                return [(r[name],) for r in rows]
            return list(map(self._getter, rows))
        except KeyError:
            return None

    def _numeric_matrix(self, rows: list[Any], *, scanned: bool) -> np.ndarray[Any, Any] | None:
        import numpy as np

        if scanned:  # no booleans: let NumPy reject anything that is not a number
            try:
                found = np.array(rows)
            except (OverflowError, ValueError):
                return None
            if found.dtype.kind not in "if" or found.ndim != 2:
                return None
            matrix = found.astype(np.float64, copy=False)
        else:
            if not set(map(type, chain.from_iterable(rows))) <= _NUMBER_TYPES:
                return None
            try:
                matrix = np.array(rows, dtype=np.float64)
            except (OverflowError, ValueError):
                return None
        return matrix if self._vetted(matrix) else None

    def _vetted(self, matrix: np.ndarray[Any, Any]) -> bool:
        """Every value finite, and whole and within int64 in the integer columns."""
        import numpy as np

        if not np.isfinite(matrix).all():
            return False
        if self._int_columns:
            ints = matrix[:, self._int_columns]
            if (ints != np.round(ints)).any() or (np.abs(ints) >= 2.0**63).any():
                return False
        return True

    # checked path --------------------------------------------------------------------

    def _checked(self, rows: list[Any], columns: list[str] | None) -> Decoded:
        problems: list[Problem] = []
        cells = self._columns(rows, columns, problems)
        values: dict[str, list[Any]] = {}
        for spec in self.specs:
            column = cells.get(spec.name)
            if column is not None:
                values[spec.name] = [
                    _check_cell(v, spec, i, problems) for i, v in enumerate(column)
                ]
            if len(problems) >= MAX_PROBLEMS:
                break
        if problems:
            raise _invalid(problems)
        return Decoded(len(rows), frame=self._frame(values))

    def _columns(
        self, rows: list[Any], columns: list[str] | None, problems: list[Problem]
    ) -> dict[str, list[Any]]:
        """The cells of each known column; shape problems (missing, extra) recorded."""
        expected = set(self.names)
        if columns is not None:
            extra = [c for c in columns if c not in expected]
            missing = [n for n in self.names if n not in columns]
            problems.extend(_shape_problems(extra, missing))
            width = len(columns)
            positions = {c: i for i, c in enumerate(columns) if c in expected}
            out: dict[str, list[Any]] = {c: [] for c in positions}
            for r, row in enumerate(rows):
                if not isinstance(row, list) or len(row) != width:
                    got = f"{len(row)} values" if isinstance(row, list) else type(row).__name__
                    problems.append(Problem(f"expected a list of {width} values, got {got}", r))
                    if len(problems) >= MAX_PROBLEMS:
                        return {}
                    continue
                for c, i in positions.items():
                    out[c].append(row[i])
            return out if not problems else {}
        out = {n: [] for n in self.names}
        for r, row in enumerate(rows):
            if not isinstance(row, dict):
                problems.append(Problem(f"expected an object, got {_json_type(row)}", r))
            else:
                keys = row.keys()
                extra = [k for k in keys if k not in expected]
                missing = [n for n in self.names if n not in keys]
                for p in _shape_problems(extra, missing):
                    problems.append(Problem(p.reason, r, p.column))
                if not extra and not missing:
                    for n in self.names:
                        out[n].append(row[n])
            if len(problems) >= MAX_PROBLEMS:
                break
        return out if not problems else {}

    def _frame(self, values: dict[str, list[Any]]) -> pd.DataFrame:
        import pandas as pd

        data: dict[str, Any] = {}
        for spec in self.specs:
            column = values[spec.name]
            if spec.type == "float":
                data[spec.name] = pd.array(column, dtype="float64")
            elif spec.type == "int":
                if any(v is None for v in column):
                    data[spec.name] = pd.array(
                        [math.nan if v is None else v for v in column], dtype="float64"
                    )
                else:
                    data[spec.name] = pd.array(column, dtype="int64")
            elif spec.type == "bool":
                data[spec.name] = pd.array(column, dtype="object" if None in column else "bool")
            elif spec.type == "category" and spec.categories is not None:
                known = [v if v in spec.categories else None for v in column]
                data[spec.name] = pd.Categorical(known, categories=list(spec.categories))
            elif spec.type == "datetime":
                data[spec.name] = pd.to_datetime(
                    pd.Series(column, dtype="object"), format="ISO8601"
                )
            else:
                data[spec.name] = pd.array(column, dtype="object")
        return pd.DataFrame(data)


def _shape_problems(extra: Sequence[str], missing: Sequence[str]) -> list[Problem]:
    out = [
        Problem("unexpected column: the model does not take it; drop it", None, c) for c in extra
    ]
    out.extend(Problem("missing column: the model needs it", None, c) for c in missing)
    return out


def _invalid(problems: list[Problem]) -> InvalidInput:
    shown = problems[:MAX_PROBLEMS]
    lines = "; ".join(str(p) for p in shown[:5])
    more = f" (and {len(shown) - 5} more)" if len(shown) > 5 else ""
    return InvalidInput(
        f"input does not match the model's signature: {lines}{more}; "
        "fix these cells (GET /metadata shows the signature)",
        problems=[p.to_dict() for p in shown],
    )


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _check_cell(value: Any, spec: ColumnSpec, row: int, problems: list[Problem]) -> Any:
    """``value`` as the column's Python value, or None after recording a problem."""
    kind = spec.type
    if value is None or (type(value) is float and math.isnan(value)):
        if not spec.nullable:
            what = "null" if value is None else "NaN"
            problems.append(
                Problem(f"is {what} but the column does not allow missing values", row, spec.name)
            )
        return None
    t = type(value)
    if kind == "float":
        if t is float:
            if math.isinf(value):
                problems.append(Problem("is infinite; send a finite number", row, spec.name))
            return value
        if t is int:
            try:
                return float(value)
            except OverflowError:
                problems.append(Problem("is beyond the float64 range", row, spec.name))
                return None
    elif kind == "int":
        if t is int:
            if not INT64_MIN <= value <= INT64_MAX:
                problems.append(Problem("is beyond the int64 range", row, spec.name))
            return value
        if t is float:
            if not math.isfinite(value) or value != round(value):
                problems.append(Problem(f"is {value!r}, not a whole number", row, spec.name))
                return None
            if not -(2.0**63) <= value < 2.0**63:
                problems.append(Problem("is beyond the int64 range", row, spec.name))
                return None
            return int(value)
    elif kind == "bool":
        if t is bool:
            return value
    elif kind == "category":
        if t is str:
            return value
        if t in (int, float):
            return str(value)
    elif kind == "string":
        if t is str:
            return value
    elif kind == "datetime" and t is str:
        return _datetime_cell(value, row, spec, problems)
    problems.append(Problem(f"is {_json_type(value)}, expected {_expected(kind)}", row, spec.name))
    return None


def _expected(kind: str) -> str:
    return {
        "float": "a number",
        "int": "an integer",
        "bool": "true or false",
        "category": "a string",
        "string": "a string",
        "datetime": "an ISO-8601 date-time string",
    }.get(kind, kind)


def _datetime_cell(value: str, row: int, spec: ColumnSpec, problems: list[Problem]) -> Any:
    from datetime import datetime

    try:
        datetime.fromisoformat(value)
    except ValueError:
        problems.append(Problem(f"is {value[:40]!r}, not an ISO-8601 date-time", row, spec.name))
        return None
    return value


# columns bodies read without Python objects per cell -----------------------------


_parsers = threading.local()


def _direct_matrix(
    body: bytes, names: list[str], max_rows: int, endpoint: str
) -> np.ndarray[Any, Any] | None:
    """The float matrix of a columns body whose cells are all numbers, else None.

    Accepted only when certain: the body is exactly ``{"columns": names, "data": rows}``
    (under ``dataframe_split`` for ``/invocations``), every row is a list of
    ``len(names)`` numbers, and the body holds no '[' beyond the columns list, the data
    list and one per row (so no row nests a list). Anything else returns None and takes
    the parsed path, which names each problem. Finite and integer checks are the
    caller's.
    """
    import numpy as np
    import simdjson

    parser = getattr(_parsers, "parser", None)
    if parser is None:
        parser = _parsers.parser = simdjson.Parser()
    try:
        doc = parser.parse(body)
        if endpoint == "invocations":
            if type(doc) is not simdjson.Object or len(doc) != 1:
                return None
            doc = doc.get("dataframe_split")
        if type(doc) is not simdjson.Object or len(doc) != 2:
            return None
        columns, data = doc.get("columns"), doc.get("data")
        if type(columns) is not simdjson.Array or type(data) is not simdjson.Array:
            return None
        rows, width = len(data), len(names)
        if not 0 < rows <= max_rows or body.count(b"[") != rows + 2:
            return None
        if columns.as_list() != names:
            return None
        if not all(type(row) is simdjson.Array and len(row) == width for row in data):
            return None
        values = np.frombuffer(data.as_buffer(of_type="d"), dtype=np.float64)
        return values.reshape(rows, width)
    except (ValueError, TypeError, RuntimeError):  # not JSON, or a cell is not a number
        return None
