"""Duplicate-person candidates among patients, by blocking on birth date (ids only in the result).

Two patient records are candidates when they share a birth date (or are one day apart) and either
their last names or their first names agree on a normalised key (accents and case folded, first four
letters), or first and last names are swapped. This catches DUP1's typos, swapped names and maiden
names while staying linear: records are only compared within a birth-date block. At a DSO the rows
are read a range of birth dates at a time (``duplicate_candidates_in``).
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .checks_base import Store

__all__ = ["duplicate_candidates", "duplicate_candidates_in", "name_key"]


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
    pairs: set[tuple[int, int]] = set()
    _add_pairs(patients, pairs, window)
    return _clusters(pairs, max_pairs)


def duplicate_candidates_in(store: Store, parts: int, *, max_pairs: int = 10_000,
                            window: int = 100_000) -> dict[str, object]:
    """``duplicate_candidates`` of the rows of ``store``, a range of birth dates at a time (``parts``
    ranges of about equal width): each range's rows and the first day of the next one, so a pair one
    day apart across a boundary is still compared. Only one range's rows are in memory at once."""
    if parts <= 1:
        t = store.table()
        return duplicate_candidates(t if t is not None else _EMPTY, max_pairs=max_pairs, window=window)
    lo, hi = None, None
    for b in store.batches():
        mm = pc.min_max(b["birthdate"].cast(pa.int32()))
        if mm["min"].is_valid:
            lo = mm["min"].as_py() if lo is None else min(lo, mm["min"].as_py())
            hi = mm["max"].as_py() if hi is None else max(hi, mm["max"].as_py())
    pairs: set[tuple[int, int]] = set()
    if lo is None or hi is None:
        return _clusters(pairs, max_pairs)
    span = hi - lo + 1
    ranges = [Store(None if store.spill is None else store.spill.with_name(f"{store.spill.name}.dob.{r:03d}"))
              for r in range(parts)]
    for b in store.batches():
        b = b.filter(pc.is_valid(b["birthdate"]))
        day = b["birthdate"].cast(pa.int32()).to_numpy(zero_copy_only=False).astype(np.int64)
        own = (day - lo) * parts // span
        before = (day - 1 - lo) * parts // span  # the range of the day before: this row's neighbours
        for r in range(parts):
            mask = (own == r) | ((before == r) & (own != r))
            if mask.any():
                ranges[r].add(b.filter(pa.array(mask)))
    for part in ranges:
        t = part.table()
        if t is not None:
            _add_pairs(t, pairs, window)
    return _clusters(pairs, max_pairs)


_EMPTY = pa.table({"pat_id": pa.array([], pa.int64()), "lname": pa.array([], pa.string()),
                   "fname": pa.array([], pa.string()), "birthdate": pa.array([], pa.date32())})


def _add_pairs(patients: pa.Table, pairs: set[tuple[int, int]], window: int) -> None:
    t = patients.select(["pat_id", "lname", "fname", "birthdate"])
    t = t.filter(pc.and_(pc.is_valid(t["birthdate"]), pc.is_valid(t["pat_id"])))
    t = t.take(pc.sort_indices(t, [("birthdate", "ascending")]))
    days = np.asarray(t["birthdate"].combine_chunks().cast(pa.int32()).to_numpy(zero_copy_only=False))
    firsts = np.flatnonzero(np.r_[True, days[1:] != days[:-1]]) if len(days) else np.array([], np.int64)
    bounds = np.r_[firsts, len(days)]  # day k's rows: bounds[k]:bounds[k + 1]
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


def _clusters(pairs: set[tuple[int, int]], max_pairs: int) -> dict[str, object]:
    """The pairs joined into clusters (union-find)."""
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
