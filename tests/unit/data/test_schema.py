"""Schemas: inferred from profiles, round-trip through editable YAML, strict on typos."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from keel.data._profile import profile_frame
from keel.data._schema import ColumnSchema, Schema, infer_schema
from keel.errors import InvalidArgument


def _schema() -> Schema:
    df = pd.DataFrame(
        {
            "age": [20, 30, 40, None] * 5,
            "kind": ["a", "b", "a", "b"] * 5,
            "note": [f"n{k}" for k in range(20)],
            "when": pd.date_range("2024-01-01", periods=20, freq="D"),
            "empty": [None] * 20,
        }
    )
    return infer_schema(profile_frame(df))


def test_inference_types_ranges_categories() -> None:
    schema = _schema()
    age, kind, note, when, empty = schema.columns
    assert (age.type, age.nullable) == ("float", True)
    assert (age.min, age.max) == (20.0, 40.0)
    assert (kind.type, kind.categories) == ("category", ("a", "b"))
    assert (note.type, note.categories) == ("string", None)
    assert when.type == "datetime"
    assert str(when.min).startswith("2024-01-01")
    assert empty.nullable


def test_yaml_round_trip_keeps_everything_and_comments() -> None:
    schema = _schema()
    text = schema.to_yaml()
    assert text.startswith("# Keel schema")
    assert "every value was null" in text
    assert Schema.from_yaml(text) == schema
    assert yaml.safe_load(text)["columns"]["kind"]["categories"] == ["a", "b"]


def test_odd_column_names_survive_yaml() -> None:
    schema = Schema((ColumnSchema("a: b # c\nd", "string", regex="^x$"),))
    assert Schema.from_yaml(schema.to_yaml()) == schema


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("columns: {a: {type: integer}}", "column 'a' has unknown type 'integer'; use one of int"),
        (
            "columns: {a: {type: int, maxx: 3}}",
            "unknown key 'maxx' in column 'a'; allowed keys: type",
        ),
        ("colums: {}", "unknown key 'colums' in the schema"),
        ("columns: {a: {type: int, min: abc}}", "column 'a' min must be a number"),
        ("columns: {a: {type: string, regex: '('}}", "regex .* does not compile"),
        ("columns: {a: {type: int, max_null_fraction: 2}}", "from 0 to 1"),
        ("columns: {a: {type: category, categories: []}}", "non-empty list"),
        ("rows: {min: -1}", "rows.min must be a non-negative integer"),
        ("format: xlsx", "unknown format 'xlsx'"),
        ("version: 2", "version 2 is not supported"),
        ("columns: [a, b]", "'columns' must be a mapping"),
        ("a: [", "not valid YAML"),
    ],
)
def test_bad_schema_text_is_named(text: str, match: str) -> None:
    with pytest.raises(InvalidArgument, match=match):
        Schema.from_yaml(text)


def test_schema_file_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("columns: {a: {type: text}}")
    with pytest.raises(InvalidArgument, match=r"s\.yaml: column 'a' has unknown type 'text'"):
        Schema.from_yaml(path)
    with pytest.raises(InvalidArgument, match=r"no schema file .*keel data schema infer"):
        Schema.from_yaml(tmp_path / "missing.yaml")
