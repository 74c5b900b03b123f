"""id -> (patient id, location) for a parent table (patients, appointments, claims), as its chunks stream
past: how staging and the audit place a child row (an appointment procedure, a claim line) with its
patient.

Export ids are small non-negative integers, nearly dense, so the map is two arrays indexed by id
(5 bytes per possible id: the patient id as int32 while every one fits, int64 after the first that
does not, and a location code of 8 bits, 16 past 253 locations, 32 past 65,533) and a lookup is an
array take, whatever the number of rows. The arrays grow by a quarter at a time (a DSO's 8 M
appointment ids: ~50 MB, where 32-bit location codes came to ~80 MB, and doubling and int64 patient
ids to up to 200 MB). The first
version kept the keys as Arrow arrays and looked them up with ``pc.index_in``, which builds a hash
table of every key on each call: at a 1 M-patient DSO (8 M appointments) that is a hash table of
8 M keys per chunk of appointment procedures, and the keys three times over in memory. Ids outside
``0 .. MAX_DENSE`` (negative, huge) keep that path. The first row of a repeated id wins, as before.
The ids added are primary keys, never null (a row without one is quarantined); a null key finds nothing.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["IdMap", "MAX_DENSE"]

_INT32_MAX = np.iinfo(np.int32).max
MAX_DENSE = 1 << 28  # ids below live in the arrays (at most 3 GB; real exports: about 12 bytes a row)
_NULL_PAT = np.iinfo(np.int64).min
_NULL_PAT32 = np.iinfo(np.int32).min  # the null patient while the ids are int32
_ABSENT, _NO_LOC = 0, 1  # location codes: 0 = id not seen, 1 = seen without a location, 2.. = self._locs


def _flat(a: pa.Array | pa.ChunkedArray) -> pa.Array:
    return a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a


def _ints(a: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """An integer array as (int64 values with nulls as -1, validity), exactly (no float detour)."""
    a = a.cast(pa.int64())
    return (pc.fill_null(a, -1).to_numpy(zero_copy_only=False),
            pc.is_valid(a).to_numpy(zero_copy_only=False).astype(bool))


class IdMap:
    """id -> (patient id, location).

    Examples:
        >>> m = IdMap(); m.add(pa.array([5, 7]), pa.array([1, None]), pa.array(["L1", None]))
        >>> [a.to_pylist() for a in m.lookup(pa.array([7, 5, 9, None]))]
        [[None, 1, None, None], [None, 'L1', None, None]]
    """

    def __init__(self) -> None:
        self._pat: np.ndarray = np.zeros(0, dtype=np.int32)  # int64 once a patient id needs it
        self._code = np.zeros(0, dtype=np.uint8)  # wider once a location code needs it (``_code_of``)
        self._locs: list[str] = []
        self._loc_code: dict[str, int] = {}
        self._far: list[tuple[pa.Array, pa.Array, pa.Array]] = []  # ids outside the arrays' range

    def add(self, keys: pa.Array | pa.ChunkedArray, pat: pa.Array | pa.ChunkedArray,
            loc: pa.Array | pa.ChunkedArray) -> None:
        k_arr = _flat(keys).cast(pa.int64())
        p_arr = _flat(pat).cast(pa.int64())
        l_arr = _flat(loc).cast(pa.string())
        k, valid = _ints(k_arr)
        near = valid & (k >= 0) & (k < MAX_DENSE)
        far = valid & ~near
        if far.any():
            m = pa.array(far)
            self._far.append((k_arr.filter(m), p_arr.filter(m), l_arr.filter(m)))
        if not near.any():
            return
        idx = np.flatnonzero(near)
        kn = k[idx]
        _, first = np.unique(kn, return_index=True)  # the first row of an id repeated in this chunk
        idx, kn = idx[first], kn[first]
        self._grow(int(kn.max()))
        new = self._code[kn] == _ABSENT  # and never over an id an earlier chunk had
        idx, kn = idx[new], kn[new]
        if not len(kn):
            return
        pv, p_valid = _ints(p_arr)
        pats = pv[idx]
        narrow = self._pat.dtype == np.int32
        if narrow and len(pats) and (pats.min() <= _NULL_PAT32 or pats.max() > _INT32_MAX):
            wide = self._pat.astype(np.int64)  # a patient id past int32: every one as int64 from now on
            wide[wide == _NULL_PAT32] = _NULL_PAT
            self._pat = wide
        self._pat[kn] = np.where(p_valid[idx], pats, self._null)
        dict_loc = pc.dictionary_encode(l_arr.take(pa.array(idx)))
        values = dict_loc.dictionary.to_pylist()
        codes = np.array([self._code_of(v) for v in values] or [0], dtype=np.int64)
        ind, ind_valid = _ints(dict_loc.indices)
        self._code[kn] = np.where(ind_valid, codes[np.maximum(ind, 0)], _NO_LOC)

    def _code_of(self, loc: str) -> int:
        c = self._loc_code.get(loc)
        if c is None:
            c = self._loc_code[loc] = len(self._locs) + 2
            self._locs.append(loc)
            if c > np.iinfo(self._code.dtype).max:  # a 255th location: codes of 16 bits, then 32
                self._code = self._code.astype(np.uint16 if c <= np.iinfo(np.uint16).max else np.uint32)
        return c

    @property
    def _null(self) -> int:
        return _NULL_PAT32 if self._pat.dtype == np.int32 else _NULL_PAT

    def _grow(self, top: int) -> None:
        if top < len(self._code):
            return
        size = max(top + 1, len(self._code) + len(self._code) // 4, 1024)
        pat = np.full(size, self._null, dtype=self._pat.dtype)
        pat[: len(self._pat)] = self._pat
        code = np.zeros(size, dtype=self._code.dtype)
        code[: len(self._code)] = self._code
        self._pat, self._code = pat, code

    def lookup(self, keys: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, pa.Array]:
        """``(patient id, location)`` of each key; null where the id was never added (or is null)."""
        k_arr = _flat(keys).cast(pa.int64())
        k, valid = _ints(k_arr)
        near = valid & (k >= 0) & (k < len(self._code))
        code = np.zeros(len(k), dtype=np.int64)
        pat = np.full(len(k), self._null, dtype=self._pat.dtype)
        code[near] = self._code[k[near]]
        pat[near] = self._pat[k[near]]
        seen = code != _ABSENT
        pat_out = pa.array(pat.astype(np.int64), mask=~seen | (pat == self._null))
        loc_idx = pa.array((code - 2).astype(np.int64), mask=code < 2)
        loc_out = pc.take(pa.array(self._locs, pa.string()), loc_idx)
        far = valid & ~near & ((k < 0) | (k >= MAX_DENSE))
        if far.any() and self._far:
            fk = pa.concat_arrays([f[0] for f in self._far])
            idx = pc.index_in(k_arr, value_set=fk)
            fp = pc.take(pa.concat_arrays([f[1] for f in self._far]), idx)
            fl = pc.take(pa.concat_arrays([f[2] for f in self._far]), idx)
            m = pa.array(far)
            pat_out, loc_out = pc.if_else(m, fp, pat_out), pc.if_else(m, fl, loc_out)
        return pat_out, loc_out

    @property
    def nbytes(self) -> int:
        return int(self._pat.nbytes + self._code.nbytes)
