"""Staging's partition buffers: rows held under one memory budget, spilled to a file per table, and
each (location, shard) partition written as Parquet once its table is complete.

Why a spill: a staging writes ``tables x locations x shards`` Parquet files (a 60-location DSO: 960 a
table). Writing them as rows came meant a Parquet writer open per partition, each keeping the
metadata of every row group it wrote (~0.9 KB a column chunk, freed only when the file closes), and
rows buffered per partition as a table per chunk and partition (a few KB of Arrow and Python objects
each, uncounted, for a few rows): both grew with the export and the locations (the 100 k-patient,
60-location staging's peak RSS was 1.8x the group's). Now a table's chunks are kept whole, sorted by
partition; past the budget they are spilled as a run, one Arrow IPC message per partition, to the
table's spill file (what is kept is an offset, a length and a row count per message); when the table
is complete each partition's messages are read back in order and written as one Parquet file of row
groups of up to ``part_rows`` rows, one file open at a time.

Memory is bounded by one total for every table of the staging (``Budget``): the buffered chunks plus
the runs queued for the writer thread. A table spills at half of it; past it, the tables holding the
most spill until three quarters, and if the queued runs still pass it the reader waits for them.
Rows keep their order within a partition (a stable sort, runs in order, one writer thread), so the
staged rows and their order are the same whatever the budget.
"""

from __future__ import annotations

import os
import threading
from array import array
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

__all__ = ["Budget", "Part", "PartitionSpool", "Writes", "ROW_GROUP_BYTES"]

ROW_GROUP_BYTES = 64 << 20  # a final row group also ends here (wide text rows: notes)


class Writes:
    """One background thread that writes while the main thread reads and parses.

    pyarrow releases the GIL while serializing and encoding, so on two cores reading and writing
    overlap. Writes stay in order (one thread, FIFO); at most ``depth`` wait at once.
    """

    def __init__(self, depth: int = 4) -> None:
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dos2hl-parquet")
        self.slots = threading.BoundedSemaphore(depth)
        self.pending: list[Future[None]] = []

    def submit(self, fn: Callable[[], None]) -> None:
        self.slots.acquire()

        def run() -> None:
            try:
                fn()
            finally:
                self.slots.release()

        self.pending.append(self.pool.submit(run))
        if len(self.pending) > 64:
            for f in self.pending:
                if f.done():
                    f.result()  # surface a write error early
            self.pending = [f for f in self.pending if not f.done()]

    def wait(self) -> None:
        for f in self.pending:
            f.result()  # re-raises a write error here
        self.pending = []

    def close(self) -> None:
        self.wait()
        self.pool.shutdown()


