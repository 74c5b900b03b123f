"""Run-wide state shared by the simulation modules: id counters, the practice, the sinks.

Kept in one small object so the modules stay pure-ish functions of (context, location, rng); nothing
here grows with the number of patients except counters.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .params import GenerateParams, Plan
from .practice import Location, Practice
from .rng import Trigger, sub_rng

__all__ = ["Ids", "Ctx", "LocCtx"]


class Ids:
    """Sequential primary keys per table, in generation order (so ids grow with time and location)."""

    __slots__ = ("_n",)

    def __init__(self) -> None:
        self._n: dict[str, int] = {}

    def next(self, name: str) -> int:
        v = self._n.get(name, 0) + 1
        self._n[name] = v
        return v

    def set_floor(self, name: str, value: int) -> None:
        self._n[name] = max(self._n.get(name, 0), value)


@dataclass
class Ctx:
    params: GenerateParams
    pl: Plan
    pr: Practice
    emit: Callable[[str, dict[str, Any]], None]
    ids: Ids = field(default_factory=Ids)
    dup_clusters: dict[str, list[int]] = field(default_factory=dict)
    test_patients: int = 0

    @property
    def mess_on(self) -> bool:
        return self.pl.mess_factor > 0

    @property
    def export(self) -> dt.date:
        return self.pl.export_date

    @property
    def start(self) -> dt.date:
        return self.pl.history_start


class LocCtx:
    """Per-location random streams and semantic-defect triggers (rates scaled by the mess profile)."""

    # typical rates of the semantic (audit) defects made true in the data
    SEMANTIC = {
        "DUP1": 0.015,
        "DUP2": 0.003,
        "FAM1": 0.003,
        "$2": 0.002,
        "$3": 0.05,
        "$4": 0.005,
        "PR1": 0.002,
        "RC1": 0.005,
        "INS1": 0.003,
        "NOTE2": 0.05,
        "DT4": 0.001,
        "REF1": 0.40,
        "UDF1": 0.30,
        "DOC1_MISSING": 0.01,
        "DOC1_ORPHAN": 0.005,
        "DOC1_SIZE": 0.05,
        "DOC1_EXT": 0.02,
        "DOC1_PHI": 0.10,
        "DOC2": 0.02,
        "INS2": 0.05,
    }

    def __init__(self, ctx: Ctx, loc: Location) -> None:
        self.ctx = ctx
        self.loc = loc
        seed = ctx.params.seed
        self.people = sub_rng(seed, loc.loc_id, "people")
        self.visits = sub_rng(seed, loc.loc_id, "visits")
        self.money = sub_rng(seed, loc.loc_id, "money")
        self.notes = sub_rng(seed, loc.loc_id, "notes")
        self.docs = sub_rng(seed, loc.loc_id, "docs")
        sem = sub_rng(seed, loc.loc_id, "semantic")
        f = ctx.pl.mess_factor
        self.sem: dict[str, Trigger] = {k: Trigger(sem, min(v * f, 0.95)) for k, v in self.SEMANTIC.items()}
        self.referrers: list[int] = []  # guarantor pat_ids who can refer others
        self.pat_refs: dict[int, int] = {}  # referring pat_id -> REFSRC ref_id
        self.orphans: list[str] = []  # DOC1 orphan files written since the last drain
        self.large_left = 3 if loc.loc_id == "L001" else 0  # large_docs: CBCT files > 25 MB

    def hit(self, defect: str) -> bool:
        return self.sem[defect]()

    def active_provider(self, rng: random.Random, kind: str, day: dt.date) -> str:
        pool = {"D": self.loc.dentists, "H": self.loc.hygienists, "A": self.loc.assistants}[kind]
        ok = [p for p in pool if p.hire <= day and (p.term is None or day <= p.term)]
        return rng.choice(ok or pool).prov_id
