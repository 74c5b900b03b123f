"""id -> (a small integer, location) for a parent table (patients, appointments, claims), as its chunks
stream past: how staging and the audit place a child row (an appointment procedure, a claim line) with
its patient's location and shard.

Export ids are small non-negative integers, nearly dense, so the map is arrays indexed by id and a
lookup is an array take, whatever the number of rows. Per possible id it keeps a location code of 8
bits (16 past 253 locations, 32 past 65,533) and the value in the narrowest integer that holds every
value added so far (8 bits for a shard number, wider once a value needs it), and no value array at all
while every value is 0 (the audit's single shard, or a map of locations only): 1 byte per id for the
audit, 2 for staging. The first version kept the keys as Arrow arrays and looked them up with
``pc.index_in`` (a hash table of every key per chunk: 8 M at a 1 M-patient DSO); the next kept each
parent's patient id as int32 (5 bytes per id: ~68 MB for a DSO's 13.6 M appointment and claim ids,
where only the shard the patient id hashes to is ever used). The arrays grow by a quarter at a time.
Ids outside ``0 .. MAX_DENSE`` (negative, huge) are kept as Arrow arrays and found with
``pc.index_in``. The first row of a repeated id wins. The ids added are primary keys, never null (a row
without one is quarantined); a null key finds nothing.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["IdMap", "MAX_DENSE"]

MAX_DENSE = 1 << 28  # ids below live in the arrays (at most 1.3 GB; real exports: about 2 bytes a row)
_WIDTHS = (np.int8, np.int16, np.int32, np.int64)  # a value array's types, narrowest first
_ABSENT, _NO_LOC = 0, 1  # location codes: 0 = id not seen, 1 = seen without a location, 2.. = self._locs


def _flat(a: pa.Array | pa.ChunkedArray) -> pa.Array:
    return a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a


def _ints(a: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """An integer array as (int64 values with nulls as -1, validity), exactly (no float detour)."""
    a = a.cast(pa.int64())
    return (pc.fill_null(a, -1).to_numpy(zero_copy_only=False),
            pc.is_valid(a).to_numpy(zero_copy_only=False).astype(bool))


def _null_of(dtype: np.dtype | type) -> int:
    """A value array's null: its type's minimum (so a type holds values above it)."""
    return int(np.iinfo(dtype).min)


class IdMap:
    """id -> (value, location).

    Examples:
        >>> m = IdMap(); m.add(pa.array([5, 7]), pa.array([1, None]), pa.array(["L1", None]))
        >>> [a.to_pylist() for a in m.lookup(pa.array([7, 5, 9, None]))]
        [[None, 1, None, None], [None, 'L1', None, None]]
        >>> m = IdMap(); m.add(pa.array([5]), None, pa.array(["L1"]))  # locations only: values are 0
        >>> [a.to_pylist() for a in m.lookup(pa.array([5, 6]))], m.nbytes
        ([[0, None], ['L1', None]], 1024)
    """

    def __init__(self) -> None:
        self._val: np.ndarray | None = None  # None while every value added is 0 (no array to keep)
        self._code = np.zeros(0, dtype=np.uint8)  # wider once a location code needs it (``_code_of``)
        self._locs: list[str] = []
        self._loc_code: dict[str, int] = {}
        self._far: list[tuple[pa.Array, pa.Array, pa.Array]] = []  # ids outside the arrays' range

    def add(self, keys: pa.Array | pa.ChunkedArray, values: pa.Array | pa.ChunkedArray | None,
            loc: pa.Array | pa.ChunkedArray) -> None:
        """Map each of ``keys`` (not seen before) to its ``values`` (integers; None: 0 for every key)
        and ``loc``."""
        k_arr = _flat(keys).cast(pa.int64())
        zeros = pa.repeat(pa.scalar(0, pa.int64()), len(k_arr))
        v_arr = zeros if values is None else _flat(values).cast(pa.int64())
        l_arr = _flat(loc).cast(pa.string())
        k, valid = _ints(k_arr)
        near = valid & (k >= 0) & (k < MAX_DENSE)
        far = valid & ~near
        if far.any():
            m = pa.array(far)
            self._far.append((k_arr.filter(m), v_arr.filter(m), l_arr.filter(m)))
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
        vals, v_valid = _ints(v_arr)
        vals, v_valid = vals[idx], v_valid[idx]
        if self._val is None and (not v_valid.all() or vals.any()):
            self._val = np.zeros(len(self._code), dtype=_WIDTHS[0])  # the first value that is not 0
        if self._val is not None:
            self._fit(vals[v_valid])
            self._val[kn] = np.where(v_valid, vals, _null_of(self._val.dtype))
        dict_loc = pc.dictionary_encode(l_arr.take(pa.array(idx)))
        values_loc = dict_loc.dictionary.to_pylist()
        codes = np.array([self._code_of(v) for v in values_loc] or [0], dtype=np.int64)
        ind, ind_valid = _ints(dict_loc.indices)
        self._code[kn] = np.where(ind_valid, codes[np.maximum(ind, 0)], _NO_LOC)

    def _fit(self, vals: np.ndarray) -> None:
        """Widen the value array until it holds every one of ``vals`` (its nulls kept)."""
        assert self._val is not None
        if not len(vals):
            return
        lo, hi = int(vals.min()), int(vals.max())
        dtype = self._val.dtype
        if _null_of(dtype) < lo and hi <= np.iinfo(dtype).max:
            return
        wide_t = next(t for t in _WIDTHS if _null_of(t) < lo and hi <= np.iinfo(t).max)
        wide = self._val.astype(wide_t)
        wide[self._val == _null_of(dtype)] = _null_of(wide_t)
        self._val = wide

    def _code_of(self, loc: str) -> int:
        c = self._loc_code.get(loc)
        if c is None:
            c = self._loc_code[loc] = len(self._locs) + 2
            self._locs.append(loc)
            if c > np.iinfo(self._code.dtype).max:  # a 255th location: codes of 16 bits, then 32
                self._code = self._code.astype(np.uint16 if c <= np.iinfo(np.uint16).max else np.uint32)
        return c

    def _grow(self, top: int) -> None:
        if top < len(self._code):
            return
        size = max(top + 1, len(self._code) + len(self._code) // 4, 1024)
        code = np.zeros(size, dtype=self._code.dtype)
        code[: len(self._code)] = self._code
        self._code = code
        if self._val is not None:
            val = np.zeros(size, dtype=self._val.dtype)
            val[: len(self._val)] = self._val
            self._val = val

    def lookup(self, keys: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, pa.Array]:
        """``(value, location)`` of each key (values as int64); null where the id was never added (or
        is null)."""
        k_arr = _flat(keys).cast(pa.int64())
        k, valid = _ints(k_arr)
        near = valid & (k >= 0) & (k < len(self._code))
        code = np.zeros(len(k), dtype=np.int64)
        code[near] = self._code[k[near]]
        seen = code != _ABSENT
        if self._val is None:
            val_out = pa.array(np.zeros(len(k), dtype=np.int64), mask=~seen)
        else:
            null = _null_of(self._val.dtype)
            raw = np.full(len(k), null, dtype=self._val.dtype)
            raw[near] = self._val[k[near]]
            val_out = pa.array(raw.astype(np.int64), mask=~seen | (raw == null))
        loc_idx = pa.array((code - 2).astype(np.int64), mask=code < 2)
        loc_out = pc.take(pa.array(self._locs, pa.string()), loc_idx)
        far = valid & ~near & ((k < 0) | (k >= MAX_DENSE))
        if far.any() and self._far:
            fk = pa.concat_arrays([f[0] for f in self._far])
            idx = pc.index_in(k_arr, value_set=fk)
            fv = pc.take(pa.concat_arrays([f[1] for f in self._far]), idx)
            fl = pc.take(pa.concat_arrays([f[2] for f in self._far]), idx)
            m = pa.array(far)
            val_out, loc_out = pc.if_else(m, fv, val_out), pc.if_else(m, fl, loc_out)
        return val_out, loc_out

    @property
    def nbytes(self) -> int:
        return int(self._code.nbytes + (0 if self._val is None else self._val.nbytes))
