"""Expectations as results: each check turns a profile (and row-level counts) into
``ExpectationResult`` values whose messages say what is wrong and how to fix it.

Profile-level checks (row count, types, nulls, ranges, shifts against a reference,
distribution distances) need only a profile; row-level ones (categories, regex, range
counts, uniqueness) are counted by ``RowChecks`` chunk by chunk while the data streams.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from keel.core import _stats
from keel.data._profile import NUMERIC_KINDS, ColumnProfile, TableProfile, _as_float
from keel.data._report import ExpectationResult
from keel.data._schema import ColumnSchema, Schema
from keel.errors import InvalidArgument

if TYPE_CHECKING:
    import pyarrow as pa
    from numpy.typing import NDArray

__all__ = ["RowChecks", "Thresholds", "expectation_results"]


_COMPATIBLE = {
    "int": {"int"},
    "float": {"int", "float"},
    "bool": {"bool"},
    "category": {"string", "bool", "int"},
    "string": {"string"},
    "datetime": {"datetime"},
}
_SAMPLES = 5


@dataclass(frozen=True)
class Thresholds:
    """Limits for statistical expectations against a reference profile.

    Shifts are in reference standard deviations; ``psi`` applies to numeric histograms
    on the reference's edges, ``jensen_shannon`` (distance, base 2) to category counts.
    """

    mean_shift: float = 0.5
    std_shift: float = 0.5
    psi: float = 0.25
    jensen_shannon: float = 0.1

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | Thresholds | None) -> Thresholds:
        if data is None or isinstance(data, Thresholds):
            return data or cls()
        allowed = [f.name for f in fields(cls)]
        unknown = [k for k in data if k not in allowed]
        if unknown:
            raise InvalidArgument(
                f"unknown threshold {unknown[0]!r}; use any of {', '.join(allowed)}"
            )
        return replace(cls(), **{k: float(v) for k, v in data.items()})


class RowChecks:
    """Row-level expectations counted chunk by chunk: range, categories, regex, unique."""

    def __init__(self, schema: Schema | None) -> None:
        self.columns = {c.name: c for c in schema.columns} if schema else {}
        self.bad: dict[tuple[str, str], int] = {}
        self.samples: dict[tuple[str, str], list[Any]] = {}
        self.hashes: dict[str, list[NDArray[np.uint64]]] = {}

    def update(self, batch: pa.RecordBatch) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        from keel.data._profile import _kind

        for name, array in zip(batch.schema.names, batch.columns, strict=True):
            spec = self.columns.get(name)
            kind = _kind(array.type)
            if spec is None or kind == "null" or kind not in _COMPATIBLE[spec.type]:
                continue
            values = array.drop_null()
            if pa.types.is_dictionary(values.type):
                values = values.cast(values.type.value_type)
            if spec.categories is not None:
                allowed = pa.array([str(v) for v in spec.categories])
                text = values.cast(pa.string())
                self._count(name, "categories", text, pc.invert(pc.is_in(text, allowed)))
            if spec.regex is not None and kind == "string":
                self._count(name, "regex", values, pc.invert(_matches(values, spec.regex)))
            if (spec.min is not None or spec.max is not None) and kind in NUMERIC_KINDS:
                numbers = _as_float(values, kind)
                outside = np.zeros(numbers.shape, dtype=bool)
                if spec.min is not None:
                    outside |= numbers < _bound(spec.min, kind)
                if spec.max is not None:
                    outside |= numbers > _bound(spec.max, kind)
                self._count(name, "range", values, pa.array(outside))
            if spec.unique:
                from keel.data._profile import _row_hashes

                self.hashes.setdefault(name, []).append(_row_hashes(values, kind))

    def _count(self, column: str, check: str, values: pa.Array, bad: pa.Array) -> None:
        import pyarrow.compute as pc

        key = (column, check)
        n = int(pc.sum(bad).as_py() or 0)
        self.bad[key] = self.bad.get(key, 0) + n
        if n and len(self.samples.get(key, [])) < _SAMPLES:
            found = pc.unique(values.filter(bad)).slice(0, _SAMPLES).to_pylist()
            self.samples[key] = (self.samples.get(key, []) + found)[:_SAMPLES]

    def duplicates(self, column: str) -> int | None:
        parts = self.hashes.get(column)
        if parts is None:
            return None
        hashes = np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint64)
        return int(hashes.size - np.unique(hashes).size)


def _matches(values: pa.Array, pattern: str) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        return pc.match_substring_regex(values, pattern)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # not RE2 syntax: use Python's
        compiled = re.compile(pattern)
        return pa.array([compiled.search(v) is not None for v in values.to_pylist()])


def _bound(value: Any, kind: str) -> float:
    if kind == "datetime":
        import datetime as dt

        stamp = dt.datetime.fromisoformat(str(value))
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=dt.UTC)
        return stamp.timestamp()
    return float(value)


def _iso(seconds: Any) -> Any:
    import datetime as dt

    return None if seconds is None else dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat()


def _result(
    expectation: str,
    column: str | None,
    ok: bool | None,
    observed: Any,
    expected: Any,
    message: str,
) -> ExpectationResult:
    status = "skipped" if ok is None else ("passed" if ok else "failed")
    return ExpectationResult(expectation, column, status, observed, expected, message)


def _file_results(
    schema: Schema | None, fmt: str | None, size: int | None
) -> list[ExpectationResult]:
    out = []
    if schema is not None and schema.format is not None and fmt is not None:
        ok = fmt == schema.format
        out.append(
            _result(
                "file_format",
                None,
                ok,
                fmt,
                schema.format,
                ""
                if ok
                else (
                    f"the file is {fmt}, the schema expects {schema.format}; convert it or change "
                    "'format' in the schema"
                ),
            )
        )
    if schema is not None and schema.max_size_bytes is not None and size is not None:
        ok = size <= schema.max_size_bytes
        out.append(
            _result(
                "file_size",
                None,
                ok,
                size,
                f"<= {schema.max_size_bytes}",
                ""
                if ok
                else (
                    f"the file has {size} bytes, over the limit of {schema.max_size_bytes}; check "
                    "for duplicated data or raise 'max_size_bytes'"
                ),
            )
        )
    return out


def _table_results(
    schema: Schema | None, profile: TableProfile, rows: RowChecks, row_checked: bool
) -> list[ExpectationResult]:
    out: list[ExpectationResult] = []
    low = schema.min_rows if schema else None
    high = schema.max_rows if schema else None
    ok = (
        profile.rows > 0
        and (low is None or profile.rows >= low)
        and (high is None or profile.rows <= high)
    )
    expected = f"{low if low is not None else 1} to {high if high is not None else 'any'}"
    out.append(
        _result(
            "row_count",
            None,
            ok,
            profile.rows,
            expected,
            ""
            if ok
            else (
                f"{profile.rows} rows, expected {expected}; check that the data was extracted "
                "completely, or change 'rows' in the schema"
            ),
        )
    )
    for name, column in profile.columns.items():
        if column.rows and column.nulls == column.rows:
            out.append(
                _result(
                    "not_all_null",
                    name,
                    False,
                    column.rows,
                    "some values",
                    (
                        f"every one of the {column.rows} values is null; check the step that "
                        "produces this column, or drop it from the data and the schema"
                    ),
                )
            )
    if schema is None:
        return out
    for spec in schema.columns:
        found = profile.columns.get(spec.name)
        if found is None:
            ok = not spec.required
            out.append(
                _result(
                    "required_column",
                    spec.name,
                    ok,
                    "missing",
                    "present",
                    ""
                    if ok
                    else "the column is missing; add it to the data, or set 'required: false' "
                    "or remove it from the schema",
                )
            )
            continue
        out += _column_results(spec, found, rows, row_checked)
    if not schema.allow_extra_columns:
        for name in profile.columns:
            if schema.column(name) is None:
                out.append(
                    _result(
                        "unexpected_column",
                        name,
                        False,
                        "present",
                        "absent",
                        (
                            "the column is not in the schema; add it to the schema, drop it from "
                            "the data, or set 'allow_extra_columns: true'"
                        ),
                    )
                )
    return out


def _column_results(
    spec: ColumnSchema, col: ColumnProfile, rows: RowChecks, row_checked: bool
) -> list[ExpectationResult]:
    name = spec.name
    out: list[ExpectationResult] = []
    ok = col.kind == "null" or col.kind in _COMPATIBLE[spec.type]
    out.append(
        _result(
            "type",
            name,
            ok,
            col.kind,
            spec.type,
            ""
            if ok
            else (
                f"values are {col.kind}, the schema expects {spec.type}; fix the values or "
                "change 'type' in the schema"
            ),
        )
    )
    if not ok:
        return out
    fraction = col.nulls / col.rows if col.rows else 0.0
    limit = 0.0 if not spec.nullable else spec.max_null_fraction
    if limit is not None:
        ok = fraction <= limit
        out.append(
            _result(
                "nulls",
                name,
                ok,
                round(fraction, 6),
                f"<= {limit}",
                ""
                if ok
                else (
                    f"{col.nulls} of {col.rows} values are null ({fraction:.2%}), the limit is "
                    f"{limit:.2%}; fill or drop them, or allow nulls in the schema"
                ),
            )
        )
    if (spec.min is not None or spec.max is not None) and col.kind in NUMERIC_KINDS:
        n = rows.bad.get((name, "range"), 0) if row_checked else None
        lo = None if col.min is None else col.min
        hi = None if col.max is None else col.max
        ok = (spec.min is None or lo is None or lo >= _bound(spec.min, col.kind)) and (
            spec.max is None or hi is None or hi <= _bound(spec.max, col.kind)
        )
        expected = (
            f"[{spec.min if spec.min is not None else '-inf'}, "
            f"{spec.max if spec.max is not None else 'inf'}]"
        )
        count = f"{n} values" if n is not None else "values"
        out.append(
            _result(
                "range",
                name,
                ok,
                [lo, hi],
                expected,
                ""
                if ok
                else (
                    f"{count} outside {expected} (observed min {lo}, max {hi}); fix them or "
                    "widen 'min'/'max' in the schema"
                ),
            )
        )
    if spec.categories is not None:
        out.append(_category_result(spec, col, rows, row_checked))
    if spec.regex is not None:
        out.append(
            _row_result(
                name, "regex", rows, row_checked, spec.regex, f"match the pattern {spec.regex!r}"
            )
        )
    if spec.unique:
        dups = rows.duplicates(name) if row_checked else None
        if dups is None and col.value_counts is not None:
            dups = sum(n - 1 for n in col.value_counts.values())
        ok_u = None if dups is None else dups == 0
        out.append(
            _result(
                "unique",
                name,
                ok_u,
                dups,
                0,
                "skipped: uniqueness needs the rows, not only a profile"
                if ok_u is None
                else (
                    ""
                    if ok_u
                    else (f"{dups} duplicate values; deduplicate the data or set 'unique: false'")
                ),
            )
        )
    return out


def _category_result(
    spec: ColumnSchema, col: ColumnProfile, rows: RowChecks, row_checked: bool
) -> ExpectationResult:
    allowed = {str(v) for v in spec.categories or ()}
    if row_checked:
        return _row_result(
            spec.name, "categories", rows, True, sorted(allowed), "be one of the allowed categories"
        )
    if col.value_counts is None:
        return _result(
            "categories",
            spec.name,
            None,
            None,
            sorted(allowed),
            "skipped: too many distinct values to check from a profile",
        )
    unseen = sorted(str(k) for k in col.value_counts if str(k) not in allowed)
    return _result(
        "categories",
        spec.name,
        not unseen,
        unseen[:_SAMPLES],
        sorted(allowed),
        ""
        if not unseen
        else f"values outside the allowed categories: {unseen[:5]}; "
        "fix them or add them to 'categories' in the schema",
    )


def _row_result(
    name: str, check: str, rows: RowChecks, row_checked: bool, expected: Any, what: str
) -> ExpectationResult:
    if not row_checked:
        return _result(check, name, None, None, expected, f"skipped: {check} needs the rows")
    n = rows.bad.get((name, check), 0)
    samples = rows.samples.get((name, check), [])
    return _result(
        check,
        name,
        n == 0,
        {"failing_rows": n, "examples": samples},
        expected,
        ""
        if n == 0
        else f"{n} values {what}, e.g. {samples}; fix them or change '{check}' in the schema",
    )


def _reference_results(
    reference: TableProfile, profile: TableProfile, limits: Thresholds
) -> list[ExpectationResult]:
    out: list[ExpectationResult] = []
    for name, ref in reference.columns.items():
        cur = profile.columns.get(name)
        if cur is None:
            out.append(
                _result(
                    "reference_column",
                    name,
                    False,
                    "missing",
                    "present",
                    "the reference has this column but the data does not; add it",
                )
            )
            continue
        if ref.kind in NUMERIC_KINDS and cur.kind in NUMERIC_KINDS and cur.count and ref.count:
            out += _numeric_shift(name, ref, cur, limits)
        elif ref.value_counts is not None and cur.value_counts is not None and cur.count:
            keys = sorted(set(ref.value_counts) | set(cur.value_counts), key=str)
            p = [ref.value_counts.get(k, 0) for k in keys]
            q = [cur.value_counts.get(k, 0) for k in keys]
            js = _stats.jensen_shannon(p, q).statistic
            out.append(_distance(name, "jensen_shannon", js, limits.jensen_shannon))
    return out


def _numeric_shift(
    name: str, ref: ColumnProfile, cur: ColumnProfile, limits: Thresholds
) -> list[ExpectationResult]:
    scale = max(ref.std if math.isfinite(ref.std) else 0.0, _stats.STD_FLOOR)
    mean_shift = abs(cur.mean - ref.mean) / scale
    std_shift = abs((cur.std if math.isfinite(cur.std) else 0.0) - ref.std) / scale
    out = [
        _result(
            "mean_shift",
            name,
            mean_shift <= limits.mean_shift,
            round(mean_shift, 6),
            f"<= {limits.mean_shift} sd",
            ""
            if mean_shift <= limits.mean_shift
            else (
                f"the mean moved from {ref.mean:.6g} to {cur.mean:.6g} ({mean_shift:.3g} "
                "reference sd); check the data source, or raise 'mean_shift'"
            ),
        ),
        _result(
            "std_shift",
            name,
            std_shift <= limits.std_shift,
            round(std_shift, 6),
            f"<= {limits.std_shift} sd",
            ""
            if std_shift <= limits.std_shift
            else (
                f"the spread moved from sd {ref.std:.6g} to {cur.std:.6g}; check the data "
                "source, or raise 'std_shift'"
            ),
        ),
    ]
    if ref.edges is not None and ref.counts is not None:
        value = _stats.psi(ref.counts, cur.histogram_on(ref.edges)).statistic
        out.append(_distance(name, "psi", value, limits.psi))
    return out


def _distance(name: str, method: str, value: float, limit: float) -> ExpectationResult:
    ok = not math.isfinite(value) or value <= limit
    return _result(
        "distribution",
        name,
        ok,
        {"method": method, "value": round(value, 6)},
        f"{method} <= {limit}",
        ""
        if ok
        else (
            f"the distribution differs from the reference ({method} {value:.3g} > "
            f"{limit}); inspect the column, or raise '{method}'"
        ),
    )


def expectation_results(
    schema: Schema | None,
    reference: TableProfile | None,
    thresholds: Thresholds,
    profile: TableProfile,
    rows: RowChecks,
    *,
    row_checked: bool,
) -> list[ExpectationResult]:
    """Every expectation's result for one profiled target."""
    results = _file_results(schema, profile.format, profile.size_bytes)
    results += _table_results(schema, profile, rows, row_checked)
    if reference is not None:
        results += _reference_results(reference, profile, thresholds)
    return results
