"""The error tree: a code on every class, one HTTP table, the documented tree, wire form."""

from __future__ import annotations

import json
import re

import pytest

from keel import errors
from keel.core._filter import parse_filter
from keel.errors import (
    HTTP_STATUS,
    FilterSyntaxError,
    InvalidArgument,
    KeelError,
    http_status,
)


def _all_error_classes() -> list[type[KeelError]]:
    found: list[type[KeelError]] = [KeelError]
    pending = [KeelError]
    while pending:
        for sub in pending.pop().__subclasses__():
            if sub.__module__ == "keel.errors" and sub not in found:
                found.append(sub)
                pending.append(sub)
    return found


def _documented_tree() -> dict[str, tuple[str, int, int]]:
    """class name -> (code, HTTP status, depth) as drawn in the module docstring."""
    rows: dict[str, tuple[str, int, int]] = {}
    pattern = re.compile(r"^[\s│├└─]*(?P<name>[A-Z]\w+)\s+(?P<code>[A-Z_]+)\s+(?P<status>\d{3})$")
    for line in (errors.__doc__ or "").splitlines():
        match = pattern.match(line.rstrip())
        if match:
            depth = (match.start("name") - 4) // 4  # the root sits at column 4
            rows[match.group("name")] = (match.group("code"), int(match["status"]), depth)
    return rows


CLASSES = _all_error_classes()


def test_the_tree_has_every_exported_error() -> None:
    exported = {
        obj for obj in (getattr(errors, name) for name in errors.__all__) if isinstance(obj, type)
    }
    assert set(CLASSES) <= exported
    assert len(CLASSES) >= 11


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_error_has_a_code_in_the_http_table(cls: type[KeelError]) -> None:
    assert cls.code in HTTP_STATUS
    assert 400 <= HTTP_STATUS[cls.code] <= 599


def test_codes_are_distinct() -> None:
    codes = [cls.code for cls in CLASSES]
    assert len(codes) == len(set(codes)), codes


def test_http_table_has_no_code_without_a_class() -> None:
    assert set(HTTP_STATUS) == {cls.code for cls in CLASSES}


def test_the_docstring_tree_matches_the_classes() -> None:
    documented = _documented_tree()
    subclasses = [cls for cls in CLASSES if cls is not KeelError]
    assert set(documented) == {cls.__name__ for cls in subclasses}
    for cls in subclasses:
        code, status, depth = documented[cls.__name__]
        assert cls.code == code, cls
        assert HTTP_STATUS[cls.code] == status, cls
        # depth in the drawing is the distance from KeelError in the class tree
        assert cls.__mro__.index(KeelError) == depth, cls


@pytest.mark.parametrize("cls", [c for c in CLASSES if c is not FilterSyntaxError])
def test_http_status_of_an_instance_follows_its_code(cls: type[KeelError]) -> None:
    error = cls("something is wrong; do this instead")
    assert http_status(error) == HTTP_STATUS[cls.code]
    assert isinstance(error, KeelError)
    assert isinstance(error, Exception)


@pytest.mark.parametrize("cls", [c for c in CLASSES if c is not FilterSyntaxError])
def test_to_dict_is_the_wire_form(cls: type[KeelError]) -> None:
    error = cls("no run 'abc'; list runs with `keel runs list`", run_ids=["abc"])
    wire = error.to_dict()
    assert wire == {
        "code": cls.code,
        "message": "no run 'abc'; list runs with `keel runs list`",
        "run_ids": ["abc"],
    }
    assert json.loads(json.dumps(wire)) == wire
    assert str(error) == error.message


def test_specific_statuses() -> None:
    assert http_status(errors.NotFound("x")) == 404
    assert http_status(errors.InvalidArgument("x")) == 400
    assert http_status(errors.AlreadyExists("x")) == 409
    assert http_status(errors.Conflict("x")) == 409
    assert http_status(errors.Unauthenticated("x")) == 401
    assert http_status(errors.PermissionDenied("x")) == 403
    assert http_status(errors.Unavailable("x")) == 503
    assert http_status(KeelError("x")) == 500


def test_filter_syntax_error_is_an_invalid_argument_with_a_position() -> None:
    error = FilterSyntaxError("expected a value", text="metrics.auc > ", position=14)
    assert isinstance(error, InvalidArgument)
    assert error.code == "INVALID_FILTER"
    assert http_status(error) == 400
    assert error.position == 14
    assert error.text == "metrics.auc > "
    assert error.to_dict()["position"] == 14
    assert error.to_dict()["code"] == "INVALID_FILTER"
    assert error.message.startswith("expected a value at position 14")


@pytest.mark.parametrize(
    ("text", "position"),
    [("metrics.auc >", 13), ("foo = 1", 0), ("metrics.a = 1 and (params.b = 'x'", 33)],
)
def test_filter_syntax_error_points_at_the_fault(text: str, position: int) -> None:
    with pytest.raises(FilterSyntaxError) as caught:
        parse_filter(text)
    error = caught.value
    assert error.position == position
    *_, text_line, pointer_line = error.message.splitlines()
    assert text_line == f"  {text}"
    assert pointer_line == " " * (2 + position) + "^"
