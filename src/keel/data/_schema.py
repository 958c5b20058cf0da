"""A table's schema: the expectations file that ``keel data validate`` checks data against.

A schema is plain data (``to_dict``/``from_dict``) with an editable YAML form: inferred
from a profile as a starting point, then tightened or loosened by hand. Unknown keys and
types are rejected with the file, the column and the allowed spellings, because a typo
in an expectations file must never silently switch a check off.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidArgument

if TYPE_CHECKING:
    from keel.data._profile import TableProfile

__all__ = ["FORMATS", "LOGICAL_TYPES", "ColumnSchema", "Schema", "infer_schema"]

LOGICAL_TYPES = ("int", "float", "bool", "category", "string", "datetime")
FORMATS = ("csv", "parquet", "jsonl")
SCHEMA_VERSION = 1
MAX_CATEGORIES = 50
_NUMERIC = ("int", "float", "datetime")

_TOP_KEYS = ("version", "format", "rows", "max_size_bytes", "allow_extra_columns", "columns")
_ROW_KEYS = ("min", "max")
_COLUMN_KEYS = (
    "type",
    "nullable",
    "max_null_fraction",
    "min",
    "max",
    "categories",
    "unique",
    "regex",
    "required",
)

Scalar = int | float | str | bool


@dataclass(frozen=True)
class ColumnSchema:
    """What one column must look like. ``None`` means "not checked"."""

    name: str
    type: str
    nullable: bool = True
    max_null_fraction: float | None = None
    min: Scalar | None = None
    max: Scalar | None = None
    categories: tuple[Scalar, ...] | None = None
    unique: bool = False
    regex: str | None = None
    required: bool = True

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "nullable": self.nullable}
        if self.max_null_fraction is not None:
            out["max_null_fraction"] = self.max_null_fraction
        if self.min is not None:
            out["min"] = self.min
        if self.max is not None:
            out["max"] = self.max
        if self.categories is not None:
            out["categories"] = list(self.categories)
        if self.unique:
            out["unique"] = True
        if self.regex is not None:
            out["regex"] = self.regex
        if not self.required:
            out["required"] = False
        return out


@dataclass(frozen=True)
class Schema:
    """A table's expected columns, row count, file format and size."""

    columns: tuple[ColumnSchema, ...]
    format: str | None = None
    min_rows: int | None = None
    max_rows: int | None = None
    max_size_bytes: int | None = None
    allow_extra_columns: bool = False
    notes: Mapping[str, str] = field(default_factory=dict, compare=False)

    def column(self, name: str) -> ColumnSchema | None:
        return next((c for c in self.columns if c.name == name), None)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def with_notes(self, notes: Mapping[str, str]) -> Schema:
        """The same schema with a comment per column for the YAML form."""
        return replace(self, notes=dict(notes))

    def to_dict(self) -> dict[str, Any]:
        rows = {k: v for k, v in (("min", self.min_rows), ("max", self.max_rows)) if v is not None}
        out: dict[str, Any] = {"version": SCHEMA_VERSION}
        if self.format is not None:
            out["format"] = self.format
        if rows:
            out["rows"] = rows
        if self.max_size_bytes is not None:
            out["max_size_bytes"] = self.max_size_bytes
        out["allow_extra_columns"] = self.allow_extra_columns
        out["columns"] = {c.name: c.to_dict() for c in self.columns}
        return out

    @classmethod
    def from_dict(cls, data: object, *, source: str = "schema") -> Schema:
        """Parse and check a schema; errors name ``source``, the column and the fix."""
        top = _mapping(data, source, "the schema")
        _known_keys(top, _TOP_KEYS, source, "the schema")
        version = top.get("version", SCHEMA_VERSION)
        if version != SCHEMA_VERSION:
            raise InvalidArgument(
                f"{source}: schema version {version!r} is not supported; use version: 1"
            )
        fmt = top.get("format")
        if fmt is not None and fmt not in FORMATS:
            raise InvalidArgument(
                f"{source}: unknown format {fmt!r}; use one of {', '.join(FORMATS)}"
            )
        rows = _mapping(top.get("rows") or {}, source, "'rows'")
        _known_keys(rows, _ROW_KEYS, source, "'rows'")
        columns_raw = _mapping(top.get("columns") or {}, source, "'columns'")
        columns = tuple(
            _parse_column(str(name), spec, source) for name, spec in columns_raw.items()
        )
        return cls(
            columns=columns,
            format=fmt,
            min_rows=_count(rows.get("min"), source, "rows.min"),
            max_rows=_count(rows.get("max"), source, "rows.max"),
            max_size_bytes=_count(top.get("max_size_bytes"), source, "max_size_bytes"),
            allow_extra_columns=_flag(
                top.get("allow_extra_columns", False), source, "allow_extra_columns"
            ),
        )

    def to_yaml(self) -> str:
        """The editable expectations file, with a comment per column when known."""
        import yaml

        def dump(value: Any) -> str:
            return yaml.safe_dump(value, sort_keys=False, allow_unicode=True, width=100)

        data = self.to_dict()
        columns = data.pop("columns")
        lines = [
            "# Keel schema: what this table is expected to look like. Edit it freely, then",
            "# check data against it with `keel data validate DATA --schema schema.yaml`.",
            f"# Column types: {', '.join(LOGICAL_TYPES)}.",
            f"# Column keys: {', '.join(_COLUMN_KEYS)}.",
            "# Inferred ranges and categories are what was observed; widen them if needed.",
            dump(data).rstrip("\n"),
        ]
        if not columns:
            lines.append("columns: {}")
        else:
            lines.append("columns:")
            for name, spec in columns.items():
                note = self.notes.get(name)
                if note:
                    lines.append("  # " + " ".join(note.split()))
                body = dump({name: spec}).rstrip("\n")
                lines.extend("  " + line for line in body.splitlines())
        return "\n".join(lines) + "\n"

    @classmethod
    def from_yaml(cls, source: str | Path) -> Schema:
        """Read a schema from a YAML file (a ``Path``) or from YAML text (a ``str``)."""
        import yaml

        if isinstance(source, Path):
            try:
                text = source.read_text(encoding="utf-8")
            except FileNotFoundError:
                raise InvalidArgument(
                    f"no schema file {str(source)!r}; create one with "
                    "`keel data schema infer DATA > schema.yaml`"
                ) from None
            except (OSError, UnicodeDecodeError) as exc:
                raise InvalidArgument(f"cannot read schema file {str(source)!r}: {exc}") from exc
            label = str(source)
        else:
            text, label = source, "schema"
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidArgument(f"{label} is not valid YAML: {exc}; fix the syntax") from exc
        return cls.from_dict(data if data is not None else {}, source=label)


