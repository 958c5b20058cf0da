"""Logical artifact names: what is accepted, what is refused, and why it is safe to join."""

from __future__ import annotations

import posixpath
import unicodedata
from pathlib import PurePosixPath, PureWindowsPath

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keel.core._artifact_names import (
    MAX_ARTIFACT_NAME_LENGTH,
    MAX_ARTIFACT_SEGMENT_BYTES,
    validate_artifact_name,
)
from keel.errors import InvalidArgument


def _encoded(text: str, times: int) -> str:
    """``text`` with every character percent-encoded, then the '%' re-encoded ``times - 1``."""
    result = "".join(f"%{byte:02x}" for byte in text.encode())
    for _ in range(times - 1):
        result = result.replace("%", "%25")
    return result


_EXACTLY_1024 = "/".join(["y" * 255] * 3 + ["y" * 254, "z"])
assert len(_EXACTLY_1024) == MAX_ARTIFACT_NAME_LENGTH

GOOD = [
    ("plots/roc.png", "plots/roc.png"),
    ("model/model.skops", "model/model.skops"),
    ("a", "a"),
    (".hidden", ".hidden"),
    ("a/.config/b", "a/.config/b"),
    ("..a/b..c", "..a/b..c"),
    ("reports/file name with spaces.txt", "reports/file name with spaces.txt"),
    ("re\u0301sume\u0301.txt", "résumé.txt"),  # decomposed input comes back NFC
    ("数据/图.png", "数据/图.png"),
    ("🚀/launch.json", "🚀/launch.json"),
    ("100%.txt", "100%.txt"),
    ("a%zz", "a%zz"),
    ("a%2fb", "a%2fb"),  # an encoded separator alone stays one harmless segment
    ("R&D/report.pdf", "R&D/report.pdf"),
    ("a/~b", "a/~b"),
    ("a/-b", "a/-b"),
    ("ab:c", "ab:c"),
    ("x" * MAX_ARTIFACT_SEGMENT_BYTES, "x" * MAX_ARTIFACT_SEGMENT_BYTES),
    (_EXACTLY_1024, _EXACTLY_1024),
]

BAD = [
    # not text, empty, too long
    (123, "must be a string"),
    (None, "must be a string"),
    (b"plots/roc.png", "must be a string"),
    ("", "empty"),
    ("a" * (MAX_ARTIFACT_NAME_LENGTH + 1), "1025 characters"),
    ("a" * 10_000, "characters long"),
    ("x" * (MAX_ARTIFACT_SEGMENT_BYTES + 1), "UTF-8 bytes"),
    ("é" * 128, "256 UTF-8 bytes"),
    # absolute
    ("/etc/passwd", "absolute"),
    ("C:\\x", "absolute"),
    ("C:x", "absolute"),
    ("c:/windows/system32", "absolute"),
    ("\\\\server\\share", "absolute"),
    ("//server/share", "absolute"),
    ("\\x", "absolute"),
    ("a\\b", "backslash"),
    ("a/b\\..\\..\\c", "backslash"),
    # dot segments and empty segments
    ("..", "'..'"),
    (".", "'.'"),
    ("../x", "'..'"),
    ("a/../b", "'..'"),
    ("a/..", "'..'"),
    ("./a", "'.'"),
    ("a/./b", "'.'"),
    ("...", "'...'"),
    ("a/....", "'....'"),
    ("a/b.", "ending in '.'"),
    ("a//b", "empty segment"),
    ("a/", "empty segment"),
    ("/", "absolute"),
    # control and invisible characters
    ("a\x00b", "U+0000"),
    ("a\nb", "U+000A"),
    ("a/b\t", "U+0009"),
    ("\x7f", "U+007F"),
    ("a\x85b", "U+0085"),
    ("a\u200bb", "U+200B"),
    ("evil\u202egnp.exe", "U+202E"),
    ("a\u2028b", "U+2028"),
    ("a\ud800b", "U+D800"),
    # whitespace, home directories, options
    (" a", "whitespace"),
    ("a ", "whitespace"),
    ("a/ b/c", "whitespace"),
    ("a\u00a0/b", "whitespace"),
    ("a/b\u3000", "whitespace"),
    ("~", "'~'"),
    ("~/x", "'~'"),
    ("~root/.ssh/id_rsa", "'~'"),
    ("-rf", "'-'"),
    ("-", "'-'"),
    # percent-encoded traversal, once or many times over
    ("%2e%2e/x", "once decoded"),
    ("%2E%2E/x", "once decoded"),
    ("..%2fx", "once decoded"),
    ("..%2Fetc%2Fpasswd", "once decoded"),
    ("a/%2e%2e", "once decoded"),
    ("%2e", "once decoded"),
    ("%252e", "once decoded"),
    ("%252e%252e/x", "once decoded"),
    (_encoded("../x", 3), "once decoded"),
    (_encoded("..", 12), "encoded more than"),
    ("%2fetc/passwd", "once decoded"),
    ("..%5cx", "once decoded"),
    ("a%00b", "once decoded"),
    ("a%2f%2fb", "once decoded"),
    ("%20a", "once decoded"),
    ("%7e/x", "once decoded"),
    ("%2drf", "once decoded"),
    ("%c0%ae%c0%ae/x", "not valid UTF-8"),
    ("%u002e%u002e/x", "once decoded"),
    ("%U002E%U002E/x", "once decoded"),
    ("&#46;&#46;/x", "once decoded"),
    ("&period;&period;/x", "once decoded"),
    ("&#x2e;&#x2E;&sol;x", "once decoded"),
    # Unicode compatibility look-alikes
    ("．．/x", "once decoded"),
    ("a/．．", "once decoded"),
    ("．．／x", "once decoded"),
    ("／etc/passwd", "once decoded"),
    ("a＼b", "once decoded"),
    ("‥/x", "once decoded"),
    ("a/\ufe52\ufe52", "once decoded"),
    ("％２ｅ％２ｅ/x", "once decoded"),
    ("Ｃ:x", "once decoded"),
]


