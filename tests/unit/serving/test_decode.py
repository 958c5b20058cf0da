"""Request decoding: the fast path agrees with the checked path; every refusal is precise."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keel.core._models import ColumnSpec, ModelSignature
from keel.errors import InvalidInput, MalformedRequest, PayloadTooLarge
from keel.serving import InputDecoder

NUMERIC = ModelSignature(
    inputs=(ColumnSpec("a", "float"), ColumnSpec("b", "float"), ColumnSpec("n", "int"))
)
MIXED = ModelSignature(
    inputs=(
        ColumnSpec("x", "float", nullable=True),
        ColumnSpec("flag", "bool"),
        ColumnSpec("band", "category", categories=("lo", "hi")),
        ColumnSpec("name", "string"),
        ColumnSpec("when", "datetime"),
    )
)


def _decoder(signature: ModelSignature = NUMERIC, max_rows: int = 1000) -> InputDecoder:
    return InputDecoder(signature, max_rows=max_rows)


def _problems(payload: Any, signature: ModelSignature = NUMERIC, **kw: Any) -> list[dict[str, Any]]:
    with pytest.raises(InvalidInput) as caught:
        _decoder(signature).decode(payload, **kw)
    problems = caught.value.details["problems"]
    assert isinstance(problems, list)
    return problems


finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
ints = st.integers(-(2**53), 2**53)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(finite | ints, finite | ints, ints), min_size=1, max_size=30))
def test_fast_path_equals_the_checked_path(rows: list[tuple[Any, Any, int]]) -> None:
    body = {"columns": ["a", "b", "n"], "data": [list(r) for r in rows]}
    raw = json.dumps(body).encode()
    fast = _decoder().decode(json.loads(raw), raw=raw)
    scanned = _decoder().decode(body)
    checked = _decoder()._checked(body["data"], body["columns"])
    assert fast.matrix is not None
    assert scanned.matrix is not None
    assert checked.frame is not None
    np.testing.assert_array_equal(fast.matrix, scanned.matrix)
    np.testing.assert_array_equal(fast.matrix[:, :2], checked.frame[["a", "b"]].to_numpy())
    assert checked.frame["n"].tolist() == [r[2] for r in rows]


def test_records_and_columns_give_the_same_rows() -> None:
    records = [{"a": 1.5, "b": 2, "n": 3}, {"n": 4, "b": -1.0, "a": 0}]
    columns = {"columns": ["b", "a", "n"], "data": [[2, 1.5, 3], [-1.0, 0, 4]]}
    by_records = _decoder().decode(records)
    by_columns = _decoder().decode(columns)  # other column order: checked path
    assert by_records.matrix is not None
    assert by_columns.frame is not None
    np.testing.assert_array_equal(
        by_records.matrix, by_columns.frame[["a", "b", "n"]].to_numpy(dtype=float)
    )


@pytest.mark.parametrize(
    ("row", "column", "reason"),
    [
        ({"a": True, "b": 0, "n": 1}, "a", "is a boolean, expected a number"),
        ({"a": "1", "b": 0, "n": 1}, "a", "is a string, expected a number"),
        ({"a": [1], "b": 0, "n": 1}, "a", "is a list"),
        ({"a": None, "b": 0, "n": 1}, "a", "is null"),
        ({"a": math.nan, "b": 0, "n": 1}, "a", "is NaN"),
        ({"a": math.inf, "b": 0, "n": 1}, "a", "infinite"),
        ({"a": 0, "b": 10**400, "n": 1}, "b", "float64 range"),
        ({"a": 0, "b": 0, "n": 2**63}, "n", "int64 range"),
        ({"a": 0, "b": 0, "n": -(2**63) - 1}, "n", "int64 range"),
        ({"a": 0, "b": 0, "n": 2.5}, "n", "not a whole number"),
        ({"a": 0, "b": 0, "n": 1e300}, "n", "int64 range"),
        ({"a": 0, "b": 0}, "n", "missing column"),
        ({"a": 0, "b": 0, "n": 1, "extra": 1}, "extra", "unexpected column"),
    ],
)
def test_each_bad_cell_is_named_by_row_and_column(
    row: dict[str, Any], column: str, reason: str
) -> None:
    good = {"a": 0.0, "b": 1.0, "n": 2}
    problems = _problems([good, good, row])
    assert any(
        p["row"] == 2 and p["column"] == column and reason in p["reason"] for p in problems
    ), problems


def test_mixed_types_are_checked_and_converted() -> None:
    rows = [
        {"x": None, "flag": True, "band": "hi", "name": "a", "when": "2024-01-02T03:04:05"},
        {"x": 1, "flag": False, "band": "new", "name": "b", "when": "2024-01-03"},
    ]
    decoded = _decoder(MIXED).decode(rows)
    frame = decoded.frame
    assert frame is not None
    assert math.isnan(frame["x"][0])
    assert frame["flag"].tolist() == [True, False]
    assert frame["band"].tolist()[0] == "hi"
    assert frame["band"].isna().tolist() == [False, True]  # unseen category -> missing
    assert frame["when"].dt.day.tolist() == [2, 3]
    problems = _problems(
        [{"x": "1", "flag": 1, "band": ["hi"], "name": 3, "when": "yesterday"}], MIXED
    )
    assert {p["column"] for p in problems} == {"x", "flag", "band", "name", "when"}


@pytest.mark.parametrize(
    "payload",
    [
        [],
        {},
        "text",
        3,
        {"columns": ["a"]},
        {"columns": "a", "data": [[1]]},
        {"columns": ["a", "a"], "data": [[1, 2]]},
        {"columns": ["a", "b", "n"], "data": []},
        {"columns": ["a", "b", "n"], "data": "x"},
    ],
)
def test_malformed_bodies_say_what_shape_to_send(payload: Any) -> None:
    with pytest.raises(MalformedRequest) as caught:
        _decoder().decode(payload)
    assert caught.value.message


def test_mlflow_shapes_and_their_errors() -> None:
    split = {"dataframe_split": {"columns": ["a", "b", "n"], "data": [[1, 2, 3]]}}
    assert _decoder().decode(split, endpoint="invocations").rows == 1
    records = {"dataframe_records": [{"a": 1, "b": 2, "n": 3}]}
    assert _decoder().decode(records, endpoint="invocations").rows == 1
    with pytest.raises(MalformedRequest, match="dataframe_split"):
        _decoder().decode({"instances": [[1, 2, 3]]}, endpoint="invocations")


def test_row_cap_is_a_413_before_any_check() -> None:
    with pytest.raises(PayloadTooLarge, match="over the cap of 2"):
        _decoder(max_rows=2).decode([{"a": "not even checked"}] * 3)


def test_problem_lists_are_capped() -> None:
    rows = [{"a": "x", "b": "y", "n": "z"}] * 50
    problems = _problems(rows)
    assert len(problems) == 20


# raw columns bodies read straight into a matrix --------------------------------------


def _outcome(call: Any) -> tuple[str, Any]:
    """What a decode did: the matrix or frame it returned, or the error and its details."""
    try:
        decoded = call()
    except (InvalidInput, MalformedRequest, PayloadTooLarge) as error:
        return type(error).__name__, (error.message, error.details)
    if decoded.matrix is not None:
        return "matrix", decoded.matrix.tolist()
    assert decoded.frame is not None
    return "frame", decoded.frame.to_dict("list")


def _same_as_parsed(raw: bytes, endpoint: str = "predict", max_rows: int = 1000) -> tuple[str, Any]:
    from keel.serving._decode import parse_body

    decoder = _decoder(max_rows=max_rows)
    direct = _outcome(lambda: decoder.decode_body(raw, endpoint=endpoint))
    parsed = _outcome(lambda: decoder.decode(parse_body(raw), endpoint=endpoint, raw=raw))
    assert direct == parsed, raw
    return direct


cell = finite | ints | st.booleans() | st.none() | st.just("1") | st.lists(finite, max_size=2)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.lists(cell, min_size=2, max_size=4) | cell, min_size=1, max_size=6),
    st.sampled_from(["predict", "invocations"]),
)
def test_a_raw_body_decodes_exactly_as_its_parsed_document(rows: list[Any], endpoint: str) -> None:
    body: dict[str, Any] = {"columns": ["a", "b", "n"], "data": rows}
    if endpoint == "invocations":
        body = {"dataframe_split": body}
    _same_as_parsed(json.dumps(body).encode(), endpoint)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"columns": ["a", "b", "n"], "data": [[1, 2, 3], [4.5, -0.0, 7]]}',
        b'{"data": [[1e3, 2E-3, 3]], "columns": ["a", "b", "n"]}',
        b'{"columns": ["\\u0061", "b", "n"], "data": [[1, 2, 3]]}',
        b' \n{"columns":["a","b","n"],"data":[[1,2,3]]}\n',
    ],
)
def test_numeric_columns_bodies_are_read_without_parsing_to_python(raw: bytes) -> None:
    from keel.serving._decode import _direct_matrix

    matrix = _direct_matrix(raw, ["a", "b", "n"], 1000, "predict")
    assert matrix is not None
    assert matrix.flags.writeable
    assert _same_as_parsed(raw)[0] == "matrix"


@pytest.mark.parametrize(
    "raw",
    [
        b'{"columns": ["a", "b", "n"], "data": [[1, [2], 3]]}',  # a nested list in a row
        b'{"columns": ["a", "b", "n"], "data": [[1, [2, 3]], [4, 5, 6]]}',
        b'{"columns": ["a", "b", "n"], "data": [5, [[1, 2, 3]]]}',  # not a row at all
        b'{"columns": ["a", "b", "n"], "data": [[1, 2, 3, 4], [5, 6]]}',  # ragged, same count
        b'{"columns": ["a", "b", "n"], "data": [[1, 2, true]]}',
        b'{"columns": ["a", "b", "n"], "data": [[1, 2, null]]}',
        b'{"columns": ["a", "b", "n"], "data": [[1, 2, "3"]]}',
        b'{"columns": ["a", "b", "n"], "data": [[1, 2, {"v": 3}]]}',
        b'{"columns": ["a", "b", "n"], "data": [[1, 2, 3.5]]}',  # n must be whole
        b'{"columns": ["a", "b", "n"], "data": [[1, 2, 9223372036854775808]]}',
        b'{"columns": ["a", "b", "n"], "data": [[1, 2, 99999999999999999999999]]}',
        b'{"columns": ["a", "b", "n"], "data": [[1e400, 2, 3]]}',
        b'{"columns": ["a", "b", "n"], "data": [[NaN, 2, 3]]}',
        b'{"columns": ["a", "b", "n"], "data": [[Infinity, 2, 3]]}',
        b'{"columns": ["a", "b", "n"], "data": []}',
        b'{"columns": ["n", "b", "a"], "data": [[1, 2, 3]]}',  # other order: checked path
        b'{"columns": ["a", "b"], "data": [[1, 2]]}',
        b'{"columns": ["a", "b", "n"], "data": [[1, 2, 3]], "index": [0]}',
        b'{"columns": ["a", "b", "n"], "data": [[1, 2, 3]], "data": [[4, 5, 6]]}',
        b'{"columns": ["a", "b", "n"], "data": [[1, 2, 3]]',  # truncated
        b'{"columns": ["a", "b", "n"], "data": [[1, 2, 3]]} trailing',
        b'{"columns": ["a", "b", "n"], "data": [[1, 2, 3]], "\xff": 1}',  # not UTF-8
        b"[[1, 2, 3]]",
        b'[{"a": 1, "b": 2, "n": 3}]',
    ],
)
def test_anything_unusual_in_a_raw_body_takes_the_checked_path(raw: bytes) -> None:
    from keel.serving._decode import _direct_matrix

    matrix = _direct_matrix(raw, ["a", "b", "n"], 1000, "predict")
    assert matrix is None or not _decoder()._vetted(matrix)
    _same_as_parsed(raw)


def test_a_raw_body_over_the_row_cap_is_refused_the_same_way() -> None:
    raw = b'{"columns": ["a", "b", "n"], "data": [[1, 2, 3], [4, 5, 6], [7, 8, 9]]}'
    kind, (message, _) = _same_as_parsed(raw, max_rows=2)
    assert kind == "PayloadTooLarge"
    assert "over the cap of 2" in message


def test_a_name_with_a_bracket_keeps_the_parsed_path() -> None:
    signature = ModelSignature(inputs=(ColumnSpec("x[0]", "float"), ColumnSpec("y", "float")))
    decoder = InputDecoder(signature, max_rows=10)
    assert not decoder._direct
    decoded = decoder.decode_body(b'{"columns": ["x[0]", "y"], "data": [[1, 2]]}')
    assert decoded.matrix is not None
    assert decoded.matrix.tolist() == [[1.0, 2.0]]
