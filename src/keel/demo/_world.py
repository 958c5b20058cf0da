"""A deterministic synthetic credit-approval world, with a sensitive attribute and a drift knob.

Approval depends on income, debt ratio, credit history, late payments and employment,
plus a small direct dependence on ``gender`` (the unfairness an evaluation per slice
should find). ``drift`` in [0, 1] moves the world the way a recession would: lower
incomes, higher debt, more unemployment; monitoring must notice it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

TARGET = "approved"
SENSITIVE = "gender"
NUMERIC = [
    "age",
    "income",
    "debt_ratio",
    "credit_history_years",
    "late_payments",
    "loan_amount",
]
CATEGORICAL = ["employment", "home", "purpose", "region", "gender"]

_EMPLOYMENT = ["employed", "self-employed", "unemployed", "student", "retired"]
_HOME = ["own", "mortgage", "rent"]
_PURPOSE = ["car", "home", "education", "business", "personal"]
_REGION = ["north", "south", "east", "west"]


def generate_credit_data(rows: int = 50_000, seed: int = 0, drift: float = 0.0) -> pd.DataFrame:
    """``rows`` applicants with features and the ``approved`` label; same seed, same data."""
    import pandas as pd

    if rows <= 0:
        raise ValueError(f"rows must be positive, got {rows}")
    if not 0.0 <= drift <= 1.0:
        raise ValueError(f"drift must be in [0, 1], got {drift}")
    rng = np.random.default_rng(seed)
    age = np.clip(rng.normal(41, 12, rows), 18, 85).round().astype(np.int64)
    employment_p = np.array([0.62, 0.14, 0.08, 0.06, 0.10])
    employment_p = employment_p + drift * np.array([-0.15, 0.0, 0.15, 0.0, 0.0])
    employment = rng.choice(_EMPLOYMENT, size=rows, p=employment_p / employment_p.sum())
    income = rng.lognormal(mean=10.8 - 0.25 * drift, sigma=0.45, size=rows)
    income = np.where(employment == "unemployed", income * 0.3, income)
    income = np.where(employment == "student", income * 0.4, income).round(2)
    debt_ratio = np.clip(rng.beta(2.0, 5.0, rows) + 0.08 * drift, 0, 1.5).round(4)
    history = np.clip(age - 18 - rng.exponential(4, rows), 0, None).round(1)
    late = rng.poisson(0.6 + 0.8 * debt_ratio + 0.4 * drift, rows).astype(np.int64)
    loan = rng.gamma(2.0, 6000 + 2000 * drift, rows).round(2)
    home = rng.choice(_HOME, size=rows, p=[0.3, 0.35, 0.35])
    purpose = rng.choice(_PURPOSE, size=rows, p=[0.3, 0.2, 0.15, 0.15, 0.2])
    region = rng.choice(_REGION, size=rows)
    gender = rng.choice(["F", "M"], size=rows, p=[0.48, 0.52])

    score = (
        1.6 * (np.log(income) - 10.8)
        - 3.2 * (debt_ratio - 0.28)
        + 0.05 * (history - 15)
        - 0.55 * late
        - 0.4 * (loan / income)
        + np.select(
            [employment == "unemployed", employment == "student", employment == "self-employed"],
            [-1.4, -0.6, -0.2],
            0.0,
        )
        + np.where(home == "own", 0.35, 0.0)
        + np.where(purpose == "business", -0.3, 0.0)
        + np.where(gender == "M", 0.25, 0.0)
        + 0.9
    )
    approved = (rng.random(rows) < 1.0 / (1.0 + np.exp(-score))).astype(np.int64)
    return pd.DataFrame(
        {
            "age": age,
            "income": income,
            "debt_ratio": debt_ratio,
            "credit_history_years": history,
            "late_payments": late,
            "loan_amount": loan,
            "employment": pd.Categorical(employment, categories=_EMPLOYMENT),
            "home": pd.Categorical(home, categories=_HOME),
            "purpose": pd.Categorical(purpose, categories=_PURPOSE),
            "region": pd.Categorical(region, categories=_REGION),
            "gender": pd.Categorical(gender, categories=["F", "M"]),
            TARGET: approved,
        }
    )
