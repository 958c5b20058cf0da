"""pytest fixtures for Keel: isolated homes and scratch PostgreSQL databases.

PostgreSQL tests skip when no server answers, except when ``CI=true``: there an
unreachable server fails the run, so CI cannot pass by skipping them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from keel.testing._postgres import postgres_available, scratch_database


@pytest.fixture
def keel_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh ``KEEL_HOME`` for one test, with the process context rebuilt around it."""
    from keel.context import reset_context

    home = tmp_path / "keel-home"
    for name in ("KEEL_STORE_URI", "KEEL_ARTIFACT_URI", "KEEL_TRACKING_URI", "KEEL_EXPERIMENT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KEEL_HOME", str(home))
    monkeypatch.setenv("KEEL_CAPTURE_ENVIRONMENT", "true")
    from keel import _fluent

    monkeypatch.setattr(_fluent, "_experiment", None)
    reset_context()
    yield home

    while _fluent.active_run() is not None:
        _fluent.end_run("KILLED")
    reset_context()


def _require_postgres() -> None:
    if not postgres_available():
        message = "no PostgreSQL server answers at KEEL_TEST_POSTGRES_URI / 127.0.0.1:5432"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message}, and CI=true requires it")
        pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_uri() -> Iterator[str]:
    """A scratch PostgreSQL database for the whole test session."""
    _require_postgres()
    with scratch_database() as uri:
        yield uri


@pytest.fixture
def fresh_postgres_uri() -> Iterator[str]:
    """A scratch PostgreSQL database for one test."""
    _require_postgres()
    with scratch_database() as uri:
        yield uri
