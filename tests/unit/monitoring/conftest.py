"""Data for the drift tests: mixed column types with shifts planted where we say."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

CITIES = ["paris", "lyon", "lille", "nantes", "nice", "brest"]
CITY_P = np.array([0.35, 0.2, 0.15, 0.12, 0.1, 0.08])
SHIFTED = ["city", "exponential", "normal"]


def mixed_frame(n: int, seed: int, *, shift: float = 0.0, moved: float = 0.0) -> pd.DataFrame:
    """``n`` rows of nine columns of different types and shapes.

    ``shift`` moves ``normal`` and ``exponential`` by that many population standard
    deviations; ``moved`` moves that much probability from ``paris`` to ``nice``.
    Every other column has the same distribution whatever the arguments.
    """
    rng = np.random.default_rng(seed)
    p = CITY_P.copy()
    p[0] -= moved
    p[4] += moved
    start = np.datetime64("2024-01-01T00:00:00")
    return pd.DataFrame(
        {
            "normal": rng.normal(0.0, 1.0, n) + shift,
            "lognormal": rng.lognormal(0.0, 0.5, n),
            "uniform": rng.uniform(0.0, 10.0, n),
            "exponential": rng.exponential(2.0, n) + 2.0 * shift,
            "count": rng.poisson(3.0, n),
            "code": rng.integers(0, 4, n),
            "city": rng.choice(CITIES, n, p=p),
            "flag": rng.random(n) < 0.3,
            "when": start + rng.integers(0, 30 * 86400, n).astype("timedelta64[s]"),
        }
    )


@pytest.fixture
def mixed() -> Callable[..., pd.DataFrame]:
    """The ``mixed_frame`` factory."""
    return mixed_frame
