"""Every location at once: the order units of work are handed to workers, and the worker count.

A location is paced only by its own sub-account's budget in the governor, so a run goes as fast as
its locations together allow only when its workers are spread over them. ``FairQueue`` hands the next
unit to the location with the fewest units in flight (then the fewest started), so N workers work on N
locations while there are N with work left, and a slow location (its units take long, or wait for its
budget) holds at most its share of the workers, never the others' work. The thread executor
(``run_fair``), the Ray pool and the per-location phases (discovery, read-back) all schedule this way.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

__all__ = ["MAX_THREADS", "FairQueue", "default_workers", "lanes", "notify", "per_location", "run_fair",
           "threads_per_worker"]

log = logging.getLogger("dos2hl.progress")
T = TypeVar("T")
R = TypeVar("R")
K = TypeVar("K", bound=Hashable)

#: The most shard threads one process runs (each holds one shard's rows and payloads in memory).
MAX_THREADS = 64


def default_workers(locations: int, executor: str = "threads") -> int:
    """Workers when the run names none: threads mostly wait (for the network and the governor), so one
    per location (at least 4, at most ``MAX_THREADS``); Ray workers are processes: as many as the
    machine has CPUs, at least 4, never more than there are locations' worth of work, each running
    several shards at once (``threads_per_worker``)."""
    if executor == "ray":
        return max(1, min(max(4, os.cpu_count() or 1), max(locations, 1)))
    return max(4, min(locations, MAX_THREADS))


def threads_per_worker(locations: int, workers: int) -> int:
    """Shards one Ray worker runs at once when the run names no number: enough for its workers together
    to write every location at once (a shard mostly waits, for HighLevel and for its location's
    budget), at most ``MAX_THREADS``."""
    return max(1, min(MAX_THREADS, math.ceil(max(locations, 1) / max(workers, 1))))


def lanes(locations: int, executor: str = "threads", workers: int | None = None) -> int:
    """Shards written at once: the thread executor's threads, or Ray's workers times their threads."""
    w = workers or default_workers(locations, executor)
    return w * threads_per_worker(locations, w) if executor == "ray" else w


class FairQueue(Generic[T]):
    """Units grouped by ``key``; ``take`` gives the next unit of the key with the fewest in flight
    (then the fewest started, then the first seen), ``done`` returns its slot. Not thread-safe: the
    caller holds a lock (``run_fair``) or is one loop (the Ray pool)."""

    def __init__(self, items: Sequence[T], key: Callable[[T], Hashable]) -> None:
        self._pending: dict[Hashable, deque[tuple[int, T]]] = {}
        for i, item in enumerate(items):
            self._pending.setdefault(key(item), deque()).append((i, item))
        self._order = {k: n for n, k in enumerate(self._pending)}
        self._key_of = {i: k for k, q in self._pending.items() for i, _ in q}
        self._flight = dict.fromkeys(self._pending, 0)
        self._started = dict.fromkeys(self._pending, 0)

    def __len__(self) -> int:
        """Units not taken yet."""
        return sum(len(q) for q in self._pending.values())

    def take(self) -> tuple[int, T] | None:
        """(index in the items, unit), or None when every unit is taken."""
        ready = [k for k, q in self._pending.items() if q]
        if not ready:
            return None
        k = min(ready, key=lambda k: (self._flight[k], self._started[k], self._order[k]))
        self._flight[k] += 1
        self._started[k] += 1
        return self._pending[k].popleft()

    def done(self, index: int) -> None:
        self._flight[self._key_of[index]] -= 1

    def retry(self, index: int, item: T) -> None:
        """Give a taken unit back (its worker died): its slot is returned and it is the next of its key."""
        k = self._key_of[index]
        self._flight[k] -= 1
        self._pending[k].appendleft((index, item))

    def drop(self, key: Hashable) -> list[tuple[int, T]]:
        """Take every unit of ``key`` not yet handed out out of the queue (its location paused): they
        are returned, never handed out."""
        dropped = list(self._pending.get(key, ()))
        if key in self._pending:
            self._pending[key].clear()
        return dropped

    def in_flight(self) -> dict[Hashable, int]:
        return {k: n for k, n in self._flight.items() if n}


def run_fair(items: Sequence[T], fn: Callable[[T], R], *, key: Callable[[T], Hashable], workers: int,
             name: str = "dos2hl-shard", stop: Callable[[R], bool] | None = None,
             skipped: Callable[[T, R], R] | None = None,
             on_done: Callable[[T, R], None] | None = None) -> list[R]:
    """``fn(item)`` for every item on ``workers`` threads, handed out by a ``FairQueue``; results in the
    order of ``items``. The first exception ``fn`` raises stops the hand-out and is raised here once the
    units in flight have ended. When ``stop(result)`` holds (its location paused), the units of that key
    not yet handed out are not: their result is ``skipped(unit, that result)``; the other keys go on.
    ``on_done(item, result)``: once per unit that ends (skipped ones too), on the worker thread that
    ended it (so it must be thread-safe); what it raises is logged, never the run's."""
    queue = FairQueue(items, key)
    results: list[R | None] = [None] * len(items)
    lock = threading.Lock()
    failed: list[BaseException] = []

    def work() -> None:
        while True:
            with lock:
                if failed:
                    return
                got = queue.take()
            if got is None:
                return
            i, item = got
            try:
                results[i] = got_result = fn(item)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller below
                with lock:
                    failed.append(exc)
                return
            finally:
                with lock:
                    queue.done(i)
            notify(on_done, item, got_result)
            if stop is not None and stop(got_result):
                with lock:
                    dropped = queue.drop(key(item))
                for j, other in dropped:
                    results[j] = skipped(other, got_result) if skipped is not None else None
                    notify(on_done, other, results[j])

    threads = [threading.Thread(target=work, name=f"{name}-{n}", daemon=True)
               for n in range(max(1, min(workers, len(items))))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failed:
        raise failed[0]
    return results  # type: ignore[return-value]  # every slot is filled when nothing failed


def notify(on_done: Callable[[T, R], None] | None, item: T, result: R | None) -> None:
    """``on_done(item, result)``, if any; an error of it (a display, a progress file) is logged only."""
    if on_done is None:
        return
    try:
        on_done(item, result)  # type: ignore[arg-type]
    except Exception as exc:  # noqa: BLE001 - progress never stops a run
        log.warning("progress callback failed: %s", type(exc).__name__)


def per_location(locations: Sequence[K], fn: Callable[[K], R], *, workers: int) -> dict[K, R]:
    """``fn(location)`` for every location at once (at most ``workers`` threads); LOC -> result, in the
    order of ``locations``. For the per-location phases: discovery and the read-back."""
    if len(locations) <= 1 or workers <= 1:
        return {loc: fn(loc) for loc in locations}
    threads = min(workers, len(locations))
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="dos2hl-loc") as pool:
        return dict(zip(locations, pool.map(fn, locations), strict=True))
