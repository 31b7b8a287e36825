"""Real tables shipped with modelyard as files, for end-to-end tests and benchmarks (never downloaded).

Six small public tables, copied from PyPI packages that bundle them (``data/README.md`` gives
each one's origin and license), chosen for what a practitioner meets on real data:

| name | rows | task | target | categorical columns | missing values |
| --- | --- | --- | --- | --- | --- |
| penguins | 344 | classification (3) | species | island, sex | 5 feature columns (2-11 rows) |
| cars | 406 | regression | Miles_per_Gallon | Origin, Year | Horsepower (6); target (8 rows) |
| hitters | 322 | regression | Salary | League, Division, NewLeague | target (59 rows) |
| wage | 3000 | regression | wage | 7 (education, jobclass, ...) | none |
| caravan | 5822 | classification (6% Yes) | Purchase | none (85 numeric) | none |
| oj | 1070 | classification | Purchase | Store7 | none |

``drop_columns`` leaves out identifiers and leaks (``Name`` of a car, ``logwage`` of a wage).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DATA_DIR", "REAL_TABLES", "RealTable", "load_real", "real_table"]

DATA_DIR = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True)
class RealTable:
    """One shipped table: its file, target, task and the columns to leave out."""

    name: str
    file: str
    target: str
    task: str  # "classification" or "regression"
    drop_columns: tuple[str, ...] = ()
    missing: bool = False  # whether some feature or target values are missing
    categorical: bool = False  # whether some feature columns are text categories
    source: str = ""

    @property
    def path(self) -> Path:
        """The file on disk."""
        return DATA_DIR / self.file

    def frame(self) -> Any:
        """The raw table as a pandas DataFrame."""
        import pandas as pd

        return pd.read_csv(self.path)

    def load(self, **kwargs: Any) -> Any:
        """The table as a ``Dataset`` (``load_dataset`` with this table's target and dropped columns)."""
        from ..data import load_dataset

        kwargs.setdefault("drop_columns", self.drop_columns)
        return load_dataset(self.path, target=self.target, **kwargs)


REAL_TABLES: dict[str, RealTable] = {
    t.name: t
    for t in (
        RealTable("penguins", "penguins.csv", "species", "classification", missing=True, categorical=True,
                  source="palmerpenguins (PyPI, MIT; data CC0, Palmer Station LTER)"),
        RealTable("cars", "cars.csv", "Miles_per_Gallon", "regression", drop_columns=("Name",), missing=True,
                  categorical=True, source="vega_datasets (PyPI, MIT; StatLib auto-mpg)"),
        RealTable("hitters", "hitters.csv", "Salary", "regression", missing=True, categorical=True,
                  source="ISLP (PyPI, BSD; StatLib 1988 baseball data)"),
        RealTable("wage", "wage.csv.gz", "wage", "regression", drop_columns=("logwage",), categorical=True,
                  source="ISLP (PyPI, BSD; CPS 2003-2009, Mid-Atlantic)"),
        RealTable("caravan", "caravan.csv.gz", "Purchase", "classification",
                  source="ISLP (PyPI, BSD; CoIL Challenge 2000 insurance data)"),
        RealTable("oj", "oj.csv.gz", "Purchase", "classification", categorical=True,
                  source="ISLP (PyPI, BSD; Stine, Foster & Waterman orange-juice purchases)"),
    )
}


def real_table(name: str) -> RealTable:
    """The shipped table ``name``; ValueError naming the choices otherwise."""
    if name not in REAL_TABLES:
        from ..errors import DataError

        raise DataError(f"unknown real table {name!r}; choose one of {', '.join(REAL_TABLES)}")
    return REAL_TABLES[name]


def load_real(name: str, **kwargs: Any) -> Any:
    """The shipped table ``name`` as a ``Dataset`` (keyword arguments go to ``load_dataset``)."""
    return real_table(name).load(**kwargs)
