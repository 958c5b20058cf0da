"""Prediction input checked against a signature before the model sees it.

Every problem is collected, not just the first: missing and unexpected columns, cells
of the wrong type (with row and column), nulls where the column is not nullable. The
error lists them (capped) and says how to fix the input. Ints are accepted where a
float is expected and whole floats where an int is. Unseen categories are not an
error: the model decides what they mean (most encoders ignore them or map them to
missing); they are reported with an :class:`UnseenCategoryWarning`.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Literal

from keel.core._models import ColumnSpec, ModelSignature
from keel.errors import InvalidArgument
from keel.models._signature import to_frame

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ExtraColumns", "UnseenCategoryWarning", "check_input", "find_problems"]

ExtraColumns = Literal["error", "drop"]
MAX_PROBLEMS = 20
_CELLS_PER_COLUMN = 3


class UnseenCategoryWarning(UserWarning):
    """A categorical column holds values the model did not see when it was logged."""


def check_input(
    data: Any, signature: ModelSignature, *, extra_columns: ExtraColumns, uri: str
) -> Any:
    """``data`` checked and converted to what the model was fitted on (frame or array)."""
    frame, _ = to_frame(data, "prediction input", [c.name for c in signature.inputs])
    problems, unseen, extra = find_problems(frame, signature, extra_columns)
    if problems:
        shown = problems[:MAX_PROBLEMS]
        more = len(problems) - len(shown)
        lines = "\n".join(f"  - {p}" for p in shown)
        if more:
            lines += f"\n  - ... and {more} more"
        raise InvalidArgument(
            f"prediction input does not match the signature of {uri}:\n{lines}\n"
            f"Pass the columns {_names([c.name for c in signature.inputs])} with the logged "
            "types (see LoadedModel.signature)",
            problems=problems,
        )
    if extra:
        warnings.warn(
            f"dropped column(s) not in the signature of {uri}: {_names(extra)}",
            UserWarning,
            stacklevel=3,
        )
    for column, values in unseen.items():
        warnings.warn(
            f"column {column!r} has categories the model was not logged with: "
            f"{_names(values)}; the model decides how to treat them",
            UnseenCategoryWarning,
            stacklevel=3,
        )
    return _convert(frame, signature)


def find_problems(
    frame: pd.DataFrame, signature: ModelSignature, extra_columns: ExtraColumns
) -> tuple[list[str], dict[str, list[str]], list[str]]:
    """(problems, unseen categories by column, unexpected columns) of ``frame``."""
    if _numbers_all_fine(frame, signature):
        return [], {}, []
    expected = {c.name for c in signature.inputs}
    present = set(map(str, frame.columns))
    problems: list[str] = []
    extra = [str(c) for c in frame.columns if str(c) not in expected]
    if extra and extra_columns == "error":
        problems.append(
            f"unexpected column(s) {_names(extra)}; drop them, or load the model with "
            "extra_columns='drop'"
        )
    missing = [c.name for c in signature.inputs if c.name not in present]
    if missing:
        problems.append(f"missing column(s) {_names(missing)}")
    unseen: dict[str, list[str]] = {}
    for spec in signature.inputs:
        if spec.name in present:
            problems.extend(_column_problems(frame[spec.name], spec, unseen))
    return problems, unseen, extra


def _numbers_all_fine(frame: pd.DataFrame, signature: ModelSignature) -> bool:
    """Whether ``frame`` is exactly the signature's columns, all numeric, held in NumPy
    number columns with no missing value where one is not allowed and whole numbers in
    int columns: then nothing can be wrong, and one pass over the values proves it
    instead of a pass per column. Anything else (``False``) takes the column-by-column
    check, which names each problem.
    """
    import numpy as np

    specs = signature.inputs
    if not specs or len(frame.columns) != len(specs):
        return False
    dtypes = dict(zip(map(str, frame.columns), frame.dtypes, strict=True))
    for spec in specs:
        dtype = dtypes.get(spec.name)
        if (
            spec.type not in ("float", "int")
            or not isinstance(dtype, np.dtype)
            or dtype.kind not in "fiu"
        ):
            return False
    names = [s.name for s in specs]
    values = frame.to_numpy(dtype=np.float64, copy=False)
    if list(frame.columns) != names:
        position = {str(c): i for i, c in enumerate(frame.columns)}
        values = values[:, [position[n] for n in names]]
    strict = [i for i, s in enumerate(specs) if not s.nullable]
    if strict and np.isnan(values[:, strict]).any():
        return False
    whole = [i for i, s in enumerate(specs) if s.type == "int" and dtypes[s.name].kind == "f"]
    if whole:
        ints = values[:, whole]
        if (ints != np.round(ints)).any():  # NaN in a nullable int column lands here too
            return False
    return True


def _column_problems(
    series: pd.Series, spec: ColumnSpec, unseen: dict[str, list[str]]
) -> list[str]:
    import pandas as pd
    from pandas.api import types

    problems: list[str] = []
    nulls = series.isna()
    if not spec.nullable and nulls.any():
        problems.append(
            _cells(series, nulls, spec, "is missing (null/NaN) but the column is not nullable")
        )
    dtype = series.dtype
    kind = spec.type
    values = series[~nulls]
    if kind in ("float", "int"):
        if types.is_bool_dtype(dtype):
            problems.append(f"column {spec.name!r} is bool, expected {kind}")
        elif types.is_numeric_dtype(dtype):
            if kind == "int" and types.is_float_dtype(dtype):
                fractional = values != values.round()
                if fractional.any():
                    problems.append(
                        _cells(series, _align(fractional, series), spec, "is not a whole number")
                    )
        else:
            bad = ~values.map(_is_number).astype(bool)
            if bad.any():
                problems.append(
                    _cells(series, _align(bad, series), spec, f"is not {_article(kind)} {kind}")
                )
    elif kind == "bool":
        if not types.is_bool_dtype(dtype):
            bad = ~values.map(lambda v: isinstance(v, bool) or _is_numpy_bool(v)).astype(bool)
            if bad.any():
                problems.append(_cells(series, _align(bad, series), spec, "is not a bool"))
    elif kind in ("string", "category"):
        if isinstance(dtype, pd.CategoricalDtype):
            values = values.astype(object)
        if types.is_numeric_dtype(values.dtype) and len(values) and kind == "string":
            problems.append(f"column {spec.name!r} is {dtype}, expected string")
        elif kind == "string" or spec.categories is not None:
            bad = ~values.map(lambda v: isinstance(v, str)).astype(bool)
            if bad.any() and kind == "string":
                problems.append(_cells(series, _align(bad, series), spec, "is not a string"))
        if kind == "category" and spec.categories is not None and len(values):
            known = set(spec.categories)
            new = sorted({str(v) for v in values.unique() if str(v) not in known})
            if new:
                unseen[spec.name] = new
    elif kind == "datetime" and not types.is_datetime64_any_dtype(dtype):
        parsed = pd.to_datetime(values, errors="coerce", format="mixed")
        bad = parsed.isna()
        if bad.any():
            problems.append(_cells(series, _align(bad, series), spec, "is not a date-time"))
    return problems


def _article(kind: str) -> str:
    return "an" if kind[0] in "aeiou" else "a"


def _align(mask: pd.Series, series: pd.Series) -> pd.Series:
    return mask.reindex(series.index, fill_value=False).astype(bool)


def _is_number(value: Any) -> bool:
    import numbers

    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and not _is_numpy_bool(value)
    )


def _is_numpy_bool(value: Any) -> bool:
    return type(value).__name__ == "bool" and type(value).__module__ == "numpy"


def _cells(series: pd.Series, mask: pd.Series, spec: ColumnSpec, problem: str) -> str:
    """One problem line naming the first offending rows of a column."""
    rows = list(series.index[mask.to_numpy()])
    shown = ", ".join(f"row {r!r} ({_short(series[r])})" for r in rows[:_CELLS_PER_COLUMN])
    more = f" and {len(rows) - _CELLS_PER_COLUMN} more rows" if len(rows) > 3 else ""
    return f"column {spec.name!r} ({spec.type}): {shown}{more} {problem}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _names(names: list[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:10])
    return f"[{shown}{', ...' if len(names) > 10 else ''}]"


def _convert(frame: pd.DataFrame, signature: ModelSignature) -> Any:
    """The checked frame in signature column order, with the logged types restored."""
    import pandas as pd

    names = [c.name for c in signature.inputs]
    out = frame if list(frame.columns) == names else frame.loc[:, names]
    casts: dict[str, Any] = {}
    kinds = {str(c): getattr(d, "kind", "") for c, d in zip(out.columns, out.dtypes, strict=True)}
    for spec in signature.inputs:
        kind = kinds[spec.name]
        if (spec.type == "float" and kind == "f") or (spec.type == "int" and kind in ("i", "u")):
            continue  # already what the model was fitted on (the usual case)
        series = out[spec.name]
        if spec.type == "float" and series.dtype.kind != "f":
            casts[spec.name] = pd.to_numeric(series, errors="coerce").astype("float64")
        elif spec.type == "int" and series.dtype.kind not in "iu" and not spec.nullable:
            casts[spec.name] = pd.to_numeric(series).astype("int64")
        elif spec.type == "category" and spec.categories is not None:
            if (
                not isinstance(series.dtype, pd.CategoricalDtype)
                or tuple(series.dtype.categories) != spec.categories
            ):
                values = series.astype(object)
                known = values.where(values.isin(spec.categories))  # unseen -> missing
                casts[spec.name] = pd.Categorical(known, categories=list(spec.categories))
        elif spec.type == "datetime" and series.dtype.kind != "M":
            casts[spec.name] = pd.to_datetime(series, format="mixed")
    if casts:
        out = out.assign(**casts)
    if signature.input_kind == "ndarray":
        return out.to_numpy()
    return out
