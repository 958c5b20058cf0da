"""Validation of the names users give things: keys, experiment and run names, values."""

from __future__ import annotations

import math
import re

from keel.errors import InvalidArgument

MAX_KEY_LENGTH = 250
MAX_NAME_LENGTH = 256
MAX_PARAM_VALUE_LENGTH = 6000
MAX_TAG_VALUE_LENGTH = 8000

_KEY_RE = re.compile(r"^[A-Za-z0-9_\-. /:]+$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def validate_key(key: object, what: str = "key") -> str:
    """A param, metric or tag key: 1-250 of letters, digits, ``_ - . / : space``."""
    if not isinstance(key, str):
        raise InvalidArgument(
            f"{what} must be a string, got {type(key).__name__}; pass str({what})"
        )
    if not key or len(key) > MAX_KEY_LENGTH or not _KEY_RE.match(key):
        shown = key if len(key) <= 60 else key[:57] + "..."
        raise InvalidArgument(
            f"invalid {what} {shown!r}: use 1-{MAX_KEY_LENGTH} letters, digits, "
            "spaces or '_-./:' (for example 'val_loss' or 'layer.1/lr')"
        )
    if key != key.strip() or "//" in key or key.startswith("/") or key.endswith("/"):
        raise InvalidArgument(
            f"invalid {what} {key!r}: no leading or trailing space or '/', and no '//'"
        )
    return key


def validate_name(name: object, what: str) -> str:
    """An experiment, run or model name: 1-256 printable characters."""
    if not isinstance(name, str):
        raise InvalidArgument(f"{what} must be a string, got {type(name).__name__}")
    if not name.strip():
        raise InvalidArgument(f"{what} is empty; give it a short descriptive name")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidArgument(
            f"{what} is {len(name)} characters long; the limit is {MAX_NAME_LENGTH}"
        )
    if _CONTROL_RE.search(name):
        raise InvalidArgument(f"{what} {name!r} contains control characters; remove them")
    return name


MAX_DESCRIPTION_LENGTH = 5000
MAX_REASON_LENGTH = 2000


def validate_actor(actor: object) -> str | None:
    """Who made a change (an approver, an operator), or None when nobody is named."""
    if actor is None:
        return None
    if not isinstance(actor, str) or not actor.strip() or len(actor) > MAX_NAME_LENGTH:
        raise InvalidArgument(
            f"actor must be a non-empty name of at most {MAX_NAME_LENGTH} characters, "
            "such as 'ada@example.com'"
        )
    return actor.strip()


def validate_reason(reason: object) -> str | None:
    """Why a change was made, as recorded in a history; blank counts as no reason."""
    if reason is None:
        return None
    if not isinstance(reason, str):
        raise InvalidArgument(f"reason must be a string, got {type(reason).__name__}")
    return validate_text_value(reason.strip(), "reason", MAX_REASON_LENGTH) or None


def validate_text_value(value: object, what: str, limit: int) -> str:
    """A param or tag value, stored as text: anything ``str()`` renders within ``limit``."""
    text = value if isinstance(value, str) else str(value)
    if len(text) > limit:
        raise InvalidArgument(
            f"{what} is {len(text)} characters long; the limit is {limit}. "
            "Log large values as an artifact with log_dict() or log_text()"
        )
    if "\x00" in text:
        raise InvalidArgument(f"{what} contains a NUL character; remove it")
    return text


def _is_boolean(value: object) -> bool:
    return isinstance(value, bool) or type(value).__name__ in {"bool_", "bool"}


def validate_metric_value(key: str, value: object) -> float:
    """A metric value: a real number (NaN and infinities are kept as they are)."""
    if type(value) is float:
        return value
    if _is_boolean(value) or isinstance(value, (str, bytes)):
        raise InvalidArgument(
            f"metric {key!r} has value {value!r} of type {type(value).__name__}; "
            "metrics must be numbers (log flags and text with set_tag or log_param)"
        )
    try:
        return float(value)  # type: ignore[arg-type]  # ints, numpy scalars and the like
    except (TypeError, ValueError):
        raise InvalidArgument(
            f"metric {key!r} has value {value!r} of type {type(value).__name__}; "
            "metrics must be numbers (log text with set_tag or log_param)"
        ) from None


def validate_step(key: str, step: object) -> int:
    """A metric step: a non-negative integer below 2**63."""
    if _is_boolean(step):
        raise InvalidArgument(f"metric {key!r} has step {step!r}; steps are integers, not booleans")
    if not isinstance(step, int):
        try:
            import operator

            step = operator.index(step)  # type: ignore[arg-type]  # numpy integers
        except TypeError:
            raise InvalidArgument(
                f"metric {key!r} has step {step!r}; steps are non-negative integers"
            ) from None
    if step < 0 or step >= 2**63:
        raise InvalidArgument(
            f"metric {key!r} has step {step}; steps are integers from 0 to 2**63-1"
        )
    return step


def is_finite(value: float) -> bool:
    """Whether ``value`` is neither NaN nor infinite."""
    return math.isfinite(value)


def validate_timestamp(value: object) -> float:
    """A timestamp in seconds since the epoch: a finite real number."""
    if _is_boolean(value) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidArgument(
            f"timestamp {value!r} is not a finite number of seconds since the epoch; "
            "pass time.time() or leave it out"
        )
    return float(value)
