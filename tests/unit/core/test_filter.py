"""The run search filter parser: exact trees, precedence, quoting, every error, limits."""

from __future__ import annotations

import dataclasses
import math
import random
import string

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from keel.core._filter import (
    MAX_COMPARISONS,
    MAX_DEPTH,
    MAX_FILTER_LENGTH,
    MAX_ORDER_KEYS,
    And,
    Comparison,
    Expr,
    Not,
    Or,
    OrderKey,
    comparisons,
    parse_filter,
    parse_order_by,
)
from keel.errors import FilterSyntaxError, InvalidArgument


def metric(key: str, op: str, value: float | None = None) -> Comparison:
    return Comparison("metric", key, op, value)


def param(key: str, op: str, value: str | tuple[str, ...] | None = None) -> Comparison:
    return Comparison("param", key, op, value)


def tag(key: str, op: str, value: str | tuple[str, ...] | None = None) -> Comparison:
    return Comparison("tag", key, op, value)


def attr(key: str, op: str, value: float | str | tuple[str, ...] | None = None) -> Comparison:
    return Comparison("attribute", key, op, value)


A = metric("a", ">", 1.0)
B = param("b", "=", "x")
C = tag("c", "=", "y")
D = metric("d", "<", 2.0)
a, b, c, d = "metrics.a > 1", "params.b = 'x'", "tags.c = 'y'", "metrics.d < 2"


# ---------------------------------------------------------------- trees


@pytest.mark.parametrize("text", [None, "", "   ", "\n\t \r"])
def test_empty_filter_matches_everything(text: str | None) -> None:
    assert parse_filter(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "metrics.auc > 0.8 and params.penalty = 'l2' and tags.team = 'risk'",
            And((metric("auc", ">", 0.8), param("penalty", "=", "l2"), tag("team", "=", "risk"))),
        ),
        (
            "metrics.`val loss` <= 0.3 "
            "OR (params.model IN ('lr', 'rf') AND NOT tags.stage = 'dev')",
            Or(
                (
                    metric("val loss", "<=", 0.3),
                    And((param("model", "IN", ("lr", "rf")), Not(tag("stage", "=", "dev")))),
                )
            ),
        ),
        (
            "attributes.status = 'FINISHED' and run_name LIKE 'lr-%' and start_time >= 1700000000",
            And(
                (
                    attr("status", "=", "FINISHED"),
                    attr("run_name", "LIKE", "lr-%"),
                    attr("start_time", ">=", 1700000000.0),
                )
            ),
        ),
        ("tags.owner IS NULL", tag("owner", "IS NULL")),
        ("params.x IS NOT NULL", param("x", "IS NOT NULL")),
        ("params.x != 'a'", param("x", "!=", "a")),
        ("tags.t ILIKE '%Prod%'", tag("t", "ILIKE", "%Prod%")),
        ("metrics.x is null", metric("x", "IS NULL")),
        ("metrics.x Is Not Null", metric("x", "IS NOT NULL")),
        ("end_time IS NULL", attr("end_time", "IS NULL")),
        ("params.m not in ('a')", param("m", "NOT IN", ("a",))),
        ("params.m IN('a',\"b\" ,  'c')", param("m", "IN", ("a", "b", "c"))),
        ("params.m like 'a%'", param("m", "LIKE", "a%")),
        ("metrics.a = 1", metric("a", "=", 1.0)),
        ("metrics.a != 1", metric("a", "!=", 1.0)),
        ("metrics.a < 1", metric("a", "<", 1.0)),
        ("metrics.a > 1", metric("a", ">", 1.0)),
        ("metrics.a >= 1", metric("a", ">=", 1.0)),
    ],
)
def test_parses_to_exact_tree(text: str, expected: Expr) -> None:
    assert parse_filter(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("metrics.a = 1", metric("a", "=", 1.0)),
        ("metric.a = 1", metric("a", "=", 1.0)),
        ("METRICS.a = 1", metric("a", "=", 1.0)),
        ("param.a = 'v'", param("a", "=", "v")),
        ("Params.a = 'v'", param("a", "=", "v")),
        ("tag.a = 'v'", tag("a", "=", "v")),
        ("attribute.run_id = 'r'", attr("run_id", "=", "r")),
        ("attributes.id = 'r'", attr("run_id", "=", "r")),
        ("id = 'r'", attr("run_id", "=", "r")),
        ("name = 'n'", attr("run_name", "=", "n")),
        ("run_name = 'n'", attr("run_name", "=", "n")),
        ("parent_run_id = 'p'", attr("parent_id", "=", "p")),
        ("attributes.parent_id = 'p'", attr("parent_id", "=", "p")),
        ("experiment_id IN ('1', '2')", attr("experiment_id", "IN", ("1", "2"))),
        ("START_TIME > 5", attr("start_time", ">", 5.0)),
        ("end_time < 1.5e9", attr("end_time", "<", 1.5e9)),
        ("attributes.`status` = 'running'", attr("status", "=", "RUNNING")),
        ("metrics.layer.1.loss < 1", metric("layer.1.loss", "<", 1.0)),
        ("metrics.a-b:c/d_e = 1", metric("a-b:c/d_e", "=", 1.0)),
        ("metrics..hidden = 1", metric(".hidden", "=", 1.0)),
        ("params.1x = 'v'", param("1x", "=", "v")),
        ("tags.and = 'v'", tag("and", "=", "v")),
        ('metrics."val loss" = 1', metric("val loss", "=", 1.0)),
        ("metrics.`a``b` = 1", metric("a`b", "=", 1.0)),
        ("metrics.`a\\`b` = 1", metric("a`b", "=", 1.0)),
        ('tags."a""b" = \'v\'', tag('a"b', "=", "v")),
        ("tags.`mlflow.runName` = 'v'", tag("mlflow.runName", "=", "v")),
        ("tags.`a+b (1)` = 'v'", tag("a+b (1)", "=", "v")),
    ],
)
def test_keys_and_aliases(text: str, expected: Comparison) -> None:
    assert parse_filter(text) == expected


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("1", 1.0),
        ("-1", -1.0),
        ("+3", 3.0),
        ("1.5", 1.5),
        (".5", 0.5),
        ("5.", 5.0),
        ("1e-3", 0.001),
        ("1E+3", 1000.0),
        ("-2.5e10", -2.5e10),
        ("inf", math.inf),
        ("-inf", -math.inf),
        ("INF", math.inf),
        ("Infinity", math.inf),
        ("1e999", math.inf),
        ("007", 7.0),
    ],
)
def test_metric_numbers(literal: str, value: float) -> None:
    assert parse_filter(f"metrics.m >= {literal}") == metric("m", ">=", value)


