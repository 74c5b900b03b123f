"""The audit's key sets: integer ids as bitmaps, the same answers as keeping every key, at a fraction
of the memory (a DSO export has 100 M+ keys)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from dos2hl.audit import _Audit, _int_ref
from dos2hl.audit.keys import MAX_DENSE, IdSet
from dos2hl.model import TABLES

TABLES_FKS = [(t, c.name) for t, spec in TABLES.items() for c in spec.columns if _int_ref(c)]


def _chunks(rng: np.random.Generator, n: int) -> list[pa.Array]:
    ids = rng.integers(0, 5_000, size=n).astype(object)
    ids[rng.integers(0, n, size=20)] = None
    ids[:3] = [-4, MAX_DENSE + 9, -4]  # outside the bitmap: kept as values
    return [pa.array(ids[i:i + 997].tolist(), pa.int64()) for i in range(0, n, 997)]


def test_duplicates_and_missing_agree_with_counting_every_key() -> None:
    rng = np.random.default_rng(7)
    child, parent = IdSet(), IdSet()
    seen: Counter[int] = Counter()
    order: list[int] = []
    for arr in _chunks(rng, 6_000):
        child.add(arr)
        for v in arr.to_pylist():
            if v is None:
                continue
            seen[v] += 1
            if seen[v] == 2:
                order.append(v)
    parent_ids = set(range(0, 5_000, 3)) | {MAX_DENSE + 9}
    parent.add(pa.array(sorted(parent_ids), pa.int64()))
    assert len(child) == len(seen)
    assert child.values().tolist() == sorted(seen)
    assert set(child.duplicates().tolist()) == {v for v, c in seen.items() if c > 1}
    # within a chunk the order is by value; across chunks, by the chunk where the second copy was read
    assert sorted(child.duplicates().tolist()) == sorted(order)
    assert child.missing_from(parent).tolist() == sorted(set(seen) - parent_ids)
    assert child.contains(np.array([-4, 1, MAX_DENSE + 9, MAX_DENSE + 10])).tolist() == \
        [True, 1 in seen, True, False]


def test_keys_cost_bits_not_int64s_per_row() -> None:
    """A million sequential ids (a DSO's patients) take ~125 KB, where int64 arrays took 8 MB."""
    s = IdSet()
    for i in range(0, 1_000_000, 65_536):
        s.add(pa.array(np.arange(i + 1, min(i + 65_537, 1_000_001)), pa.int64()))
    assert len(s) == 1_000_000 and not len(s.duplicates())
    assert s.nbytes < 300_000


def test_a_reference_set_stays_flat_while_its_values_repeat() -> None:
    """A foreign key names the same parent over and over (8 M appointment procedures name 1 M
    appointments): a set of references notes no duplicates, so it does not grow with the rows."""
    refs, keys = IdSet(duplicates=False), IdSet()
    block = pa.array(np.repeat(np.arange(1, 5_001), 4), pa.int64())
    for _ in range(50):  # 1 M references to the same 5 000 ids
        refs.add(block)
    keys.add(block)
    assert len(refs) == 5_000 and refs.nbytes < 1_000
    assert keys.nbytes > 5_000 * 8  # a key set notes the repeats (it reports duplicate keys)
    assert refs.missing_from(IdSet()).tolist() == list(range(1, 5_001))
    refs.add(pa.array([-3, -3, -3], pa.int64()))  # outside the bitmap: kept once, not per row
    assert refs.nbytes < 1_000 and refs.contains(np.array([-3, 7])).tolist() == [True, True]


def test_unresolved_references_give_the_same_orphans_and_keep_only_the_forward_ones() -> None:
    rng = np.random.default_rng(11)
    every, pending, parent = IdSet(duplicates=False), IdSet(duplicates=False), IdSet()
    for i, refs in enumerate(_chunks(rng, 8_000)):
        parent.add(pa.array(np.arange(i * 500, i * 500 + 500) * 2, pa.int64()))  # the parent grows as read
        every.add(refs)
        pending.add_unresolved(refs, parent)
    assert pending.missing_from(parent).tolist() == every.missing_from(parent).tolist()
    assert len(pending.missing_from(parent)) > 100  # odd ids: never in the parent
    back, fresh = IdSet(duplicates=False), IdSet(duplicates=False)
    back.add_unresolved(pa.array(np.arange(0, 8_000, 2), pa.int64()), parent)  # all read already
    fresh.add_unresolved(pa.array([5, None, 7], pa.int64()), None)  # no parent read yet: every id
    assert back.nbytes == 0 and not len(back.missing_from(parent))
    assert fresh.values().tolist() == [5, 7]


def test_the_audit_keeps_bits_only_for_references_not_yet_resolved(practice: Path) -> None:
    """A claim line's claim, an appointment's patient, a ledger row's reversal: read after what they
    name, so they cost no bits; a procedure's ledger row (read later) does. Same orphans either way."""
    from dos2hl.api import open_export
    from dos2hl.sources.reader import ExportReader

    def audit(unresolved: bool) -> _Audit:
        reader = ExportReader(open_export(practice / "export"))
        reader.preflight()
        acc = _Audit(reader)
        if not unresolved:  # every reference kept, as before
            for key in TABLES_FKS:
                refs = acc.fk_ids[key]

                def every(arr: pa.Array, _parent: IdSet | None, refs: IdSet = refs) -> None:
                    refs.add(arr)

                refs.add_unresolved = every  # type: ignore[method-assign]
        for chunk in reader.iter_all():
            acc.add(chunk)
        return acc

    new, old = audit(True), audit(False)
    assert new.orphans() == old.orphans()
    for back in (("claimln", "claim_id"), ("appt", "pat_id"), ("ledger", "pat_id"), ("apptproc", "appt_id")):
        assert new.fk_ids[back].nbytes == 0 < old.fk_ids[back].nbytes
    assert new.fk_ids[("apptproc", "trans_id")].nbytes > 0  # the ledger is read after the procedures
    assert sum(s.nbytes for s in new.fk_ids.values()) < sum(s.nbytes for s in old.fk_ids.values()) / 2


def test_the_end_phase_starts_without_the_key_sets_parent_maps_or_distinct_values(practice: Path) -> None:
    """Once read, the orphans and duplicate keys are decided and what grows with the export's ids (the
    key bitmaps, the parent maps) and the columns' distinct values go, before the checks that need every
    table: a DSO's audit peaks there. The results stay those of the full state."""
    from dos2hl.api import open_export
    from dos2hl.sources.reader import ExportReader

    reader = ExportReader(open_export(practice / "export"))
    reader.preflight()
    acc = _Audit(reader)
    for chunk in reader.iter_all():
        acc.add(chunk)
    before = acc.orphans(), acc.duplicate_pks()
    columns = {t: {c: a.to_dict() for c, a in cols.items()} for t, cols in acc.columns.items()}
    held = sum(s.nbytes for s in acc.pk_ids.values()) + acc.partition.patients.nbytes
    assert held > 0 and any(a.distinct_parts for cols in acc.columns.values() for a in cols.values())
    assert acc.end_reading() == before
    assert not acc.pk_ids and not acc.fk_ids and not acc.pks and not acc.fk_values
    assert acc.partition.patients.nbytes == 0 and all(m.nbytes == 0 for m in acc.partition.parents.values())
    assert not any(a.distinct_parts for cols in acc.columns.values() for a in cols.values())
    assert {t: {c: a.to_dict() for c, a in cols.items()} for t, cols in acc.columns.items()} == columns
    with pytest.raises(RuntimeError):
        acc.columns["patient"]["pat_id"].add(pa.array([1]))


def test_references_and_keys_are_decided_and_dropped_once_their_tables_are_read(practice: Path) -> None:
    """A reference's orphans are decided once it and its parent can get no more rows, a table's
    duplicate keys once no open table refers to it: the procedures' ledger references and the ledger's
    keys go after the claim lines, not at the end. The answers are those of the end."""
    from dos2hl.api import open_export
    from dos2hl.sources.reader import ExportReader

    def audit(settle: bool) -> tuple[_Audit, dict[str, set[str]]]:
        export = open_export(practice / "export")
        reader = ExportReader(export)
        reader.preflight()
        acc = _Audit(reader)
        held: dict[str, set[str]] = {}
        for chunk in reader.iter_all():
            if settle:
                acc.settle(export.open_tables(reader.stats[chunk.file].table))
            held[chunk.table] = {*acc.pk_ids, *(f"{t}.{c}" for t, c in acc.fk_ids)}
            acc.add(chunk)
        return acc, held

    (new, held), (old, _) = audit(True), audit(False)
    assert new.orphans() == old.orphans() and new.duplicate_pks() == old.duplicate_pks()
    assert new.settled_orphans and new.settled_duplicates
    late = new.settled_orphans[("ledger", "claim_id")]  # a forward reference (claims are read later)
    assert late is not None and late in old.orphans()
    assert {"apptproc.trans_id", "txitem.trans_id"} <= held["ledger"]  # waiting for the ledger's keys
    assert not {"apptproc.trans_id", "txitem.trans_id"} & held["claimln"]
    assert "ledger" in held["claimln"]  # claim lines name ledger rows
    assert not {"ledger", "claimln", "commlog"} & held["recall"]
    assert "appt" in held["recall"]  # a recall names its scheduled appointment
    assert "txplan.doc_id" in held["recall"]  # the documents are read last


def test_audit_keeps_no_per_row_integer_keys() -> None:
    acc = _Audit.__new__(_Audit)  # only the key accumulators
    from collections import defaultdict

    acc.pks, acc.fk_values = defaultdict(list), defaultdict(list)
    acc.pk_ids, acc.fk_ids = defaultdict(IdSet), defaultdict(IdSet)
    acc.settled_orphans, acc.settled_duplicates = {}, {}
    acc.pk_ids["patient"].add(pa.array([1, 2, 3, 3], pa.int64()))
    acc.fk_ids[("appt", "pat_id")].add(pa.array([0, 2, 9, 9], pa.int64()))
    assert acc.duplicate_pks() == [{"table": "patient", "duplicate_keys": 1, "sample_ids": ["3"]}]
    assert acc.orphans() == [{"table": "appt", "column": "pat_id", "refers_to": "patient", "missing_ids": 1,
                              "sample_ids": ["9"]}]  # 0 is the "no patient" placeholder
    assert not acc.pks  # nothing kept per row for integer keys


def test_distinct_counts_are_exact_up_to_the_bound_and_kept_as_arrow_arrays() -> None:
    from dos2hl.audit import _ColumnAcc

    rng = np.random.default_rng(5)
    acc, seen = _ColumnAcc("str", "D"), set()
    for _ in range(80):  # more chunks than are kept before folding
        vals = [None if rng.random() < 0.1 else f"v{int(x)}" for x in rng.integers(0, 3_000, size=500)]
        acc.add(pa.array(vals, pa.string()))
        seen.update(v for v in vals if v is not None)
    assert acc.to_dict()["distinct"] == len(seen)
    assert sum(p.nbytes for p in acc.distinct_parts) < 20 * len(seen)  # ~10 bytes a value, not a set's ~100


@pytest.mark.parametrize("width", [8, 400])  # ids; a note column's texts
def test_distinct_values_are_bounded_in_bytes_whatever_the_column_holds(width: int) -> None:
    """A column keeps its distinct values up to ``DISTINCT_BYTES`` (and a chunk's), then reports how many
    it had seen and keeps none: long texts pass the bound after a few hundred values, ids after ~30 k."""
    from dos2hl.audit import DISTINCT_BYTES, _ColumnAcc

    acc, most = _ColumnAcc("str", "D"), 0
    for i in range(0, 200_000, 10_000):
        ids = np.arange(i, i + 10_000)
        acc.add(pa.array(ids) if width == 8 else pa.array([f"{n:0{width}d}" for n in ids]))
        most = max(most, sum(p.nbytes for p in acc.distinct_parts))
    chunk = 10_000 * (width + (0 if width == 8 else 4))
    assert most <= DISTINCT_BYTES + chunk  # what is kept stays bounded (the old 100 k values: 42 MB of texts)
    d = acc.to_dict()["distinct"]
    assert isinstance(d, str) and d.startswith(">=") and not acc.distinct_parts
    assert DISTINCT_BYTES // (width + 4) <= int(d[2:]) <= 200_000  # what it saw before the bound: a floor
