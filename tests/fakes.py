"""Test doubles shared by several test folders."""

from __future__ import annotations


class FakeClock:
    """A clock tests move by hand (rate-limit windows, index lag, dateAdded); client sleeps advance it."""

    def __init__(self, start: float = 1_750_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