@pytest.mark.parametrize("literal", ["nan", "NaN", "-nan"])
def test_metric_nan(literal: str) -> None:
    expr = parse_filter(f"metrics.m != {literal}")
    assert isinstance(expr, Comparison)
    assert isinstance(expr.value, float)
    assert math.isnan(expr.value)


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("'l2'", "l2"),
        ('"l2"', "l2"),
        ("''", ""),
        ("'it''s'", "it's"),
        ("'it\\'s'", "it's"),
        ("''''", "'"),
        ("'a\\\\b'", "a\\b"),
        ("'a\\b'", "a\\b"),
        ("'a\\\\'", "a\\"),
        ("'a\"b'", 'a"b'),
        ('"a""b"', 'a"b'),
        ('"a\\"b"', 'a"b'),
        ('"it\'s"', "it's"),
        ("'100%_x'", "100%_x"),
        ("'日本 語'", "日本 語"),
        ("'a\nb'", "a\nb"),
        ("'AND OR NOT ( ) ,'", "AND OR NOT ( ) ,"),
    ],
)
def test_string_quoting_and_escapes(literal: str, value: str) -> None:
    assert parse_filter(f"params.p = {literal}") == param("p", "=", value)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("status = 'finished'", "FINISHED"),
        ("status != 'Killed'", "KILLED"),
        ("status IN ('running', 'FAILED')", ("RUNNING", "FAILED")),
        ("status NOT IN ('killed')", ("KILLED",)),
        ("status LIKE 'fin%'", "fin%"),
        ("status ILIKE '%ED'", "%ED"),
    ],
)
def test_status_values_are_canonical(text: str, value: str | tuple[str, ...]) -> None:
    expr = parse_filter(text)
    assert isinstance(expr, Comparison)
    assert (expr.kind, expr.key, expr.value) == ("attribute", "status", value)


