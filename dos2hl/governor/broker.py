"""``LeaseBroker``: one process's stock of permits per location, leased ahead in combined actor calls.

Why: a Ray actor call costs about 1 ms of CPU on this 2-core machine (~1 k no-op calls/s), so a handle
whose every thread leased for its own location on its own call topped out at 2-3 k permits/s. The broker
makes the calls for all of the process's threads: a call carries every location that needs permits at
that moment (threads waiting, stock running low) and every permit to give back, and the reports; at
most ``MAX_IN_FLIGHT`` calls are out at once, so demand that comes meanwhile rides on the next one.
The thread that opens a call only sends it; whoever needs one of its locations' permits collects it.

How much a location's stock holds: ``batch`` (16) until its take rate at this process is measured (over
at least half the margin) and the call's round trip is known; then four round trips' worth (it is
refilled when half is left, two round trips' worth; a location whose threads ran dry meanwhile took
half its stock in a round trip, so its stock doubles), never more than it takes in half the margin
(the stock must be served before it is stale), never more than a quarter of the location's burst (so
another process or two on the location still find most of its window) and never more than
``CEILING``. Only locations still being taken are refilled ahead. So a location taken fast by one
process grows its stock over a few round trips, and a new one starts small: a stock of 64 from the
first call let one process book a new location's window ahead of the other (bench round 2 fell to
0.77 utilization).

A permit older than half the margin is never served from stock; it goes back to the actor as released
(``dropped``). Only permits leased for threads that were waiting on them are served regardless: on a
round trip longer than half the margin every lease would otherwise be dropped, forever; and while a
location's stock arrives stale like that, nothing is leased ahead for it.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import QuotaExhausted
from .core import LATE_SAMPLES, Limits, p99

__all__ = ["BATCH", "CEILING", "MAX_IN_FLIGHT", "LeaseBroker"]

#: At most this many lease calls of one process are out at once (two: one in flight, the next gathering).
MAX_IN_FLIGHT = 2
#: A location's stock at a process until its take rate is measured (GovernorSettings.batch's default).
BATCH = 16
#: The largest stock a location may hold at one process.
CEILING = 64
_BLOCKED_S = 0.0005  # a collect that waited at least this long saw the whole round trip

Report = tuple[str, int, dict[str, str], float]
Submit = Callable[[list[tuple[Any, ...]], list[Report]], Any]  # sends a lease call, returns its reference


@dataclass(eq=False)
class _Call:
    """One lease call: per key it leases for, its answer's index, the key's freeze count at sending (a
    429 meanwhile voids the key's times) and how many permits threads were waiting on then."""

    keys: dict[str, tuple[int, int, int]]
    sent: float
    ref: Any = None
    collecting: bool = False


@dataclass(eq=False)
class _Key:
    """One location's state at this process."""

    cache: deque[float] = field(default_factory=deque)  # leased, not served (served unless stale)
    fresh: deque[float] = field(default_factory=deque)  # leased for waiting threads: served as they are
    released: list[float] = field(default_factory=list)  # to give back with the next call
    late: deque[float] = field(default_factory=lambda: deque(maxlen=LATE_SAMPLES))  # answers' lateness
    call: _Call | None = None  # the call in flight for this key
    waiting: int = 0  # permits threads are blocked on
    wait_until: float = 0.0  # the actor said: no more before this
    freezes: int = 0  # 429s seen
    taken_at: float = 0.0  # when a permit was last served
    ahead: bool = True  # leasing ahead pays: the last stock did not arrive stale
    served: int = 0  # since ``since``: the take rate's sample
    since: float | None = None
    rate: float | None = None  # permits/s this process takes, once measured

    def stock(self) -> int:
        return len(self.cache) + len(self.fresh)


class LeaseBroker:
    """The stock and the lease calls of one ``GovernorHandle`` (one per process in practice)."""

    def __init__(self, lease: Submit, wait: Callable[[Any], Any], *, cls: str, batch: int, margin_s: float,
                 limits: Limits | None, clock: Callable[[], float], sleep: Callable[[float], None]) -> None:
        self._lease, self._wait, self.cls, self.batch = lease, wait, cls, batch
        self._margin, self._limits = margin_s, limits
        self._clock, self._sleep = clock, sleep
        self._cond = threading.Condition()  # guards everything below; never held across an actor call
        self._keys: dict[str, _Key] = {}
        self._active: set[str] = set()  # keys with stock, permits to give back or threads waiting
        self._swept = clock()
        self._calls: list[_Call] = []  # sent (or being sent), not yet collected
        self._reports: list[Report] = []
        self._rtt: float | None = None
        self.calls = 0  # actor round trips
        self.dropped = 0  # permits given back because they went stale before a worker came

    # ---- taking permits ------------------------------------------------------------------------------
    def take(self, key: str, n: int) -> list[float]:
        """``n`` send-not-before times for ``key``; blocks while the stock is empty."""
        got: list[float] = []
        while True:
            with self._cond:
                action, arg = self._step(key, n, got)
            if action == "done":
                return got
            if action == "send":
                self._send(arg)
                if len(got) >= n:  # a refill ahead of need: whoever needs it collects it
                    return got
            elif action == "collect":
                self._collect(arg, key, n - len(got))
            else:
                max_wait = self._limits.max_wait_s if self._limits is not None else Limits().max_wait_s
                if arg - self._clock() > max_wait:  # the day spent: the worker is not held (issue 17)
                    with self._cond:
                        self._key(key).released.extend(got)
                        self._active.add(key)
                    raise QuotaExhausted(key, arg)
                self._sleep_until(arg)

    def _step(self, key: str, n: int, got: list[float]) -> tuple[str, Any]:
        """Under the lock: serve what the stock holds, then say what this thread does next."""
        while True:
            now = self._clock()
            st = self._key(key)
            self._serve(st, got, n, now)
            need = n - len(got)
            if not need:
                return self._refill(st, now)
            if st.call is None and now < st.wait_until:
                return "sleep", st.wait_until
            if self._due(st, now):
                return "send", self._open(now, key, need)
            call = st.call or self._calls[0]  # ours, else the oldest: collecting it frees a place
            if call.ref is not None and not call.collecting:
                call.collecting = True
                return "collect", call
            st.waiting += need
            self._cond.wait(0.05)
            st.waiting -= need

    def _refill(self, st: _Key, now: float) -> tuple[str, Any]:
        """Having served: lease ahead when the stock is below half its target. With both places taken,
        first collect the oldest call once it has probably come back (1.5 round trips): an answer
        nobody collects would hold its place until some thread ran dry."""
        if st.call is not None or now < st.wait_until or not st.ahead or st.stock() >= self._target(st) / 2:
            return "done", None
        if len(self._calls) < MAX_IN_FLIGHT:
            return "send", self._open(now)
        oldest = self._calls[0]
        back = self._rtt is not None and now - oldest.sent >= 1.5 * self._rtt
        if oldest.ref is None or oldest.collecting or not back:
            return "done", None
        oldest.collecting = True
        return "collect", oldest

    def _key(self, key: str) -> _Key:
        st = self._keys.get(key)
        if st is None:
            st = self._keys[key] = _Key()
        self._active.add(key)
        return st

    def _due(self, st: _Key, now: float) -> bool:
        """Whether a call may lease for ``st`` now: none in flight for it, none pending from the actor,
        and a place among the calls out."""
        return st.call is None and now >= st.wait_until and len(self._calls) < MAX_IN_FLIGHT

    def _serve(self, st: _Key, got: list[float], n: int, now: float) -> None:
        before = len(got)
        while st.fresh and len(got) < n:
            got.append(st.fresh.popleft())
        self._drop_stale(st, now)
        while st.cache and len(got) < n:
            got.append(st.cache.popleft())
        if len(got) > before:
            st.served += len(got) - before
            st.taken_at = now
        if st.since is None:
            st.since = now
        elif now - st.since >= self._margin / 2 and st.served:
            st.rate, st.served, st.since = st.served / (now - st.since), 0, now

    def _drop_stale(self, st: _Key, now: float) -> None:
        while st.cache and st.cache[0] < now - self._margin / 2:  # too late to send safely
            st.released.append(st.cache.popleft())
            self.dropped += 1

    def _target(self, st: _Key) -> int:
        """The stock this key should hold (module docstring)."""
        want = self.batch
        if st.rate is not None and self._rtt is not None:
            want = max(want, math.ceil(min(4 * st.rate * self._rtt, st.rate * self._margin / 2)))
        fair = CEILING if self._limits is None else max(1, self._limits.burst // 4)
        return max(1, min(want, CEILING, fair))

    # ---- the actor calls -----------------------------------------------------------------------------
    def _open(self, now: float, key: str | None = None, need: int = 0) -> _Call:
        """Under the lock: a call for every key that needs permits (``key``: ``need`` more for the
        calling thread) and has none in flight, with every permit to give back and every report; its
        keys are marked in flight."""
        call = _Call({}, now)
        requests: list[tuple[Any, ...]] = []
        for k in list(self._active):
            st = self._keys[k]
            self._drop_stale(st, now)
            want = 0
            if st.call is None and now >= st.wait_until:
                stock, target, waiting = st.stock(), self._target(st), st.waiting
                waiting += need if k == key else 0
                taking = now - st.taken_at <= self._margin / 2  # else stock would only go stale
                if waiting or (taking and st.ahead and stock < target / 2):
                    want = max(target - stock, waiting)
            if want:
                st.call, call.keys[k] = call, (len(requests), st.freezes, waiting)
                late = p99(st.late) if st.late else None
                requests.append((k, self.cls, want, st.released, late, max(st.late, default=0.0)))
                st.released = []
            elif st.released:
                requests.append((k, self.cls, 0, st.released))
                st.released = []
            elif st.call is None and not st.stock() and not st.waiting:
                self._active.discard(k)
        self._sweep(now)
        call.ref = requests, self._take_reports()  # the arguments, until sent
        self._calls.append(call)
        self.calls += 1
        return call

    def _sweep(self, now: float) -> None:
        """Once a minute, forget the keys idle for a minute (rate and lateness out of date)."""
        if now - self._swept < 60.0:
            return
        self._swept = now
        for k in [k for k, st in self._keys.items()
                  if k not in self._active and (st.since is None or now - st.since > 60.0)]:
            del self._keys[k]

    def _send(self, call: _Call) -> None:
        """Outside the lock: submit the call (its reference replaces the arguments)."""
        requests, reports = call.ref
        call.ref = None
        try:
            ref = self._lease(requests, reports)
        except BaseException:
            with self._cond:
                self._forget(call)
            raise
        with self._cond:
            call.ref = ref
            self._cond.notify_all()

    def _collect(self, call: _Call, key: str | None = None, need: int = 0) -> None:
        """Outside the lock: the call's answer, into the stock of its keys (``need`` permits of ``key``
        for the collecting thread, which waits on them)."""
        t0 = self._clock()
        try:
            answers = self._wait(call.ref)
        except BaseException:
            with self._cond:
                self._forget(call)
            raise
        now = self._clock()
        with self._cond:
            if now - t0 >= _BLOCKED_S:  # waited for the answer: the whole round trip is seen
                sample = now - call.sent
                self._rtt = sample if self._rtt is None else 0.8 * self._rtt + 0.2 * sample
            for k, (i, freezes, waited) in call.keys.items():
                times, retry_at = answers[i]
                mine = need if k == key else 0
                self._stock(k, freezes, list(times), retry_at, now, min(waited, self._keys[k].waiting + mine))
            self._forget(call)

    def _stock(self, key: str, freezes: int, times: list[float], retry_at: float | None, now: float,
               waiting: int) -> None:
        """A call's answer for ``key``: the first ``waiting`` permits are for threads that waited on this
        very call (served as they are); the rest is stock, never served stale (a refill ahead collected
        late holds permits long past)."""
        st = self._key(key)
        if st.freezes != freezes:  # a 429 came meanwhile: these may have been planned before the freeze
            st.released.extend(times)
            return
        st.wait_until = retry_at if retry_at is not None else 0.0
        k = min(waiting, len(times))
        st.fresh.extend(times[:k])
        st.cache.extend(times[k:])
        if len(times) > k:  # a round trip longer than half the margin spoils due permits leased ahead
            st.ahead = times[-1] >= now - self._margin / 2

    def _forget(self, call: _Call) -> None:
        for key in call.keys:
            st = self._keys.get(key)
            if st is not None and st.call is call:
                st.call = None
        self._calls.remove(call)
        self._cond.notify_all()

    # ---- reports and closing -------------------------------------------------------------------------
    def report(self, key: str, status: int, headers: dict[str, str], lateness: float | None) -> None:
        """Queue the answer for the next call. A 429 empties the key's stock (its permits were planned
        for a window that is now frozen) and goes to the actor at once, as do reports piling up while
        no call is out."""
        with self._cond:
            now = self._clock()
            st = self._key(key)
            if lateness is not None:
                st.late.append(lateness)
            self._reports.append((key, status, headers, now))
            if status == 429:
                st.released.extend(st.fresh)
                st.released.extend(st.cache)
                st.fresh.clear()
                st.cache.clear()
                st.freezes += 1
            elif len(self._reports) < 4 * self.batch or self._calls:
                return
            requests = self._take_released()
            reports = self._take_reports()
            self.calls += 1
        self._wait(self._lease(requests, reports))

    def close(self) -> None:
        """Collect the calls still out, then give back every permit in stock and flush the reports."""
        while True:
            with self._cond:
                call = next((c for c in self._calls if c.ref is not None and not c.collecting), None)
                if call is None and self._calls:
                    self._cond.wait(0.05)
                    continue
                if call is not None:
                    call.collecting = True
            if call is None:
                break
            self._collect(call)
        with self._cond:
            for st in self._keys.values():
                st.released.extend(st.fresh)
                st.released.extend(st.cache)
                st.fresh.clear()
                st.cache.clear()
            requests = self._take_released()
            reports = self._take_reports()
        if requests or reports:
            self._wait(self._lease(requests, reports))

    def _take_released(self) -> list[tuple[Any, ...]]:
        out: list[tuple[Any, ...]] = []
        for key in self._active:
            st = self._keys[key]
            if st.released:
                out.append((key, self.cls, 0, st.released))
                st.released = []
        return out

    def _take_reports(self) -> list[Report]:
        out, self._reports = self._reports, []
        return out

    def _sleep_until(self, t: float) -> None:
        wait = t - self._clock()
        if wait > 0:
            self._sleep(wait)


