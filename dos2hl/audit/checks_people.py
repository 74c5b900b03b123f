"""Checks of the source audit that run once every table has been read (see ``checks``).

People (DUP1, FAM1, FAM2), recalls (RC1), procedure-code definitions (CD2), carriers (INS3),
coverage order (INS1 overlaps) and shared contact points (EM3). Each takes the compact stores kept by
``SemanticChecks`` and adds to its ``Findings``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .checks_base import Findings, Store, count_true, flat, gone, parts_for, true
from .dups import duplicate_candidates_in
from .keys import IdSet

__all__ = ["PatientKeys", "people", "recalls", "coverage_parts", "code_defs", "carriers", "coverage",
           "shared_contacts", "INACTIVE", "CDT"]

CDT = r"^D\d{4}$"
INACTIVE = ("I", "Z", "D", "X")


@dataclass
class PatientKeys:
    """What a check of one part of the patients needs to know of all of them (a guarantor can be any
    patient): bitmaps of patient ids (``keys.IdSet``), a bit per possible id, from one pass."""

    ids: IdSet = field(default_factory=lambda: IdSet(duplicates=False))
    gone: IdSet = field(default_factory=lambda: IdSet(duplicates=False))  # deleted or archived
    out: IdSet = field(default_factory=lambda: IdSet(duplicates=False))  # inactive or deceased (RC1)
    guars: IdSet = field(default_factory=lambda: IdSet(duplicates=False))  # named as someone's guarantor

    @classmethod
    def of(cls, pat: Store) -> PatientKeys:
        k = cls()
        for t in pat.batches():
            k.ids.add(t["pat_id"])
            k.gone.add(t["pat_id"].filter(gone(t)))
            k.out.add(t["pat_id"].filter(
                true(pc.or_(pc.is_in(t["pat_stat"], value_set=pa.array(INACTIVE)), t["deceased"]))))
            k.guars.add(t["guar_id"])
        return k


def people(f: Findings, parts: list[Store], keys: PatientKeys, dk: Store) -> dict[str, object]:
    """DUP1 (duplicate-person clusters), FAM1 and FAM2, a part of the patients at a time; returns the
    duplicate candidates. DUP1's rows are flagged at once, in the order they were read (``_i``)."""
    dups: dict[str, object] = {"pairs_count": 0, "pairs": [], "clusters": []}
    members = IdSet(duplicates=False)
    if dk.rows:
        dups = duplicate_candidates_in(dk, parts_for(dk))
        clusters: list[list[int]] = dups["clusters"]  # type: ignore[assignment]
        members.add(pa.array([p for c in clusters for p in c], pa.int64()))
    in_clusters: list[pa.Table] = []
    for part in parts:
        pat = part.table()
        if pat is None:
            continue
        in_clusters.append(pat.filter(members.isin(pat["pat_id"])))
        other = true(pc.and_(pc.is_valid(pat["guar_id"]), pc.not_equal(pat["guar_id"], pat["pat_id"])))
        missing = pc.and_(other, pc.invert(keys.ids.isin(pat["guar_id"])))
        deleted = pc.and_(other, keys.gone.isin(pat["guar_id"]))
        f.flag(
            "FAM1",
            "patient",
            pat,
            pc.or_(missing, deleted),
            detail={
                "guarantor_missing": count_true(missing),
                "guarantor_deleted_or_archived": count_true(deleted),
            },
        )
        fam2 = pc.and_(pc.and_(true(pc.equal(pat["pat_stat"], "N")), pat["no_dob"]),
                       keys.guars.isin(pat["pat_id"]))
        f.flag("FAM2", "patient", pat, fam2)
    if dk.rows and in_clusters:
        rows = pa.concat_tables(in_clusters)
        rows = rows.take(pc.sort_indices(rows["_i"]))
        f.flag("DUP1", "patient", rows, count=len(clusters), detail={"records_in_clusters": len(members)})
    return dups


def recalls(f: Findings, keys: PatientKeys, store: Store) -> None:
    """RC1: a second recall of a type for a patient, or an active recall of an inactive patient; a part
    of the patients at a time (``Store.partition``)."""
    if not store.rows:
        return
    for part in store.partition("pat_id", parts_for(store)):
        rc = part.table()
        if rc is None:
            continue
        dup = pc.is_in(rc["_i"], value_set=later_of_same(rc, ["pat_id", "recall_type"]))
        inactive = true(pc.and_(rc["active"], keys.out.isin(rc["pat_id"])))
        f.flag(
            "RC1",
            "recall",
            rc,
            pc.or_(dup, inactive),
            detail={
                "duplicate_patient_and_type": count_true(dup),
                "active_recall_inactive_patient": count_true(inactive),
            },
        )


def later_of_same(t: pa.Table, keys: list[str]) -> pa.Array:
    """``_i`` of the rows whose ``keys`` (none of them null) an earlier row (a smaller ``_i``) has too.
    A sort and a comparison with the row before: a group-by and a join held ~250 bytes a row."""
    s = t.select([*keys, "_i"]).take(pc.sort_indices(t, [(k, "ascending") for k in (*keys, "_i")]))
    if s.num_rows < 2:
        return pa.array([], pa.int64())
    same = pa.array(np.ones(s.num_rows - 1, dtype=bool))
    for k in keys:
        col = flat(s[k])
        same = pc.and_(same, pc.equal(col.slice(1), col.slice(0, s.num_rows - 1)))
    return flat(s["_i"]).slice(1).filter(true(same))