def test_whitespace_is_optional_between_symbols() -> None:
    expected = And((metric("a", ">", -1.0), param("b", "!=", "x")))
    assert parse_filter("(metrics.a>-1)AND(params.b!='x')") == expected
    assert parse_filter("\n  metrics.a\t>\t-1\r\n  and params.b != 'x'  ") == expected


# ---------------------------------------------------------------- precedence


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"{a} OR {b} AND {c}", Or((A, And((B, C))))),
        (f"{a} AND {b} OR {c}", Or((And((A, B)), C))),
        (f"{a} AND {b} OR {c} AND {d}", Or((And((A, B)), And((C, D))))),
        (f"NOT {a} AND {b}", And((Not(A), B))),
        (f"NOT {a} OR {b}", Or((Not(A), B))),
        (f"NOT ({a} AND {b})", Not(And((A, B)))),
        (f"NOT NOT {a}", Not(Not(A))),
        (f"not not not {a}", Not(Not(Not(A)))),
        (f"({a} OR {b}) AND {c}", And((Or((A, B)), C))),
        (f"{a} AND ({b} AND {c})", And((A, B, C))),
        (f"({a} AND {b}) AND ({c} AND {d})", And((A, B, C, D))),
        (f"({a} OR {b}) OR {c}", Or((A, B, C))),
        (f"{a} OR ({b} OR ({c} OR {d}))", Or((A, B, C, D))),
        (f"{a} AND NOT ({b} AND {c})", And((A, Not(And((B, C)))))),
        (f"(({a}))", A),
        (f"({a} AND {b}) OR ({c} AND {d})", Or((And((A, B)), And((C, D))))),
        (f"{a} AnD {b} oR {c}", Or((And((A, B)), C))),
    ],
)
def test_precedence_and_flattening(text: str, expected: Expr) -> None:
    assert parse_filter(text) == expected


def test_comparisons_lists_leaves_left_to_right() -> None:
    expr = parse_filter(f"({a} OR NOT {b}) AND ({c} OR ({d}))")
    assert list(comparisons(expr)) == [A, B, C, D]
    assert list(comparisons(None)) == []
    assert list(comparisons(A)) == [A]


