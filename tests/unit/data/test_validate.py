"""Validation: schema expectations, statistical checks against a reference, reports."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from keel.data._profile import profile_frame
from keel.data._schema import Schema, infer_schema
from keel.data._validate import DataValidator, Thresholds, validate
from keel.errors import InvalidArgument


def _frame(n: int = 2000, shift: float = 0.0, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x": rng.normal(shift, 1.0, n),
            "c": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]),
            "id": [f"u{k:05d}" for k in range(n)],
        }
    )


def _schema_for(df: pd.DataFrame) -> Schema:
    schema = infer_schema(profile_frame(df))
    columns = [
        dataclasses.replace(c, unique=True, regex=r"^u\d{5}$") if c.name == "id" else c
        for c in schema.columns
    ]
    return dataclasses.replace(schema, columns=tuple(columns), max_rows=10_000)


def _failed(report: object) -> set[tuple[str, str | None]]:
    return {(r.expectation, r.column) for r in report.failures}  # type: ignore[attr-defined]


def test_clean_data_passes_its_own_schema_and_reference() -> None:
    df = _frame()
    report = validate(df, _schema_for(df), profile_frame(df).to_dict())
    assert report.passed, report.failures
    assert {r.expectation for r in report.results} >= {
        "row_count",
        "type",
        "nulls",
        "range",
        "categories",
        "regex",
        "unique",
        "mean_shift",
        "std_shift",
        "distribution",
    }


def test_each_kind_of_bad_data_fails_with_a_fix() -> None:
    reference = _frame()
    df = _frame(seed=1)
    df.loc[0, "c"] = "zz"
    df.loc[1, "id"] = "bad"
    df.loc[2, "id"] = df.loc[3, "id"]
    df.loc[4, "x"] = 99.0
    df["extra"] = 1
    report = validate(df, _schema_for(reference))
    assert _failed(report) == {
        ("categories", "c"),
        ("regex", "id"),
        ("unique", "id"),
        ("range", "x"),
        ("unexpected_column", "extra"),
    }
    for result in report.failures:
        assert result.message
        assert "schema" in result.message or "data" in result.message
    regex = next(r for r in report.failures if r.expectation == "regex")
    assert regex.observed == {"failing_rows": 1, "examples": ["bad"]}


def test_missing_column_nulls_and_row_count() -> None:
    schema = _schema_for(_frame())
    df = _frame(20).drop(columns=["c"])
    df.loc[0, "x"] = np.nan
    report = validate(df, dataclasses.replace(schema, min_rows=100))
    assert _failed(report) == {("required_column", "c"), ("nulls", "x"), ("row_count", None)}


def test_all_null_column_fails_even_without_a_schema() -> None:
    report = validate(pd.DataFrame({"a": [1, 2], "n": [None, None]}))
    assert _failed(report) == {("not_all_null", "n")}
    assert "every one of the 2 values is null" in report.failures[0].message


def test_shift_and_distance_against_a_reference() -> None:
    reference = profile_frame(_frame())
    drifted = _frame(shift=1.0, seed=2)
    drifted["c"] = "a"
    validator = DataValidator(thresholds=Thresholds(mean_shift=0.5)).fit(reference)
    assert validator.reference_ is reference
    report = validator.validate(drifted)
    assert _failed(report) == {("mean_shift", "x"), ("distribution", "x"), ("distribution", "c")}
    steady = validator.validate(_frame(seed=3))
    assert steady.passed, steady.failures


def test_large_file_streams_and_profile_input_skips_row_checks(tmp_path: Path) -> None:
    df = _frame(5000)
    path = tmp_path / "d.parquet"
    df.to_parquet(path, row_group_size=1000)
    schema = _schema_for(df)
    report = validate(path, schema, chunk_rows=700)
    assert report.passed, report.failures
    assert report.rows == 5000
    from_profile = validate(profile_frame(df).to_dict(), schema)
    skipped = {r.expectation for r in from_profile.results if r.status == "skipped"}
    assert skipped == {"regex", "unique"}
    assert from_profile.passed


def test_schema_from_yaml_path_and_bad_thresholds(tmp_path: Path) -> None:
    schema_path = tmp_path / "s.yaml"
    schema_path.write_text(_schema_for(_frame()).to_yaml())
    assert validate(_frame(), schema_path).passed
    with pytest.raises(InvalidArgument, match="unknown threshold 'psy'"):
        validate(_frame(), expectations={"psy": 0.1})
    with pytest.raises(InvalidArgument, match="cannot validate a int"):
        validate(3)


def test_report_json_and_escaped_html(tmp_path: Path) -> None:
    df = pd.DataFrame({"<script>alert(1)</script>": [1, 2]})
    report = validate(df, Schema(()))
    data = json.loads(report.to_json())
    assert data["passed"] is False
    assert data["summary"]["failed"] == 1
    html = report.to_html(tmp_path / "r.html").read_text()
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
