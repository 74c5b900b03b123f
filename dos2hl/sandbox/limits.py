"""Rate limits per (app, location), as HighLevel documents them (NOTES.md §4).

At most ``burst`` requests in any sliding window of ``window_s`` seconds and ``daily`` per UTC
day. Counters are rows in the state database, so a restart does not hand out a fresh budget.
Rejected requests are not counted (a client that waits as told gets through). ``set_daily`` scales one
location's daily limit down and ``new_day`` clears the day's counts (``/_sandbox/quota``: tests of a
spent day, issue 17).
"""

from __future__ import annotations

import datetime as dt
import email.utils
from dataclasses import dataclass

from .store import Store

__all__ = ["RateLimiter", "Verdict"]


@dataclass(frozen=True)
class Verdict:
    """The outcome of one admission, and the headers every response carries."""

    allowed: bool
    reason: str  # "", "burst" or "daily"
    headers: dict[str, str]
    retry_after_s: float = 0.0


class RateLimiter:
    def __init__(self, store: Store, burst: int, window_s: float, daily: int) -> None:
        self.store, self.burst, self.window_s, self.daily = store, burst, window_s, daily
        self.daily_of: dict[str, int] = {}  # location id -> its own daily limit (set_daily)

    def set_daily(self, location: str, daily: int | None) -> None:
        """Give ``location`` (every app's bucket of it) its own daily limit; None: the common one."""
        if daily is None:
            self.daily_of.pop(location, None)
        elif daily < 1:
            raise ValueError("daily must be at least 1")
        else:
            self.daily_of[location] = daily

    def new_day(self) -> int:
        """Forget every bucket's daily counts, as the day's reset does; returns how many were cleared."""
        with self.store.tx() as db:
            return int(db.execute("DELETE FROM rl_daily").rowcount or 0)

    def used_today(self, now: float) -> dict[str, int]:
        """Location id -> requests counted today (every app's bucket of it)."""
        out: dict[str, int] = {}
        with self.store.tx() as db:
            for bucket, count in db.execute("SELECT bucket, count FROM rl_daily WHERE day=?", (_day(now),)):
                loc = str(bucket).rsplit(":", 1)[-1]
                out[loc] = out.get(loc, 0) + int(count)
        return out

    def _daily(self, bucket: str) -> int:
        return self.daily_of.get(bucket.rsplit(":", 1)[-1], self.daily)

    def _headers(self, window_used: int, day_used: int, now: float | None = None,
                 daily: int | None = None) -> dict[str, str]:
        daily = self.daily if daily is None else daily
        # the sandbox's clock: a client reads the day's reset from it
        date = {} if now is None else {"Date": email.utils.formatdate(now, usegmt=True)}
        return {**date,
            "X-RateLimit-Limit-Daily": str(daily),
            "X-RateLimit-Daily-Remaining": str(max(daily - day_used, 0)),
            "X-RateLimit-Interval-Milliseconds": str(int(round(self.window_s * 1000))),
            "X-RateLimit-Max": str(self.burst),
            "X-RateLimit-Remaining": str(max(self.burst - window_used, 0)),
        }

    def peek(self, bucket: str | None, now: float) -> dict[str, str]:
        """Headers without counting (unauthenticated requests, admin paths)."""
        if bucket is None:
            return self._headers(0, 0)
        with self.store.tx() as db:
            used = db.execute("SELECT COUNT(*) FROM rl_hits WHERE bucket=? AND ts>?",
                              (bucket, now - self.window_s)).fetchone()[0]
            row = db.execute("SELECT count FROM rl_daily WHERE bucket=? AND day=?",
                             (bucket, _day(now))).fetchone()
        return self._headers(used, row[0] if row else 0, daily=self._daily(bucket))

    def admit(self, bucket: str, now: float) -> Verdict:
        """Count one request for ``bucket`` (``app:location``) unless a limit is reached."""
        day, daily = _day(now), self._daily(bucket)
        with self.store.tx() as db:
            db.execute("DELETE FROM rl_hits WHERE bucket=? AND ts<=?", (bucket, now - self.window_s))
            hits = [r[0] for r in db.execute("SELECT ts FROM rl_hits WHERE bucket=? ORDER BY ts",
                                             (bucket,)).fetchall()]
            row = db.execute("SELECT count FROM rl_daily WHERE bucket=? AND day=?", (bucket, day)).fetchone()
            day_used = row[0] if row else 0
            if day_used >= daily:
                midnight = dt.datetime.fromisoformat(day).replace(tzinfo=dt.timezone.utc) + dt.timedelta(
                    days=1
                )
                return Verdict(False, "daily", self._headers(len(hits), day_used, now, daily),
                               midnight.timestamp() - now)
            if len(hits) >= self.burst:
                wait = hits[0] + self.window_s - now
                return Verdict(False, "burst", self._headers(len(hits), day_used, daily=daily),
                               max(wait, 0.0))
            db.execute("INSERT INTO rl_hits VALUES (?, ?)", (bucket, now))
            db.execute("INSERT INTO rl_daily VALUES (?, ?, 1) ON CONFLICT(bucket, day) DO UPDATE "
                       "SET count = count + 1", (bucket, day))
        return Verdict(True, "", self._headers(len(hits) + 1, day_used + 1, daily=daily))


def _day(now: float) -> str:
    return dt.datetime.fromtimestamp(now, dt.timezone.utc).date().isoformat()
