"""The dos2hl error tree. Messages name the file/row/field and the fix; never PHI or tokens.

* Dos2hlError
  + ConfigError (also ValueError)      bad settings, profile, mapping or command-line input
  + SourceError                         an export cannot be read as a whole
    - MissingFileError                  a required file (e.g. PATIENT) is absent
    - UnreadableFileError               a file is binary, empty or undecodable
  + StorageError                        staging storage (local or s3://) failed
  + HighLevelError                      talking to HighLevel (or the sandbox) failed
    - HighLevelHTTPError                HighLevel answered with a non-2xx status
      . BadRequestError                 400 (other than a duplicate)
        . DuplicateContactError         400 with meta.contactId: the location refuses a duplicate
      . AuthError                       401 bad/expired token, 403 token not valid for this location
                                        (``cause``: what the body says it is about; highlevel/systemic.py)
      . NotFoundError                   404
      . UnprocessableError              422 request failed validation (a create may still have happened)
      . RateLimitedError                429 burst or daily limit reached (retry_after, seconds)
        . DailyLimitError               429 with X-RateLimit-Daily-Remaining: 0 (reset_at): not retried
      . ServerError                     5xx
    - TransportError                    no complete answer: connection refused/reset, protocol error
      . RequestTimeoutError (also TimeoutError)  connect/read/write/pool timeout
    - UnexpectedResponseError           a 2xx whose body does not have the documented shape
    - PayloadTooLargeError (also ValueError)    a file over HighLevel's upload limit, refused unsent
  + LocationPaused                      a location's writes stop for a cause no record has (a revoked
                                        token, a removed scope or sub-account, HighLevel down): nothing
                                        is marked failed, a re-run resumes it
    - QuotaExhausted                    the location's daily request quota is spent: it waits for the
                                        reset (resume_at), holding no worker; nothing is marked failed

HighLevel errors carry only the method, the path *template* (``/contacts/{contactId}``), the status,
HighLevel's traceId and the caller's stable key: never a token, a request or a response body.
"""

from __future__ import annotations

import builtins

__all__ = [
    "Dos2hlError", "ConfigError", "SourceError", "MissingFileError", "UnreadableFileError",
    "StorageError", "HighLevelError", "HighLevelHTTPError", "BadRequestError", "DuplicateContactError",
    "AuthError", "NotFoundError", "UnprocessableError", "RateLimitedError", "ServerError",
    "TransportError", "RequestTimeoutError", "UnexpectedResponseError", "PayloadTooLargeError",
    "LocationPaused", "DailyLimitError", "QuotaExhausted", "safe_error",
]


class Dos2hlError(Exception):
    """Root of every error dos2hl raises on purpose."""

    exit_code = 1


class ConfigError(Dos2hlError, ValueError):
    """Settings, a profile, a mapping or a command-line value is wrong."""

    exit_code = 2


class SourceError(Dos2hlError):
    """An export (or one of its files) cannot be read."""

    exit_code = 2


class MissingFileError(SourceError):
    """A required export file is missing: raised before anything is written."""


class UnreadableFileError(SourceError):
    """A file is binary, empty or in no encoding we can read."""


class StorageError(Dos2hlError):
    """Reading or writing the staging store failed."""


class HighLevelError(Dos2hlError):
    """A request to HighLevel failed. ``ambiguous``: a write may have happened anyway."""

    exit_code = 3

    def __init__(self, message: str, *, method: str = "", path: str = "", stable_key: str | None = None,
                 ambiguous: bool = False) -> None:
        self.method = method
        self.path = path  # the path template, never the concrete path
        self.stable_key = stable_key
        self.ambiguous = ambiguous
        super().__init__(message)

    def _where(self) -> str:
        key = f", stable key {self.stable_key}" if self.stable_key else ""
        return f"{self.method} {self.path}{key}".strip()

    def __str__(self) -> str:
        return f"{self.args[0]} ({self._where()})" if self.method else str(self.args[0])


class HighLevelHTTPError(HighLevelError):
    """HighLevel answered with a non-2xx status."""

    server_message: str = ""  # a raw endpoint's own wording (limits, parameters; never a record)

    def __init__(self, status: int, *, method: str, path: str, trace_id: str | None = None,
                 stable_key: str | None = None, ambiguous: bool = False) -> None:
        self.status = status
        self.trace_id = trace_id
        super().__init__(f"HighLevel answered {status}", method=method, path=path, stable_key=stable_key,
                         ambiguous=ambiguous)

    def __str__(self) -> str:
        trace = f", traceId {self.trace_id}" if self.trace_id else ""
        return f"HighLevel answered {self.status} ({self._where()}{trace})"


class BadRequestError(HighLevelHTTPError):
    """400: HighLevel refused the request as malformed."""


class AlreadyExistsError(BadRequestError):
    """400 whose message says the thing already exists (a relation, an association key, a schema):
    after an ambiguous earlier attempt this means it landed. The message itself is not kept."""


class DuplicateContactError(BadRequestError):
    """400 with ``meta.contactId``: the location does not allow a duplicate; ``existing_id`` is the match."""

    def __init__(self, status: int, *, existing_id: str, matching_field: str | None = None,
                 **kw: object) -> None:
        self.existing_id = existing_id
        self.matching_field = matching_field  # "email" | "phone": a field name, not its value
        super().__init__(status, **kw)  # type: ignore[arg-type]

    def __str__(self) -> str:
        on = f" on {self.matching_field}" if self.matching_field else ""
        return (f"{super().__str__()}: duplicate of existing contact {self.existing_id}{on}; "
                "look it up by its Source_System_ID or allow duplicates for this location")


