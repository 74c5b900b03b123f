"""When and how long to wait before sending a request again (the named knobs of the client).

Retried: 429 (after ``Retry-After`` when HighLevel sends it, else ``X-RateLimit-Interval-Milliseconds``,
else backoff), 5xx, timeouts and connection errors. Fatal: every other 4xx. Whether a *create* may be
sent again is the client's decision (an ambiguous failure is verified by lookup first); this module
only answers "is this failure transient?" and "how long to wait?".
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import (
    DailyLimitError,
    HighLevelError,
    RateLimitedError,
    ServerError,
    TransportError,
    UnprocessableError,
)

__all__ = ["RetryPolicy", "DEFAULT_RETRY", "NO_RETRY", "is_transient", "is_ambiguous", "parse_retry_after"]


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """Retry knobs. Delay before send n+1 = min(cap, base * 2**(n-1)), minus up to ``jitter`` of it.

    Examples:
        ``RetryPolicy(max_attempts=3, backoff_base=0.5)``  # 3 sends at most; waits ~0.5 s, ~1 s
    """

    max_attempts: int = 5  # sends per request, the first included
    backoff_base: float = 1.0  # seconds before the first retry
    backoff_cap: float = 60.0  # no backoff delay is longer
    jitter: float = 0.5  # fraction of each backoff delay that may be randomly removed (0 = none)
    respect_retry_after: bool = True  # 429: wait what Retry-After / the interval header says
    max_retry_after: float = 300.0  # a longer Retry-After is shortened to this
    verify_delay: float = 3.0  # before a lookup verifies an ambiguous create (HighLevel's search lags)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must be between 0 and 1")

    @classmethod
    def from_settings(cls, s: object) -> RetryPolicy:
        """From a ``HighLevelSettings`` (the same knob names)."""
        names = ("max_attempts", "backoff_base", "backoff_cap", "jitter", "max_retry_after", "verify_delay")
        return cls(**{n: getattr(s, n) for n in names})

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """The jittered exponential delay after failed send number ``attempt`` (1-based)."""
        delay = min(self.backoff_cap, self.backoff_base * 2.0 ** (attempt - 1))
        draw = rng.random() if rng is not None else random.random()
        return delay * (1 - self.jitter * draw)

    def delay(self, attempt: int, error: HighLevelError, rng: random.Random | None = None) -> float:
        """Seconds to wait before sending again after ``error`` on send number ``attempt``."""
        if isinstance(error, RateLimitedError) and self.respect_retry_after and error.retry_after is not None:
            return min(max(error.retry_after, 0.0), self.max_retry_after)
        return self.backoff(attempt, rng)


DEFAULT_RETRY = RetryPolicy()
NO_RETRY = RetryPolicy(max_attempts=1)


def is_transient(error: HighLevelError) -> bool:
    """May the same request succeed if sent again? (429, 5xx, timeouts, connection errors; not a 429 of
    a spent day: nothing succeeds before its reset)."""
    if isinstance(error, DailyLimitError):
        return False
    if isinstance(error, (RateLimitedError, ServerError)):
        return True
    return isinstance(error, TransportError) and error.retryable


def is_ambiguous(error: HighLevelError) -> bool:
    """Could a *create* that failed this way have stored the record anyway?"""
    if isinstance(error, (ServerError, UnprocessableError)):
        return True
    return isinstance(error, TransportError) and error.sent


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from ``Retry-After`` (seconds or HTTP date), else the burst-interval header."""
    value = headers.get("retry-after")
    if value:
        try:
            return max(float(value), 0.0)
        except ValueError:
            when = email.utils.parsedate_to_datetime(value) if _looks_like_date(value) else None
            if when is not None:
                return max(when.timestamp() - (time.time() if now is None else now), 0.0)
    interval = headers.get("x-ratelimit-interval-milliseconds")
    if interval:
        try:
            return max(float(interval) / 1000.0, 0.0)
        except ValueError:
            return None
    return None


def _looks_like_date(value: str) -> bool:
    try:
        email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return False
    return True
