"""Gate rules: a tokenizer and a small recursive-descent parser (nothing is ``eval``-ed).

::

    rule     = operand op number ;
    operand  = metric | agg "(" metric "by" slice ")" ;
    agg      = "min" | "max" ;
    slice    = column { "&" column } ;        a crossed slice, as evaluate names it
    column   = plain | "`" chars "`" ;        plain = [A-Za-z0-9_.-]+
    op       = ">=" | ">" | "<=" | "<" ;
    number   = 0.8 | .8 | 1e-3 | -0.1 | 80% ;

``metric`` is one of ``KNOWN_METRICS`` (``roc_auc`` and ``average_precision`` are
accepted for ``auc`` and ``pr_auc``); fairness metrics are overall only. Every fault
raises InvalidArgument naming the rule, the position and the fix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple, NoReturn

from keel.errors import InvalidArgument
from keel.evaluation._metrics import (
    CLASSIFICATION_METRICS,
    FAIRNESS_METRICS,
    REGRESSION_METRICS,
)

__all__ = ["KNOWN_METRICS", "OPERATORS", "Rule", "parse_rule"]

PERFORMANCE_METRICS = (*CLASSIFICATION_METRICS, *REGRESSION_METRICS)
KNOWN_METRICS = (*PERFORMANCE_METRICS, *FAIRNESS_METRICS)
ALIASES = {"roc_auc": "auc", "average_precision": "pr_auc", "f1_score": "f1"}
OPERATORS = (">=", ">", "<=", "<")
MAX_RULE_LENGTH = 500
_EXAMPLE = "for example 'auc >= 0.8' or 'min(recall by gender) >= 0.7'"
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?%?")
_PLAIN = re.compile(r"[A-Za-z0-9_.\-]+")


@dataclass(frozen=True)
class Rule:
    """One parsed rule: ``metric op threshold``, optionally ``agg(metric by slice)``."""

    text: str
    metric: str
    op: str
    threshold: float
    agg: str | None = None
    by: str | None = None

    def holds(self, observed: float) -> bool:
        if self.op == ">=":
            return observed >= self.threshold
        if self.op == ">":
            return observed > self.threshold
        if self.op == "<=":
            return observed <= self.threshold
        return observed < self.threshold


class _Token(NamedTuple):
    kind: str  # "word", "number", "quoted", "op", "(", ")", "&", "end"
    text: str
    pos: int


def known_metrics_text() -> str:
    return ", ".join(KNOWN_METRICS)


def _fail(text: str, where: str, pos: int, message: str) -> NoReturn:
    pointer = f"\n  {text}\n  {' ' * pos}^"
    raise InvalidArgument(f"{where}: {message} at position {pos}{pointer}", position=pos)


def _tokens(text: str, where: str) -> list[_Token]:
    out: list[_Token] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if ch in "()&":
            out.append(_Token(ch, ch, i))
            i += 1
            continue
        if ch in "<>=!":
            op = text[i : i + 2] if text[i : i + 2] in (">=", "<=", "==", "!=") else ch
            if op not in OPERATORS:
                _fail(text, where, i, f"unsupported operator {op!r}; use one of >=, >, <=, <")
            out.append(_Token("op", op, i))
            i += len(op)
            continue
        if ch == "`":
            end = text.find("`", i + 1)
            if end < 0:
                _fail(text, where, i, "unterminated `: close the quoted column name")
            if end == i + 1:
                _fail(text, where, i, "empty column name between backticks")
            out.append(_Token("quoted", text[i + 1 : end], i))
            i = end + 1
            continue
        number = _NUMBER.match(text, i)
        if number and (ch.isdigit() or ch in "+-."):
            out.append(_Token("number", number.group(), i))
            i = number.end()
            continue
        word = _PLAIN.match(text, i)
        if word is None:
            _fail(text, where, i, f"unexpected character {ch!r}; {_EXAMPLE}")
        out.append(_Token("word", word.group(), i))
        i = word.end()
    out.append(_Token("end", "", len(text)))
    return out


def parse_rule(text: object, index: int) -> Rule:
    """Parse rule number ``index`` (1-based, for messages) of a gate."""
    where = f"gate rule {index}"
    if not isinstance(text, str):
        raise InvalidArgument(
            f"{where} must be a string such as 'auc >= 0.8', got {type(text).__name__} "
            f"{text!r}; quote it in the YAML"
        )
    if len(text) > MAX_RULE_LENGTH:
        raise InvalidArgument(f"{where} is over {MAX_RULE_LENGTH} characters; shorten it")
    where = f"gate rule {index} {text!r}"
    tokens = _tokens(text, where)
    pos = 0

    def take() -> _Token:
        nonlocal pos
        token = tokens[pos]
        if token.kind != "end":
            pos += 1
        return token

    def got(token: _Token) -> str:
        return "the end of the rule" if token.kind == "end" else repr(token.text)

    first = take()
    if first.kind != "word":
        _fail(text, where, first.pos, f"expected a metric name, got {got(first)}; {_EXAMPLE}")
    agg = by = None
    if first.text.lower() in ("min", "max") and tokens[pos].kind == "(":
        agg = first.text.lower()
        take()
        name_token = take()
        metric = _metric(text, where, name_token, got(name_token))
        if metric in FAIRNESS_METRICS:
            _fail(
                text,
                where,
                name_token.pos,
                f"{metric} is measured across the sensitive "
                f"attribute, not per slice; write '{metric} <= 0.1'",
            )
        keyword = take()
        if keyword.kind != "word" or keyword.text.lower() != "by":
            _fail(
                text,
                where,
                keyword.pos,
                f"expected 'by' and a slice column, got "
                f"{got(keyword)}; as in '{agg}({metric} by gender)'",
            )
        columns = [_column(text, where, take(), got)]
        while tokens[pos].kind == "&":
            take()
            columns.append(_column(text, where, take(), got))
        by = " & ".join(columns)
        close = take()
        if close.kind != ")":
            _fail(text, where, close.pos, f"expected ')' or '&' after the slice, got {got(close)}")
    else:
        metric = _metric(text, where, first, got(first))
    op = take()
    if op.kind != "op":
        _fail(
            text, where, op.pos, f"expected a comparison (>=, >, <=, <), got {got(op)}; {_EXAMPLE}"
        )
    value = take()
    if value.kind != "number":
        _fail(text, where, value.pos, f"expected a number such as 0.8, got {got(value)}")
    threshold = float(value.text.rstrip("%")) / (100.0 if value.text.endswith("%") else 1.0)
    end = take()
    if end.kind != "end":
        _fail(
            text,
            where,
            end.pos,
            f"unexpected {got(end)} after the threshold; write one "
            "comparison per rule (add another rule for another check)",
        )
    return Rule(text, metric, op.text, threshold, agg, by)


def _metric(text: str, where: str, token: _Token, got: str) -> str:
    if token.kind != "word":
        _fail(text, where, token.pos, f"expected a metric name, got {got}; {_EXAMPLE}")
    name = ALIASES.get(token.text.lower(), token.text.lower())
    if name not in KNOWN_METRICS:
        _fail(
            text,
            where,
            token.pos,
            f"unknown metric {token.text!r}; use one of {known_metrics_text()}",
        )
    return name


def _column(text: str, where: str, token: _Token, got: object) -> str:
    if token.kind in ("word", "quoted"):
        return token.text
    shown = got(token) if callable(got) else got
    _fail(
        text,
        where,
        token.pos,
        f"expected a slice column name, got {shown}; quote unusual "
        "names with backticks, as in `credit score`",
    )
