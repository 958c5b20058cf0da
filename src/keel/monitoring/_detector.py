"""``DriftDetector``: learn a reference once, score windows in one streaming pass.

It follows the scikit-learn estimator contract: ``__init__`` only stores parameters,
``fit(reference)`` validates them and learns the reference profile (attributes ending
in ``_``) and returns ``self``, ``score(current)`` returns a ``DriftReport``.
Scoring reads the window chunk by chunk, bins each chunk on the reference's edges and
counts its categories, then computes every statistic from those counts: the raw
current rows are never held.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from keel.data._profile import CATEGORY_CAP, NUMERIC_KINDS, TableProfile
from keel.errors import InvalidArgument
from keel.monitoring import _methods
from keel.monitoring._reference import BinSums, as_profile, fit_reference
from keel.monitoring._report import ColumnDrift, DriftReport
from keel.monitoring._source import Chunk, arrow_chunks, chunks_of
from keel.monitoring._window import WindowCounter, is_categorical

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = ["DriftDetector", "detect_drift"]

MAX_SLICE_VALUES = 50
_NOT_FITTED = "this DriftDetector is not fitted yet; call fit(reference) before score(current)"


class DriftDetector:
    """Detects distribution drift of a window against a reference, column by column.

    Parameters
    ----------
    columns:
        Reference columns to check (default: all).
    methods:
        One method for every column, or ``{column: method}``; methods are ``ks``,
        ``chisquare``, ``psi``, ``jensenshannon`` and ``wasserstein``. Unlisted columns get
        the default for their type and reference size (see ``keel.monitoring._methods``).
    thresholds:
        One threshold for every column, or ``{column: threshold}``: the significance level
        for p-value methods (default 0.05), the distance at which the column drifts for
        the others (default 0.1).
    bins:
        Histogram bins per numeric column when the reference is a DataFrame (a stored
        profile brings its own edges).
    slices:
        Columns whose values split both sides into per-slice reports (at most 50 values
        each); needs a DataFrame reference.
    small_sample:
        Columns with at most this many non-missing reference values get p-value tests.
    correction:
        Benjamini-Hochberg correction of the p-values across the columns of a report.
    dataset_share:
        The share of compared columns that must drift for the report to count as drifted.
    chunk_rows:
        Rows per chunk while streaming the current data.
    """

    def __init__(
        self,
        columns: Sequence[str] | None = None,
        methods: str | Mapping[str, str] | None = None,
        thresholds: float | Mapping[str, float] | None = None,
        bins: int = 100,
        *,
        slices: Sequence[str] | None = None,
        small_sample: int = _methods.SMALL_SAMPLE,
        correction: bool = True,
        dataset_share: float = 0.5,
        chunk_rows: int = 131_072,
    ) -> None:
        self.columns = columns
        self.methods = methods
        self.thresholds = thresholds
        self.bins = bins
        self.slices = slices
        self.small_sample = small_sample
        self.correction = correction
        self.dataset_share = dataset_share
        self.chunk_rows = chunk_rows

    # -- the estimator protocol ------------------------------------------------------

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor parameters by name (scikit-learn's ``get_params``)."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {name: getattr(self, name) for name in names}

    def set_params(self, **params: Any) -> DriftDetector:
        valid = self.get_params()
        for name, value in params.items():
            if name not in valid:
                raise InvalidArgument(
                    f"DriftDetector has no parameter {name!r}; use any of {', '.join(valid)}"
                )
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        defaults = {
            name: p.default
            for name, p in inspect.signature(type(self).__init__).parameters.items()
            if name != "self"
        }
        shown = [f"{k}={v!r}" for k, v in self.get_params().items() if v != defaults[k]]
        return f"DriftDetector({', '.join(shown)})"

    def fit(self, reference: Any) -> DriftDetector:
        """Learn the reference: a DataFrame, a ``TableProfile``, a stored profile dict, a
        ``DatasetVersion`` or a tabular file. Returns ``self``."""
        import pandas as pd

        self._check_params()
        slices = self._slice_names()
        if slices and not isinstance(reference, pd.DataFrame):
            raise InvalidArgument(
                f"slices={slices} need the reference rows, but a profile holds no per-slice "
                "summaries; pass the reference DataFrame (for a dataset version, "
                "keel.data.load('name@version')) or drop slices="
            )
        sums: dict[str, BinSums] = {}
        if isinstance(reference, pd.DataFrame):
            wanted = None
            if self.columns is not None:
                wanted = list(
                    dict.fromkeys([*self._asked(list(map(str, reference.columns))), *slices])
                )
            profile, sums = fit_reference(reference, self.bins, wanted)
            if profile.rows == 0:
                as_profile(profile, self.bins)  # raises: the reference has no rows
        else:
            profile = as_profile(reference, self.bins)
        columns = self._resolve_columns(profile)
        methods, thresholds = self._resolve_methods(profile, columns)
        detectors: dict[str, dict[Any, DriftDetector]] = {}
        if slices:
            detectors = self._fit_slices(reference, slices, columns)
        self.reference_: TableProfile = profile
        self.bin_sums_: dict[str, BinSums] = sums
        self.columns_: list[str] = columns
        self.methods_: dict[str, str | None] = methods
        self.thresholds_: dict[str, float | None] = thresholds
        self.slice_detectors_: dict[str, dict[Any, DriftDetector]] = detectors
        return self

    def score(self, current: Any) -> DriftReport:
        """Compare a window with the reference: a DataFrame, a pyarrow Table, RecordBatch or
        iterator of them, or the path of a Parquet file or directory (or a CSV or JSON
        Lines file), read in chunks of ``chunk_rows``."""
        if not hasattr(self, "reference_"):
            raise InvalidArgument(_NOT_FITTED)
        needed = list(dict.fromkeys([*self.columns_, *self.slice_detectors_]))
        chunks, path, fmt = chunks_of(current, needed, self.chunk_rows)
        if chunks is not None:
            return self._score_chunks(chunks)
        from keel.data._read import scan

        assert path is not None
        assert fmt is not None
        # scan() restarts consumption when a column must be widened: start afresh each time.
        return scan(
            path,
            fmt,
            lambda batches: self._score_chunks(arrow_chunks(batches)),
            chunk_rows=self.chunk_rows,
        )

    # -- fitting -----------------------------------------------------------------------

    def _check_params(self) -> None:
        if isinstance(self.bins, bool) or not isinstance(self.bins, int) or self.bins < 2:
            raise InvalidArgument(f"bins must be an integer of at least 2, not {self.bins!r}")
        if not isinstance(self.small_sample, int) or self.small_sample < 0:
            raise InvalidArgument(
                f"small_sample must be a non-negative integer, not {self.small_sample!r}"
            )
        if not isinstance(self.dataset_share, int | float) or not 0 < self.dataset_share <= 1:
            raise InvalidArgument(
                f"dataset_share must be in (0, 1], not {self.dataset_share!r}; 0.5 means half "
                "the compared columns"
            )
        if not isinstance(self.chunk_rows, int) or self.chunk_rows < 1:
            raise InvalidArgument(f"chunk_rows must be a positive integer, not {self.chunk_rows!r}")

    def _slice_names(self) -> list[str]:
        if self.slices is None:
            return []
        names = [self.slices] if isinstance(self.slices, str) else list(self.slices)
        return list(dict.fromkeys(map(str, names)))

    def _asked(self, available: list[str]) -> list[str]:
        if self.columns is None:
            return available
        if isinstance(self.columns, str):
            return [self.columns]
        return list(map(str, self.columns))

    def _resolve_columns(self, profile: TableProfile) -> list[str]:
        available = list(profile.columns)
        asked = self._asked(available)
        for name in [*asked, *self._slice_names()]:
            if name not in profile.columns:
                shown = ", ".join(available[:20]) + (", ..." if len(available) > 20 else "")
                raise InvalidArgument(
                    f"column {name!r} is not in the reference (it has: {shown}); fix the "
                    "name or leave it out"
                )
        if not asked:
            raise InvalidArgument(
                "columns=[] checks nothing; name at least one column or pass None"
            )
        return list(dict.fromkeys(asked))

    def _per_column(self, value: Any, columns: list[str], what: str) -> dict[str, Any]:
        if value is None:
            return {}
        if isinstance(value, Mapping):
            unknown = [str(k) for k in value if str(k) not in columns]
            if unknown:
                raise InvalidArgument(
                    f"{what} names column {unknown[0]!r}, which is not checked; use one of "
                    f"{', '.join(columns[:20])}"
                )
            return {str(k): v for k, v in value.items()}
        return dict.fromkeys(columns, value)

    def _resolve_methods(
        self, profile: TableProfile, columns: list[str]
    ) -> tuple[dict[str, str | None], dict[str, float | None]]:
        asked_methods = self._per_column(self.methods, columns, "methods")
        asked_thresholds = self._per_column(self.thresholds, columns, "thresholds")
        methods: dict[str, str | None] = {}
        thresholds: dict[str, float | None] = {}
        for name in columns:
            column = profile.columns[name]
            categorical = is_categorical(column)
            if column.kind in NUMERIC_KINDS:
                comparable = column.edges is not None
            else:
                comparable = categorical and column.value_counts is not None
            if not comparable:
                methods[name] = thresholds[name] = None
                continue
            if name in asked_methods:
                method = _methods.method_name(asked_methods[name], name)
                if categorical and method in _methods.NUMERIC_ONLY:
                    raise InvalidArgument(
                        f"{method} needs a numeric column, but {name!r} is categorical; use "
                        "chisquare, jensenshannon or psi"
                    )
            else:
                method = _methods.default_method(
                    categorical, column.distinct, column.count, self.small_sample
                )
            threshold = asked_thresholds.get(name, _methods.DEFAULT_THRESHOLDS[method])
            methods[name], thresholds[name] = method, _check_threshold(threshold, method, name)
        return methods, thresholds

    def _fit_slices(
        self, reference: pd.DataFrame, slices: list[str], columns: list[str]
    ) -> dict[str, dict[Any, DriftDetector]]:
        import pandas as pd

        labels = {str(c): c for c in reference.columns}
        out: dict[str, dict[Any, DriftDetector]] = {}
        for name in slices:
            codes, uniques = pd.factorize(reference[labels[name]], sort=True)
            if len(uniques) > MAX_SLICE_VALUES:
                raise InvalidArgument(
                    f"slice column {name!r} has {len(uniques)} distinct values (at most "
                    f"{MAX_SLICE_VALUES} make readable slices); bin it first, e.g. "
                    f"df[{name!r}] = pd.cut(df[{name!r}], 5).astype(str)"
                )
            inner = [c for c in columns if c != name]
            if not inner:
                raise InvalidArgument(
                    f"slicing by {name!r} leaves no column to check; add columns to columns="
                )
            params = self.get_params()
            params.update(
                slices=None,
                columns=inner,
                methods=_subset(self.methods, inner),
                thresholds=_subset(self.thresholds, inner),
            )
            out[name] = {}
            for i, value in enumerate(uniques.tolist()):
                part = reference[codes == i]
                out[name][_python(value)] = DriftDetector(**params).fit(part)
        return out

    # -- scoring -----------------------------------------------------------------------

    def _counter(self) -> WindowCounter:
        sums = {
            name: s.origin
            for name, s in self.bin_sums_.items()
            if self.methods_.get(name) == "wasserstein"
        }
        return WindowCounter(self.reference_, self.columns_, sums)

    def _score_chunks(self, chunks: Iterator[Chunk]) -> DriftReport:
        counter = self._counter()
        slice_counters: dict[str, dict[Any, WindowCounter]] = {
            name: {value: d._counter() for value, d in detectors.items()}
            for name, detectors in self.slice_detectors_.items()
        }
        unknown: dict[str, dict[Any, int]] = {name: {} for name in self.slice_detectors_}
        for chunk in chunks:
            counter.update(chunk)
            for name, counters in slice_counters.items():
                if name not in chunk.names or chunk.num_rows == 0:
                    continue
                for value, mask in chunk.groups(name):
                    if value in counters:
                        counters[value].update(chunk.select(mask))
                    else:
                        unknown[name][value] = unknown[name].get(value, 0) + int(mask.sum())
        report = self._report(counter)
        for name, counters in slice_counters.items():
            subs: dict[Any, DriftReport] = {}
            for value, sub_counter in counters.items():
                subs[value] = self.slice_detectors_[name][value]._report(sub_counter)
                subs[value].title = f"{name} = {value}"
            for value, rows in unknown[name].items():
                subs[value] = DriftReport(
                    {},
                    0,
                    rows,
                    status="no_reference",
                    message=(
                        f"the reference has no rows with {name} = {value!r}, so this slice "
                        "cannot be compared; refit on data that includes it"
                    ),
                    title=f"{name} = {value}",
                )
            report.slices[name] = subs
        return report

    def _report(self, counter: WindowCounter) -> DriftReport:
        results = [self._column(name, counter) for name in self.columns_]
        _methods.apply_correction(results, self.correction)
        for result in results:
            _methods.explain(result)
        report = DriftReport(
            {r.column: r for r in results},
            self.reference_.rows,
            counter.rows,
            dataset_share=float(self.dataset_share),
            unexpected_columns=sorted(counter.extra),
            params={
                "small_sample": self.small_sample,
                "correction": "benjamini-hochberg" if self.correction else None,
                "methods": self.methods_,
                "thresholds": self.thresholds_,
            },
        )
        if counter.rows == 0:
            report.status = "no_data"
            report.message = (
                "the current data has no rows, so nothing was compared; check the window's "
                "time range or the query that produced it"
            )
        return report

    def _column(self, name: str, counter: WindowCounter) -> ColumnDrift:
        ref = self.reference_.columns[name]
        method, threshold = self.methods_[name], self.thresholds_[name]
        rows, missing = counter.column_rows(name)
        categorical = is_categorical(ref)
        kind = (
            "categorical" if categorical else "numeric" if ref.kind in NUMERIC_KINDS else "unknown"
        )
        if method is None or threshold is None:
            result = ColumnDrift(name, kind, reference_count=ref.count)
            if categorical and ref.value_counts is None:
                result.status = "high_cardinality"
                result.message = (
                    f"the reference has more than {CATEGORY_CAP} distinct values, too many to "
                    "compare as categories; leave the column out (columns=[...]) or group its "
                    "values"
                )
            else:
                result.status = "no_reference_data"
                result.message = (
                    "the reference has no values in this column; fit on data where it is "
                    "filled, or leave it out"
                )
            return result
        if name not in counter.present:
            result = ColumnDrift(name, kind, status="missing", reference_count=ref.count)
            result.message = (
                "the column is in the reference but not in the current data; check the "
                "schema of the data source, or leave the column out"
            )
            return result
        if name in counter.numeric:
            sums = self.bin_sums_.get(name)
            return _methods.numeric_drift(
                name,
                ref,
                counter.numeric[name],
                rows,
                missing,
                method,
                threshold,
                None if sums is None else sums.sums,
            )
        return _methods.categorical_drift(
            name, ref, counter.categorical[name], rows, missing, method, threshold
        )


def _check_threshold(value: Any, method: str, column: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidArgument(f"the threshold for {column!r} must be a number, not {value!r}")
    if method in _methods.P_VALUE_METHODS and not 0 < value < 1:
        raise InvalidArgument(
            f"the threshold for {column!r} is a significance level for {method}; give a value "
            f"in (0, 1) such as 0.05, not {value}"
        )
    if value <= 0:
        raise InvalidArgument(
            f"the threshold for {column!r} must be positive for {method}, not {value}"
        )
    return float(value)


def _subset(value: Any, columns: list[str]) -> Any:
    if isinstance(value, Mapping):
        return {k: v for k, v in value.items() if str(k) in columns}
    return value


def _python(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def detect_drift(
    reference: pd.DataFrame | TableProfile | Mapping[str, Any],
    current: pd.DataFrame | pa.Table | Any,
    columns: Sequence[str] | None = None,
    slices: Sequence[str] | None = None,
    *,
    methods: str | Mapping[str, str] | None = None,
    thresholds: float | Mapping[str, float] | None = None,
) -> DriftReport:
    """Drift of ``current`` against ``reference``, column by column (and per slice).

    ``reference`` is a DataFrame, a ``TableProfile`` or a stored profile dict; ``current``
    a DataFrame, pyarrow data, or the path of a Parquet file or directory, read in
    chunks. Same as ``DriftDetector(columns, methods, thresholds,
    slices=slices).fit(reference).score(current)``.
    """
    detector = DriftDetector(columns, methods, thresholds, slices=slices)
    return detector.fit(reference).score(current)
