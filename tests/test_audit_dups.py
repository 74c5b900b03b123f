"""Duplicate-person candidates: compared a window of birth dates at a time, never every row as a dict."""

from __future__ import annotations

import datetime as dt
import random
import tracemalloc
from pathlib import Path

import pyarrow as pa

from dos2hl.audit.checks_base import Store
from dos2hl.audit.dups import duplicate_candidates, duplicate_candidates_in, name_key

FIRST = ["ANNA", "ANNE", "BOB", "BOBBY", "CARL", "", "DANA", "EVE"]
LAST = ["SMITH", "SMYTH", "JONES", "JONAS", "KIM", "", "LEE", "LOPEZ"]


def _patients(n: int, days: int, seed: int) -> pa.Table:
    rnd = random.Random(seed)
    base = dt.date(1980, 1, 1)
    rows = [(i + 1, rnd.choice(LAST), rnd.choice(FIRST),
             None if rnd.random() < 0.05 else base + dt.timedelta(days=rnd.randrange(days)))
            for i in range(n)]
    rows.append((None, "SMITH", "ANNA", base))  # no id: never a candidate
    rnd.shuffle(rows)
    return pa.table({"pat_id": pa.array([r[0] for r in rows], pa.int64()),
                     "lname": [r[1] for r in rows], "fname": [r[2] for r in rows],
                     "birthdate": pa.array([r[3] for r in rows], pa.date32())})


def _every_pair(t: pa.Table) -> set[tuple[int, int]]:
    """The rule applied to every pair of records at most a day apart (the reference)."""
    rows = [r for r in t.to_pylist() if r["pat_id"] is not None and r["birthdate"] is not None]
    out = set()
    for i, x in enumerate(rows):
        for y in rows[i + 1:]:
            if abs((x["birthdate"] - y["birthdate"]).days) > 1 or x["pat_id"] == y["pat_id"]:
                continue
            la, fa, lb, fb = (name_key(v) for v in (x["lname"], x["fname"], y["lname"], y["fname"]))
            same_last, same_first = la and la == lb, fa and fa == fb
            if ((same_last and (same_first or fa[:1] == fb[:1])) or (la and fa and la == fb and fa == lb)
                    or (same_first and not same_last and fa[:1] == fb[:1] and la[:1] == lb[:1])
                    or (same_first and la[:2] != lb[:2])):
                out.add((min(x["pat_id"], y["pat_id"]), max(x["pat_id"], y["pat_id"])))
    return out


def test_windows_of_days_find_exactly_the_pairs_of_comparing_everyone() -> None:
    t = _patients(400, 40, seed=7)
    want = _every_pair(t)
    assert want  # the fixture has candidates, across day boundaries too
    for window in (1, 5, 23, 100_000):  # one day a window (the day after joins it), a few, everything
        got = duplicate_candidates(t, window=window)
        assert {tuple(p) for p in got["pairs"]} == want, window  # type: ignore[union-attr]
        assert got["pairs_count"] == len(want)
    clusters = duplicate_candidates(t, window=5)["clusters"]
    assert sorted(p for c in clusters for p in c) == sorted({p for pair in want for p in pair})  # type: ignore[union-attr]


def test_ranges_of_birth_dates_read_from_a_store_find_the_same_pairs(tmp_path: Path) -> None:
    """At a DSO the rows are read a range of birth dates at a time: a pair one day apart across two
    ranges' boundary is still found, and each range is its own spilled store."""
    t = _patients(400, 40, seed=7)
    want = _every_pair(t)
    for parts in (1, 2, 3, 7, 39, 80):  # 39 and 80: a range of a day or less, each boundary crossed
        store = Store(tmp_path / f"dk-{parts}.arrows")
        for i in range(0, t.num_rows, 37):
            store.add(t.slice(i, 37))
        got = duplicate_candidates_in(store, parts, window=11)
        assert {tuple(p) for p in got["pairs"]} == want, parts  # type: ignore[union-attr]
        assert got["clusters"] == duplicate_candidates(t)["clusters"]
        files = len(list(tmp_path.glob(f"dk-{parts}.arrows.dob.*")))
        assert files == 0 if parts == 1 else 1 < files <= parts  # an empty range writes no file


def test_a_day_more_crowded_than_the_window_is_compared_whole() -> None:
    t = pa.table({"pat_id": pa.array(range(1, 9), pa.int64()), "lname": ["LEE"] * 8, "fname": ["EVE"] * 8,
                  "birthdate": pa.array([dt.date(1990, 5, 1)] * 8, pa.date32())})
    assert duplicate_candidates(t, window=3)["pairs_count"] == 8 * 7 // 2


def test_memory_follows_the_window_not_the_patients() -> None:
    """Python objects for one window of rows at a time: 60 k patients in windows of 2 k allocate far less
    than the rows as dicts would (the old way: ~200 bytes a row)."""
    rnd = random.Random(3)
    n = 60_000

    def name() -> str:
        return "".join(rnd.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(6))

    t = pa.table({"pat_id": pa.array(range(1, n + 1), pa.int64()), "lname": [name() for _ in range(n)],
                  "fname": [name() for _ in range(n)],
                  "birthdate": pa.array([dt.date(1950, 1, 1) + dt.timedelta(days=rnd.randrange(20_000))
                                         for _ in range(n)], pa.date32())})
    tracemalloc.start()
    try:
        duplicate_candidates(t, window=2_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    rows_as_dicts = 60_000 * 200
    assert peak < rows_as_dicts / 4, peak
