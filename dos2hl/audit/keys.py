"""Integer key sets for the audit's key checks (duplicate primary keys, orphan foreign keys).

Export ids are small non-negative integers, nearly dense (``1..rows``), so a set of them is a bitmap:
one bit per possible id, whatever the number of rows. Keeping every key as int64 instead (as the
audit first did) cost 8 bytes per row of every table: about 1 GB for a 1 M-patient DSO and growing
with the export. The rare id outside ``0 .. MAX_DENSE`` (negative, or huge) is kept as a value.

A set of references keeps only the ids its parent did not hold when they were read
(``add_unresolved``): most references point back to rows already read (a claim line to its ledger row,
a procedure to its appointment), so only the forward ones (a procedure to a ledger row read later)
cost bits. Bitmaps grow by a quarter at a time, not double: doubling left up to half of each unused.

Samples are the smallest ids (a bitmap has no order of appearance); duplicates are reported by the
order in which their second occurrence was read.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

__all__ = ["IdSet", "MAX_DENSE"]

MAX_DENSE = 1 << 34  # ids up to here live in the bitmap (2 GB of bits at most; real exports: rows/8 bytes)


def _ids(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The non-null values of an integer array as int64."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    out: np.ndarray = arr.drop_null().to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    return out


class IdSet:
    """A set of int64 ids that also finds the ids added more than once.

    Examples:
        >>> s = IdSet(); s.add(pa.array([3, 1, 3])); s.add(pa.array([1, 7]))
        >>> s.duplicates().tolist(), len(s), s.missing_from(IdSet()).tolist()
        ([3, 1], 3, [1, 3, 7])
    """

    def __init__(self, *, duplicates: bool = True) -> None:
        self._bits = np.zeros(0, dtype=np.uint8)
        self._other: list[np.ndarray] = []  # ids outside the bitmap's range, as read
        self._dups: list[np.ndarray] = []
        # A foreign key's values repeat by nature (every procedure of an appointment names it): noting
        # them would keep an array that grows with the rows, so a set of references does not.
        self._track = duplicates

    def add(self, arr: pa.Array | pa.ChunkedArray) -> None:
        """Add the non-null ids of ``arr`` (an integer array), noting the ones already present."""
        self._add(_ids(arr))

    def _add(self, ids: np.ndarray) -> None:
        if not len(ids):
            return
        dense = (ids >= 0) & (ids < MAX_DENSE)
        if not dense.all():
            far = ids[~dense]
            self._other.append(far if self._track else np.unique(far))
            ids = ids[dense]
        u, counts = np.unique(ids, return_counts=True)
        if not len(u):
            return
        self._grow(int(u[-1]))
        if self._track:
            dup = u[self._test(u) | (counts > 1)]
            if len(dup):
                self._dups.append(dup)
        np.bitwise_or.at(self._bits, u >> 3, (1 << (u & 7)).astype(np.uint8))

    def add_unresolved(self, arr: pa.Array | pa.ChunkedArray, parent: IdSet | None) -> None:
        """Add the non-null ids of ``arr`` that ``parent`` (the referred table's keys read so far; None:
        none yet) does not hold: ``missing_from(parent)`` at the end gives the same answer as when every
        id was added, since ``parent`` only grows."""
        ids = _ids(arr)
        self._add(ids if parent is None else ids[~parent.contains(ids)])

    def _grow(self, top: int) -> None:
        need = (top >> 3) + 1
        if need > len(self._bits):
            bigger = np.zeros(max(need, len(self._bits) + len(self._bits) // 4), dtype=np.uint8)
            bigger[: len(self._bits)] = self._bits
            self._bits = bigger

    def _test(self, ids: np.ndarray) -> np.ndarray:
        """Which of ``ids`` (non-negative) are in the bitmap."""
        out = np.zeros(len(ids), dtype=bool)
        inside = ids < len(self._bits) * 8
        i = ids[inside]
        out[inside] = ((self._bits[i >> 3] >> (i & 7).astype(np.uint8)) & 1).astype(bool)
        return out

    def _others(self) -> np.ndarray:
        return np.concatenate(self._other) if self._other else np.zeros(0, dtype=np.int64)

    def contains(self, ids: np.ndarray) -> np.ndarray:
        """Membership of each of ``ids``."""
        dense = (ids >= 0) & (ids < MAX_DENSE)
        out = np.zeros(len(ids), dtype=bool)
        out[dense] = self._test(ids[dense])
        if self._other and not dense.all():
            out[~dense] = np.isin(ids[~dense], self._others())
        return out

    def isin(self, arr: pa.Array | pa.ChunkedArray) -> pa.Array:
        """Membership of each value of ``arr`` (an integer array) as a boolean array; null: false."""
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        arr = arr.cast(pa.int64())
        ids = arr.fill_null(0).to_numpy(zero_copy_only=False)
        valid = arr.is_valid().to_numpy(zero_copy_only=False)
        return pa.array(self.contains(ids) & valid)

    def values(self) -> np.ndarray:
        """Every id, ascending."""
        dense = np.flatnonzero(np.unpackbits(self._bits, bitorder="little")).astype(np.int64)
        return np.union1d(dense, self._others()) if self._other else dense

    def __len__(self) -> int:
        return int(np.unpackbits(self._bits).sum()) + len(np.unique(self._others()))

    def duplicates(self) -> np.ndarray:
        """Ids added more than once, each once, in the order their second occurrence was read."""
        if not self._track:
            raise ValueError("this IdSet was made with duplicates=False: it does not note repeated ids")
        other = self._others()
        vals, counts = np.unique(other, return_counts=True)
        parts = [*self._dups, vals[counts > 1]]
        flat = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        _, first = np.unique(flat, return_index=True)
        return flat[np.sort(first)]

    def missing_from(self, parent: IdSet) -> np.ndarray:
        """Ids of this set that ``parent`` does not hold, ascending."""
        n = min(len(self._bits), len(parent._bits))
        lost = self._bits.copy()
        lost[:n] &= ~parent._bits[:n]
        dense = np.flatnonzero(np.unpackbits(lost, bitorder="little")).astype(np.int64)
        if not self._other:
            return dense
        other = np.unique(self._others())
        return np.union1d(dense, other[~parent.contains(other)])

    @property
    def nbytes(self) -> int:
        return int(self._bits.nbytes + sum(a.nbytes for a in self._other) + sum(a.nbytes for a in self._dups))