def code_defs(f: Findings, t: pa.Table | None) -> None:
    """CD2 on PROCCODE: retired codes, and custom codes when most codes are CDT."""
    if t is None:
        return
    cdt = true(pc.match_substring_regex(t["proc_code"], CDT))
    custom = pc.invert(cdt) if count_true(cdt) * 2 >= t.num_rows else pa.repeat(False, t.num_rows)
    f.flag(
        "CD2",
        "proccode",
        t,
        pc.or_(t["retired"], custom),
        detail={"retired_code_defined": count_true(t["retired"]), "custom_code_defined": count_true(custom)},
    )


def carriers(f: Findings, t: pa.Table | None) -> None:
    """INS3: carriers whose name key was seen on an earlier row."""
    if t is None:
        return
    seen: set[str] = set()
    later = []
    for k in t["k"].to_pylist():
        later.append(k in seen)
        seen.add(k)
    f.flag("INS3", "insco", t, pa.array(later, pa.bool_()))


_DATE_MIN = (dt.date.min - dt.date(1970, 1, 1)).days  # an open start: before every date
_DATE_MAX = (dt.date.max - dt.date(1970, 1, 1)).days  # an open end: after every date


def coverage(f: Findings, prim: pa.Table | None, per: pa.Table | None) -> None:
    """INS1: a primary coverage whose subscription period overlaps an earlier primary's.

    A patient's primaries are ordered by (start, end, id); one overlaps when it starts on or before
    the latest end among those before it. Column-wise (a sort and a running maximum per patient): a
    Python tuple per coverage cost ~150 MB at a 1 M-patient DSO."""
    if prim is None:
        return
    n = prim.group_by("pat_id").aggregate([("pat_id", "count")])
    many = flat(n["pat_id"].filter(pc.greater(n["pat_id_count"], 1)))
    cand = prim.filter(pc.is_in(prim["pat_id"], value_set=many))
    if not cand.num_rows:
        return
    k = cand.num_rows
    start = np.full(k, _DATE_MIN, np.int64)
    end = np.full(k, _DATE_MAX, np.int64)
    if per is not None:
        per = per.filter(pc.is_in(per["sub_rec_id"], value_set=flat(cand["sub_rec_id"])))
        if per.num_rows:  # a repeated subscription: its last row's period
            per = per.append_column("_n", pa.array(np.arange(per.num_rows)))
            last = per.group_by("sub_rec_id").aggregate([("_n", "max")])
            per = per.take(last["_n_max"])
            at = pc.index_in(cand["sub_rec_id"], value_set=flat(per["sub_rec_id"]))
            start = _days(pc.take(per["eff_dt"], at), _DATE_MIN)
            end = _days(pc.take(per["term_dt"], at), _DATE_MAX)
    pid = _ints(cand["pat_id"], np.iinfo(np.int64).min)  # patients without an id: one group, as before
    pk = _ints(cand["patins_id"], 0)
    order = np.lexsort((pk, end, start, pid))
    pid, start, end, pk = pid[order], start[order], end[order], pk[order]
    first = np.r_[True, pid[1:] != pid[:-1]]
    group = np.cumsum(first)  # a running maximum per patient: each group lifted above the one before
    span = _DATE_MAX - _DATE_MIN + 1
    latest = np.maximum.accumulate(end + group * span) - group * span
    earlier = np.r_[_DATE_MIN - 1, latest[:-1]]  # the latest end among the patient's earlier ones
    bad = pk[~first & (start <= earlier)]
    overlap = pc.is_in(cand["patins_id"], value_set=pa.array(bad, pa.int64()))
    f.flag("INS1", "patins", cand, overlap, detail={"overlapping_primary": len(bad)})


def coverage_parts(f: Findings, prim: Store, per: Store) -> None:
    """INS1 (``coverage``) a part of the patients at a time, each part with the subscription periods its
    primaries name (read from ``per`` piece by piece, in order)."""
    for part in prim.partition("pat_id", parts_for(prim)):
        t = part.table()
        if t is None:
            continue
        subs = flat(pc.unique(t["sub_rec_id"]))
        pieces = [b.filter(pc.is_in(b["sub_rec_id"], value_set=subs)) for b in per.batches()]
        coverage(f, t, pa.concat_tables(pieces) if pieces else None)


def _days(dates: pa.Array | pa.ChunkedArray, missing: int) -> np.ndarray:
    """Days since 1970 of each date; ``missing`` where it is null."""
    return _ints(pc.cast(flat(dates), pa.int32()), missing)


def _ints(values: pa.Array | pa.ChunkedArray, missing: int) -> np.ndarray:
    out: np.ndarray = pc.fill_null(flat(values).cast(pa.int64()), missing).to_numpy(zero_copy_only=False)
    return out


def shared_contacts(f: Findings, store: Store) -> None:
    """EM3: patients after the first with the same email (or cell phone); a part of the addresses
    (numbers) at a time (``Store.partition``)."""
    for col, label in (("email", "email"), ("cphone", "cell_phone")):
        for part in store.partition(col, parts_for(store), drop_null=True):
            t = part.table()
            if t is None:
                continue
            s = t.select([col, "_i"])
            first = s.group_by(col).aggregate([("_i", "min")])
            j = s.join(first, col)
            later = flat(j["_i"].filter(pc.not_equal(j["_i"], j["_i_min"])))
            m = pc.is_in(t["_i"], value_set=later)
            f.flag("EM3", "patient", t, m, detail={f"shared_{label}": count_true(m)})
