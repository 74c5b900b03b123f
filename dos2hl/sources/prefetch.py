"""Reading ahead, bounded: the next CSV blocks are read in a background thread while this one parses the
current block (pyarrow's CSV parser and compute kernels release the GIL), and the pool that parses a
block's columns side by side.

pyarrow's streaming CSV reader reads its input in a background thread of its own, up to 32 blocks ahead
of the batches it has handed over (Arrow's ``MakeBackgroundGenerator``, ``max_q`` 32), and offers no
option to change it. Parsing is slower than reading, so on any file over 32 blocks that queue fills:
128 MB of raw text held at a 4 MB block, which a small export's files never reach and a large
one's always do (peak RSS grew from the group to 100 k patients with the chunk size unchanged).
``ReadAhead`` bounds it: the stream asks it before each read, and a read waits while the reader is
``blocks`` blocks ahead of the batches already out.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa

__all__ = ["PARSE_POOL", "READ_AHEAD_BLOCKS", "ReadAhead", "prefetch"]

_DONE = object()
# Column parsing threads (pyarrow compute releases the GIL); sized to the machine, at most 4.
PARSE_POOL = ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 2), thread_name_prefix="dos2hl-parse")
#: Blocks pyarrow may read beyond the batches it has handed over. A batch needs its own block and the
#: next (its last row may end there) and the end of the file is one read more: 3 never starves it.
READ_AHEAD_BLOCKS = 3


class ReadAhead:
    """How far pyarrow's CSV reader may read ahead of the batches it has handed over.

    ``admit`` is called by the stream before each read pyarrow makes; it waits while ``blocks`` reads
    are not yet matched by a batch (``handed``). The wait is bounded (``wait_s``): should a reader ever
    need more blocks for one batch than counted here, it goes on, one read per wait, instead of stopping
    (``stalls`` counts those; none is expected). ``release`` ends every wait, for good: the file's
    reading is over, and pyarrow's own thread must not stay blocked in a read.
    """

    def __init__(self, blocks: int = READ_AHEAD_BLOCKS, wait_s: float = 5.0) -> None:
        self.blocks = blocks
        self.wait_s = wait_s
        self.reads = 0
        self.handed_over = 0
        self.most_ahead = 0  # the largest number of reads not yet matched by a batch
        self.stalls = 0
        self._released = False
        self._cond = threading.Condition()

    def admit(self) -> None:
        with self._cond:
            if not self._released and self.reads - self.handed_over >= self.blocks:
                if not self._cond.wait_for(
                        lambda: self._released or self.reads - self.handed_over < self.blocks, self.wait_s):
                    self.stalls += 1
            self.reads += 1
            self.most_ahead = max(self.most_ahead, self.reads - self.handed_over)

    def handed(self) -> None:
        with self._cond:
            self.handed_over += 1
            self._cond.notify_all()

    def release(self) -> None:
        with self._cond:
            self._released = True
            self._cond.notify_all()


def prefetch(batches: Iterator[pa.RecordBatch], depth: int = 2,
             gate: ReadAhead | None = None) -> Iterator[pa.RecordBatch]:
    """Read the next CSV blocks in a background thread while this one parses the current block.

    pyarrow's CSV parser releases the GIL, so on two cores reading and parsing overlap. Errors are
    re-raised here, in file order. ``gate``, the stream's read-ahead bound, hears of every batch that
    comes out, and is released when reading ends (normally, on an error, or when the consumer stops).
    """
    q: queue.Queue[object] = queue.Queue(maxsize=depth)

    def produce() -> None:
        try:
            for b in batches:
                if gate is not None:
                    gate.handed()
                q.put(b)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            q.put(exc)
        finally:
            if gate is not None:
                gate.release()
            q.put(_DONE)

    t = threading.Thread(target=produce, name="dos2hl-csv", daemon=True)
    t.start()
    try:
        while (item := q.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc,unused-ignore]
    finally:
        while t.is_alive():  # the consumer stopped early: unblock the producer and let it finish
            try:
                q.get_nowait()
            except queue.Empty:
                t.join(0.05)