class Budget:
    """Bytes of rows held in memory by every partition spool of one staging: buffered, or queued for
    the writer thread (released when written)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.used = 0
        self.peak = 0  # the most held at once (tests, benchmarks)
        self._lock = threading.Lock()
        self.spools: list[PartitionSpool] = []

    def take(self, n: int) -> None:
        with self._lock:
            self.used += n
            self.peak = max(self.peak, self.used)

    def give(self, n: int) -> None:
        with self._lock:
            self.used -= n

    def enforce(self, writes: Writes) -> None:
        """Past the total, spill the tables holding the most until three quarters of it; still past it
        (runs queued for the writer thread), wait for them to be written."""
        if self.used <= self.total:
            return
        for spool in sorted(self.spools, key=lambda s: -s.bytes_buffered):
            if self.used <= self.total * 3 // 4 or not spool.bytes_buffered:
                break
            spool.flush()
        if self.used > self.total:
            writes.wait()


@dataclass
class Part:
    path: Path  # the partition's final Parquet file
    rows: int = 0  # rows added
    spans: array[int] = field(default_factory=lambda: array("q"))  # (offset, length, rows) per message


class PartitionSpool:
    """One table's partitions: its chunks buffered (sorted by partition) under ``budget``, spilled to
    ``tmp/<table>.spill`` a run at a time, written as Parquet by ``close``.

    A chunk is kept whole, sorted by (location, shard), with each partition's row range: a few large
    objects, where a table per chunk and partition (the first version) cost a few KB of Arrow and
    Python objects each, 960 partitions a chunk at 60 locations, on top of their rows. A run (every
    buffered chunk) is spilled as one IPC message per partition: the partition's ranges of every
    chunk, concatenated.
    """

    def __init__(self, table: str, tmp: Path, schema: pa.Schema, writes: Writes, budget: Budget, *,
                 part_rows: int, stats_columns: list[str]) -> None:
        self.table = table
        self.tmp = tmp
        self.schema = schema
        self.writes = writes
        self.budget = budget
        self.part_rows = part_rows
        self.stats_columns = stats_columns
        self.parts: dict[tuple[str, int], Part] = {}
        self.chunks: list[tuple[pa.Table, list[tuple[Part, int, int]]]] = []
        self.bytes_buffered = 0
        self._spill_path = tmp / f"{table}.spill"
        self._spill: BinaryIO | None = None
        self._offset = 0  # the spill's length (the writer thread's)
        budget.spools.append(self)

    def add(self, data: pa.Table, loc: pa.Array, shard: pa.Array) -> None:
        if not data.num_rows:
            return
        keyed = pa.table({"loc": loc, "shard": shard})
        keys = [("loc", "ascending"), ("shard", "ascending")]
        order = pc.sort_indices(keyed, sort_keys=keys)  # stable: a partition's rows keep their order
        groups = keyed.group_by(["loc", "shard"],
                                use_threads=False).aggregate([("shard", "count")]).sort_by(keys)
        ranges = []
        offset = 0
        for lo, sh, count in zip(groups["loc"].to_pylist(), groups["shard"].to_pylist(),
                                 groups["shard_count"].to_pylist(), strict=True):
            part = self.parts.get((lo, sh))
            if part is None:
                part = self.parts[(lo, sh)] = Part(self.tmp / f"{self.table}.{lo}.{sh:03d}.parquet")
            ranges.append((part, offset, count))
            part.rows += count
            offset += count
        rows = data.take(order)
        self.chunks.append((rows, ranges))
        self.bytes_buffered += rows.nbytes
        self.budget.take(rows.nbytes)
        if self.bytes_buffered >= self.budget.total // 2:
            self.flush()
        self.budget.enforce(self.writes)

    def flush(self) -> None:
        """The buffered chunks to the spill as a run (on the writer thread)."""
        if not self.chunks:
            return
        chunks, held = self.chunks, self.bytes_buffered
        self.chunks, self.bytes_buffered = [], 0

        def write() -> None:
            try:
                by_part: dict[int, tuple[Part, list[pa.Table]]] = {}
                for rows, ranges in chunks:
                    for part, start, count in ranges:
                        by_part.setdefault(id(part), (part, []))[1].append(rows.slice(start, count))
                chunks.clear()
                if self._spill is None:
                    self._spill = open(self._spill_path, "wb")  # noqa: SIM115 (closed by close())
                for part, pieces in by_part.values():
                    for b in pa.concat_tables(pieces).cast(self.schema).combine_chunks().to_batches():
                        buf = b.serialize()
                        self._spill.write(buf)
                        part.spans.extend((self._offset, buf.size, b.num_rows))
                        self._offset += buf.size
            finally:
                self.budget.give(held)

        self.writes.submit(write)

    def close(self) -> dict[tuple[str, int], Part]:
        """Every partition written to its Parquet file (``Part.path``; none for a partition without
        rows); the spill removed, and the spool no longer counted by its budget."""
        self.flush()
        self.writes.wait()
        if self in self.budget.spools:
            self.budget.spools.remove(self)
        if self._spill is not None:
            self._spill.close()
            self._spill = None
        try:
            if self._offset:
                fd = os.open(self._spill_path, os.O_RDONLY)
                try:
                    for part in self.parts.values():
                        if part.spans:
                            self._write_part(fd, part)
                finally:
                    os.close(fd)
        finally:
            self._spill_path.unlink(missing_ok=True)
        return self.parts

    def _write_part(self, fd: int, part: Part) -> None:
        """One partition's spilled messages, in order, as row groups of up to ``part_rows`` rows."""
        writer = pq.ParquetWriter(part.path, self.schema, compression="zstd", compression_level=1,
                                  write_statistics=self.stats_columns)
        try:
            group: list[pa.RecordBatch] = []
            rows = size = 0
            spans, cap = part.spans, self.part_rows
            for i in range(0, len(spans), 3):
                off, length, n = spans[i], spans[i + 1], spans[i + 2]
                if group and (rows + n > self.part_rows or size + length > ROW_GROUP_BYTES):
                    writer.write_table(pa.Table.from_batches(group, self.schema), row_group_size=cap)
                    group, rows, size = [], 0, 0
                group.append(pa.ipc.read_record_batch(pa.py_buffer(os.pread(fd, length, off)), self.schema))
                rows += n
                size += length
            if group:
                writer.write_table(pa.Table.from_batches(group, self.schema), row_group_size=cap)
        finally:
            writer.close()
        part.spans = array("q")