def test_nodes_are_frozen_with_slots() -> None:
    for node in (A, And((A, B)), Or((A, B)), Not(A), OrderKey("metric", "auc", True)):
        assert not hasattr(node, "__dict__")
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(node, dataclasses.fields(node)[0].name, None)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        (
            "metrics.auc 0.8",
            12,
            "expected a comparison operator (=, !=, <, <=, >, >=, LIKE, ILIKE, IN, NOT IN, IS) "
            "after 'metrics.auc', got '0.8'",
        ),
        ("metrics.auc", 11, "after 'metrics.auc', got the end of the text"),
        ("metrics.auc >", 13, "expected a value after >"),
        ("metrics.auc > 'x'", 14, "compares with numbers, not strings"),
        ("metrics.auc LIKE '%'", 12, "metrics.auc is numeric"),
        ("metrics.auc IN (1)", 12, "not IN"),
        ("metrics.a > - 1", 12, "expected a value after >: a number such as 0.8"),
        ("metrics.a > 1e", 12, "got '1e'"),
        ("params.x = 1abc", 11, "expected a value after ="),
        ("params.x < 'a'", 9, "params.x holds strings, which support =, !=, LIKE"),
        ("tags.t >= 'a'", 7, "but not >="),
        ("params.lr = 0.1", 12, "quote the value, as in params.lr = '0.1'"),
        ("params.m IN ('a', 1)", 18, "as in params.m IN ('1')"),
        ("params.m IN 'a'", 12, "expected '(' after IN"),
        ("params.m IN ('a' 'b')", 17, "expected ',' or ')' in the IN list, got \"'b'\""),
        ("params.m IN ('a'", 16, "expected ',' or ')'"),
        ("params.m IN ()", 13, "expected a value after IN"),
        ("params.m IN ('a',)", 17, "expected a value after IN"),
        ("params.m NOT 'a'", 13, "expected IN after NOT"),
        ("params.m NOT LIKE 'a'", 9, "NOT LIKE is not supported"),
        ("params.m NOT ILIKE 'a'", 9, "as in NOT params.m ILIKE"),
        ("tags.o IS 'x'", 10, "expected NULL or NOT NULL after IS"),
        ("tags.o IS NOT", 13, "expected NULL after IS NOT"),
        ("tags.o = NULL", 9, "use IS NULL or IS NOT NULL"),
        ("params.m = `x`", 11, "backticks quote keys, not values"),
        ("params.m = abc", 11, "expected a value after =: a number such as 0.8 or a quoted"),
        ("foo = 'x'", 0, "unknown attribute 'foo'; use one of run_id (or id), run_name"),
        ("attributes.foo = 'x'", 0, "unknown attribute 'foo'"),
        ("metric = 1", 0, "expected '.' and a key after 'metric', as in metric.auc"),
        ("model.x = 1", 0, "unknown key type 'model'"),
        ("metrics. = 1", 9, "expected a key after 'metrics.', got '='"),
        ("metrics.'a' = 1", 8, "expected a key after 'metrics.'"),
        ("metrics.``", 8, "empty key"),
        ("params.a+b = 'x'", 8, "quote other keys with backticks, as in params.`a+b`"),
        ("status = 'DONE'", 9, "unknown status 'DONE'; use one of RUNNING, FINISHED"),
        ("status IN ('RUNNING', 'done')", 22, "unknown status 'done'"),
        ("start_time > 'yesterday'", 13, "start_time compares with numbers"),
        ("start_time > inf", 13, "a finite number"),
        ("end_time < nan", 11, "a finite number"),
        ("start_time LIKE '1%'", 11, "start_time is numeric"),
        ("run_name > 'a'", 9, "run_name holds strings"),
        ("experiment_id = 1", 16, "quote the value, as in experiment_id = '1'"),
        ("params.x = 'a", 11, "unterminated string: add the closing '"),
        ("params.x = 'a''", 11, "unterminated string"),
        ('params.x = "a\\"', 11, 'add the closing "'),
        ("metrics.`a = 1", 8, "unterminated string: add the closing `"),
        ("metrics.a == 1", 10, "use a single '='"),
        ("metrics.a ! 1", 10, "expected '!='"),
        ("metrics.a > 1 ;", 14, "unexpected character ';'"),
        ("metrics.é > 1", 8, "unexpected character 'é'"),
        ("metrics.a > 1 metrics.b > 2", 14, "expected AND, OR or the end of the filter"),
        ("metrics.a > 1)", 13, "unmatched ')'"),
        ("(metrics.a > 1", 14, "expected AND, OR or ')' to close the '(' at position 0"),
        ("(metrics.a > 1 metrics.b > 2)", 15, "to close the '(' at position 0"),
        ("()", 1, "expected a comparison such as metrics.auc > 0.8, got ')'"),
        ("metrics.a > 1 AND", 17, "expected a comparison such as metrics.auc > 0.8, got the end"),
        ("AND metrics.a > 1", 0, "got 'AND'"),
        ("NOT", 3, "expected a comparison"),
        ("1 = 1", 0, "expected a comparison"),
        ("'a' = params.x", 0, "expected a comparison"),
        ("metrics.a > 1 OR OR metrics.b > 1", 17, "got 'OR'"),
        ("metrics.a > 1 AND NOT", 21, "expected a comparison"),
        ("metrics.a > 1 AND ,", 18, "got ','"),
    ],
)
def test_errors_point_at_the_fault(text: str, position: int, fragment: str) -> None:
    with pytest.raises(FilterSyntaxError) as caught:
        parse_filter(text)
    error = caught.value
    assert error.position == position
    assert error.text == text
    assert fragment in error.message
    assert error.code == "INVALID_FILTER"
    assert error.to_dict()["position"] == position


def test_long_tokens_are_clipped_in_messages() -> None:
    with pytest.raises(FilterSyntaxError) as caught:
        parse_filter("metrics.a " + "x" * 100)
    assert "'" + "x" * 37 + "...'" in caught.value.message


