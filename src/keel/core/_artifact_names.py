"""Validation of logical artifact names such as ``plots/roc.png`` or ``model/model.skops``.

A logical name is a label that the metadata store maps to a content digest; it never
becomes a filesystem path on the server. It may, however, be materialised under a
directory the user chooses (downloading a run's artifacts), so the rules below make
sure that joining an accepted name under any root directory stays inside that root,
on POSIX and on Windows, even after a later layer percent-decodes or
Unicode-normalises it.
"""

from __future__ import annotations

import html
import re
import unicodedata
from typing import NoReturn
from urllib.parse import unquote

from keel.errors import InvalidArgument

__all__ = ["MAX_ARTIFACT_NAME_LENGTH", "MAX_ARTIFACT_SEGMENT_BYTES", "validate_artifact_name"]

MAX_ARTIFACT_NAME_LENGTH = 1024
MAX_ARTIFACT_SEGMENT_BYTES = 255

# Unicode categories refused anywhere in a name: controls (C0, DEL, C1), invisible
# format characters (zero-width spaces, bidi overrides), surrogates, line/paragraph
# separators.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_ASCII_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE_RE = re.compile(r"^[A-Za-z]:")
_PERCENT_RE = re.compile(r"%[0-9A-Fa-f]{2}")
_IIS_UNICODE_RE = re.compile(r"%[uU]([0-9A-Fa-f]{4})")
_MAX_DECODE_ROUNDS = 8
_FIX = "use a relative POSIX name such as 'plots/roc.png'"


def validate_artifact_name(name: object) -> str:
    """Check a logical artifact name and return its canonical (NFC-normalised) form.

    A name is one or more segments joined by ``/``. It is refused if it:

    - is not a ``str``, is empty, is longer than 1024 characters, or has a segment
      longer than 255 UTF-8 bytes (the usual filesystem limit);
    - is absolute (``/etc/passwd``, ``C:\\x``, ``C:x``, ``\\\\server\\share``) or
      contains a backslash;
    - has an empty segment (``a//b``, a trailing ``/``), a ``.`` or ``..`` segment, or
      a segment ending in ``.`` (Windows drops trailing dots, so ``...`` would be ``..``);
    - contains control or invisible format characters (NUL, C0/C1 controls, DEL,
      zero-width and bidi formatting characters, surrogates, line separators);
    - has a segment with leading or trailing whitespace;
    - starts with ``-`` (it could be read as a command-line option) or its first
      segment starts with ``~`` (a shell would expand it to a home directory);
    - breaks any rule above once decoded: percent-escapes (repeatedly, so
      ``%252e`` counts as ``.``), IIS ``%uXXXX`` escapes and HTML character
      references are decoded, and the result is NFKC-normalised so that look-alikes
      such as fullwidth dots ``．．`` or ``／`` count as ``..`` and ``/``. Escapes that
      do not decode to valid UTF-8 (overlong ``%c0%ae``) are refused outright.

    The decoded form is used for checking only; the name kept is the NFC form of
    what was given.
    """
    if not isinstance(name, str):
        raise InvalidArgument(
            f"artifact name must be a string, got {type(name).__name__}; "
            f"pass the name as text, for example 'plots/roc.png'"
        )
    if not name:
        raise InvalidArgument(f"artifact name is empty; {_FIX}")
    if len(name) > 4 * MAX_ARTIFACT_NAME_LENGTH:  # bail out before normalising huge input
        _refuse(name, _too_long(len(name)))
    canonical = unicodedata.normalize("NFC", name)
    if len(canonical) > MAX_ARTIFACT_NAME_LENGTH:
        _refuse(name, _too_long(len(canonical)))
    problem = _problem(canonical)
    if problem is not None:
        _refuse(name, problem)
    decoded = _decoded(name)
    problem = None if decoded == canonical else _problem(decoded)
    if problem is not None:
        _refuse(name, f"once decoded it reads {_shown(decoded)}, which {problem}")
    return canonical


def _problem(text: str) -> str | None:
    """What makes ``text`` unacceptable as a name, or ``None`` if nothing does."""
    char = _refused_char(text)
    if char is not None:
        return f"contains the control or invisible character U+{ord(char):04X}; remove it"
    if text.startswith(("/", "\\")) or _DRIVE_RE.match(text):
        return f"is absolute (starts with '/', '\\' or a drive such as 'C:'); {_FIX}"
    if "\\" in text:
        return "contains a backslash; separate segments with '/'"
    if text.startswith("-"):
        return "starts with '-', which tools read as an option; rename it"
    segments = text.split("/")
    if segments[0].startswith("~"):
        return "starts with '~', which shells expand to a home directory; rename it"
    for segment in segments:
        if not segment:
            return "has an empty segment ('//' or a trailing '/'); remove the extra '/'"
        if segment.strip(".") == "":
            return f"has the segment {segment!r}; '.' and '..' segments are not allowed"
        if segment.endswith("."):
            return f"has the segment {segment!r} ending in '.', which Windows drops; rename it"
        if segment[0].isspace() or segment[-1].isspace():
            return f"has the segment {segment!r} with leading or trailing whitespace; trim it"
        if len(segment.encode("utf-8")) > MAX_ARTIFACT_SEGMENT_BYTES:
            return (
                f"has a segment of {len(segment.encode('utf-8'))} UTF-8 bytes; "
                f"keep each segment within {MAX_ARTIFACT_SEGMENT_BYTES}"
            )
    return None


def _refused_char(text: str) -> str | None:
    """The first control or invisible character in ``text``, if any."""
    if text.isascii():
        match = _ASCII_CONTROL_RE.search(text)
        return match.group() if match else None
    for char in text:
        if unicodedata.category(char) in _REFUSED_CATEGORIES:
            return char
    return None


def _decoded(name: str) -> str:
    """``name`` with every layer of escaping removed and NFKC applied, for checking."""
    if name.isascii() and "%" not in name and "&" not in name:
        return name
    text = name
    for _ in range(_MAX_DECODE_ROUNDS):
        previous = text
        text = unicodedata.normalize("NFKC", text)
        text = _IIS_UNICODE_RE.sub(lambda m: chr(int(m.group(1), 16)), text)
        if _PERCENT_RE.search(text):
            try:
                text = unquote(text, errors="strict")
            except UnicodeDecodeError:
                _refuse(name, "has percent-escapes that are not valid UTF-8; remove them")
        text = html.unescape(text)
        if text == previous:
            return text
    _refuse(name, f"is encoded more than {_MAX_DECODE_ROUNDS} times over; use the plain name")


def _too_long(length: int) -> str:
    return f"is {length} characters long; the limit is {MAX_ARTIFACT_NAME_LENGTH}"


def _shown(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:77] + "...")


def _refuse(name: str, problem: str) -> NoReturn:
    raise InvalidArgument(f"invalid artifact name {_shown(name)}: {problem}", name=name[:200])
