"""Deterministic randomness: named sub-streams and cheap rate triggers.

Every stream is ``random.Random("<seed>:<part>:<part>")`` (string seeding is stable across runs and
platforms), so adding a stream or reordering locations never shifts the values of another stream.
``Trigger`` decides "does this eligible cell get defect X" with one decrement per call instead of a
``random()`` draw, which matters at tens of millions of cells.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import math
import random
from collections.abc import Sequence
from typing import TypeVar

__all__ = ["sub_rng", "Trigger", "Weighted", "rand_date", "add_months"]

T = TypeVar("T")


def sub_rng(seed: int, *parts: object) -> random.Random:
    """An independent, reproducible stream for ``parts`` (e.g. location, stream name)."""
    return random.Random(":".join([str(seed), *map(str, parts)]))


class Trigger:
    """Fires on average once every ``1/rate`` calls, with geometric gaps (a Bernoulli process)."""

    __slots__ = ("_rng", "_log1m", "_left", "rate")

    def __init__(self, rng: random.Random, rate: float) -> None:
        self._rng = rng
        self.rate = min(max(rate, 0.0), 1.0)
        self._log1m = math.log1p(-self.rate) if 0.0 < self.rate < 1.0 else 0.0
        self._left = self._gap()

    def _gap(self) -> int:
        if self.rate <= 0.0:
            return 1 << 62
        if self.rate >= 1.0:
            return 1
        u = self._rng.random()
        return int(math.log1p(-u) / self._log1m) + 1

    def __call__(self) -> bool:
        self._left -= 1
        if self._left > 0:
            return False
        self._left = self._gap()
        return True


class Weighted:
    """Fast repeated weighted choice (cumulative weights + bisect)."""

    __slots__ = ("items", "_cum", "_total")

    def __init__(self, pairs: Sequence[tuple[T, float]]) -> None:
        self.items = [p[0] for p in pairs]
        self._cum = list(itertools.accumulate(p[1] for p in pairs))
        self._total = self._cum[-1]

    def __call__(self, rng: random.Random):  # type: ignore[no-untyped-def]
        return self.items[bisect.bisect_right(self._cum, rng.random() * self._total)]


def rand_date(rng: random.Random, start: dt.date, end: dt.date) -> dt.date:
    """Uniform date in [start, end]."""
    span = (end - start).days
    return start + dt.timedelta(days=rng.randint(0, max(span, 0)))


def add_months(d: dt.date, months: int) -> dt.date:
    """``d`` plus calendar months, clamped to the month's last day."""
    m = d.month - 1 + months
    y = d.year + m // 12
    m = m % 12 + 1
    for day in (d.day, 30, 29, 28):
        try:
            return dt.date(y, m, day)
        except ValueError:
            continue
    raise AssertionError("unreachable")
