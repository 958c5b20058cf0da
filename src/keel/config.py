"""Every environment variable Keel reads, declared once with its type, default and doc.

Only the edges (``keel.context``, ``keel.cli``, ``keel.server``) read this module;
services take explicit arguments. ``keel config`` prints this table.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from keel.errors import ConfigurationError

T = TypeVar("T")

__all__ = ["SETTINGS", "Setting", "Settings", "load_settings"]


def _parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected true/false, got {raw!r}")


def _parse_positive_float(raw: str) -> float:
    value = float(raw)
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"expected a positive finite number, got {raw!r}")
    return value


def _parse_positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError(f"expected a positive integer, got {raw!r}")
    return value


@dataclass(frozen=True)
class Setting(Generic[T]):
    """One environment variable: name, parser, default and what it does."""

    name: str
    parse: Callable[[str], T]
    default: T
    doc: str

    def read(self, environ: Mapping[str, str]) -> T:
        raw = environ.get(self.name)
        if raw is None or raw == "":
            return self.default
        try:
            return self.parse(raw)
        except ValueError as exc:
            raise ConfigurationError(
                f"environment variable {self.name}={raw!r} is invalid ({exc}); "
                f"unset it or fix it: {self.doc}"
            ) from exc


KEEL_HOME: Setting[str] = Setting(
    "KEEL_HOME", str, "./.keel", "Directory for the embedded store and artifacts."
)
KEEL_STORE_URI: Setting[str] = Setting(
    "KEEL_STORE_URI",
    str,
    "",
    "Metadata store URI (sqlite:///path or postgresql+psycopg://...). "
    "Default: sqlite in $KEEL_HOME/keel.db.",
)
KEEL_ARTIFACT_URI: Setting[str] = Setting(
    "KEEL_ARTIFACT_URI",
    str,
    "",
    "Artifact store URI (file:///path, s3://bucket/prefix). Default: $KEEL_HOME/artifacts.",
)
KEEL_TRACKING_URI: Setting[str] = Setting(
    "KEEL_TRACKING_URI",
    str,
    "",
    "http(s)://host:port of a Keel server; empty means talk to the stores directly.",
)
KEEL_EXPERIMENT: Setting[str] = Setting(
    "KEEL_EXPERIMENT", str, "Default", "Experiment used when start_run() names none."
)
KEEL_FLUSH_INTERVAL: Setting[float] = Setting(
    "KEEL_FLUSH_INTERVAL",
    _parse_positive_float,
    0.5,
    "Seconds between background writes of buffered metrics.",
)
KEEL_BUFFER_POINTS: Setting[int] = Setting(
    "KEEL_BUFFER_POINTS",
    _parse_positive_int,
    100_000,
    "Buffered metric points that trigger an early background write.",
)
KEEL_CAPTURE_ENVIRONMENT: Setting[bool] = Setting(
    "KEEL_CAPTURE_ENVIRONMENT",
    _parse_bool,
    True,
    "Record git state, Python, platform and installed packages with each run.",
)
KEEL_DB_TIMEOUT: Setting[float] = Setting(
    "KEEL_DB_TIMEOUT",
    _parse_positive_float,
    30.0,
    "Seconds to wait for a locked SQLite database before failing.",
)


def _parse_synchronous(raw: str) -> str:
    value = raw.strip().upper()
    if value not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
        raise ValueError("expected OFF, NORMAL, FULL or EXTRA")
    return value


KEEL_SQLITE_SYNCHRONOUS: Setting[str] = Setting(
    "KEEL_SQLITE_SYNCHRONOUS",
    _parse_synchronous,
    "NORMAL",
    "SQLite sync level: NORMAL survives a process crash, FULL also a power loss (slower).",
)


def _parse_sync(raw: str) -> str:
    value = raw.strip().lower()
    if value not in {"normal", "full"}:
        raise ValueError("expected normal or full")
    return value


KEEL_SYNC: Setting[str] = Setting(
    "KEEL_SYNC",
    _parse_sync,
    "normal",
    "Durability of stored data: normal survives a process crash (every read verifies "
    "the digest), full also fsyncs objects and makes SQLite synchronous=FULL (slower).",
)

KEEL_PREDICTION_LOG_DIR: Setting[str] = Setting(
    "KEEL_PREDICTION_LOG_DIR",
    str,
    "",
    "Directory of served deployments' prediction logs. Default: $KEEL_HOME/predictions.",
)
KEEL_SERVE_MAX_ROWS: Setting[int] = Setting(
    "KEEL_SERVE_MAX_ROWS",
    _parse_positive_int,
    10_000,
    "Rows one prediction request may carry; more is refused with 413.",
)
KEEL_SERVE_MAX_BODY_BYTES: Setting[int] = Setting(
    "KEEL_SERVE_MAX_BODY_BYTES",
    _parse_positive_int,
    16 * 1024 * 1024,
    "Bytes one request body may hold; more is refused with 413 before it is read.",
)
KEEL_SERVE_MAX_BATCH_ROWS: Setting[int] = Setting(
    "KEEL_SERVE_MAX_BATCH_ROWS",
    _parse_positive_int,
    1024,
    "Rows the micro-batcher groups into one predict call at most.",
)


def _parse_wait_ms(raw: str) -> float:
    value = float(raw)
    if not (0 <= value <= 1000 and math.isfinite(value)):
        raise ValueError(f"expected milliseconds between 0 and 1000, got {raw!r}")
    return value


KEEL_SERVE_MAX_WAIT_MS: Setting[float] = Setting(
    "KEEL_SERVE_MAX_WAIT_MS",
    _parse_wait_ms,
    2.0,
    "Milliseconds the micro-batcher may wait for requests already arriving (0: never).",
)
KEEL_SERVE_POLL_INTERVAL: Setting[float] = Setting(
    "KEEL_SERVE_POLL_INTERVAL",
    _parse_positive_float,
    1.0,
    "Seconds between a server's checks for moved aliases and deployment policy changes.",
)
KEEL_SERVE_TARGET: Setting[str] = Setting(
    "KEEL_SERVE_TARGET",
    str,
    "",
    "What a serving worker serves (set by `keel serve`): a model URI or deployment:NAME.",
)
KEEL_SERVE_ALLOW_PICKLE: Setting[bool] = Setting(
    "KEEL_SERVE_ALLOW_PICKLE",
    _parse_bool,
    False,
    "Let a server load pickle-format model packages (they run code when loaded).",
)
KEEL_SERVE_LOG: Setting[bool] = Setting(
    "KEEL_SERVE_LOG",
    _parse_bool,
    True,
    "Append every served prediction to the deployment's prediction log.",
)
KEEL_SERVE_OPTIMIZE: Setting[bool] = Setting(
    "KEEL_SERVE_OPTIMIZE",
    _parse_bool,
    True,
    "Run `keel serve` under `python -OO` (no docstrings or asserts: ~18 MiB less per "
    "worker); never with pickle models, whose code may rely on asserts.",
)

SETTINGS: tuple[Setting[Any], ...] = (
    KEEL_HOME,
    KEEL_STORE_URI,
    KEEL_ARTIFACT_URI,
    KEEL_TRACKING_URI,
    KEEL_EXPERIMENT,
    KEEL_FLUSH_INTERVAL,
    KEEL_BUFFER_POINTS,
    KEEL_CAPTURE_ENVIRONMENT,
    KEEL_DB_TIMEOUT,
    KEEL_SQLITE_SYNCHRONOUS,
    KEEL_SYNC,
    KEEL_PREDICTION_LOG_DIR,
    KEEL_SERVE_MAX_ROWS,
    KEEL_SERVE_MAX_BODY_BYTES,
    KEEL_SERVE_MAX_BATCH_ROWS,
    KEEL_SERVE_MAX_WAIT_MS,
    KEEL_SERVE_POLL_INTERVAL,
    KEEL_SERVE_TARGET,
    KEEL_SERVE_ALLOW_PICKLE,
    KEEL_SERVE_LOG,
    KEEL_SERVE_OPTIMIZE,
)


@dataclass(frozen=True)
class Settings:
    """Resolved settings: defaults filled in, derived paths made absolute."""

    home: Path
    store_uri: str
    artifact_uri: str
    tracking_uri: str
    experiment: str
    flush_interval: float
    buffer_points: int
    capture_environment: bool
    db_timeout: float
    sqlite_synchronous: str
    sync: str
    prediction_log_dir: Path = Path(".keel/predictions")
    serve_max_rows: int = 10_000
    serve_max_body_bytes: int = 16 * 1024 * 1024
    serve_max_batch_rows: int = 1024
    serve_max_wait_ms: float = 2.0
    serve_poll_interval: float = 1.0
    serve_target: str = ""
    serve_allow_pickle: bool = False
    serve_log: bool = True
    serve_optimize: bool = True
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read every declared variable from ``environ`` (default: the process environment)."""
    env = os.environ if environ is None else environ
    raw = {s.name: s.read(env) for s in SETTINGS}
    home = Path(raw["KEEL_HOME"]).expanduser().resolve()
    store_uri = raw["KEEL_STORE_URI"] or f"sqlite:///{home / 'keel.db'}"
    artifact_uri = raw["KEEL_ARTIFACT_URI"] or (home / "artifacts").as_uri()
    return Settings(
        home=home,
        store_uri=store_uri,
        artifact_uri=artifact_uri,
        tracking_uri=raw["KEEL_TRACKING_URI"],
        experiment=raw["KEEL_EXPERIMENT"],
        flush_interval=raw["KEEL_FLUSH_INTERVAL"],
        buffer_points=raw["KEEL_BUFFER_POINTS"],
        capture_environment=raw["KEEL_CAPTURE_ENVIRONMENT"],
        db_timeout=raw["KEEL_DB_TIMEOUT"],
        sqlite_synchronous=raw["KEEL_SQLITE_SYNCHRONOUS"],
        sync=raw["KEEL_SYNC"],
        prediction_log_dir=(
            Path(raw["KEEL_PREDICTION_LOG_DIR"]).expanduser().resolve()
            if raw["KEEL_PREDICTION_LOG_DIR"]
            else home / "predictions"
        ),
        serve_max_rows=raw["KEEL_SERVE_MAX_ROWS"],
        serve_max_body_bytes=raw["KEEL_SERVE_MAX_BODY_BYTES"],
        serve_max_batch_rows=raw["KEEL_SERVE_MAX_BATCH_ROWS"],
        serve_max_wait_ms=raw["KEEL_SERVE_MAX_WAIT_MS"],
        serve_poll_interval=raw["KEEL_SERVE_POLL_INTERVAL"],
        serve_target=raw["KEEL_SERVE_TARGET"],
        serve_allow_pickle=raw["KEEL_SERVE_ALLOW_PICKLE"],
        serve_log=raw["KEEL_SERVE_LOG"],
        serve_optimize=raw["KEEL_SERVE_OPTIMIZE"],
        raw=raw,
    )
