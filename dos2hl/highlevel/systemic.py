"""Which failures are a location's, not a record's (issue 17): they pause the location, never fail records.

A *systemic* failure says nothing about the record being written: the next record would fail the
same way. Dead-lettering on it would mark every remaining record of the location ``failed``; pausing
keeps them pending, and a re-run of the run id resumes once the cause is fixed. The classification is
by status and HighLevel's message (``errors.auth_cause``; the texts and their sources are in
docs/highlevel-errors.md):

==========  ==========================================================  =================================
cause       HighLevel's message (401/403)                                what it is
==========  ==========================================================  =================================
token       ``Invalid JWT`` (#213)                                       revoked app, rotated or expired
                                                                         token: **systemic**
scope       ``The token is not authorized for this scope.`` (#319)      a removed scope: **systemic**
location    ``The token does not have access to this location.``        a sub-account gone or the app
            (#213), ``This location is not accessible from this         uninstalled from it: **systemic**
            token.`` (n8n#37571)
unknown     any other 401/403 text                                       **systemic** (a pause loses
                                                                         nothing; a wrong dead letter
                                                                         marks every record failed)
user        ``The user does not exist.`` (#205)                          one record's reference: per record
path        ``401 IAM error`` (#306, a path's letter case)               one endpoint: per record
feature     ``You do not have access to this feature!`` (template#13)    one feature: per record
==========  ==========================================================  =================================

Outages: a 5xx or a request without an answer (``TransportError``) that the client's own retries did
not get past is one record's failure until ``pause_after`` of them come in a row from one location
(``OutageStreak``, shared by every shard writer of the location in this process: ``location_streak``);
any answer that is not an outage (a success, a 422, a 404) ends the row. With Ray each worker process
keeps its own row per location: an outage fails every shard of the location alike, so each worker's
row reaches ``pause_after`` about as soon (a shared row would cost an actor call per answer).

A spent day (a 429 with ``X-RateLimit-Daily-Remaining: 0``, ``DailyLimitError``, or the governor's own
count: ``QuotaExhausted``) pauses the location too, until the reset: ``is_quota``.
"""

from __future__ import annotations

import threading

from ..errors import (
    AuthError,
    DailyLimitError,
    HighLevelError,
    HighLevelHTTPError,
    QuotaExhausted,
    ServerError,
    TransportError,
)

__all__ = ["SYSTEMIC_AUTH_CAUSES", "DEFAULT_PAUSE_AFTER", "OutageStreak", "forget_streaks", "is_outage",
           "is_quota", "is_systemic", "location_streak", "pause_reason", "quota_pause"]

#: The ``AuthError.cause`` values that pause a location.
SYSTEMIC_AUTH_CAUSES = frozenset({"token", "scope", "location", "unknown"})
#: Consecutive outage failures (after the client's retries) of one location that pause it.
DEFAULT_PAUSE_AFTER = 5


def is_systemic(exc: BaseException) -> bool:
    """Whether ``exc`` alone pauses the location: a 401/403 whose message is about the token, its
    scopes or the location (or says nothing we know: the safe side)."""
    return isinstance(exc, AuthError) and exc.cause in SYSTEMIC_AUTH_CAUSES


def is_outage(exc: BaseException) -> bool:
    """A 5xx or no answer at all: HighLevel (or the way to it) failing, not the record."""
    return isinstance(exc, (ServerError, TransportError))


def is_quota(exc: BaseException) -> bool:
    """The location's day is spent (HighLevel's 429 or the governor's count): it waits for the reset."""
    return isinstance(exc, (DailyLimitError, QuotaExhausted))


def quota_pause(exc: DailyLimitError | QuotaExhausted, location: str) -> QuotaExhausted:
    """``exc`` as the ``QuotaExhausted`` of export location ``location`` (its reset time kept)."""
    if isinstance(exc, DailyLimitError):
        return QuotaExhausted(location, exc.reset_at)
    return QuotaExhausted(location, exc.resume_at)


def pause_reason(exc: BaseException, streak: int = 0) -> str:
    """Why a location pauses, in ids, statuses and counts only (never a message or a value)."""
    where = f"{exc.method} {exc.path}".strip() if isinstance(exc, HighLevelError) else ""
    if isinstance(exc, AuthError):
        return f"HighLevel answered {exc.status} ({exc.cause}) on {where}"
    status = f" {exc.status}" if isinstance(exc, HighLevelHTTPError) else ""
    return (f"{streak} consecutive HighLevel failures (5xx or no answer) after retries; last: "
            f"{type(exc).__name__}{status} on {where}")


class OutageStreak:
    """Outage failures in a row (``is_outage``) of one location (thread-safe: its writers share it).
    ``generation`` counts the rows that ended, so a writer can tell its own failures' row is over.

    Examples:
        >>> s = OutageStreak(2)
        >>> s.failed(), s.failed()
        (False, True)
        >>> s.ended(); s.count
        0
    """

    def __init__(self, limit: int = DEFAULT_PAUSE_AFTER) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.count = 0
        self.generation = 0
        self._lock = threading.Lock()

    def failed(self) -> bool:
        """Count one outage failure; True when the row reached ``limit`` (pause)."""
        with self._lock:
            self.count += 1
            return self.count >= self.limit

    def ended(self) -> None:
        """An answer that is not an outage: the row is broken."""
        with self._lock:
            if self.count:
                self.count = 0
                self.generation += 1


_STREAKS: dict[tuple[str, str], OutageStreak] = {}
_STREAKS_LOCK = threading.Lock()


def location_streak(run_id: str, location: str, limit: int = DEFAULT_PAUSE_AFTER) -> OutageStreak:
    """The outage row of ``location`` in run ``run_id``, shared by this process's writers of it."""
    with _STREAKS_LOCK:
        streak = _STREAKS.get((run_id, location))
        if streak is None or streak.limit != limit:
            streak = _STREAKS[(run_id, location)] = OutageStreak(limit)
        return streak


def forget_streaks(run_id: str) -> None:
    """A phase starts: its locations' rows start empty (a resumed run's earlier row is over)."""
    with _STREAKS_LOCK:
        for key in [k for k in _STREAKS if k[0] == run_id]:
            del _STREAKS[key]
