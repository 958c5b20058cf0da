"""Processes registering versions of one model at once get 1..N: no gap, no duplicate."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(HERE))

from bench_registry import concurrent_registrations  # noqa: E402


def test_sqlite_processes_get_gapless_versions(tmp_path: Path) -> None:
    result = concurrent_registrations(
        f"sqlite:///{tmp_path / 'keel.db'}", tmp_path / "artifacts", processes=4, each=25
    )
    assert result.versions == list(range(1, 101))
    assert result.errors == []


@pytest.mark.postgres
def test_postgres_processes_get_gapless_versions(fresh_postgres_uri: str, tmp_path: Path) -> None:
    result = concurrent_registrations(
        fresh_postgres_uri, tmp_path / "artifacts", processes=4, each=25
    )
    assert result.versions == list(range(1, 101))
    assert result.errors == []
