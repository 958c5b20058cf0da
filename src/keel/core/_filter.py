"""The run search filter language: a tokenizer and a recursive-descent parser.

It accepts MLflow's ``search_runs`` filters and adds OR, NOT, parentheses, ILIKE,
NOT IN and IS [NOT] NULL. Keywords are case-insensitive; NOT binds tighter than AND,
and AND tighter than OR::

    filter     = [ or_expr ] ;
    or_expr    = and_expr { "OR" and_expr } ;
    and_expr   = not_expr { "AND" not_expr } ;
    not_expr   = "NOT" not_expr | "(" or_expr ")" | comparison ;
    comparison = key ( cmp_op value | ( "LIKE" | "ILIKE" ) string
                     | [ "NOT" ] "IN" "(" string { "," string } ")"
                     | "IS" [ "NOT" ] "NULL" ) ;
    key        = prefix "." name | [ "attributes." ] attribute ;
    prefix     = "metrics" | "params" | "tags" | "attributes"   (or singular) ;
    name       = plain | "`" chars "`" | '"' chars '"' ;  plain = [A-Za-z0-9_\\-.:/]+
    cmp_op     = "=" | "!=" | "<" | "<=" | ">" | ">=" ;
    value      = number | string ;      number: 1, -2.5, 1e-3, nan, inf, -inf
    string     = "'" chars "'" | '"' chars '"' ;  a doubled quote or \\' is a quote, \\\\ is \\
    order_key  = key [ "ASC" | "DESC" ] ;

Metrics and start_time/end_time compare with numbers (=, !=, <, <=, >, >=); params,
tags and the other attributes with strings (=, !=, LIKE, ILIKE, IN, NOT IN); every
key supports IS [NOT] NULL. Every fault in the text raises FilterSyntaxError with its
position; a text over MAX_FILTER_LENGTH characters raises InvalidArgument.

Other searches (the model registry's) pass their own ``Attributes``: which bare keys
exist, which of them are numeric, and which take one of a fixed set of values.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from math import isfinite
from typing import Literal, NamedTuple, NoReturn, TypeAlias, get_args

from keel.core._entities import RunStatus
from keel.errors import FilterSyntaxError, InvalidArgument

__all__ = [
    "MAX_COMPARISONS",
    "MAX_DEPTH",
    "MAX_FILTER_LENGTH",
    "MAX_ORDER_KEYS",
    "RUN_ATTRIBUTES",
    "And",
    "Attributes",
    "Comparison",
    "Expr",
    "Kind",
    "Not",
    "Or",
    "OrderKey",
    "comparisons",
    "parse_filter",
    "parse_order_by",
]

Kind = Literal["metric", "param", "tag", "attribute"]

MAX_FILTER_LENGTH = 10_000
MAX_COMPARISONS = 200
MAX_DEPTH = 50
MAX_ORDER_KEYS = 10


@dataclass(frozen=True, slots=True)
class Comparison:
    """One test of a run field against a value, such as ``metrics.auc > 0.8``.

    ``op`` is one of = != < <= > >= LIKE ILIKE IN, "NOT IN", "IS NULL", "IS NOT NULL";
    ``value`` is a float, a string, a tuple of strings (IN) or None (IS [NOT] NULL).
    """

    kind: Kind
    key: str
    op: str
    value: float | str | tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class And:
    """True when every clause is; never directly holds another And."""

    clauses: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Or:
    """True when any clause is; never directly holds another Or."""

    clauses: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Not:
    """True when its clause is false."""

    clause: Expr


Expr: TypeAlias = Comparison | And | Or | Not


@dataclass(frozen=True, slots=True)
class OrderKey:
    """One sort key of a run search: ``metrics.auc DESC``."""

    kind: Kind
    key: str
    descending: bool


_PREFIXES: dict[str, Kind] = {name: kind for kind in get_args(Kind) for name in (kind, kind + "s")}
_ALIASES = {"run_id": "id", "run_name": "name", "parent_id": "parent_run_id"}
# Attribute names as written (lower-cased) to their canonical names.
_ATTRIBUTES = {name: name for name in ("status", "start_time", "end_time", "experiment_id")}
_ATTRIBUTES |= {name: name for name in _ALIASES} | {v: k for k, v in _ALIASES.items()}
_TIME_ATTRIBUTES = frozenset({"start_time", "end_time"})
_STATUSES = tuple(status.value for status in RunStatus)


@dataclass(frozen=True)
class Attributes:
    """The bare keys a search accepts, and how their values are checked.

    ``names`` maps each spelling (lower-case) to its canonical name; ``numeric`` names
    the canonical attributes compared with finite numbers (``sample`` is shown in
    messages); ``choices`` gives the only values a string attribute may take, matched
    case-insensitively and returned as spelled here; ``hint`` completes the message
    for an unknown attribute.
    """

    names: Mapping[str, str]
    numeric: frozenset[str] = frozenset()
    choices: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    hint: str = ""
    sample: str = "1"


RUN_ATTRIBUTES = Attributes(
    names=_ATTRIBUTES,
    numeric=_TIME_ATTRIBUTES,
    choices={"status": _STATUSES},
    hint="run_id (or id), run_name (or name), status, start_time, end_time, parent_id "
    "(or parent_run_id), experiment_id, or metrics.KEY, params.KEY, tags.KEY, as in "
    "status = 'FINISHED'",
    sample="1700000000",
)
_NUMERIC_OPS = frozenset({"=", "!=", "<", "<=", ">", ">="})
_STRING_OPS = frozenset({"=", "!=", "LIKE", "ILIKE", "IN", "NOT IN"})
_NULL_OPS = frozenset({"IS NULL", "IS NOT NULL"})
_KEYWORDS = frozenset({"and", "or", "not", "in", "like", "ilike", "is", "null"})
_KEY_CHARS = frozenset(string.ascii_letters + string.digits + "_-.:/")
# "+" belongs to numbers (1e+5); the parser rejects it inside a plain key.
_WORD_CHARS = _KEY_CHARS | {"+"}
_NUMBER = re.compile(
    r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|nan|inf|infinity)",
    re.IGNORECASE,
)
_EXAMPLE = "for example metrics.auc > 0.8 AND params.penalty = 'l2'"


class _Token(NamedTuple):
    kind: str  # "word", "string", "op", "(", ")", ",", or "end"
    text: str  # as written
    pos: int
    value: str = ""  # a string's contents, unescaped
    quote: str = ""  # the quote character of a string


class _Key(NamedTuple):
    kind: Kind
    key: str
    name: str  # as written, for messages


_MESSAGES = {
    "double_equals": "use a single '=' to test equality, as in params.penalty = 'l2'",
    "bang": "expected '!=' (not equal), as in params.penalty != 'l2'",
    "character": "unexpected character {char!r}; " + _EXAMPLE,
    "unterminated": "unterminated string: add the closing {quote}, as in tags.team = 'risk'",
    "depth": f"the filter nests more than {MAX_DEPTH} levels of parentheses and NOT; remove "
    "redundant ones (a AND b AND c needs none)",
    "count": f"the filter has more than {MAX_COMPARISONS} comparisons; use IN lists instead, "
    "as in params.model IN ('lr', 'rf')",
    "unmatched": "unmatched ')': remove it or add the '(' it closes, " + _EXAMPLE,
    "junction": "expected AND, OR or the end of the filter, got {got}; " + _EXAMPLE,
    "close": "expected AND, OR or ')' to close the '(' at position {opened}, got {got}; "
    "for example (metrics.a > 1 OR metrics.b > 1)",
    "comparison": "expected a comparison such as metrics.auc > 0.8, got {got}",
    "key": "expected a key such as metrics.auc or start_time, got {got}",
    "dot": "expected '.' and a key after {word!r}, as in {word}.auc",
    "prefix": "unknown key type {prefix!r} in {word!r}; start the key with metrics., params., "
    "tags. or attributes., as in metrics.auc",
    "quoted_key": "expected a key after {word!r}, got {got}; for example {word}auc or "
    "{word}`val loss`",
    "empty_key": "empty key: name it between the quotes, as in {word}`val loss`",
    "plain_key": "a plain key holds only letters, digits and '_-.:/'; quote other keys with "
    "backticks, as in {prefix}.`{key}`",
    "attribute": "unknown attribute {name!r}; use one of {hint}",
    "operator": "expected a comparison operator (=, !=, <, <=, >, >=, LIKE, ILIKE, IN, NOT IN, "
    "IS) after {name!r}, got {got}; for example metrics.auc > 0.8",
    "not_like": "NOT {op} is not supported; negate the whole comparison instead, as in "
    "NOT {name} {op} 'a%'",
    "not_in": "expected IN after NOT, got {got}; for example params.model NOT IN ('lr', 'rf')",
    "is": "expected NULL or NOT NULL after IS, got {got}; for example tags.owner IS NULL",
    "is_not": "expected NULL after IS NOT, got {got}; for example tags.owner IS NOT NULL",
    "numeric_op": "{name} is numeric and supports =, !=, <, <=, >, >=, IS NULL and IS NOT NULL, "
    "not {op}; for example {name} >= {sample}",
    "string_op": "{name} holds strings, which support =, !=, LIKE, ILIKE, IN, NOT IN, IS NULL "
    "and IS NOT NULL but not {op}; for example {name} = 'abc'",
    "open_list": "expected '(' after {op}, got {got}; for example {name} {op} ('lr', 'rf')",
    "list": "expected ',' or ')' in the {op} list, got {got}; for example {name} {op} ('lr', 'rf')",
    "finite": "{name} takes a finite number; for example {name} >= {sample}",
    "wants_number": "{name} compares with numbers, not strings; drop the quotes, as in "
    "{name} {op} {sample}",
    "wants_string": "{name} holds strings; quote the value, as in {name} {op} {quoted}",
    "choice": "unknown {attr} {value!r}; use one of {choices}, as in {attr} = {example!r}",
    "null": "use IS NULL or IS NOT NULL to test for a missing value, as in {name} IS NULL",
    "backtick": "backticks quote keys, not values; quote values with single quotes, as in "
    "params.model = 'lr'",
    "value": "expected a value after {op}: a number such as 0.8 or a quoted string such as "
    "'l2', got {got}",
    "empty_order": "empty order_by item: give a key, as in 'metrics.auc DESC'",
    "direction": "expected ASC, DESC or nothing after {name!r}, got {got}; for example "
    "'metrics.auc DESC'",
}


def _fail(text: str, token: _Token, message: str, **fields: object) -> NoReturn:
    """Raise the error ``message`` (a key of _MESSAGES) at ``token``."""
    shown = token.text if len(token.text) <= 40 else token.text[:37] + "..."
    got = "the end of the text" if token.kind == "end" else repr(shown)
    message = _MESSAGES[message].format(got=got, **fields)
    raise FilterSyntaxError(message, text=text, position=token.pos)


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        ch, start = text[i], i
        if ch.isspace():
            i += 1
        elif ch in _WORD_CHARS:
            while i < n and text[i] in _WORD_CHARS:
                i += 1
            tokens.append(_Token("word", text[start:i], start))
        elif ch in "'\"`":
            value, i = _scan_quoted(text, start)
            tokens.append(_Token("string", text[start:i], start, value, ch))
        elif ch in "(),":
            tokens.append(_Token(ch, ch, start))
            i += 1
        elif ch in "<>!=":
            pair = text[start : start + 2]
            op = pair if pair in ("<=", ">=", "!=", "==") else ch
            if op in ("==", "!"):
                _fail(text, _Token("op", op, start), "double_equals" if op == "==" else "bang")
            tokens.append(_Token("op", op, start))
            i += len(op)
        else:
            _fail(text, _Token("char", ch, start), "character", char=ch)
    tokens.append(_Token("end", "", n))
    return tokens


def _scan_quoted(text: str, start: int) -> tuple[str, int]:
    """The unescaped contents of the quoted string at ``start``, and the offset after it."""
    quote, out, i, n = text[start], [], start + 1, len(text)
    while i < n:
        ch = text[i]
        if ch == "\\" and i + 1 < n and text[i + 1] in (quote, "\\"):
            out.append(text[i + 1])
            i += 2
        elif ch == quote and i + 1 < n and text[i + 1] == quote:
            out.append(quote)
            i += 2
        elif ch == quote:
            return "".join(out), i + 1
        else:
            out.append(ch)
            i += 1
    _fail(text, _Token("string", quote, start), "unterminated", quote=quote)


class _Parser:
    """Recursive descent over the tokens of one filter or order_by item."""

    def __init__(self, text: str, what: str, attributes: Attributes = RUN_ATTRIBUTES) -> None:
        if len(text) > MAX_FILTER_LENGTH:
            raise InvalidArgument(
                f"the {what} is {len(text)} characters long, over the limit of "
                f"{MAX_FILTER_LENGTH}; shorten it or split the search in two"
            )
        self.text = text
        self.attributes = attributes
        self.tokens = _tokenize(text)
        self.index = self.depth = self.count = 0

    def peek(self) -> _Token:
        return self.tokens[self.index]

    def advance(self) -> _Token:
        token = self.tokens[self.index]
        if token.kind != "end":
            self.index += 1
        return token

    def fail(self, token: _Token, message: str, **fields: object) -> NoReturn:
        _fail(self.text, token, message, **fields)

    def enter(self, token: _Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.fail(token, "depth")
        self.advance()

    def parse_filter(self) -> Expr | None:
        if self.peek().kind == "end":
            return None
        expr = self.parse_or()
        token = self.peek()
        if token.kind != "end":
            self.fail(token, "unmatched" if token.kind == ")" else "junction")
        return expr

    def parse_or(self) -> Expr:
        clauses = [self.parse_and()]
        while _is_word(self.peek(), "or"):
            self.advance()
            clauses.append(self.parse_and())
        return _join(Or, clauses)

    def parse_and(self) -> Expr:
        clauses = [self.parse_not()]
        while _is_word(self.peek(), "and"):
            self.advance()
            clauses.append(self.parse_not())
        return _join(And, clauses)

    def parse_not(self) -> Expr:
        token = self.peek()
        if _is_word(token, "not"):
            self.enter(token)
            expr: Expr = Not(self.parse_not())
        elif token.kind == "(":
            self.enter(token)
            expr = self.parse_or()
            if (close := self.advance()).kind != ")":
                self.fail(close, "close", opened=token.pos)
        else:
            return self.parse_comparison()
        self.depth -= 1
        return expr

    def parse_comparison(self) -> Comparison:
        self.count += 1
        if self.count > MAX_COMPARISONS:
            self.fail(self.peek(), "count")
        key = self.parse_key("comparison")
        op_token = self.peek()
        op = self.parse_operator(key)
        numeric = self.numeric(key)
        if op not in _NULL_OPS and numeric and op not in _NUMERIC_OPS:
            self.fail(op_token, "numeric_op", name=key.name, op=op, sample=self.sample(key))
        if op not in _NULL_OPS and not numeric and op not in _STRING_OPS:
            self.fail(op_token, "string_op", name=key.name, op=op)
        value: float | str | tuple[str, ...] | None = None
        if op in ("IN", "NOT IN"):
            value = self.parse_list(key, op)
        elif op not in _NULL_OPS:
            token = self.advance()
            value = self.number(token, key, op) if numeric else self.string(token, key, op)
        return Comparison(key.kind, key.key, op, value)

    def parse_key(self, expected: str) -> _Key:
        token = self.advance()
        word = token.text
        if token.kind != "word" or word.lower() in _KEYWORDS or _NUMBER.fullmatch(word):
            self.fail(token, expected)
        prefix, dot, rest = word.partition(".")
        if not dot:
            if prefix.lower() in _PREFIXES:
                self.fail(token, "dot", word=word)
            return _Key("attribute", self.attribute(token, word), word)
        kind = _PREFIXES.get(prefix.lower())
        if kind is None:
            self.fail(token, "prefix", prefix=prefix, word=word)
        name, key = word, rest
        if not rest:
            quoted = self.peek()
            if quoted.kind != "string" or quoted.quote == "'":
                self.fail(quoted, "quoted_key", word=word)
            self.advance()
            name, key = word + quoted.text, quoted.value
            if not key:
                self.fail(quoted, "empty_key", word=word)
        elif "+" in rest:
            plus = token._replace(pos=token.pos + word.index("+"))
            self.fail(plus, "plain_key", prefix=prefix, key=rest)
        if kind == "attribute":
            key = self.attribute(token, key)
        return _Key(kind, key, name)

    def attribute(self, token: _Token, name: str) -> str:
        canonical = self.attributes.names.get(name.lower())
        if canonical is None:
            self.fail(token, "attribute", name=name, hint=self.attributes.hint)
        return canonical

    def parse_operator(self, key: _Key) -> str:
        token = self.advance()
        if token.kind == "op":
            return token.text
        if _is_word(token, "like", "ilike", "in"):
            return token.text.upper()
        if _is_word(token, "not"):
            after = self.advance()
            if _is_word(after, "in"):
                return "NOT IN"
            if _is_word(after, "like", "ilike"):
                self.fail(token, "not_like", op=after.text.upper(), name=key.name)
            self.fail(after, "not_in")
        if _is_word(token, "is"):
            after = self.advance()
            negated = _is_word(after, "not")
            if negated:
                after = self.advance()
            if _is_word(after, "null"):
                return "IS NOT NULL" if negated else "IS NULL"
            self.fail(after, "is_not" if negated else "is")
        self.fail(token, "operator", name=key.name)

    def parse_list(self, key: _Key, op: str) -> tuple[str, ...]:
        opening = self.advance()
        if opening.kind != "(":
            self.fail(opening, "open_list", op=op, name=key.name)
        values = [self.string(self.advance(), key, op)]
        while (token := self.advance()).kind != ")":
            if token.kind != ",":
                self.fail(token, "list", op=op, name=key.name)
            values.append(self.string(self.advance(), key, op))
        return tuple(values)

    def number(self, token: _Token, key: _Key, op: str) -> float:
        if token.kind == "word" and _NUMBER.fullmatch(token.text):
            value = float(token.text)
            if key.kind == "attribute" and not isfinite(value):
                self.fail(token, "finite", name=key.name, sample=self.sample(key))
            return value
        if token.kind == "string" and token.quote != "`":
            self.fail(token, "wants_number", name=key.name, op=op, sample=self.sample(key))
        self.bad_value(token, key, op)

    def string(self, token: _Token, key: _Key, op: str) -> str:
        if token.kind == "string" and token.quote != "`":
            value = token.value
            choices = self.attributes.choices.get(key.key) if key.kind == "attribute" else None
            if choices is not None and op not in ("LIKE", "ILIKE"):
                found = [c for c in choices if c.lower() == value.lower()]
                if not found:
                    self.fail(
                        token,
                        "choice",
                        attr=key.key,
                        value=token.value,
                        choices=", ".join(choices),
                        example=choices[0],
                    )
                value = found[0]
            return value
        if token.kind == "word" and _NUMBER.fullmatch(token.text):
            quoted = f"('{token.text}')" if op in ("IN", "NOT IN") else f"'{token.text}'"
            self.fail(token, "wants_string", name=key.name, op=op, quoted=quoted)
        self.bad_value(token, key, op)

    def bad_value(self, token: _Token, key: _Key, op: str) -> NoReturn:
        if _is_word(token, "null"):
            self.fail(token, "null", name=key.name)
        self.fail(token, "backtick" if token.kind == "string" else "value", op=op)

    def numeric(self, key: _Key) -> bool:
        return key.kind == "metric" or (
            key.kind == "attribute" and key.key in self.attributes.numeric
        )

    def sample(self, key: _Key) -> str:
        return self.attributes.sample if key.kind == "attribute" else "0.8"

    def parse_order_key(self) -> OrderKey:
        if self.peek().kind == "end":
            self.fail(self.peek(), "empty_order")
        key = self.parse_key("key")
        token = self.advance()
        descending = _is_word(token, "desc")
        if descending or _is_word(token, "asc"):
            token = self.advance()
        if token.kind != "end":
            self.fail(token, "direction", name=key.name)
        return OrderKey(key.kind, key.key, descending)


def _is_word(token: _Token, *words: str) -> bool:
    return token.kind == "word" and token.text.lower() in words


def _join(cls: type[And] | type[Or], clauses: list[Expr]) -> Expr:
    if len(clauses) == 1:
        return clauses[0]
    flat: list[Expr] = []
    for clause in clauses:
        if isinstance(clause, cls):
            flat.extend(clause.clauses)
        else:
            flat.append(clause)
    return cls(tuple(flat))


def parse_filter(text: str | None, attributes: Attributes = RUN_ATTRIBUTES) -> Expr | None:
    """The tree of a search filter; None when ``text`` is None, empty or blank (match all).

    ``attributes`` names the bare keys the search accepts (by default a run's).
    """
    if text is None:
        return None
    if not isinstance(text, str):
        raise InvalidArgument(f"a filter must be a string, got {type(text).__name__}")
    return _Parser(text, "filter", attributes).parse_filter()


def parse_order_by(items: Sequence[str] | None) -> tuple[OrderKey, ...]:
    """The sort keys of ``items`` such as ``["metrics.auc DESC", "start_time"]``."""
    if items is None:
        return ()
    if isinstance(items, str):
        raise InvalidArgument(f"order_by must be a list of strings, as in [{items!r}]")
    items = list(items)
    if len(items) > MAX_ORDER_KEYS:
        raise InvalidArgument(
            f"order_by has {len(items)} keys, over the limit of {MAX_ORDER_KEYS}; keep the "
            "ones that matter, as in ['metrics.auc DESC', 'start_time']"
        )
    keys: list[OrderKey] = []
    for item in items:
        if not isinstance(item, str):
            raise InvalidArgument(
                f"order_by items must be strings such as 'metrics.auc DESC', "
                f"got {type(item).__name__}"
            )
        keys.append(_Parser(item, "order_by item").parse_order_key())
    return tuple(keys)


def comparisons(expr: Expr | None) -> Iterator[Comparison]:
    """Every comparison in ``expr``, left to right."""
    stack: list[Expr] = [] if expr is None else [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, Comparison):
            yield node
        elif isinstance(node, Not):
            stack.append(node.clause)
        else:
            stack.extend(reversed(node.clauses))