@pytest.mark.parametrize(("name", "canonical"), GOOD)
def test_accepts_and_canonicalises(name: str, canonical: str) -> None:
    assert validate_artifact_name(name) == canonical


@pytest.mark.parametrize(("name", "fragment"), BAD)
def test_refuses_with_reason(name: object, fragment: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        validate_artifact_name(name)
    message = info.value.message
    assert fragment in message
    if isinstance(name, str) and name:
        assert message.startswith("invalid artifact name")
    assert info.value.code == "INVALID_ARGUMENT"


def test_message_says_how_to_fix() -> None:
    with pytest.raises(InvalidArgument, match=r"relative POSIX name such as 'plots/roc\.png'"):
        validate_artifact_name("/etc/passwd")


def test_long_names_are_shortened_in_the_message() -> None:
    with pytest.raises(InvalidArgument) as info:
        validate_artifact_name("a" * 5000)
    assert len(info.value.message) < 300


_PIECES = st.sampled_from(
    [".", "..", "/", "\\", "%2e", "%2f", "%25", "．", "／", "~", "-", " ", "\x00", "&#46;", "C:"]
)
_NAMES = st.lists(st.one_of(_PIECES, st.text(min_size=1, max_size=8)), min_size=1, max_size=12).map(
    "".join
)


@settings(max_examples=500, deadline=None)
@given(_NAMES)
def test_accepted_names_stay_inside_any_root(name: str) -> None:
    try:
        canonical = validate_artifact_name(name)
    except InvalidArgument:
        return
    assert canonical == unicodedata.normalize("NFC", canonical)
    assert validate_artifact_name(canonical) == canonical
    root = PurePosixPath("/srv/keel/root")
    joined = root / canonical
    assert ".." not in joined.parts
    assert PurePosixPath(posixpath.normpath(joined)).is_relative_to(root)
    assert joined.is_relative_to(root)
    assert joined != root
    windows_root = PureWindowsPath("C:/keel/root")
    windows_joined = windows_root / canonical
    assert ".." not in windows_joined.parts
    assert windows_joined.is_relative_to(windows_root)
    assert windows_joined != windows_root


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=6), min_size=1, max_size=4))
def test_encoding_a_dot_segment_never_sneaks_it_in(segments: list[str]) -> None:
    for encoded in (_encoded("..", 1), _encoded("..", 2), "．．", "%u002e%u002e"):
        name = "/".join([*segments, encoded, "x"])
        with pytest.raises(InvalidArgument):
            validate_artifact_name(name)
