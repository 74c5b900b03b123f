"""INS1's overlapping primaries, column-wise: the same answers as the per-coverage Python it replaced
(kept here as the oracle), on random coverages with open periods, shared and repeated subscriptions,
equal dates and patients without an id."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from dos2hl.audit.checks_base import Findings
from dos2hl.audit.checks_people import coverage


def _oracle(prim: pa.Table, per: pa.Table | None) -> tuple[list[int], int]:
    """The check as it was: (flagged patins ids, overlapping_primary)."""
    n = prim.group_by("pat_id").aggregate([("pat_id", "count")])
    many = n["pat_id"].filter(pc.greater(n["pat_id_count"], 1))
    cand = prim.filter(pc.is_in(prim["pat_id"], value_set=many))
    spans: dict[int | None, tuple[dt.date | None, dt.date | None]] = {}
    if per is not None:
        per = per.filter(pc.is_in(per["sub_rec_id"], value_set=cand["sub_rec_id"]))
        for s, e, t in zip(*(per[c].to_pylist() for c in ("sub_rec_id", "eff_dt", "term_dt")), strict=True):
            spans[s] = (e, t)
    rows: dict[int | None, list[tuple[dt.date, dt.date, int]]] = defaultdict(list)
    cols = (cand[c].to_pylist() for c in ("pat_id", "sub_rec_id", "patins_id"))
    for pid, sub, pk in zip(*cols, strict=True):
        e, t = spans.get(sub, (None, None))
        rows[pid].append((e or dt.date.min, t or dt.date.max, pk))
    bad = []
    for items in rows.values():
        items.sort()
        for i in range(1, len(items)):
            if any(items[i][0] <= prev[1] for prev in items[:i]):
                bad.append(items[i][2])
    flagged = cand["patins_id"].filter(pc.is_in(cand["patins_id"], value_set=pa.array(bad, pa.int64())))
    return sorted(flagged.to_pylist()), len(bad)


def _lineage(t: pa.Table) -> pa.Table:
    n = t.num_rows
    return (t.append_column("_file", pa.array(["PATINS.CSV"] * n)).append_column("_line", pa.array(range(n)))
            .append_column("_record", pa.array(range(n))))


class _Capture(Findings):
    """Findings that also keep every flagged row's id."""

    def __init__(self) -> None:
        super().__init__()
        self.flagged: list[int] = []

    def flag(self, code: str, table: str, data: pa.Table | None,
             mask: pa.Array | pa.ChunkedArray | None = None, detail: dict[str, int] | None = None,
             count: int | None = None) -> int:
        if data is not None and mask is not None:
            self.flagged += data.filter(mask)["patins_id"].to_pylist()
        return super().flag(code, table, data, mask, detail, count)


def _got(prim: pa.Table, per: pa.Table | None) -> tuple[list[int], int]:
    f = _Capture()
    coverage(f, _lineage(prim), per)
    assert f.count["INS1"] == len(f.flagged)
    return sorted(f.flagged), f.detail["INS1"].get("overlapping_primary", 0)


DAY0 = dt.date(2020, 1, 1)
dates = st.one_of(st.none(), st.integers(0, 30).map(lambda d: DAY0 + dt.timedelta(days=d)))


@settings(max_examples=300, deadline=None)
@given(
    coverages=st.lists(st.tuples(st.one_of(st.none(), st.integers(1, 6)), st.integers(1, 8)), min_size=1,
                       max_size=25),
    periods=st.one_of(st.none(), st.lists(st.tuples(st.integers(1, 9), dates, dates), max_size=20)),
)
def test_overlapping_primaries_are_the_ones_the_per_coverage_code_found(
        coverages: list[tuple[int | None, int]],
        periods: list[tuple[int, dt.date | None, dt.date | None]] | None) -> None:
    prim = pa.table({"patins_id": pa.array(range(100, 100 + len(coverages)), pa.int64()),
                     "pat_id": pa.array([c[0] for c in coverages], pa.int64()),
                     "sub_rec_id": pa.array([c[1] for c in coverages], pa.int64())})
    per = None if periods is None else pa.table({
        "sub_rec_id": pa.array([p[0] for p in periods], pa.int64()),
        "eff_dt": pa.array([p[1] for p in periods], pa.date32()),
        "term_dt": pa.array([p[2] for p in periods], pa.date32())})
    assert _got(prim, per) == _oracle(prim, per)


def test_a_later_primary_inside_an_earlier_longer_one_overlaps_even_past_a_short_one_between() -> None:
    # 1: Jan-Dec; 2: Feb-Mar; 3: Jun-Jul (overlaps 1, not 2): the latest end so far decides, not the last
    prim = pa.table({"patins_id": pa.array([1, 2, 3], pa.int64()), "pat_id": pa.array([7, 7, 7], pa.int64()),
                     "sub_rec_id": pa.array([1, 2, 3], pa.int64())})
    per = pa.table({"sub_rec_id": pa.array([1, 2, 3], pa.int64()),
                    "eff_dt": pa.array([dt.date(2020, 1, 1), dt.date(2020, 2, 1), dt.date(2020, 6, 1)]),
                    "term_dt": pa.array([dt.date(2020, 12, 31), dt.date(2020, 3, 1), dt.date(2020, 7, 1)])})
    f = _Capture()
    coverage(f, _lineage(prim), per)
    assert f.count["INS1"] == 2 and f.detail["INS1"]["overlapping_primary"] == 2
    assert sorted(f.flagged) == [2, 3]


def test_the_check_holds_no_python_object_per_coverage() -> None:
    """200 k primaries of 100 k patients: a tuple per coverage and a dict per patient was ~60 MB of Python
    objects here (~150 MB at a 1 M-patient DSO); column-wise it is a few arrays of 8 bytes a row."""
    import tracemalloc

    n = 200_000
    prim = _lineage(pa.table({"patins_id": pa.array(range(n), pa.int64()),
                              "pat_id": pa.array([i // 2 for i in range(n)], pa.int64()),
                              "sub_rec_id": pa.array(range(n), pa.int64())}))
    starts = [DAY0 + dt.timedelta(days=i % 40) for i in range(n)]
    per = pa.table({"sub_rec_id": pa.array(range(n), pa.int64()), "eff_dt": pa.array(starts, pa.date32()),
                    "term_dt": pa.array([d + dt.timedelta(days=5) for d in starts], pa.date32())})
    f = Findings()
    tracemalloc.start()
    try:
        coverage(f, prim, per)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert f.count["INS1"] > 0
    assert peak < 24 * 2**20, peak / 2**20
