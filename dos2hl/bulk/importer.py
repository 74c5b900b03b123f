"""Importing CSV packages through the sandbox's emulation of HighLevel's UI importers.

``POST {base_url}/_sandbox/imports?object=...&mode=...&dedupe=...`` (see ``dos2hl.sandbox.imports``):
the bearer token picks the location, the body is the CSV, the answer the per-row result CSV
``row,status,<id column>,error``. The real HighLevel has no such endpoint (its importers are UI
only, NOTES.md §3): against it an operator follows ``packages.checklist`` instead.

As in ``dos2hl.highlevel.client``: ``Authorization: Bearer`` + ``Version`` headers, the token a
``SecretStr`` that never reaches a log line or an error message, httpx exceptions translated by
``dos2hl.highlevel.errors.translate_httpx``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
from collections import Counter
from dataclasses import dataclass

import httpx
from pydantic import SecretStr

from ..errors import HighLevelError, HighLevelHTTPError, StorageError, UnexpectedResponseError
from ..highlevel._core import API_VERSION, secure_base_url
from ..highlevel.errors import HTTPX_ERRORS, json_or_none, trace_id_of, translate_httpx
from ..storage import Store
from .packages import MODES, Package

__all__ = ["ImportRow", "ImportRejectedError", "sandbox_import", "import_package", "IMPORT_PATH"]

log = logging.getLogger("dos2hl.bulk")

IMPORT_PATH = "/_sandbox/imports"
_STATUSES = ("created", "updated", "skipped", "error")


@dataclass(frozen=True)
class ImportRow:
    """One line of the importer's result file. ``row`` counts data rows from 1."""

    row: int
    status: str  # created | updated | skipped | error
    id: str | None
    error: str


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


def _server_message(response: httpx.Response) -> str:
    body = json_or_none(response)
    message = body.get("message") if isinstance(body, dict) else None
    if isinstance(message, list):
        message = "; ".join(str(m) for m in message)
    return message[:300] if isinstance(message, str) else ""


def _parse(text: str, *, file_key: str | None) -> list[ImportRow]:
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    where = f" for {file_key}" if file_key else ""
    if header is None or len(header) != 4 or header[:2] != ["row", "status"] or header[3] != "error":
        raise UnexpectedResponseError(f"the import result{where} is not a row,status,<id>,error CSV",
                                      method="POST", path=IMPORT_PATH, stable_key=file_key)
    out = []
    for n, cells in enumerate(reader, start=2):
        if not cells:
            continue
        if len(cells) != 4 or not cells[0].isdigit() or cells[1] not in _STATUSES:
            raise UnexpectedResponseError(f"line {n} of the import result{where} is malformed",
                                          method="POST", path=IMPORT_PATH, stable_key=file_key)
        out.append(ImportRow(int(cells[0]), cells[1], cells[2] or None, cells[3]))
    return out


def sandbox_import(base_url: str, token: SecretStr, object: str, content: bytes, *,
                   mode: str = "create", dedupe: str | None = None,
                   transport: httpx.BaseTransport | None = None, timeout: float = 300,
                   file_key: str | None = None) -> list[ImportRow]:
    """Import one CSV through the sandbox importer; return its per-row results.

    Raises ``ImportRejectedError`` (a ``HighLevelHTTPError``: status, the server's message, the file
    key) on a non-200, e.g. 413 for a file over 30 MB; ``TransportError`` when there is no answer;
    ``UnexpectedResponseError`` when the answer is not the result CSV. Not retried: an import is
    not idempotent in create mode.
    """
    if not isinstance(token, SecretStr):
        raise TypeError("token must be a pydantic SecretStr")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}")
    params = {"object": object, "mode": mode}
    if dedupe:
        params["dedupe"] = dedupe
    failed: HighLevelError | None = None
    with httpx.Client(base_url=secure_base_url(base_url), transport=transport, timeout=timeout) as http:
        try:  # the headers a temporary, the error raised outside the except: no token reachable from it
            response = http.post(IMPORT_PATH, params=params, content=content, headers={
                "Authorization": f"Bearer {token.get_secret_value()}", "Version": API_VERSION,
                "Content-Type": "text/csv; charset=utf-8", "Accept": "text/csv"})
        except tuple(HTTPX_ERRORS) as exc:
            failed = translate_httpx(exc, method="POST", path=IMPORT_PATH, stable_key=file_key)
    if failed is not None:
        raise failed
    if response.status_code != 200:
        raise ImportRejectedError(response.status_code, message=_server_message(response), file_key=file_key,
                                  trace_id=trace_id_of(response, json_or_none(response)))
    rows = _parse(response.text, file_key=file_key)
    counts = Counter(r.status for r in rows)
    log.info("sandbox import object=%s mode=%s file=%s bytes=%d %s", object, mode, file_key or "-",
             len(content), " ".join(f"{s}={counts[s]}" for s in _STATUSES))
    return rows


def import_package(store: Store, package: Package, base_url: str, token: SecretStr, *,
                   transport: httpx.BaseTransport | None = None, timeout: float = 300) -> list[ImportRow]:
    """Import each file of ``package`` in order (its mode and dedupe); rows are numbered over the
    whole package, so row N is the Nth row written to it.

    A file whose sha256 no longer matches the package is refused (``StorageError``) before it is
    sent; a result with a different number of rows than the file raises
    ``UnexpectedResponseError``. A refused file stops the import: the files before it stay imported.
    """
    out: list[ImportRow] = []
    for f in package.files:
        content = store.read_bytes(f.key)
        if hashlib.sha256(content).hexdigest() != f.sha256:
            raise StorageError(f"{f.key} changed since its package was written (sha256 differs): "
                               "write the package again")
        rows = sandbox_import(base_url, token, package.object, content, mode=package.mode,
                              dedupe=package.dedupe, transport=transport, timeout=timeout, file_key=f.key)
        if len(rows) != f.rows:
            raise UnexpectedResponseError(f"the import of {f.key} answered {len(rows)} rows for {f.rows}",
                                          method="POST", path=IMPORT_PATH, stable_key=f.key)
        out += [ImportRow(r.row + f.first_row - 1, r.status, r.id, r.error) for r in rows]
    return out
