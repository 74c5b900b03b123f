"""Importing CSV packages through the sandbox's emulation of HighLevel's UI importers
(``dos2hl.highlevel.imports``: through the location's client, so through the governor, counted, its
retry policy applied). The real HighLevel has no such endpoint (its importers are UI only, NOTES.md §3):
against it an operator follows ``packages.checklist`` instead.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
from collections import Counter
from dataclasses import dataclass

from ..errors import StorageError, UnexpectedResponseError
from ..highlevel.imports import IMPORT_PATH, ImportRejectedError, post_import
from ..highlevel.protocols import Client
from ..storage import Store
from .packages import MODES, Package

__all__ = ["ImportRow", "ImportRejectedError", "sandbox_import", "import_package", "IMPORT_PATH"]

log = logging.getLogger("dos2hl.bulk")

_STATUSES = ("created", "updated", "skipped", "error")


@dataclass(frozen=True)
class ImportRow:
    """One line of the importer's result file. ``row`` counts data rows from 1."""

    row: int
    status: str  # created | updated | skipped | error
    id: str | None
    error: str


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


def sandbox_import(client: Client, object: str, content: bytes, *, mode: str = "create",
                   dedupe: str | None = None, timeout: float = 300,
                   file_key: str | None = None) -> list[ImportRow]:
    """Import one CSV into ``client``'s location through the sandbox importer; return its per-row results.

    Raises ``ImportRejectedError`` (a ``HighLevelHTTPError``: status, the server's message, the file
    key) on a refusal, e.g. 413 for a file over 30 MB; ``TransportError`` when there is no answer;
    ``UnexpectedResponseError`` when the answer is not the result CSV.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}")
    text = post_import(client, object, content, mode=mode, dedupe=dedupe, file_key=file_key, timeout=timeout)
    rows = _parse(text, file_key=file_key)
    counts = Counter(r.status for r in rows)
    log.info("sandbox import object=%s mode=%s file=%s bytes=%d %s", object, mode, file_key or "-",
             len(content), " ".join(f"{s}={counts[s]}" for s in _STATUSES))
    return rows


def import_package(store: Store, package: Package, client: Client, *, timeout: float = 300
                   ) -> list[ImportRow]:
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
        rows = sandbox_import(client, package.object, content, mode=package.mode, dedupe=package.dedupe,
                              timeout=timeout, file_key=f.key)
        if len(rows) != f.rows:
            raise UnexpectedResponseError(f"the import of {f.key} answered {len(rows)} rows for {f.rows}",
                                          method="POST", path=IMPORT_PATH, stable_key=f.key)
        out += [ImportRow(r.row + f.first_row - 1, r.status, r.id, r.error) for r in rows]
    return out
