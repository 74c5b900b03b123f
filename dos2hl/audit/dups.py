"""Duplicate-person candidates among patients, by blocking on birth date (ids only in the result).

Two patient records are candidates when they share a birth date (or are one day apart) and either
their last names or their first names agree on a normalised key (accents and case folded, first four
letters), or first and last names are swapped. This catches DUP1's typos, swapped names and maiden
names while staying linear: records are only compared within a birth-date block.
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["duplicate_candidates", "name_key"]


def name_key(value: str | None) -> str:
    """Accent- and case-folded first four letters of a name."""
    if not value:
        return ""
    folded = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode().upper()
    return "".join(ch for ch in folded if ch.isalpha())[:4]


def duplicate_candidates(patients: pa.Table, *, max_pairs: int = 10_000,
                         window: int = 100_000) -> dict[str, object]:
    """Candidate duplicate pairs and clusters (pat_ids only).

    The rows are sorted by birth date and compared a window of whole days at a time (``window`` rows,
    and the day after the window's last): only one window's names are Python objects at once, so the
    check's memory stays flat from a practice to a million-patient group (every row as a dict was
    ~0.5 GB at a million patients)."""
    t = patients.select(["pat_id", "lname", "fname", "birthdate"])
    t = t.filter(pc.and_(pc.is_valid(t["birthdate"]), pc.is_valid(t["pat_id"])))
    t = t.take(pc.sort_indices(t, [("birthdate", "ascending")]))
    days = np.asarray(t["birthdate"].combine_chunks().cast(pa.int32()).to_numpy(zero_copy_only=False))
    firsts = np.flatnonzero(np.r_[True, days[1:] != days[:-1]]) if len(days) else np.array([], np.int64)
    bounds = np.r_[firsts, len(days)]  # day k's rows: bounds[k]:bounds[k + 1]
    pairs: set[tuple[int, int]] = set()
    k = 0
    while k < len(firsts):
        last = k  # the window: days k..last, at least one whole day, about ``window`` rows
        while last + 1 < len(firsts) and bounds[last + 2] - bounds[k] <= window:
            last += 1
        stop = bounds[last + 1]
        if last + 1 < len(firsts) and days[bounds[last + 1]] == days[bounds[last]] + 1:
            stop = bounds[last + 2]  # the day after the window's last, for its neighbours
        _compare(t.slice(bounds[k], stop - bounds[k]), int(days[bounds[last]]), pairs)
        k = last + 1
    # Union-find into clusters.
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        parent[find(a)] = find(b)
    clusters: dict[int, list[int]] = defaultdict(list)
    for x in parent:
        clusters[find(x)].append(x)
    ordered = sorted(sorted(c) for c in clusters.values())
    return {
        "pairs_count": len(pairs),
        "pairs": [list(p) for p in sorted(pairs)[:max_pairs]],
        "clusters": ordered,
        "rule": "same birth date (or +1 day) and matching name keys, swapped names, or same first name",
    }


def _compare(rows: pa.Table, last_day: int, pairs: set[tuple[int, int]]) -> None:
    """Add to ``pairs`` the candidates among ``rows`` (sorted by birth date) whose first record's birth
    date is at most ``last_day`` (days since 1970); later rows are only neighbours (the next day)."""
    blocks: dict[int, list[tuple[int, str, str]]] = defaultdict(list)
    days = rows["birthdate"].combine_chunks().cast(pa.int32()).to_pylist()
    for pat, last, first, day in zip(rows["pat_id"].to_pylist(), rows["lname"].to_pylist(),
                                     rows["fname"].to_pylist(), days, strict=True):
        blocks[day].append((pat, name_key(last), name_key(first)))
    for day, members in blocks.items():
        if day > last_day:
            continue
        neighbours = members + blocks.get(day + 1, [])
        for i, (a, la, fa) in enumerate(members):
            for b, lb, fb in neighbours[i + 1:]:
                if a == b:
                    continue
                same_last = la and la == lb
                same_first = fa and fa == fb
                swapped = la and fa and la == fb and fa == lb
                if (
                    (same_last and (same_first or fa[:1] == fb[:1]))
                    or swapped
                    or (same_first and not same_last and fa[:1] == fb[:1] and la[:1] == lb[:1])
                ):
                    pairs.add((min(a, b), max(a, b)))
                elif same_first and la[:2] != lb[:2]:
                    # maiden name: same first name and birth date, different last name
                    pairs.add((min(a, b), max(a, b)))