class AuthError(HighLevelHTTPError):
    """401 (token missing, invalid or expired) or 403 (token not valid for this location or scope).

    ``cause`` is what HighLevel's message says the refusal is about, as a code read from the body
    (``highlevel.errors.auth_cause``: ``token``, ``scope``, ``location``, ``user``, ``path``,
    ``feature`` or ``unknown``); the message itself is never kept."""

    def __init__(self, status: int, *, cause: str = "unknown", **kw: object) -> None:
        self.cause = cause
        super().__init__(status, **kw)  # type: ignore[arg-type]

    def __str__(self) -> str:
        return f"{super().__str__()}: {self.cause}"


class NotFoundError(HighLevelHTTPError):
    """404: the record (or path) does not exist."""


class UnprocessableError(HighLevelHTTPError):
    """422: validation failed. ``fields`` names the properties HighLevel complained about (no values).

    HighLevel is known to answer 422 to a contact create *and store the contact*: a create that got
    this answer is verified by lookup before anything else happens.
    """

    def __init__(self, status: int, *, fields: tuple[str, ...] = (), **kw: object) -> None:
        self.fields = fields
        super().__init__(status, **kw)  # type: ignore[arg-type]

    def __str__(self) -> str:
        names = f": check {', '.join(self.fields)}" if self.fields else ""
        return super().__str__() + names


class RateLimitedError(HighLevelHTTPError):
    """429: burst or daily limit reached. ``retry_after`` in seconds when HighLevel said (header)."""

    def __init__(self, status: int, *, retry_after: float | None = None, **kw: object) -> None:
        self.retry_after = retry_after
        super().__init__(status, **kw)  # type: ignore[arg-type]


class DailyLimitError(RateLimitedError):
    """429 with ``X-RateLimit-Daily-Remaining: 0``: the location's day is spent until ``reset_at`` (epoch
    seconds). Not retried: no request of the location can succeed before then (issue 17)."""

    def __init__(self, status: int, *, reset_at: float, **kw: object) -> None:
        self.reset_at = reset_at
        super().__init__(status, **kw)  # type: ignore[arg-type]


class ServerError(HighLevelHTTPError):
    """5xx: HighLevel failed; a write may or may not have happened."""


class TransportError(HighLevelError):
    """No complete answer. ``sent``: the request may have reached HighLevel (ambiguous for a write)."""

    def __init__(self, message: str, *, sent: bool, retryable: bool = True, **kw: object) -> None:
        self.sent = sent
        self.retryable = retryable
        super().__init__(message, **kw)  # type: ignore[arg-type]


class RequestTimeoutError(TransportError, builtins.TimeoutError):
    """A connect, read, write or connection-pool timeout."""


class UnexpectedResponseError(HighLevelError):
    """A 2xx answer whose body is not the documented shape (names the field, never its value)."""


class PayloadTooLargeError(HighLevelError, ValueError):
    """A file larger than HighLevel accepts; refused before anything is sent."""


class LocationPaused(Dos2hlError):
    """A location's writes stopped for a cause that is not one record's (issue 17): ``reason`` says it
    with ids, statuses and counts only. Nothing is marked failed; the shard keeps its ``started``
    marker, so a re-run of the run id looks its records up first and goes on where it stopped."""

    exit_code = 4

    def __init__(self, location: str, reason: str) -> None:
        self.location = location
        self.reason = reason
        super().__init__(f"location {location} paused: {reason}")


class QuotaExhausted(LocationPaused):
    """A location's daily request quota is spent (HighLevel's ``X-RateLimit-Daily-Remaining: 0``, or
    the governor's own count of the day): it waits for the reset at ``resume_at`` (epoch seconds)
    without holding a worker. Like any pause nothing is marked failed; the run resumes after the reset."""

    exit_code = 5

    def __init__(self, location: str, resume_at: float, reason: str = "") -> None:
        import datetime as _dt

        self.resume_at = resume_at
        when = _dt.datetime.fromtimestamp(resume_at, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        super().__init__(location, reason or f"waiting for the daily quota reset until {when}")

    def __reduce__(self) -> tuple[type[QuotaExhausted], tuple[str, float, str]]:
        """Picklable (a Ray worker's or a Prefect task's error crosses a process)."""
        return type(self), (self.location, self.resume_at, self.reason)


def safe_error(exc: BaseException) -> str:
    """What the ledger's ``error`` column, a shard's result, a report or a log keeps of ``exc``.

    The class name; for an ``OSError`` its errno (``OSError [errno 2 ENOENT]``); for HighLevel's
    answers and transport failures (``HighLevelHTTPError``, ``TransportError``) their own text, which
    is built from ids only (status, method, path template, traceId, our stable key). Never ``str()``
    of any other exception: an OS or storage error's text holds a path of the export or of the run
    (``IMAGES/<patient name>.jpg``), a parser's can quote the row, an upload's names the file.
    """
    import errno as _errno

    name = type(exc).__name__
    if isinstance(exc, (HighLevelHTTPError, TransportError)):
        return f"{name}: {exc}"[:300]
    if isinstance(exc, OSError) and isinstance(exc.errno, int):
        code = _errno.errorcode.get(exc.errno, "")
        return f"{name} [errno {exc.errno}{' ' + code if code else ''}]"
    return name
