"""The writer's pause (issue 17): a failure that is no record's stops the location, and fails nothing.

Mixed into ``writer.ShardWriter``. Systemic failures (``highlevel.systemic``): a 401/403 about the
token, its scopes or the location raises ``LocationPaused`` at once, a 429 of a spent day
``QuotaExhausted`` (the location waits for the reset); ``pause_after`` outages (5xx, no answer, each
after the client's retries) in a row of the location (every writer of it in this process counts into
one row) raise it at the last one. The outages before the last were written ``failed`` when they came
(the row might have ended: then they are dead letters like any other); the pause turns this writer's
into ``pending`` (ledger op ``pause``) and takes them out of the counts; another writer of the location
does the same with its own when its next failure meets the row (it raises at once). Either way the
shard keeps its ``started`` marker without ``done``, so the next attempt
looks every record up before it creates anything.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from ..errors import DailyLimitError, HighLevelError, LocationPaused, QuotaExhausted
from ..highlevel.systemic import (
    DEFAULT_PAUSE_AFTER,
    is_outage,
    is_systemic,
    location_streak,
    pause_reason,
    quota_pause,
)
from .ledger import IdMap

__all__ = ["ANSWERED", "Pausing"]

#: Ledger ops whose success means HighLevel answered (an outage row, if any, is over).
ANSWERED = frozenset({"create", "relate", "update", "lookup", "upload", "link"})


class Pausing:
    """Methods of ``ShardWriter`` that decide between a dead letter and a pause (``self`` is the writer)."""

    location: str
    run_id: str
    ids: IdMap
    result: Any

    if TYPE_CHECKING:  # ShardWriter's (writer.py)
        def _op(self, obj: str, key: str, source_id: str, hl_id: str | None, op: str, outcome: str,
                **kw: Any) -> None: ...

    def _init_pausing(self, pause_after: int = DEFAULT_PAUSE_AFTER) -> None:
        self._streak = location_streak(self.run_id, self.location, pause_after)
        self._streak_gen = -1  # the row generation this writer's own rows belong to
        self._streak_rows: list[tuple[str, str, str, str | None]] = []  # (object, key, source id, parent)
        self._streak_failed: Counter[str] = Counter()  # result.failed before the row began

    def _answered(self, op: str, outcome: str) -> None:
        """A ledger op was written: a success HighLevel answered ends an outage row."""
        if op in ANSWERED and outcome not in ("failed", "held", "pending"):
            self._streak.ended()

    def _pause_if_systemic(self, exc: BaseException) -> None:
        if is_systemic(exc):
            raise LocationPaused(self.location, pause_reason(exc))
        if isinstance(exc, (DailyLimitError, QuotaExhausted)):  # the day is spent: wait for the reset
            raise quota_pause(exc, self.location)

    def _pause_or_count(self, exc: BaseException, obj: str, key: str, source_id: str,
                        parent: str | None) -> None:
        """Before a record's failure is written: raise ``LocationPaused`` when it is systemic or ends a
        row of ``pause_after`` outages; else count it in (or end) the row."""
        self._pause_if_systemic(exc)
        if is_outage(exc):
            if not self._streak_rows or self._streak_gen != self._streak.generation:  # a new row for us
                self._streak_failed, self._streak_rows = Counter(self.result.failed), []
                self._streak_gen = self._streak.generation
            if self._streak.failed():
                self._unfail_streak()
                raise LocationPaused(self.location, pause_reason(exc, self._streak.count))
            self._streak_rows.append((obj, key, source_id, parent))
        elif isinstance(exc, HighLevelError):  # HighLevel answered, about this record: no outage row
            self._streak.ended()

    def _unfail_streak(self) -> None:
        """The outages of a row that ends in a pause were no record's: each becomes ``pending`` and
        leaves the counts (what rode on them, e.g. a contact's referrals, too)."""
        for obj, key, source_id, parent in self._streak_rows:
            self._op(obj, key, source_id, None, "pause", "pending", parent=parent,
                     error="the location paused: a row of HighLevel outages")
            self.ids.apply({"stable_key": key, "op": "pause", "outcome": "pending", "hl_id": None})
        self.result.failed = self._streak_failed
        self._streak_rows = []
