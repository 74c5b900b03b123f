"""The seam between the client and the rate governor: every request takes a permit first.

The client calls ``acquire`` once before *each* request it sends (writes, reads, searches, retries and
the lookups that verify an ambiguous create) and ``report`` after each response, with the rate-limit
headers HighLevel sent. A request that got no response (timeout, reset) is not reported.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

__all__ = ["PermitSource", "UnlimitedPermits"]


@runtime_checkable
class PermitSource(Protocol):
    """Decides when a request to a location may go (the governor implements this)."""

    def acquire(self, location_id: str, n: int = 1) -> None:
        """Block until ``n`` requests to ``location_id`` may be sent."""
        ...

    def report(self, location_id: str, status: int, headers: Mapping[str, str]) -> None:
        """Learn from a response: its status and headers (``X-RateLimit-*``, ``Retry-After``)."""
        ...


class UnlimitedPermits:
    """Never waits, ignores reports: for tests and one-off scripts (the default)."""

    def acquire(self, location_id: str, n: int = 1) -> None:
        return None

    def report(self, location_id: str, status: int, headers: Mapping[str, str]) -> None:
        return None
