"""How a dos2hl process allocates memory: set once by the entry points (the CLI, the flows), never on import.

The export-sized steps (audit, stage, plan) stream an export chunk by chunk, so what they keep is
small; what they held in RSS was mostly memory already freed and kept by the allocators. Measured on
a 100 k-patient, 60-location export (the audit's loop and checks, peak RSS): 700 MB with pyarrow's
default pool (mimalloc, which keeps freed pages for reuse) against 488 MB with its jemalloc pool and
glibc's mmap threshold fixed at 128 KiB (``dos2hl audit`` at 20 k patients: 561 against 380-390 MB;
``dos2hl stage``: 668 against 472 MB),
at the same CPU time (16.7-17.3 s user at 20 k patients, both ways). glibc otherwise raises its mmap
threshold after each large free, up to 32 MiB, and then serves large blocks from arenas that keep
their freed memory; a fixed threshold returns every block of 128 KiB or more to the system when freed.

jemalloc keeps freed pages for ``dirty_decay_ms`` before giving them back (Arrow's build: 1 s), so a
process holds about a second's worth of freed Arrow buffers. The reader frees tens of MB a second on a
large file, and a group's files are mostly too small to keep that up for a second, a DSO's are not:
the reader alone went from 282-298 MB (20 k patients) to 352 MB (200 k), the audit from 351 to 418 MB.
At ``ARROW_DECAY_MS`` (100 ms): reader 267 -> 305 MB, audit 314 -> 373 MB, for ~5 % more CPU time
(audit at 20 k, the same code alternated: 17.6-17.9 s -> 18.5-18.8 s; at 200 k 156.4 -> 158.5 s); at 0
the reader took 45 % more. An operator who prefers the CPU time sets ``JE_ARROW_MALLOC_CONF``
(``dirty_decay_ms:1000,muzzy_decay_ms:1000`` is Arrow's own).

An operator's own choice wins: ``ARROW_DEFAULT_MEMORY_POOL``, ``JE_ARROW_MALLOC_CONF`` (Arrow's jemalloc
options) and ``MALLOC_MMAP_THRESHOLD_`` in the environment leave the corresponding setting alone.
"""

from __future__ import annotations

import ctypes
import os
import sys

__all__ = ["ARROW_DECAY_MS", "MMAP_THRESHOLD", "tune_allocators"]

MMAP_THRESHOLD = 128 * 1024
ARROW_DECAY_MS = 100
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter (malloc.h)


def tune_allocators() -> dict[str, str]:
    """Arrow's jemalloc pool (freed pages given back after ``ARROW_DECAY_MS``) and glibc's fixed mmap
    threshold, where available and not chosen by the operator; returns what it set (empty when the
    operator had chosen them all).

    They are also put in the environment, so the processes this one starts (Ray workers, the
    generator's second process) allocate the same way. pyarrow is not imported for it (~0.2 s that
    a command without Arrow need not pay): before its first import the environment variable is
    enough; after, the pool is set directly.
    """
    done: dict[str, str] = {}
    # pyarrow's Linux builds carry jemalloc; its macOS and Windows wheels do not (Arrow would warn)
    if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ and sys.platform.startswith("linux"):
        os.environ["ARROW_DEFAULT_MEMORY_POOL"] = "jemalloc"  # read when Arrow makes its default pool
        done["arrow_pool"] = "jemalloc"
        if "pyarrow" in sys.modules:
            import pyarrow as pa

            try:
                pa.set_memory_pool(pa.jemalloc_memory_pool())
            except NotImplementedError:  # a pyarrow built without jemalloc keeps its default
                done.pop("arrow_pool")
    jemalloc = os.environ.get("ARROW_DEFAULT_MEMORY_POOL") == "jemalloc" and sys.platform.startswith("linux")
    if jemalloc and "JE_ARROW_MALLOC_CONF" not in os.environ:
        # read by Arrow's jemalloc when it starts (this process's, unless already in use, and a child's)
        decay = f"dirty_decay_ms:{ARROW_DECAY_MS},muzzy_decay_ms:{ARROW_DECAY_MS}"
        os.environ["JE_ARROW_MALLOC_CONF"] = decay
        done["arrow_decay_ms"] = str(ARROW_DECAY_MS)
        if "pyarrow" in sys.modules:
            import pyarrow as pa

            try:
                pa.jemalloc_set_decay_ms(ARROW_DECAY_MS)
            except NotImplementedError:
                done.pop("arrow_decay_ms")
    if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        try:  # the process's own symbols (libc's among them): no ldconfig subprocess as find_library runs
            mallopt = getattr(ctypes.CDLL(None), "mallopt", None)  # glibc; musl and macOS have none
        except OSError:
            mallopt = None
        if mallopt is not None and mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1:
            os.environ["MALLOC_MMAP_THRESHOLD_"] = str(MMAP_THRESHOLD)  # read by a child's glibc at its start
            done["mmap_threshold"] = str(MMAP_THRESHOLD)
    return done
