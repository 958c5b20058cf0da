"""Validation of user-given keys, names, metric values, steps and text values."""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from keel.core._names import (
    MAX_KEY_LENGTH,
    MAX_NAME_LENGTH,
    validate_key,
    validate_metric_value,
    validate_name,
    validate_step,
    validate_text_value,
)
from keel.errors import InvalidArgument

ONE_MB = "a" * 1_000_000

# keys ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    ["loss", "val_loss", "layer.1/lr", "a:b", "with space", "A-Z_0-9", "a" * MAX_KEY_LENGTH],
)
def test_good_keys_are_returned_unchanged(key: str) -> None:
    assert validate_key(key, "metric key") == key


@pytest.mark.parametrize(
    "key",
    [
        "",
        "a" * (MAX_KEY_LENGTH + 1),
        ONE_MB,
        " loss",
        "loss ",
        "/loss",
        "a//b",
        "loss/",
        "a\nb",
        "a\x00b",
        "a\tb",
        "a\x7fb",
        "a,b",
        "a=b",
        "a'b",
        "métrique",
    ],
    ids=repr,
)
def test_bad_keys_are_refused(key: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_key(key, "metric key")
    assert "metric key" in caught.value.message
    assert len(caught.value.message) < 400  # a huge key is not echoed back whole


@pytest.mark.parametrize("key", [None, 1, 1.5, b"loss", ["loss"]], ids=repr)
def test_non_string_keys_are_refused(key: object) -> None:
    with pytest.raises(InvalidArgument, match="must be a string"):
        validate_key(key, "param key")


# names -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["lr-1", "grid search #3", "模型", "é", "[bold red]x[/]", "n" * MAX_NAME_LENGTH]
)
def test_good_names_are_returned_unchanged(name: str) -> None:
    assert validate_name(name, "run name") == name


@pytest.mark.parametrize("name", ["", " ", "\t", "   "], ids=repr)
def test_empty_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidArgument, match="run name is empty"):
        validate_name(name, "run name")


@pytest.mark.parametrize("name", ["n" * (MAX_NAME_LENGTH + 1), ONE_MB], ids=len)
def test_long_names_are_refused_without_echoing_them(name: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_name(name, "run name")
    assert f"{len(name)} characters" in caught.value.message
    assert str(MAX_NAME_LENGTH) in caught.value.message
    assert len(caught.value.message) < 400


@pytest.mark.parametrize(
    "name",
    ["a\x00b", "a\nb", "a\rb", "a\x1b[31mred", "a\x7fb", "a\x85b", "a\x9b31mred"],
    ids=repr,
)
def test_names_with_control_characters_are_refused(name: str) -> None:
    # \x85 (NEL) and \x9b (the one-byte CSI) are C1 control characters: a terminal
    # acts on them when `keel runs list` prints the name.
    with pytest.raises(InvalidArgument, match="control characters"):
        validate_name(name, "run name")


@pytest.mark.parametrize("name", [None, 3, b"x"], ids=repr)
def test_non_string_names_are_refused(name: object) -> None:
    with pytest.raises(InvalidArgument, match="experiment name must be a string"):
        validate_name(name, "experiment name")


# metric values ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.5, 0.5),
        (3, 3.0),
        (-0.0, -0.0),
        (10**20, 1e20),
        (np.float64(0.25), 0.25),
        (np.float32(1.5), 1.5),
        (np.float16(0.5), 0.5),
        (np.int64(7), 7.0),
        (np.int8(-3), -3.0),
        (np.uint64(2**63), float(2**63)),
        (np.array(2.0), 2.0),
        (Decimal("0.125"), 0.125),
        (Fraction(1, 4), 0.25),
    ],
    ids=repr,
)
def test_numbers_are_accepted_as_floats(value: object, expected: float) -> None:
    result = validate_metric_value("auc", value)
    assert type(result) is float
    assert result == expected


@pytest.mark.parametrize("value", [math.nan, np.nan, np.float32("nan")], ids=repr)
def test_nan_is_kept(value: object) -> None:
    assert math.isnan(validate_metric_value("loss", value))


@pytest.mark.parametrize("value", [math.inf, -math.inf, np.float64("-inf")], ids=repr)
def test_infinities_are_kept(value: float) -> None:
    assert validate_metric_value("loss", value) == float(value)


@pytest.mark.parametrize(
    "value",
    [None, "0.5", "nan", b"1", 1 + 2j, [1.0], {"v": 1}, np.array([1.0, 2.0]), object()],
    ids=repr,
)
def test_non_numbers_are_refused(value: object) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_metric_value("auc", value)
    assert "'auc'" in caught.value.message


@pytest.mark.parametrize("value", [True, False, np.True_, np.False_], ids=repr)
def test_booleans_are_refused_as_metric_values(value: object) -> None:
    with pytest.raises(InvalidArgument, match="'auc'"):
        validate_metric_value("auc", value)


# steps ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "step", [0, 1, 2**63 - 1, np.int64(5), np.int32(0), np.uint64(2**63 - 1)], ids=repr
)
def test_good_steps_are_returned_as_ints(step: object) -> None:
    result = validate_step("loss", step)
    assert type(result) is int
    assert result == int(step)  # type: ignore[call-overload]


@pytest.mark.parametrize(
    "step",
    [-1, -(2**63), 2**63, 2**64, np.int64(-1), np.uint64(2**63)],
    ids=repr,
)
def test_out_of_range_steps_are_refused(step: object) -> None:
    with pytest.raises(InvalidArgument, match="from 0 to 2\\*\\*63-1"):
        validate_step("loss", step)


@pytest.mark.parametrize("step", [1.5, 1.0, "3", None, np.float64(2.0), Decimal(1), [1]], ids=repr)
def test_non_integer_steps_are_refused(step: object) -> None:
    with pytest.raises(InvalidArgument, match="non-negative integers"):
        validate_step("loss", step)


@pytest.mark.parametrize("step", [True, False, np.True_], ids=repr)
def test_boolean_steps_are_refused(step: object) -> None:
    with pytest.raises(InvalidArgument, match="'loss'"):
        validate_step("loss", step)


@given(st.integers(min_value=0, max_value=2**63 - 1))
def test_every_step_in_range_is_accepted(step: int) -> None:
    assert validate_step("k", step) == step


@given(st.one_of(st.integers(max_value=-1), st.integers(min_value=2**63)))
def test_every_step_out_of_range_is_refused(step: int) -> None:
    with pytest.raises(InvalidArgument):
        validate_step("k", step)


# text values ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("l2", "l2"), (0.1, "0.1"), (12, "12"), (None, "None"), (True, "True"), ("", "")],
    ids=repr,
)
def test_text_values_are_rendered_with_str(value: object, expected: str) -> None:
    assert validate_text_value(value, "param 'C'", 6000) == expected


def test_text_values_up_to_the_limit_are_accepted() -> None:
    assert validate_text_value("x" * 6000, "param 'C'", 6000) == "x" * 6000


def test_text_values_over_the_limit_are_refused_with_the_fix() -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_text_value("x" * 6001, "param 'C'", 6000)
    assert "6001 characters" in caught.value.message
    assert "log_dict" in caught.value.message


def test_text_values_with_nul_are_refused() -> None:
    with pytest.raises(InvalidArgument, match="NUL"):
        validate_text_value("a\x00b", "tag 'x'", 8000)


def test_text_values_keep_newlines_and_unicode() -> None:
    assert validate_text_value("line 1\nline 2 — é", "tag 'x'", 8000) == "line 1\nline 2 — é"
