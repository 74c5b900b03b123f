"""The audit's index of an export's document files, compact at a DSO's ~10 M files (issue 16).

A Python ``dict`` key -> size, a ``dict`` name -> [(parent, key)] and a ``set`` of unmatched keys cost
hundreds of bytes a file (1-2 GB at 10 M). Here every file is a position ``i`` in the export's key
array (Arrow chunks in listing order: the key's bytes and a 4-byte offset; never sorted, which would
copy every key twice) and costs, besides its key, 8 bytes of size, 8 of name hash, 4 of position in
name order and 1 of "unmatched" flag:

- ``sizes[i]``: int64, aligned with ``keys``; a link, FIFO or device (``UNSAFE_FILE``) or a file gone
  since the listing (``GONE``) stays in place and is never a candidate nor an orphan;
- the lower-cased file name's hash, sorted, with the positions in that order: a name's files are the
  range ``searchsorted(hash)``, each checked against its key (a hash collision never matches a wrong
  file) and returned in key order, as the dict of sorted keys used to;
- ``unmatched[i]``: a bool array.

Hashes are Python's ``hash`` of the lower-cased name: the index lives and dies in one process.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np
import pyarrow as pa

__all__ = ["DocumentIndex", "GONE", "UNSAFE_FILE"]

UNSAFE_FILE = -2  # a size that says: a link, FIFO or device under IMAGES (docfiles refused it)
GONE = -3  # a size that says: the file went away between the listing and its stat (left out)
_BATCH = 1 << 13


def iter_keys(keys: pa.Array | pa.ChunkedArray) -> Iterator[tuple[int, str]]:
    """(position, key) a batch at a time: never every key as a Python string at once."""
    for start in range(0, len(keys), _BATCH):
        for j, key in enumerate(keys.slice(start, _BATCH).to_pylist()):
            yield start + j, key


def _name(key: str) -> str:
    return key.rpartition("/")[2].lower()


class DocumentIndex:
    """The document files an audit matches DOCUMENT rows against; see the module's docstring."""

    def __init__(self, keys: pa.Array | pa.ChunkedArray, sizes: np.ndarray) -> None:
        sizes = np.asarray(sizes, dtype=np.int64)
        if len(sizes) != len(keys):
            raise ValueError("one size per key")
        self.keys = keys
        self.sizes = sizes
        self.unsafe = int(np.count_nonzero(sizes == UNSAFE_FILE))
        self.unmatched = (sizes != UNSAFE_FILE) & (sizes != GONE)  # the files kept: candidates and orphans
        hashes = np.empty(len(keys), dtype=np.int64)
        for i, key in iter_keys(keys):
            hashes[i] = hash(_name(key))
        order = np.argsort(hashes)
        self.order = order.astype(np.int32) if len(keys) < 2**31 else order
        del order
        self.hashes = hashes[self.order]
        del hashes

    @classmethod
    def from_sizes(cls, sizes: Mapping[str, int]) -> DocumentIndex:
        """From key -> size, in the mapping's order (small exports and tests)."""
        return cls(pa.array(list(sizes), pa.string()), np.fromiter(sizes.values(), np.int64, len(sizes)))

    def __len__(self) -> int:
        """The files kept (not unsafe, not gone)."""
        return int(np.count_nonzero((self.sizes != UNSAFE_FILE) & (self.sizes != GONE)))

    @property
    def nbytes(self) -> int:
        """The index's own memory, keys included."""
        return int(self.keys.nbytes + self.sizes.nbytes + self.hashes.nbytes + self.order.nbytes
                   + self.unmatched.nbytes)

    def candidates(self, name: str) -> list[tuple[str, int]]:
        """(lower-cased parent folder, position) of every file kept called ``name`` (any case), in key
        order."""
        low = name.lower()
        h = hash(low)
        lo = int(np.searchsorted(self.hashes, h, side="left"))
        hi = int(np.searchsorted(self.hashes, h, side="right"))
        found = []
        for i in self.order[lo:hi].tolist():
            if self.sizes[i] in (UNSAFE_FILE, GONE):
                continue
            key = self.keys[i].as_py()
            parts = key.split("/")
            if parts[-1].lower() == low:
                found.append((key, parts[-2].lower() if len(parts) > 1 else "", i))
        found.sort()
        return [(parent, i) for _key, parent, i in found]

    def match(self, i: int) -> int:
        """Mark file ``i`` matched by a row; its size (-1: unknown)."""
        self.unmatched[i] = False
        return int(self.sizes[i])

    def orphans(self) -> int:
        return int(np.count_nonzero(self.unmatched))

    def to_dict(self) -> dict[str, int]:
        """Key -> size of the files kept (tests and small exports only)."""
        return {k: v for k, v in zip(self.keys.to_pylist(), self.sizes.tolist(), strict=True)
                if v not in (UNSAFE_FILE, GONE)}
