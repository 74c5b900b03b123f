"""The rate governor's arithmetic and state: no I/O, no clock of its own (every call gets ``now``).

Per key (``app/location``) the governor keeps

- a sorted log of grant times (the last two intervals, at least ``burst``). A grant is a
  *send-not-before* time ``t``; the caller sends at some moment in ``[t, t + margin]``. Rule: the k-th
  grant is at least ``interval`` after the (k - cap)-th, where ``interval = window_s + margin`` (the key's
  margin) and ``cap <= burst``. Then no window of length ``window_s`` ever holds more than ``burst``
  sends: ``burst + 1`` sends in such a window would have grant times spanning less than
  ``window_s + margin_s``, but two grants ``burst`` apart are at least that far apart. Grants are handed
  out in non-decreasing time order, so only ``log[-cap]`` has to be checked.
- a daily counter per reset day; classes stop at ``daily * (1 - reserve)`` (classes in
  ``reserve_classes`` may use half of the reserve; the other half stays for the practice's own use).
  A grant that does not fit today is placed after the next reset, which is the pause and its ETA.
- a pause (after a 429: one interval, or ``Retry-After`` if longer) followed by additive increase: the
  cap restarts at ``burst // 2`` and grows by ``recover_step`` per interval until ``burst``.
- per priority class the grants not yet due (``outstanding``). A class may hold at most its weighted
  share of ``burst`` outstanding grants among the classes active in the last interval; beyond that it
  gets ``retry_at`` instead of times, so a class with many workers cannot book the whole window ahead
  of a class with few (a newly active class waits at most the horizon, 2 intervals, for its turn).
- pacing: consecutive grants at least ``pace * interval / cap`` apart (default pace 0.9). Without it
  the window rule replays the first burst forever: 100 requests released at one instant queue up at
  the server, arrive spread over hundreds of ms and the next window's burst meets the tail (measured:
  429s at 100/1 s). The 10 % slack lets the schedule catch up after a grant is given back.

Why the default margin is 0.6 % of the window (60 ms at 10 s): STACK_NOTES §3 measured exact
reservations overshooting to 101-102 per 10 s from the spread between reservation and send (a Ray
round trip from a task is ~4 ms, p99 driver round trip 1.4 ms, sleep wake-up and HTTP latency add
more); the benchmark models a 5-50 ms send spread at 10 s (0.5-5 ms at 1 s). 60 ms covers that
spread and still uses 10 / 10.06 = 99.4 % of the burst budget. Workers measure how late each answer
comes after its send-not-before time: the server counted the request somewhere between the send and
the answer, so that is the most its count can lag the grant (wake-up lateness on a busy machine, and a
server that queues and counts at handling). ``observe_lateness`` widens a key's margin to twice the
p99 or the largest lateness of the recent answers, whichever is more, up to one window (so never below
50 % of the budget): an idle machine keeps 99.4 %, a queueing server costs budget, not 429s. (Issue 16:
with the learned margin capped at 5 % of the window, a server that queued our requests behind another
tenant's burst for ~250 ms counted 21 in a window of 20; ``tests/governor/test_queueing_server.py``.)
One-way network jitter cannot be measured from one side; ``margin_s`` is the setting for it, and the
header reconciliation and the 429 freeze are the backstop. Leased permits older than half the margin
are not used (``LocalGovernor`` and ``GovernorHandle`` drop and release them).

Reconciliation compares the server's count with our grants around the *response's* time, and the log
keeps two intervals of history for it: workers report in batches up to a few hundred ms late, and
comparing an old ``X-RateLimit-Remaining`` with a log already trimmed to the present once invented
"other clients" out of our own requests and lost 7-30 % of the budget (see the regression test).
``X-RateLimit-Max`` and ``X-RateLimit-Limit-Daily`` lower a key's limits when the server says less.

Fail-safe: every key starts with ``burst`` phantom grants at ``started_at`` (the governor's creation
or restore time), so nothing is granted before one interval has passed: another process (or the
previous incarnation) may have used the whole window.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

__all__ = ["DEFAULT_WEIGHTS", "LATE_SAMPLES", "Lease", "Limits", "RateGovernor", "Status", "p99"]

DAY_S = 86_400.0
#: How many recent answers' lateness a permit source keeps per key for ``observe_lateness`` (p99 and peak).
#: A run's first seconds (its prepare: every location's schema reads at once, large answers) answered
#: 1.5-2 s late while its writes later answered in 50-200 ms; with 256 samples and a 10 % decay, that start
#: kept the margin at 4-5 s (an interval of 15 s: two thirds of the budget) for two minutes (bench/scale.py,
#: 10 locations at 100 per 10 s). 64 samples forget it within seconds at a location's 10 requests/s.
LATE_SAMPLES = 64
DEFAULT_WEIGHTS: Mapping[str, float] = {"migration": 1.0, "delta": 1.0, "verify": 2.0}
State = Literal["running", "paused", "waiting_for_daily_reset"]


@dataclass(frozen=True)
class Limits:
    """HighLevel's limits per (app, location) and the governor's safety settings."""

    burst: int = 100
    window_s: float = 10.0
    daily: int = 200_000
    margin_s: float | None = None  # default: 0.6 % of the window (see the module docstring)
    reserve: float = 0.10  # fraction of ``daily`` kept back
    reserve_classes: frozenset[str] = frozenset({"verify"})  # may use half of the reserve
    reset_offset_s: float = 0.0  # daily reset, seconds after UTC midnight
    report_lag_s: float | None = None  # default: 5 % of the window; how late a response may arrive
    recover_step: int | None = None  # cap increase per interval after a 429; default burst // 10
    horizon_s: float | None = None  # no grant further ahead than this; default 2 intervals
    pace: float = 0.9  # grants at least pace * interval / cap apart (0: bursts allowed)
    # a permit further away than this is not waited for: acquire raises QuotaExhausted (the day's quota
    # spent, or a 429's long Retry-After) and the worker is free; the run resumes at its time (issue 17)
    max_wait_s: float = 300.0

    def __post_init__(self) -> None:
        if self.burst < 1 or self.window_s <= 0 or self.daily < 1:
            raise ValueError("burst, window_s and daily must be positive")
        if not 0 <= self.reserve < 1:
            raise ValueError("reserve must be in [0, 1)")
        if not 0 <= self.pace <= 1:
            raise ValueError("pace must be in [0, 1]")
        if self.max_wait_s <= 0:
            raise ValueError("max_wait_s must be positive")

    @property
    def margin(self) -> float:
        return self.window_s * 0.006 if self.margin_s is None else self.margin_s

    @property
    def interval(self) -> float:
        return self.window_s + self.margin

    @property
    def lag(self) -> float:
        return self.window_s * 0.05 if self.report_lag_s is None else self.report_lag_s

    @property
    def step(self) -> int:
        return max(1, self.burst // 10) if self.recover_step is None else max(1, self.recover_step)

    @property
    def horizon(self) -> float:
        return 2 * self.interval if self.horizon_s is None else self.horizon_s

    def ceiling(self, cls: str) -> int:
        """The most grants ``cls`` may take in one day."""
        keep = self.reserve / 2 if cls in self.reserve_classes else self.reserve
        return int(self.daily * (1 - keep))

    def day(self, t: float) -> int:
        return math.floor((t - self.reset_offset_s) / DAY_S)

    def day_start(self, day: int) -> float:
        return day * DAY_S + self.reset_offset_s


@dataclass(frozen=True)
class Lease:
    """Send-not-before times (ascending); when fewer than asked, ``retry_at`` says when to ask again."""

    times: tuple[float, ...]
    retry_at: float | None = None


@dataclass(frozen=True)
class Status:
    state: State
    eta: float | None  # when the state ends (None while running)
    day_used: int
    day_limit: int
    cap: int  # grants per interval allowed now (< burst while recovering from a 429)
    margin_s: float = 0.0  # the safety margin in force for this key


@dataclass
class _Key:
    log: list[float]  # sorted, last ``burst`` grant times (real and phantom)
    days: dict[int, int] = field(default_factory=dict)
    paused_until: float = -math.inf
    cap_base: int = 0
    cap_since: float = -math.inf
    outstanding: dict[str, deque[float]] = field(default_factory=dict)
    last_seen: dict[str, float] = field(default_factory=dict)
    seen: float = -math.inf  # the latest ``now`` of a reserve: the log keeps 2 intervals + lag before it
    margin: float = 0.0  # this key's margin: the configured one, or more from measured lateness
    peaks: deque[tuple[float, float]] = field(default_factory=deque)  # (when, peak) any source reported
    burst: int | None = None  # lower limits the server announced (X-RateLimit-Max / -Limit-Daily)
    daily: int | None = None


class RateGovernor:
    """The whole governor state for many keys; every method takes ``now`` (seconds, epoch)."""

    def __init__(self, limits: Limits | None = None, *, started_at: float,
                 weights: Mapping[str, float] | None = None,
                 snapshot: Mapping[str, Any] | None = None) -> None:
        self.limits = limits or Limits()
        self.started_at = started_at
        self.weights = dict(DEFAULT_WEIGHTS if weights is None else weights)
        self._keys: dict[str, _Key] = {}
        self._restored: dict[str, Any] = dict((snapshot or {}).get("keys", {}))

    # ---- state per key ---------------------------------------------------------------------------
    def _key(self, key: str) -> _Key:
        k = self._keys.get(key)
        if k is None:
            lim = self.limits
            saved = self._restored.pop(key, {})
            log = sorted([float(t) for t in saved.get("grants", [])] + [self.started_at] * lim.burst)
            days = {int(d): int(c) for d, c in saved.get("days", {}).items()}
            k = self._keys[key] = _Key(log=log[-lim.burst:], days=days, cap_base=lim.burst,
                                       margin=lim.margin)
        return k

    def observe_lateness(self, key: str, seconds: float | None, peak: float = 0.0,
                         now: float | None = None) -> float:
        """Learn how late the answers come after their send-not-before time (``seconds``: the p99 the
        workers measured, None with too few samples; ``peak``: the largest recent one). The key's margin
        becomes twice the p99 or the peak, whichever is more, never below ``Limits.margin`` (the
        operator's floor, even where it exceeds the cap) and what is learned never above one window; it
        rises at once and falls by half the difference per observation (a peak alone never lowers it).
        With ``now`` (the shared actor, fed by many processes), every peak reported in the last two
        intervals counts. Returns the margin now in force."""
        lim = self.limits
        k = self._key(key)
        if now is not None:  # several sources (the shared actor's processes): a peak one of them saw holds
            # for two intervals, so another's prompt answers cannot pull the margin under it meanwhile
            if peak > 0:
                k.peaks.append((now, peak))
            while k.peaks and k.peaks[0][0] < now - 2 * lim.interval:
                k.peaks.popleft()
            peak = max([peak, *(p for _, p in k.peaks)])
        want = max(lim.margin, min(max(2 * max(0.0, seconds or 0.0), peak), lim.window_s))
        if want > k.margin:
            k.margin = want
        elif seconds is not None:
            k.margin = 0.5 * k.margin + 0.5 * want
        return k.margin

    def margin(self, key: str) -> float:
        """The margin in force for ``key``."""
        return self._key(key).margin

    def _cap(self, k: _Key, t: float) -> int:
        lim = self.limits
        burst = min(lim.burst, k.burst or lim.burst)
        if t < k.cap_since:
            return min(k.cap_base, burst)
        if k.cap_base >= burst:
            return burst
        return min(burst, k.cap_base + lim.step * int((t - k.cap_since) // lim.interval))

    def _ceiling(self, k: _Key, cls: str) -> int:
        lim = self.limits
        if k.daily is None or k.daily >= lim.daily:
            return lim.ceiling(cls)
        return min(lim.ceiling(cls), replace(lim, daily=k.daily).ceiling(cls))

    def _share(self, k: _Key, cls: str, now: float) -> int:
        active = {c for c, seen in k.last_seen.items() if seen >= now - self.limits.interval} | {cls}
        total = sum(self.weights.get(c, 1.0) for c in active)
        return max(1, int(self.limits.burst * self.weights.get(cls, 1.0) / total))

    def _next_slot(self, k: _Key, cls: str, now: float) -> float:
        """The earliest time the next grant of ``cls`` may have (window, pause, daily ceiling)."""
        lim = self.limits
        t = max(now, k.paused_until, k.log[-1] if k.log else -math.inf)
        while True:
            cap = max(1, self._cap(k, t))
            if len(k.log) >= cap:
                t = max(t, k.log[-cap] + lim.window_s + k.margin)
            if k.log and lim.pace:
                t = max(t, k.log[-1] + lim.pace * (lim.window_s + k.margin) / cap)
            day = lim.day(t)
            if k.days.get(day, 0) < self._ceiling(k, cls):
                return t
            t = lim.day_start(day + 1)

    # ---- the API ---------------------------------------------------------------------------------
    def reserve(self, key: str, n: int, now: float, cls: str = "migration") -> Lease:
        """Up to ``n`` send-not-before times for ``key``; fewer (with ``retry_at``) when ``cls`` already
        holds its share of grants not yet due or the next slot is beyond the horizon."""
        if n < 1:
            raise ValueError("n must be >= 1")
        lim = self.limits
        k = self._key(key)
        k.seen = max(k.seen, now)
        k.last_seen[cls] = max(now, k.last_seen.get(cls, now))
        mine = k.outstanding.setdefault(cls, deque())
        while mine and mine[0] <= now:
            mine.popleft()
        share = self._share(k, cls, now)
        times: list[float] = []
        retry_at: float | None = None
        for _ in range(n):
            if len(mine) >= share:
                retry_at = mine[0]
                break
            t = self._next_slot(k, cls, now)
            if t > now + lim.horizon:
                retry_at = t - lim.horizon / 2
                break
            k.log.append(t)
            day = lim.day(t)
            k.days[day] = k.days.get(day, 0) + 1
            if t > now:
                mine.append(t)
            times.append(t)
        # a class counts as active while it holds grants not yet due or waits to retry
        k.last_seen[cls] = max(now, times[-1] if times else now, retry_at or now)
        _trim(k.log, k.seen - 2 * lim.interval - lim.lag, lim.burst)
        return Lease(tuple(times), retry_at)

    def release(self, key: str, times: Iterable[float], cls: str = "migration") -> None:
        """Give back leased times that will never be sent (stale or unused); they count no more."""
        k = self._key(key)
        mine = k.outstanding.get(cls)
        for t in times:
            i = bisect.bisect_left(k.log, t)
            if i < len(k.log) and k.log[i] == t:
                del k.log[i]
            day = self.limits.day(t)
            if k.days.get(day, 0) > 0:
                k.days[day] -= 1
            if mine is not None and t in mine:
                mine.remove(t)

    def report(self, key: str, status: int, headers: Mapping[str, str], now: float) -> None:
        """Learn from a response: 429 freezes the key; the remaining-counts only ever lower the budget."""
        lim = self.limits
        k = self._key(key)
        h = {name.lower(): value for name, value in headers.items()}
        if status == 429:
            freeze = lim.interval
            retry_after = _number(h.get("retry-after"))
            if retry_after is not None:
                freeze = max(freeze, retry_after)
            k.paused_until = max(k.paused_until, now + freeze)
            k.cap_base, k.cap_since = max(1, lim.burst // 2), k.paused_until
        announced = _number(h.get("x-ratelimit-max"))  # the server's limits, only ever lowering ours
        if announced is not None and 1 <= announced < min(lim.burst, k.burst or lim.burst):
            k.burst = int(announced)
        announced = _number(h.get("x-ratelimit-limit-daily"))
        if announced is not None and 1 <= announced < min(lim.daily, k.daily or lim.daily):
            k.daily = int(announced)
        remaining = _number(h.get("x-ratelimit-remaining"))
        if remaining is not None and status != 429 and now >= k.seen - lim.interval:
            server_used = min(lim.burst, k.burst or lim.burst) - int(remaining)
            lo = bisect.bisect_right(k.log, now - lim.interval - lim.lag)
            ours = bisect.bisect_right(k.log, now) - lo
            for _ in range(server_used - ours):  # others used the window too: phantom grants now
                bisect.insort(k.log, now)
        daily_left = _number(h.get("x-ratelimit-daily-remaining"))
        if daily_left is not None:
            day = lim.day(now)
            if now - lim.day_start(day) >= lim.lag:  # a late answer from yesterday must not count today
                pending = len(k.log) - bisect.bisect_right(k.log, now)
                used = min(lim.daily, k.daily or lim.daily) - int(daily_left) + pending
                if used > k.days.get(day, 0):
                    k.days[day] = used

    def resume_at(self, key: str, now: float, retry_at: float) -> float:
        """When a wait that ends at ``retry_at`` (a lease's) is over: the next reset when the key's day
        is spent, else ``retry_at``."""
        st = self.status(key, now)
        if st.state == "waiting_for_daily_reset" and st.eta is not None:
            return st.eta
        return retry_at

    def status(self, key: str, now: float) -> Status:
        lim = self.limits
        k = self._key(key)
        day = lim.day(now)
        used, limit = k.days.get(day, 0), self._ceiling(k, "migration")
        if used >= limit:
            return Status("waiting_for_daily_reset", lim.day_start(day + 1), used, limit, self._cap(k, now),
                          k.margin)
        if k.paused_until > now:
            return Status("paused", k.paused_until, used, limit, self._cap(k, now), k.margin)
        return Status("running", None, used, limit, self._cap(k, now), k.margin)

    # ---- persistence -----------------------------------------------------------------------------
    def snapshot(self, now: float) -> dict[str, Any]:
        """JSON-able: per key the last grant times and the daily usage of today and later days."""
        today = self.limits.day(now)
        keys: dict[str, Any] = {key: v for key, v in self._restored.items()}
        for key, k in self._keys.items():
            keys[key] = {"grants": [t for t in k.log if t > now - self.limits.interval],
                         "days": {str(d): c for d, c in k.days.items() if d >= today}}
        return {"version": 1, "saved_at": now, "keys": keys}

    @classmethod
    def restore(cls, snapshot: Mapping[str, Any], limits: Limits | None = None, *, started_at: float,
                weights: Mapping[str, float] | None = None) -> RateGovernor:
        """A governor from a snapshot; it still waits one interval from ``started_at`` (fail-safe)."""
        return cls(limits, started_at=started_at, weights=weights, snapshot=snapshot)


def p99(samples: Iterable[float] | None) -> float | None:
    """The 99th percentile of recent samples (None with fewer than 16: too few to say)."""
    s = sorted(samples or ())
    if len(s) < 16:
        return None
    return s[min(len(s) - 1, int(0.99 * len(s)))]


def _trim(log: list[float], before: float, keep: int) -> None:
    """Drop grants older than ``before`` (they constrain nothing any more) beyond the last ``keep``.

    Grants of the last interval stay even when more than ``burst`` lie ahead of them, so that giving
    back a recent, unused grant (``release``) frees its place in the window."""
    cut = min(bisect.bisect_left(log, before), max(0, len(log) - keep))
    if cut:
        del log[:cut]


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None
