"""Data validation: a schema's expectations and statistical checks against a reference.

``DataValidator(schema, thresholds).fit(reference_profile).validate(data)`` follows the
scikit-learn contract; ``validate(...)`` is the one-call form. Data is a file (read in
chunks, so a 10-million-row Parquet file is checked in bounded memory), a DataFrame, or
a stored profile (then row-level checks such as regex and uniqueness are reported as
skipped). Profile-level checks come from one streaming profile; row-level checks count
offending rows in the same pass.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.data._expectations import RowChecks, Thresholds, expectation_results
from keel.data._profile import TableProfile, TableProfiler, frame_batches
from keel.data._read import detect_format, scan
from keel.data._report import ValidationReport
from keel.data._schema import Schema
from keel.errors import InvalidArgument

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["DataValidator", "Thresholds", "validate"]


class DataValidator:
    """Checks data against a schema and, once fitted, against a reference profile."""

    def __init__(self, schema: Schema | None = None, thresholds: Thresholds | None = None) -> None:
        self.schema = schema
        self.thresholds = thresholds

    def fit(self, reference: TableProfile | Mapping[str, Any] | None = None) -> DataValidator:
        """Learn the reference profile (a TableProfile or its dict form); returns self."""
        if reference is not None and not isinstance(reference, TableProfile):
            reference = TableProfile.from_dict(reference)
        self.reference_ = reference
        return self

    def validate(self, data: Path | str | Any, *, chunk_rows: int = 1_000_000) -> ValidationReport:
        """Check ``data`` (a file path, DataFrame, or profile) and report every expectation."""
        reference: TableProfile | None = getattr(self, "reference_", None)
        thresholds = self.thresholds or Thresholds()
        rows = RowChecks(self.schema)
        if isinstance(data, str | Path):
            path = Path(data)
            target = str(path)
            fmt = detect_format(path) if path.is_file() else "csv"  # scan names a missing file
            if fmt is None:
                raise InvalidArgument(
                    f"{target!r} is not a CSV, Parquet or JSON Lines file; validate one of those"
                )
            profile = scan(path, fmt, lambda b: _consume(b, reference, rows), chunk_rows=chunk_rows)
            profile.format, profile.size_bytes = fmt, path.stat().st_size
            row_checked = True
        elif isinstance(data, TableProfile | Mapping):
            profile = data if isinstance(data, TableProfile) else TableProfile.from_dict(data)
            target, row_checked = "profile", False
        elif hasattr(data, "iloc") and hasattr(data, "columns"):
            profile = _consume(frame_batches(data, chunk_rows), reference, rows)
            target, row_checked = "DataFrame", True
        else:
            raise InvalidArgument(
                f"cannot validate a {type(data).__name__}; pass a file path, a pandas "
                "DataFrame or a profile dict"
            )
        results = expectation_results(
            self.schema, reference, thresholds, profile, rows, row_checked=row_checked
        )
        return ValidationReport(target, results, profile.rows)


def validate(
    data: Path | str | Any,
    schema: Schema | Path | str | None = None,
    reference: TableProfile | Mapping[str, Any] | None = None,
    expectations: Mapping[str, Any] | Thresholds | None = None,
    *,
    chunk_rows: int = 1_000_000,
) -> ValidationReport:
    """Validate ``data`` against a schema (object, YAML path or YAML text), a reference
    profile, and ``expectations`` thresholds (``mean_shift``, ``std_shift``, ``psi``,
    ``jensen_shannon``)."""
    if isinstance(schema, str):
        schema = Schema.from_yaml(Path(schema) if "\n" not in schema else schema)
    elif isinstance(schema, Path):
        schema = Schema.from_yaml(schema)
    validator = DataValidator(schema, Thresholds.from_mapping(expectations))
    return validator.fit(reference).validate(data, chunk_rows=chunk_rows)


def _consume(
    batches: Iterator[pa.RecordBatch], reference: TableProfile | None, rows: RowChecks
) -> TableProfile:
    profiler = TableProfiler(reference)
    for batch in batches:
        profiler.update(batch)
        rows.update(batch)
    return profiler.result()
