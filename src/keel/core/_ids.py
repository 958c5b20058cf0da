"""Identifiers: random, URL-safe, fixed length."""

from __future__ import annotations

import re
import uuid

_ID_RE = re.compile(r"^[0-9a-f]{32}$")


def new_id() -> str:
    """A fresh 32-character lowercase hex identifier."""
    return uuid.uuid4().hex


def is_id(text: str) -> bool:
    """Whether ``text`` has the shape of a Keel identifier."""
    return bool(_ID_RE.match(text))