def test_non_string_filter_is_invalid_argument() -> None:
    with pytest.raises(InvalidArgument, match="must be a string"):
        parse_filter(42)  # type: ignore[arg-type]


# ---------------------------------------------------------------- limits


def test_filter_length_limit() -> None:
    at_limit = "metrics.a > 1" + " " * (MAX_FILTER_LENGTH - len("metrics.a > 1"))
    assert parse_filter(at_limit) == A
    with pytest.raises(InvalidArgument, match="over the limit of 10000") as caught:
        parse_filter(at_limit + " ")
    assert not isinstance(caught.value, FilterSyntaxError)


def test_comparison_count_limit() -> None:
    parts = [f"metrics.m{i} > 1" for i in range(MAX_COMPARISONS + 1)]
    expr = parse_filter(" AND ".join(parts[:MAX_COMPARISONS]))
    assert len(list(comparisons(expr))) == MAX_COMPARISONS
    text = " OR ".join(parts)
    with pytest.raises(FilterSyntaxError, match="more than 200 comparisons") as caught:
        parse_filter(text)
    assert caught.value.position == text.index(f"metrics.m{MAX_COMPARISONS} ")


@pytest.mark.parametrize(
    ("opener", "levels", "position"),
    [("(", 1, MAX_DEPTH), ("NOT ", 1, 4 * MAX_DEPTH), ("not(", 2, 4 * (MAX_DEPTH // 2))],
)
def test_nesting_limit(opener: str, levels: int, position: int) -> None:
    closer = ")" * opener.count("(")
    count = MAX_DEPTH // levels
    assert parse_filter(opener * count + a + closer * count) is not None
    with pytest.raises(FilterSyntaxError, match="nests more than 50 levels") as caught:
        parse_filter(opener * 1000 + a + closer * 1000)
    assert caught.value.position == position


@given(st.lists(st.sampled_from(["(", "NOT "]), min_size=1, max_size=1000))
@settings(max_examples=50, deadline=None)
def test_any_nesting_parses_or_fails_cleanly(openers: list[str]) -> None:
    text = "".join(openers) + a + ")" * openers.count("(")
    if len(openers) <= MAX_DEPTH:
        assert list(comparisons(parse_filter(text))) == [A]
    else:
        with pytest.raises(FilterSyntaxError, match="nests more than") as caught:
            parse_filter(text)
        assert caught.value.position == len("".join(openers[:MAX_DEPTH]))


# ---------------------------------------------------------------- order_by


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ("metrics.auc DESC", OrderKey("metric", "auc", True)),
        ("metrics.auc desc", OrderKey("metric", "auc", True)),
        ("start_time", OrderKey("attribute", "start_time", False)),
        ("params.x asc", OrderKey("param", "x", False)),
        ("  tags.t  ", OrderKey("tag", "t", False)),
        ("name", OrderKey("attribute", "run_name", False)),
        ("attributes.parent_run_id DESC", OrderKey("attribute", "parent_id", True)),
        ("metrics.`val loss` DESC", OrderKey("metric", "val loss", True)),
        ("metric.layer.1.loss", OrderKey("metric", "layer.1.loss", False)),
    ],
)
def test_order_by(item: str, expected: OrderKey) -> None:
    assert parse_order_by([item]) == (expected,)


def test_order_by_keeps_order_and_accepts_nothing() -> None:
    assert parse_order_by(None) == ()
    assert parse_order_by([]) == ()
    assert parse_order_by(("metrics.a", "start_time DESC")) == (
        OrderKey("metric", "a", False),
        OrderKey("attribute", "start_time", True),
    )


@pytest.mark.parametrize(
    ("item", "position", "fragment"),
    [
        ("", 0, "empty order_by item"),
        ("   ", 3, "empty order_by item"),
        ("metrics.auc DOWN", 12, "expected ASC, DESC or nothing after 'metrics.auc'"),
        ("metrics.auc DESC x", 17, "got 'x'"),
        ("metrics.auc > 1", 12, "expected ASC, DESC"),
        ("foo", 0, "unknown attribute 'foo'"),
        ("AND", 0, "expected a key such as metrics.auc"),
        ("metrics.", 8, "expected a key after 'metrics.', got the end of the text"),
        ("metrics.`x", 8, "unterminated string"),
    ],
)
def test_order_by_errors(item: str, position: int, fragment: str) -> None:
    with pytest.raises(FilterSyntaxError) as caught:
        parse_order_by(["metrics.ok", item])
    assert caught.value.position == position
    assert caught.value.text == item
    assert fragment in caught.value.message


def test_order_by_argument_errors() -> None:
    with pytest.raises(InvalidArgument, match="list of strings"):
        parse_order_by("metrics.auc DESC")
    with pytest.raises(InvalidArgument, match="must be strings"):
        parse_order_by([1])  # type: ignore[list-item]
    with pytest.raises(InvalidArgument, match="over the limit of 10"):
        parse_order_by([f"metrics.m{i}" for i in range(MAX_ORDER_KEYS + 1)])
    assert len(parse_order_by([f"metrics.m{i}" for i in range(MAX_ORDER_KEYS)])) == 10


# ---------------------------------------------------------------- properties

_VOCABULARY = [
    "metrics.auc", "params.x", "tags.t", "status", "start_time", "attributes.", "metrics.",
    "foo", "(", ")", ",", "AND", "or", "NOT", "IN", "is", "NULL", "LIKE", "ilike", "=", "!=",
    "<", ">=", "==", "!", "'a'", '"b"', "`c`", "'", '"', "`", "\\", "1", "-1e5", "nan", "inf",
    "'RUNNING'", "DESC", "+", ";", " ", "\t", "1e", "é", "''",
]  # fmt: skip


@given(st.text(max_size=200))
@settings(max_examples=200, deadline=None)
def test_arbitrary_text_fails_only_with_keel_errors(text: str) -> None:
    _parse_or_fail_cleanly(text)


@given(st.lists(st.sampled_from(_VOCABULARY), max_size=30), st.booleans())
@settings(max_examples=200, deadline=None)
def test_token_soup_fails_only_with_keel_errors(words: list[str], spaced: bool) -> None:
    _parse_or_fail_cleanly((" " if spaced else "").join(words))


def _parse_or_fail_cleanly(text: str) -> None:
    for parse in (parse_filter, lambda t: parse_order_by([t])):
        error: FilterSyntaxError | None = None
        try:
            parse(text)
        except FilterSyntaxError as caught:
            error = caught
        except InvalidArgument:
            continue
        if error is not None:
            assert 0 <= error.position <= len(text)
            assert error.text == text


_PLAIN = string.ascii_letters + string.digits + "_-.:/"
_KEYS = st.one_of(st.text(_PLAIN, min_size=1, max_size=8), st.text(min_size=1, max_size=8))
_STRINGS = st.text(max_size=8)
_NUMBERS = st.floats(allow_nan=False)
_STRING_ATTRIBUTES = ["run_id", "run_name", "parent_id", "experiment_id"]
_NULL = st.sampled_from(["IS NULL", "IS NOT NULL"])


def _string_comparison(kind: str, key: st.SearchStrategy[str]) -> st.SearchStrategy[Comparison]:
    return st.one_of(
        st.builds(Comparison, st.just(kind), key, st.sampled_from(["=", "!=", "LIKE", "ILIKE"]),
                  _STRINGS),
        st.builds(Comparison, st.just(kind), key, st.sampled_from(["IN", "NOT IN"]),
                  st.lists(_STRINGS, min_size=1, max_size=3).map(tuple)),
        st.builds(Comparison, st.just(kind), key, _NULL, st.none()),
    )  # fmt: skip


_STATUS = st.sampled_from(["RUNNING", "FINISHED", "FAILED", "KILLED"])
_COMPARISONS = st.one_of(
    st.builds(Comparison, st.just("metric"), _KEYS,
              st.sampled_from(["=", "!=", "<", "<=", ">", ">="]), _NUMBERS),
    st.builds(Comparison, st.just("metric"), _KEYS, _NULL, st.none()),
    _string_comparison("param", _KEYS),
    _string_comparison("tag", _KEYS),
    _string_comparison("attribute", st.sampled_from(_STRING_ATTRIBUTES)),
    st.builds(Comparison, st.just("attribute"), st.sampled_from(["start_time", "end_time"]),
              st.sampled_from(["=", "!=", "<", "<=", ">", ">="]),
              st.floats(allow_nan=False, allow_infinity=False)),
    st.builds(Comparison, st.just("attribute"), st.just("status"), st.sampled_from(["=", "!="]),
              _STATUS),
    st.builds(Comparison, st.just("attribute"), st.just("status"),
              st.sampled_from(["IN", "NOT IN"]), st.lists(_STATUS, min_size=1).map(tuple)),
)  # fmt: skip


def _extend(kids: st.SearchStrategy[Expr]) -> st.SearchStrategy[Expr]:
    return st.one_of(
        st.lists(kids.filter(lambda e: not isinstance(e, And)), min_size=2, max_size=3).map(
            lambda clauses: And(tuple(clauses))
        ),
        st.lists(kids.filter(lambda e: not isinstance(e, Or)), min_size=2, max_size=3).map(
            lambda clauses: Or(tuple(clauses))
        ),
        kids.map(Not),
    )


_EXPRS = st.recursive(_COMPARISONS, _extend, max_leaves=10)
_ALIASES = {"run_id": ["run_id", "id", "RUN_ID"], "run_name": ["run_name", "name"],
            "parent_id": ["parent_id", "parent_run_id"]}  # fmt: skip


def render(expr: Expr, rnd: random.Random) -> str:
    """Filter text for ``expr``, with randomly chosen spellings of the same meaning."""

    def word(keyword: str) -> str:
        return rnd.choice([keyword, keyword.lower(), keyword.title()])

    def quote(text: str, quotes: str) -> str:
        mark = rnd.choice(quotes)
        doubled = rnd.random() < 0.5
        escaped = text.replace("\\", "\\\\").replace(mark, mark * 2 if doubled else "\\" + mark)
        return mark + escaped + mark

    def key(comparison: Comparison) -> str:
        if comparison.kind == "attribute":
            prefix = rnd.choice(["", "attributes.", "attribute.", "ATTRIBUTES."])
            return prefix + rnd.choice(_ALIASES.get(comparison.key, [comparison.key]))
        prefix = word(rnd.choice([comparison.kind, comparison.kind + "s"])) + "."
        if all(ch in _PLAIN for ch in comparison.key) and rnd.random() < 0.8:
            return prefix + comparison.key
        return prefix + quote(comparison.key, '`"')

    def value(v: object, case_free: bool = False) -> str:
        if isinstance(v, float):
            if v.is_integer() and rnd.random() < 0.5:
                return str(int(v))
            return repr(v)
        assert isinstance(v, str)
        if case_free:
            v = rnd.choice([v, v.lower()])
        return quote(v, "'\"")

    def node(e: Expr, wrap: tuple[type, ...]) -> str:
        text = render(e, rnd)
        if isinstance(e, wrap) or rnd.random() < 0.1:
            return f"({text})"
        return text

    if isinstance(expr, Comparison):
        is_status = expr.kind == "attribute" and expr.key == "status"
        op = " ".join(word(part) for part in expr.op.split())
        if expr.value is None:
            return f"{key(expr)} {op}"
        if isinstance(expr.value, tuple):
            items = ", ".join(value(v, is_status) for v in expr.value)
            return f"{key(expr)} {op} ({items})"
        return f"{key(expr)} {op} {value(expr.value, is_status)}"
    if isinstance(expr, Not):
        return f"{word('NOT')} {node(expr.clause, (And, Or))}"
    if isinstance(expr, And):
        return f" {word('AND')} ".join(node(clause, (Or,)) for clause in expr.clauses)
    return f" {word('OR')} ".join(node(clause, ()) for clause in expr.clauses)


def _depth(expr: Expr) -> int:
    if isinstance(expr, Comparison):
        return 0
    if isinstance(expr, Not):
        return 1 + _depth(expr.clause)
    return 1 + max(_depth(clause) for clause in expr.clauses)


@given(_EXPRS, st.randoms(use_true_random=False))
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_render_then_parse_round_trips(expr: Expr, rnd: random.Random) -> None:
    assume(_depth(expr) <= MAX_DEPTH // 3)
    text = render(expr, rnd)
    assert parse_filter(text) == expr, text
