"""Small data files in every format the loader reads."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


def churn_frame(n: int = 120, seed: int = 0) -> pd.DataFrame:
    """A mixed table: numeric and text features, a string target."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, n)
    plan = rng.choice(["basic", "plus", "pro"], n)
    monthly = np.round(rng.normal(50, 15, n), 2)
    churned = np.where((plan == "basic") & (monthly > 45) | (age < 25), "yes", "no")
    return pd.DataFrame({"age": age, "plan": plan, "monthly": monthly, "churned": churned})


@pytest.fixture
def churn() -> pd.DataFrame:
    return churn_frame()


@pytest.fixture
def churn_csv(tmp_path, churn):
    path = tmp_path / "churn.csv"
    churn.to_csv(path, index=False)
    return path
