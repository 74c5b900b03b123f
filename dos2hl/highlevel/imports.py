"""The sandbox's emulation of HighLevel's UI CSV importers, sent by the location's client: its token
handling, https rule, error translation, logging and retry policy (a connection refused is retried;
once the body may have been read, never re-sent: an import is not idempotent in create mode). It takes
no permit and is not counted: HighLevel's importers are its UI, outside the API's quota, and the
sandbox's stand-in sits outside its API gate (no rate limit, no journal line) for the same reason.

``POST /_sandbox/imports?object=...&mode=...&dedupe=...``: the bearer token picks the location, the
body is the CSV, the answer the per-row result CSV ``row,status,<id column>,error``. The real HighLevel
has no such endpoint (its importers are UI only, NOTES.md §3): against it an operator follows the
package's checklist instead.
"""

from __future__ import annotations

from ..errors import HighLevelHTTPError
from ._core import _Answer, _Call, _Core
from .protocols import Client

__all__ = ["IMPORT_PATH", "ImportRejectedError", "is_sandbox", "post_import"]

IMPORT_PATH = "/_sandbox/imports"


class ImportRejectedError(HighLevelHTTPError):
    """The importer refused a whole file (non-200): ``status``, the server's short ``message``
    (the endpoint's own wording: a limit, a bad parameter; never a row) and the file's key."""

    def __init__(self, status: int, *, message: str = "", file_key: str | None = None,
                 trace_id: str | None = None) -> None:
        self.message = message
        self.file_key = file_key
        super().__init__(status, method="POST", path=IMPORT_PATH, trace_id=trace_id, stable_key=file_key)

    def __str__(self) -> str:
        what = f"import of {self.file_key}" if self.file_key else "import"
        said = f": {self.message}" if self.message else ""
        return f"the {what} was refused, HighLevel sandbox answered {self.status}{said} ({self._where()})"


def post_import(client: Client, object: str, content: bytes, *, mode: str, dedupe: str | None = None,
                file_key: str | None = None, timeout: float = 300) -> str:
    """Send one CSV to the importer of ``client``'s location; return the result CSV's text. A refusal
    is ``ImportRejectedError`` (its status and the server's message); no answer, ``TransportError``."""
    params = {"object": object, "mode": mode} | ({"dedupe": dedupe} if dedupe else {})
    call = _Call("POST", IMPORT_PATH, params=params, content=content, stable_key=file_key, raw=True,
                 headers={"Content-Type": "text/csv; charset=utf-8", "Accept": "text/csv"}, timeout=timeout,
                 metered=False)
    try:
        answer, _ = _core(client)._run(call, create=True)  # never re-sent once it may have been read
    except HighLevelHTTPError as exc:
        refused = ImportRejectedError(exc.status, message=exc.server_message, file_key=file_key,
                                      trace_id=exc.trace_id)
    else:
        assert isinstance(answer, _Answer) and answer.text is not None
        return answer.text
    raise refused  # outside the except block: the client's error is not its __context__


def is_sandbox(client: Client) -> bool:
    """Whether the client's target is our sandbox (it answers ``/_sandbox/health``): only then is there
    an importer to post to; against HighLevel a person imports the packages."""
    try:
        r = _core(client)._http.get("/_sandbox/health")
        return r.status_code == 200 and "locations" in r.json()
    except Exception:  # noqa: BLE001 - any failure means "not the sandbox"
        return False


def _core(client: Client) -> _Core:
    """The importer is reached through the client's own transport (its token, https rule, retries)."""
    if not isinstance(client, _Core):
        raise TypeError(f"the CSV importer needs a HighLevelClient, not {type(client).__name__}")
    return client
