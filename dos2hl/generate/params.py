"""Generator parameters and the tier table (GENERATOR.md §1 and "Scale tiers").

The parameters are one pydantic model so the CLI, a Prefect flow and the tests all validate the same
way; ``plan()`` turns them into concrete sizes so nothing else has to know about tiers.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["GenerateParams", "Plan", "plan", "TIERS", "GENERATOR_VERSION"]

GENERATOR_VERSION = "0.1.0"

# tier -> (locations, total patient records); GENERATOR.md "Scale tiers for tests".
TIERS: dict[str, tuple[int, int]] = {
    "solo": (1, 6_000),
    "group": (4, 20_000),
    "dso": (60, 1_000_000),
}


class GenerateParams(BaseModel):
    """Everything that decides the bytes of a generated export (same params -> same bytes)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = 42
    tier: Literal["solo", "group", "dso"] = "solo"
    patients: int | None = Field(None, ge=20, description="total patient records; overrides the tier")
    locations: int | None = Field(None, ge=1, le=500, description="number of locations; overrides the tier")
    mess: Literal["clean", "typical", "nasty"] = "typical"
    format: Literal["typical", "softdent_like"] = "typical"
    large_docs: bool = False
    images: Literal["none", "stub", "sized"] = "stub"
    export_date: dt.date = dt.date(2024, 6, 28)
    history_years: int = Field(12, ge=2, le=30)
    ledger_sign: Literal["signed", "drcr", "split_columns"] = "signed"
    locale: Literal["en_US"] = "en_US"


@dataclass(frozen=True, slots=True)
class Plan:
    """Concrete sizes derived from the parameters."""

    locations: int
    patients_per_location: tuple[int, ...]
    history_start: dt.date
    export_date: dt.date
    mess_factor: float  # multiplier on §6 rates: clean 0, typical 1, nasty 3

    @property
    def patients(self) -> int:
        return sum(self.patients_per_location)


def plan(p: GenerateParams) -> Plan:
    """Resolve tier defaults and overrides into per-location patient counts."""
    n_loc, n_pat = TIERS[p.tier]
    if p.locations is not None:
        n_loc = p.locations
    if p.patients is not None:
        n_pat = p.patients
    n_pat = max(n_pat, 20 * n_loc)
    base, extra = divmod(n_pat, n_loc)
    per = tuple(base + (1 if i < extra else 0) for i in range(n_loc))
    start = p.export_date.replace(year=p.export_date.year - p.history_years)
    factor = {"clean": 0.0, "typical": 1.0, "nasty": 3.0}[p.mess]
    return Plan(n_loc, per, start, p.export_date, factor)
