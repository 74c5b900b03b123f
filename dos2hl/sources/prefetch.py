"""Reading ahead: the next CSV blocks are read in a background thread while this one parses the
current block (pyarrow's CSV parser and compute kernels release the GIL), and the pool that parses a
block's columns side by side."""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa

__all__ = ["PARSE_POOL", "prefetch"]

_DONE = object()
# Column parsing threads (pyarrow compute releases the GIL); sized to the machine, at most 4.
PARSE_POOL = ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 2), thread_name_prefix="dos2hl-parse")


def prefetch(batches: Iterator[pa.RecordBatch], depth: int = 2) -> Iterator[pa.RecordBatch]:
    """Read the next CSV blocks in a background thread while this one parses the current block.

    pyarrow's CSV parser releases the GIL, so on two cores reading and parsing overlap. Errors are
    re-raised here, in file order.
    """
    q: queue.Queue[object] = queue.Queue(maxsize=depth)

    def produce() -> None:
        try:
            for b in batches:
                q.put(b)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            q.put(exc)
        finally:
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
