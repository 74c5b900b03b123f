"""``LocalGovernor``: the governor in this process (thread-safe), for unit tests and single-process runs."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path

from ..errors import QuotaExhausted
from .core import LATE_SAMPLES, Lease, Limits, RateGovernor, Status, p99
from .persist import load_snapshot, save_snapshot

__all__ = ["LocalGovernor"]


class LocalGovernor:
    """A ``PermitSource`` over one in-process ``RateGovernor``.

    ``acquire(location_id, n)`` leases ``n`` send-not-before times and sleeps until the last one. Keys are
    ``app/location_id``. ``for_class("verify")`` gives a view that acquires under another priority class.
    With ``state`` (a JSON object's path or ``s3://`` URI in the run's state store) the daily usage and the
    last grant times are saved every ``save_every_s`` and on ``close()``, and reloaded on start (the
    restored governor still waits one interval first).
    """

    def __init__(self, limits: Limits | None = None, *, app: str = "default", cls: str = "migration",
                 weights: Mapping[str, float] | None = None, state: str | Path | None = None,
                 save_every_s: float = 5.0, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.app, self.cls = app, cls
        self._clock, self._sleep = clock, sleep
        self._state = str(state) if state is not None else None
        self._save_every = save_every_s
        self._lock = threading.Lock()
        now = clock()
        snap = load_snapshot(self._state) if self._state is not None else None
        self.core = RateGovernor(limits, started_at=now, weights=weights, snapshot=snap)
        self._saved_at = now
        self._late: dict[str, deque[float]] = {}  # per key: how late the answer came after the permit
        self._nlate: dict[str, int] = {}
        self._sent = threading.local()  # this thread's last permit time per key, until its answer

    @property
    def limits(self) -> Limits:
        return self.core.limits

    def for_class(self, cls: str) -> LocalGovernor:
        """A view sharing this governor's state that acquires as priority class ``cls``."""
        view = object.__new__(LocalGovernor)
        view.__dict__.update(self.__dict__)
        view.cls = cls
        return view

    def _k(self, location_id: str) -> str:
        return f"{self.app}/{location_id}"

    # ---- PermitSource --------------------------------------------------------------------------------
    def lease(self, location_id: str, n: int = 1) -> Lease:
        """Up to ``n`` send-not-before times now (see ``RateGovernor.reserve``); never blocks."""
        with self._lock:
            now = self._clock()
            lease = self.core.reserve(self._k(location_id), n, now, self.cls)
            self._maybe_save(now)
        return lease

    def acquire(self, location_id: str, n: int = 1) -> None:
        """Wait for ``n`` permits; a wait beyond ``Limits.max_wait_s`` (the day's quota spent) raises
        ``QuotaExhausted`` with its end instead, holding nothing (the worker goes on with other work)."""
        times: list[float] = []
        while len(times) < n:
            lease = self.lease(location_id, n - len(times))
            times.extend(lease.times)
            if len(times) < n and lease.retry_at is not None:
                if lease.retry_at - self._clock() > self.limits.max_wait_s:
                    self._give_up(location_id, times, lease.retry_at)
                self._sleep_until(lease.retry_at)
        self._sleep_until(max(times))
        permits_of(self._sent)[self._k(location_id)] = max(times)

    def report(self, location_id: str, status: int, headers: Mapping[str, str]) -> None:
        """The server's answer. Its arrival is the latest moment the server can have counted the request
        (a server that queues counts it late): that lateness after the permit widens the key's margin."""
        key = self._k(location_id)
        permit = permits_of(self._sent).pop(key, None)
        with self._lock:
            now = self._clock()
            if permit is not None:
                late = self._late.setdefault(key, deque(maxlen=LATE_SAMPLES))
                x = now - permit
                late.append(x)
                self._nlate[key] = self._nlate.get(key, 0) + 1
                if x > self.core.margin(key):  # later than the margin covers: widen it now
                    self.core.observe_lateness(key, None, x)
                if self._nlate[key] % 32 == 0:
                    self.core.observe_lateness(key, p99(late), max(late))
            self.core.report(key, status, headers, now)

    def _give_up(self, location_id: str, times: list[float], retry_at: float) -> None:
        key = self._k(location_id)
        with self._lock:
            resume = self.core.resume_at(key, self._clock(), retry_at)  # (with what it got: the day full)
            self.core.release(key, times, self.cls)
        raise QuotaExhausted(location_id, resume)

    # ---- the rest ------------------------------------------------------------------------------------
    def status(self, location_id: str) -> Status:
        with self._lock:
            return self.core.status(self._k(location_id), self._clock())

    def save(self) -> None:
        if self._state is not None:
            with self._lock:
                self._save(self._clock())

    def close(self) -> None:
        self.save()

    def _maybe_save(self, now: float) -> None:
        if self._state is not None and now - self._saved_at >= self._save_every:
            self._save(now)

    def _save(self, now: float) -> None:
        assert self._state is not None
        save_snapshot(self.core.snapshot(now), self._state)
        self._saved_at = now

    def _sleep_until(self, t: float) -> None:
        wait = t - self._clock()
        if wait > 0:
            self._sleep(wait)


def permits_of(sent: threading.local) -> dict[str, float]:
    """This thread's permit times not yet answered, per key (``sent``: the permit source's local)."""
    out: dict[str, float] | None = getattr(sent, "times", None)
    if out is None:
        out = sent.times = {}
    return out
