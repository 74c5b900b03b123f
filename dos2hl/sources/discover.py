"""Find an export's files (local folder or ``s3://``) and match them to canonical tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath

import pyarrow as pa

from ..errors import MissingFileError
from ..model import TABLES
from ..storage import Store
from .profile import Profile

__all__ = ["ExportFile", "Export", "discover", "TABLE_ORDER"]

# Parents before children: the reader and the stager rely on it (lookups, location area codes,
# patient -> location, claim -> patient, appt -> patient).
TABLE_ORDER: tuple[str, ...] = (
    "location", "lookup", "provider", "operatory", "proccode", "recalltyp", "refsrc", "userfld",
    "insco", "insplan", "patient", "inssub", "patins", "appt", "apptproc", "txplan", "txitem",
    "clinnote", "commlog", "ledger", "claim", "claimln", "recall", "patref", "document", "patudf",
)
assert set(TABLE_ORDER) == set(TABLES)


@dataclass(frozen=True)
class ExportFile:
    """One export file that feeds a canonical table."""

    table: str
    key: str  # key in the store, relative to the export root
    size: int

    @property
    def name(self) -> str:
        return PurePosixPath(self.key).name


@dataclass
class Export:
    """An export: where it is, the profile that reads it, and its files per canonical table."""

    store: Store
    profile: Profile
    files: dict[str, list[ExportFile]]
    unknown_files: list[str] = field(default_factory=list)
    # Files under IMAGES/ (documents) in listing order: Arrow string chunks, not a Python object per file (a
    # DSO carries ~10 M of them), never sorted (a sort copies every key twice). A list given is converted.
    document_keys: pa.ChunkedArray = field(default_factory=lambda: pa.chunked_array([], pa.string()))

    def __post_init__(self) -> None:
        if not isinstance(self.document_keys, pa.ChunkedArray):
            self.document_keys = pa.chunked_array([pa.array(list(self.document_keys), pa.string())])

    def tables(self) -> list[str]:
        return [t for t in TABLE_ORDER if self.files.get(t)]

    def read_order(self) -> list[str]:
        """The tables in reading order: a file is read once every table it feeds may be written (a
        coverage file feeding insco..patins is read at patins, after the patients it refers to)."""
        pos = {t: i for i, t in enumerate(TABLE_ORDER)}
        return sorted(self.tables(), key=lambda t: max(pos[x] for x in self.profile.feeds(t)))

    def open_tables(self, table: str) -> set[str]:
        """The tables that may still receive rows once the files of ``table`` are being read."""
        order = self.read_order()
        later = order[order.index(table):] if table in order else [table]
        pos = {t: i for i, t in enumerate(TABLE_ORDER)}
        return ({x for t in later for x in self.profile.feeds(t)}
                | {t for t in TABLE_ORDER if pos[t] >= pos[table]})


def discover(store: Store, profile: Profile, *, documents: bool = True) -> Export:
    """List the export and match files to tables by the profile's stems and extensions.

    Files may sit at the top level or in per-location subfolders; everything under an
    ``IMAGES`` folder is a document file (not listed with ``documents=False``, which saves walking
    a tree of tens of thousands of images when only the tables are read). Raises ``MissingFileError`` (before
    anything is written) when a required table has no file.
    """
    keys = store.iter_keys("", skip_dirs=() if documents else ("IMAGES",))
    files: dict[str, list[ExportFile]] = {}
    unknown: list[str] = []
    docs = _KeyArray()
    for key in keys:
        parts = [p for p in key.split("/") if p]  # not PurePosixPath: it interns every part (a dict of them)
        if any(p.upper() == "IMAGES" for p in parts[:-1]):
            docs.add(key)
            continue
        name = parts[-1]
        if name.startswith(".") or name.lower() in ("manifest.json",):
            continue
        stem, dot, ext = name.rpartition(".")
        if not dot:
            stem, ext = name, ""
        table = profile.stems.get(stem.upper())
        if table is None or f".{ext}".upper() not in {e.upper() for e in profile.spec(table).extensions}:
            unknown.append(key)
            continue
        files.setdefault(table, []).append(ExportFile(table, key, store.size(key)))
    missing = [t for t, spec in TABLES.items() if spec.required_file and not files.get(t)]
    if missing:
        names = ", ".join(f"{profile.file_stem(t)}.CSV" for t in missing)
        raise MissingFileError(
            f"export {store.uri} has no {names} file (profile {profile.name!r}); nothing was read or "
            "written. Re-export that table, or pass --profile with the file name this practice uses."
        )
    for lst in files.values():
        lst.sort(key=lambda f: f.key)
    return Export(store, profile, files, sorted(unknown), docs.result())


class _KeyArray:
    """Keys gathered a batch at a time into Arrow arrays: a listing of millions of document files never
    becomes a Python list of strings."""

    BATCH = 1 << 13

    def __init__(self) -> None:
        self.chunks: list[pa.Array] = []
        self.batch: list[str] = []

    def add(self, key: str) -> None:
        self.batch.append(key)
        if len(self.batch) >= self.BATCH:
            self._flush()

    def _flush(self) -> None:
        if self.batch:
            self.chunks.append(pa.array(self.batch, pa.string()))
            self.batch = []

    def result(self) -> pa.ChunkedArray:
        self._flush()
        out, self.chunks = pa.chunked_array(self.chunks, pa.string()), []
        return out
