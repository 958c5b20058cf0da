"""The data domain as plain values: datasets, their immutable versions, references."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from keel.errors import InvalidArgument

_DATASET_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
_TAG_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]{0,63}$")


def validate_dataset_name(name: object) -> str:
    """A dataset name: 1-128 of letters, digits, ``_ . -``, starting with a letter or digit."""
    if not isinstance(name, str) or not _DATASET_NAME_RE.match(name) or ".." in name:
        raise InvalidArgument(
            f"invalid dataset name {name!r}: use 1-128 letters, digits, '_', '.', '-' "
            "(no '/', no '..'), starting with a letter or digit, e.g. 'credit-train'"
        )
    return name


def validate_dataset_tag(tag: object) -> str:
    """A tag such as ``prod``: a letter, then up to 63 letters, digits, ``_ . -``."""
    if not isinstance(tag, str) or not _TAG_RE.match(tag) or re.fullmatch(r"v\d+", tag):
        raise InvalidArgument(
            f"invalid dataset tag {tag!r}: start with a letter, use letters, digits, "
            "'_', '.', '-' (and not the form 'v3', which names a version)"
        )
    return tag


@dataclass(frozen=True)
class DatasetRef:
    """``NAME``, ``NAME@v3``, ``NAME@3``, ``NAME@prod`` or ``NAME@latest`` parsed."""

    name: str
    version: int | None = None
    tag: str | None = None

    @classmethod
    def parse(cls, text: object) -> DatasetRef:
        if not isinstance(text, str) or not text:
            raise InvalidArgument(
                f"invalid dataset reference {text!r}; use NAME, NAME@v3 or NAME@TAG"
            )
        name, _, selector = text.partition("@")
        validate_dataset_name(name)
        if not selector or selector == "latest":
            return cls(name)
        match = re.fullmatch(r"v?(\d{1,9})", selector)
        if match:
            number = int(match.group(1))
            if number < 1:
                raise InvalidArgument(f"dataset versions start at v1, not {selector!r}")
            return cls(name, version=number)
        return cls(name, tag=validate_dataset_tag(selector))

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}@v{self.version}"
        if self.tag is not None:
            return f"{self.name}@{self.tag}"
        return self.name


@dataclass(frozen=True)
class ManifestEntry:
    """One file of a dataset version: its relative POSIX path, size and BLAKE3 digest."""

    path: str
    size: int
    digest: str


@dataclass(frozen=True)
class DatasetVersion:
    """An immutable version of a dataset: the digest of its manifest and what it holds.

    ``schema`` and ``profile`` are set for tabular content (CSV, Parquet, JSON Lines);
    ``parents`` names the versions this one was derived from (a split's source).
    """

    id: str
    name: str
    version: int
    digest: str
    manifest_digest: str
    file_count: int
    size: int
    created_at: float
    message: str = ""
    kind: str = "file"  # "file" or "directory"
    schema: Mapping[str, Any] | None = None
    profile: Mapping[str, Any] | None = None
    parents: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.name}@v{self.version}"
