"""Duplicate-person candidates among patients, by blocking on birth date (ids only in the result).

Two patient records are candidates when they share a birth date (or are one day apart) and either
their last names or their first names agree on a normalised key (accents and case folded, first four
letters), or first and last names are swapped. This catches DUP1's typos, swapped names and maiden
names while staying linear: records are only compared within a birth-date block.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections import defaultdict

import pyarrow as pa

__all__ = ["duplicate_candidates", "name_key"]


def name_key(value: str | None) -> str:
    """Accent- and case-folded first four letters of a name."""
    if not value:
        return ""
    folded = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode().upper()
    return "".join(ch for ch in folded if ch.isalpha())[:4]


def duplicate_candidates(patients: pa.Table, *, max_pairs: int = 10_000) -> dict[str, object]:
    """Candidate duplicate pairs and clusters (pat_ids only)."""
    rows = patients.select(["pat_id", "lname", "fname", "birthdate"]).to_pylist()
    blocks: dict[dt.date, list[tuple[int, str, str]]] = defaultdict(list)
    for r in rows:
        if r["birthdate"] is None or r["pat_id"] is None:
            continue
        blocks[r["birthdate"]].append((r["pat_id"], name_key(r["lname"]), name_key(r["fname"])))
    pairs: set[tuple[int, int]] = set()
    for day, members in blocks.items():
        neighbours = members + blocks.get(day + dt.timedelta(days=1), [])
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
