"""A representative, relationship-closed sample: patients across locations, statuses and insurance.

Strata are (location, status, insured?). Every non-empty stratum gets at least one patient, the rest
of ``n`` is shared in proportion to stratum size; inside a stratum the choice is by the patient's
stable hash (deterministic: the same sample every time for the same export). The sample is closed
over households: a chosen patient's guarantor in the same location comes along, and every child row
(coverage, plans, ledger, claims) comes with its patient because shards are per patient.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from typing import Any

from ..storage import Store
from .plan import read_staged

__all__ = ["choose_sample"]


def _h(pid: Any) -> str:
    return hashlib.sha256(str(pid).encode()).hexdigest()


def choose_sample(staged: Store, locations: list[str], n: int) -> dict[str, list[int]]:
    """Patient ids per location, about ``n`` in all (a few more for guarantors)."""
    strata: dict[tuple[str, str, bool], list[dict[str, Any]]] = defaultdict(list)
    by_loc: dict[str, dict[int, dict[str, Any]]] = {}
    for loc in locations:
        pats = read_staged(staged, "patient", loc)
        cov = read_staged(staged, "patins", loc)
        insured = set(cov.column("pat_id").to_pylist()) if cov is not None else set()
        rows = pats.select(["pat_id", "pat_stat", "guar_id", "deleted_flg", "merged_into_id"]).to_pylist() \
            if pats is not None else []
        by_loc[loc] = {r["pat_id"]: r for r in rows}
        for r in rows:
            strata[(loc, r["pat_stat"] or "", r["pat_id"] in insured)].append(r)
    total = sum(len(v) for v in strata.values())
    if total == 0:
        return {loc: [] for loc in locations}
    chosen: dict[str, set[int]] = {loc: set() for loc in locations}
    for key in sorted(strata):
        rows = sorted(strata[key], key=lambda r: _h(r["pat_id"]))
        take = max(1, round(n * len(rows) / total))
        for r in rows[:take]:
            chosen[key[0]].add(r["pat_id"])
    for loc, ids in chosen.items():  # households: bring the guarantor along
        for pid in list(ids):
            g = by_loc[loc][pid].get("guar_id")
            if g is not None and g in by_loc[loc]:
                ids.add(g)
    return {loc: sorted(ids) for loc, ids in chosen.items()}