def _mapping(value: object, source: str, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidArgument(
            f"{source}: {what} must be a mapping of keys to values, not {type(value).__name__}"
        )
    return value


def _known_keys(data: Mapping[str, Any], allowed: Sequence[str], source: str, what: str) -> None:
    unknown = [str(k) for k in data if k not in allowed]
    if unknown:
        raise InvalidArgument(
            f"{source}: unknown key {unknown[0]!r} in {what}; allowed keys: {', '.join(allowed)}"
        )


def _count(value: object, source: str, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidArgument(f"{source}: {what} must be a non-negative integer, not {value!r}")
    return value


def _flag(value: object, source: str, what: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidArgument(f"{source}: {what} must be true or false, not {value!r}")
    return value


def _bound(value: object, kind: str, source: str, where: str) -> Scalar | None:
    if value is None:
        return None
    if kind == "datetime":
        import datetime as dt

        if isinstance(value, dt.date):
            return value.isoformat()
        if isinstance(value, str):
            try:
                dt.datetime.fromisoformat(value)
            except ValueError:
                pass
            else:
                return value
        raise InvalidArgument(f"{source}: {where} must be an ISO date-time, not {value!r}")
    if kind in ("int", "float"):
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            raise InvalidArgument(f"{source}: {where} must be a number, not {value!r}")
        return value
    raise InvalidArgument(
        f"{source}: {where} applies to int, float and datetime columns, not {kind}; remove it"
    )


def _parse_column(name: str, spec: object, source: str) -> ColumnSchema:
    where = f"column {name!r}"
    data = _mapping(spec, source, where)
    _known_keys(data, _COLUMN_KEYS, source, where)
    kind = data.get("type")
    if kind not in LOGICAL_TYPES:
        raise InvalidArgument(
            f"{source}: {where} has unknown type {kind!r}; use one of {', '.join(LOGICAL_TYPES)}"
        )
    fraction = data.get("max_null_fraction")
    if fraction is not None and (
        isinstance(fraction, bool)
        or not isinstance(fraction, int | float)
        or not 0 <= fraction <= 1
    ):
        raise InvalidArgument(
            f"{source}: {where} max_null_fraction must be a number from 0 to 1, not {fraction!r}"
        )
    categories = data.get("categories")
    if categories is not None:
        if not isinstance(categories, list) or not categories:
            raise InvalidArgument(
                f"{source}: {where} categories must be a non-empty list, e.g. [a, b]"
            )
        categories = tuple(categories)
    regex = data.get("regex")
    if regex is not None:
        if not isinstance(regex, str):
            raise InvalidArgument(f"{source}: {where} regex must be a string, not {regex!r}")
        try:
            re.compile(regex)
        except re.error as exc:
            raise InvalidArgument(
                f"{source}: {where} regex {regex!r} does not compile ({exc}); fix the pattern"
            ) from exc
    return ColumnSchema(
        name=name,
        type=kind,
        nullable=_flag(data.get("nullable", True), source, f"{where} nullable"),
        max_null_fraction=None if fraction is None else float(fraction),
        min=_bound(data.get("min"), kind, source, f"{where} min"),
        max=_bound(data.get("max"), kind, source, f"{where} max"),
        categories=categories,
        unique=_flag(data.get("unique", False), source, f"{where} unique"),
        regex=regex,
        required=_flag(data.get("required", True), source, f"{where} required"),
    )


def infer_schema(profile: TableProfile) -> Schema:
    """An editable starting schema: types, nullability, observed ranges, and categories
    for string columns with at most 50 distinct values that repeat (distinct <= half
    the values)."""
    import datetime as dt

    columns: list[ColumnSchema] = []
    notes: dict[str, str] = {}
    for name, c in profile.columns.items():
        kind = c.kind if c.kind != "null" else "string"
        categories: tuple[Any, ...] | None = None
        if (
            c.kind == "string"
            and c.value_counts is not None
            and 0 < c.distinct <= MAX_CATEGORIES
            and c.distinct <= c.count / 2
        ):
            kind = "category"
            categories = tuple(sorted(c.value_counts, key=str))
        low: Any = c.min
        high: Any = c.max
        if kind == "int" and low is not None and high is not None:
            low, high = int(low), int(high)
        elif kind == "datetime" and low is not None and high is not None:
            low = dt.datetime.fromtimestamp(low, dt.UTC).isoformat()
            high = dt.datetime.fromtimestamp(high, dt.UTC).isoformat()
        columns.append(
            ColumnSchema(
                name,
                kind,
                nullable=c.nulls > 0,
                min=low if kind in _NUMERIC else None,
                max=high if kind in _NUMERIC else None,
                categories=categories,
            )
        )
        share = c.nulls / c.rows if c.rows else 0.0
        notes[name] = f"observed: {share:.1%} null, {c.distinct} distinct" + (
            "" if c.value_counts is not None else " (estimated)"
        )
        if c.rows and c.nulls == c.rows:
            notes[name] = "every value was null: set the type you expect"
    return Schema(
        tuple(columns), format=profile.format, min_rows=1 if profile.rows else None
    ).with_notes(notes)
