"""The parent id map staging and the audit place child rows with: array lookups, the same answers as
the hash lookup it replaced (first row of a repeated id wins, nulls, ids outside the arrays)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dos2hl.sources.idmap import MAX_DENSE, IdMap


class _HashMap:
    """The replaced implementation (keys as Arrow arrays, ``pc.index_in`` per lookup): the reference."""

    def __init__(self) -> None:
        self.k: list[pa.Array] = []
        self.p: list[pa.Array] = []
        self.loc: list[pa.Array] = []

    def add(self, keys: pa.Array, pat: pa.Array, loc: pa.Array) -> None:
        self.k.append(keys.cast(pa.int64()))
        self.p.append(pat.cast(pa.int64()))
        self.loc.append(loc.cast(pa.string()))

    def lookup(self, keys: pa.Array) -> tuple[pa.Array, pa.Array]:
        idx = pc.index_in(keys.cast(pa.int64()), value_set=pa.concat_arrays(self.k))
        return pc.take(pa.concat_arrays(self.p), idx), pc.take(pa.concat_arrays(self.loc), idx)


def _col(rng: np.random.Generator, values: np.ndarray, nulls: float) -> list[object]:
    return [None if rng.random() < nulls else v for v in values.tolist()]


def test_lookups_agree_with_the_hash_map() -> None:
    rng = np.random.default_rng(3)
    new, old = IdMap(), _HashMap()
    locs = np.array(["L001", "L002", "_none", "L017"])
    for _ in range(6):
        ids = rng.integers(0, 3_000, size=700)
        ids[:2] = [-5, MAX_DENSE + 11]  # outside the arrays
        keys = pa.array(ids, pa.int64())  # primary keys: never null (such a row is quarantined)
        pat = pa.array(_col(rng, rng.integers(1, 900, size=700), 0.05), pa.int64())
        loc = pa.array(_col(rng, locs[rng.integers(0, 4, size=700)], 0.05), pa.string())
        new.add(keys, pat, loc)
        old.add(keys, pat, loc)
        probe = rng.integers(-10, 4_000, size=2_000)
        probe[:3] = [MAX_DENSE + 11, -5, MAX_DENSE + 12]
        q = pa.array(_col(rng, probe, 0.03), pa.int64())
        got, want = new.lookup(q), old.lookup(q)
        assert got[0].to_pylist() == want[0].to_pylist()
        assert got[1].to_pylist() == want[1].to_pylist()


def test_an_empty_map_finds_nothing() -> None:
    pat, loc = IdMap().lookup(pa.array([1, None, 3], pa.int64()))
    assert pat.to_pylist() == loc.to_pylist() == [None, None, None]
    assert pat.type == pa.int64() and loc.type == pa.string()


def test_memory_is_bytes_per_id_not_a_copy_of_every_key() -> None:
    """A DSO's 8 M appointments: a map of shards costs 2 bytes per id (a location code and an 8-bit
    shard), one of locations only or of one shard 1 byte (no value array at all); the hash map held
    every key three times over, and the int32 patient ids before this 5 bytes per id."""
    n = 1_000_000
    shards, locs_only, one_shard = IdMap(), IdMap(), IdMap()
    for i in range(0, n, 250_000):
        k = pa.array(np.arange(i, i + 250_000))
        loc = pa.array(np.where(np.arange(250_000) % 2, "L001", "L002"))
        shards.add(k, pc.remainder(k, 16), loc)
        locs_only.add(k, None, loc)
        one_shard.add(k, pa.repeat(pa.scalar(0, pa.int32()), len(k)), loc)
    assert shards.nbytes <= 2 * 1.25 * n
    assert locs_only.nbytes == one_shard.nbytes <= 1 * 1.25 * n
    q = pa.array([5, n - 1, n + 5])
    assert [a.to_pylist() for a in shards.lookup(q)] == [[5, 15, None], ["L001", "L001", None]]
    assert [a.to_pylist() for a in locs_only.lookup(q)] == [[0, 0, None], ["L001", "L001", None]]
    assert one_shard.lookup(q)[0].to_pylist() == [0, 0, None]


def test_values_widen_from_8_bits_as_they_need_and_keep_their_nulls() -> None:
    m = IdMap()
    m.add(pa.array([1, 2]), pa.array([0, 0]), pa.array(["L1", "L1"]))
    assert m.nbytes == 1024  # every value 0 so far: no value array
    steps = [(3, None, 1), (4, 127, 1), (5, -127, 1), (6, 300, 2), (7, 2**31 - 1, 4), (8, -(2**31), 8),
             (9, 2**40, 8)]
    for key, value, width in steps:
        m.add(pa.array([key]), pa.array([value], pa.int64()), pa.array(["L2"]))
        assert m._val is not None and m._val.itemsize == width
        got = m.lookup(pa.array([1, 2, *(k for k, _, _ in steps if k <= key)]))[0].to_pylist()
        assert got == [0, 0, *(v for k, v, _ in steps if k <= key)]


def test_a_patient_id_past_int32_widens_the_map_and_keeps_every_answer() -> None:
    rng = np.random.default_rng(5)
    new, old = IdMap(), _HashMap()
    for big in (False, True, False):
        ids = rng.integers(0, 5_000, size=500)
        pats = rng.integers(1, 10_000, size=500)
        if big:
            pats[:3] = [2**31, 2**40, -(2**31)]  # past int32 either way, and int32's own minimum
        keys, pat = pa.array(ids, pa.int64()), pa.array(_col(rng, pats, 0.05), pa.int64())
        loc = pa.array(["L001"] * 500, pa.string())
        new.add(keys, pat, loc)
        old.add(keys, pat, loc)
        q = pa.array(rng.integers(-3, 5_500, size=3_000), pa.int64())
        got, want = new.lookup(q), old.lookup(q)
        assert got[0].to_pylist() == want[0].to_pylist() and got[1].to_pylist() == want[1].to_pylist()
    assert new.nbytes >= 12 * 5_000 * 0.8  # widened: int64 patient ids from the second chunk on


def test_location_codes_widen_past_253_and_65533_locations_and_keep_every_answer() -> None:
    rng = np.random.default_rng(7)
    new, old = IdMap(), _HashMap()
    for locs in (3, 300, 70_000):  # 8-bit codes, then 16, then 32
        ids = rng.integers(0, 200_000, size=20_000)
        keys = pa.array(ids, pa.int64())
        pat = pa.array(rng.integers(1, 1_000, size=20_000), pa.int64())
        loc = pa.array([f"L{v:05d}" for v in rng.integers(0, locs, size=20_000)], pa.string())
        new.add(keys, pat, loc)
        old.add(keys, pat, loc)
        q = pa.array(rng.integers(-3, 210_000, size=5_000), pa.int64())
        got, want = new.lookup(q), old.lookup(q)
        assert got[0].to_pylist() == want[0].to_pylist() and got[1].to_pylist() == want[1].to_pylist()
