"""Signatures inferred from an input example and the model's output on it.

Logical column types are ``int``, ``float``, ``bool``, ``string``, ``category`` and
``datetime``. A DataFrame keeps its column names; a NumPy 2-D array gets ``f0..fN``
and the signature remembers (``input_kind="ndarray"``) that the model wants an array
back. The same conversion (:func:`to_frame`) turns every accepted prediction input
(DataFrame, list of records, dict of columns, 2-D array) into a DataFrame.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from keel.core._models import ColumnSpec, ModelSignature
from keel.errors import InvalidArgument

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = ["column_type", "infer_signature", "to_frame"]

_ACCEPTED = "a pandas DataFrame, a list of records (dicts), a dict of columns or a 2-D NumPy array"


def to_frame(data: Any, what: str, names: Sequence[str] | None = None) -> tuple[pd.DataFrame, str]:
    """``data`` as a DataFrame and the kind it came as (``"dataframe"`` or ``"ndarray"``).

    ``names`` labels the columns of an array (the signature's inputs); without them an
    array's columns are ``f0..fN``.
    """
    import numpy as np
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data, "dataframe"
    if isinstance(data, pd.Series):
        raise InvalidArgument(
            f"{what} is a pandas Series; pass a DataFrame (series.to_frame().T for one row)"
        )
    if isinstance(data, Mapping):
        values = list(data.values())
        if values and all(np.ndim(v) == 0 for v in values):
            return pd.DataFrame([dict(data)]), "dataframe"  # one record
        try:
            return pd.DataFrame(dict(data)), "dataframe"
        except ValueError as error:
            raise InvalidArgument(
                f"{what} is a dict whose columns do not line up ({error}); "
                "give every column the same number of values"
            ) from None
    if isinstance(data, list) and data and all(isinstance(r, Mapping) for r in data):
        return pd.DataFrame.from_records(data), "dataframe"
    if isinstance(data, np.ndarray | list | tuple):
        array = np.asarray(data) if not isinstance(data, np.ndarray) else data
        if array.ndim != 2:
            raise InvalidArgument(
                f"{what} is a {array.ndim}-D array; pass a 2-D array of rows "
                "(x.reshape(1, -1) for one row, x.reshape(-1, 1) for one column)"
            )
        if names is not None and len(names) == array.shape[1]:
            labels = list(names)
        else:
            labels = [f"f{i}" for i in range(array.shape[1])]
        return pd.DataFrame(array, columns=labels, copy=False), "ndarray"
    raise InvalidArgument(f"{what} is a {type(data).__name__}; pass {_ACCEPTED}")


def column_type(series: pd.Series) -> tuple[str, tuple[str, ...] | None]:
    """The logical type of a column and, for categoricals of text, its categories."""
    import pandas as pd
    from pandas.api import types

    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        cats = dtype.categories
        if all(isinstance(c, str) for c in cats):
            return "category", tuple(cats)
        return "category", None
    if types.is_bool_dtype(dtype):
        return "bool", None
    if types.is_integer_dtype(dtype):
        return "int", None
    if types.is_float_dtype(dtype):
        return "float", None
    if types.is_datetime64_any_dtype(dtype):
        return "datetime", None
    if types.is_string_dtype(dtype) or types.is_object_dtype(dtype):
        inferred = types.infer_dtype(series, skipna=True)
        found = {
            "string": "string",
            "empty": "string",
            "integer": "int",
            "floating": "float",
            "mixed-integer-float": "float",
            "boolean": "bool",
            "datetime": "datetime",
            "datetime64": "datetime",
        }.get(inferred)
        if found is not None:
            return found, None
        raise InvalidArgument(
            f"column {series.name!r} holds mixed values ({inferred}); give it one type "
            "or pass signature= explicitly"
        )
    raise InvalidArgument(
        f"column {series.name!r} has dtype {dtype}, which a signature cannot describe; "
        "convert it to int, float, bool, string, category or datetime, or pass signature="
    )


def infer_signature(model: Any, example: Any, output: Any | None) -> ModelSignature:
    """Inputs from ``example``, outputs from ``output`` (``predict`` on the example)."""
    frame, kind = to_frame(example, "input_example")
    if frame.empty and not len(frame.columns):
        raise InvalidArgument("input_example has no columns; pass a few rows of training data")
    inputs = []
    for name in frame.columns:
        if not isinstance(name, str):
            raise InvalidArgument(
                f"input_example has a column named {name!r}; column names must be strings"
            )
        series = frame[name]
        logical, categories = column_type(series)
        if kind == "ndarray" and logical == "int":
            logical = "float"
        nullable = bool(series.isna().any())
        inputs.append(ColumnSpec(name, logical, nullable, categories))
    classes = _classes(model)
    return ModelSignature(
        inputs=tuple(inputs),
        outputs=_outputs(output, classes),
        classes=classes,
        input_kind=kind,
    )


def _classes(model: Any) -> tuple[Any, ...] | None:
    found = getattr(model, "classes_", None)
    if found is None:
        return None
    try:
        return tuple(_plain(v) for v in found)
    except TypeError:
        return None


def _plain(value: Any) -> Any:
    """A NumPy scalar as the Python value JSON can hold."""
    item = getattr(value, "item", None)
    return item() if callable(item) else value


def _outputs(output: Any | None, classes: tuple[Any, ...] | None) -> tuple[ColumnSpec, ...]:
    if output is None:
        return ()
    import numpy as np
    import pandas as pd

    if isinstance(output, pd.DataFrame):
        return tuple(ColumnSpec(str(name), _safe_type(output[name])) for name in output.columns)
    array = np.asarray(output)
    if array.ndim <= 1:
        return (ColumnSpec("prediction", _array_type(array)),)
    return tuple(
        ColumnSpec(f"prediction_{i}", _array_type(array[:, i])) for i in range(array.shape[1])
    )


def _array_type(array: np.ndarray[Any, Any]) -> str:
    import pandas as pd

    return _safe_type(pd.Series(array))


def _safe_type(series: pd.Series) -> str:
    try:
        return column_type(series)[0]
    except InvalidArgument:
        return "string"
