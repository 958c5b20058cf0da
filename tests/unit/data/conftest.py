"""Fixtures shared by the data tests."""

from __future__ import annotations

from pathlib import Path

import pytest

import keel
from keel.data import DataService


@pytest.fixture
def data(keel_home: Path) -> DataService:
    """The data service of a fresh embedded store."""
    return keel.data.service()
