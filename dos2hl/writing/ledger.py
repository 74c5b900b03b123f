"""The ledger: one row per HighLevel operation, append-only; the ID map is a view of it.

Layout: ``<run>/ledger/<LOC>/<object>/<writer>-<batch>.parquet``. A writer buffers a batch of
operations and writes one new file per batch (never rewriting one), so concurrent writers never
contend and a crash loses at most an unflushed batch, whose records are then found again by lookup
on their stable key (never trusted, never re-created blindly). Readers take the union.

Each row: run_id, location (export LOC_ID), location_id (HighLevel), object (the seed's name:
``patient``, ``insurance_record``, ...), stable_key, source_id, hl_id, op (create | update | relate |
delete | lookup | adopt: found in HighLevel under our key, written by another run, so rollback leaves it |
pause: an outage's failure taken back when its location paused), outcome (created | verified-existing |
updated | related | failed | held | deleted | pending),
http_status, payload_hash, before (the record before an update: JSON sealed with the PHI key, bound to
the row's stable key), error (class and a PHI-free message), ts. No row holds a patient value in
plain text: ids, hashes, codes and sealed before-images only.

Before-images are written **before** the update is sent: an ``update``/``before-image`` row, flushed
(each ledger file is fsynced, then its folder) before the PUT; the ``updated`` (or ``failed``) row
follows it. So a crash right after the PUT still leaves what rollback needs to put the record back.

Durability: each file is written atomically and fsynced (``storage.durable_replace``). A file that
cannot be read anyway (a torn write on a filesystem that lied, a bad disk) is skipped by
``read_ledger``, named in a warning and in ``unreadable_ledger_files`` (the report lists it), never a
crash: its records are found again in HighLevel by their keys (the inventory adopts them), never
created twice.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from ..storage import Store

if TYPE_CHECKING:
    from ..phi import Sealer

__all__ = ["BEFORE_FIELD", "IdMap", "LedgerWriter", "Op", "dead_letters", "open_before", "read_ledger",
           "seal_before", "unreadable_ledger_files", "SCHEMA"]

log = logging.getLogger("dos2hl.ledger")
BEFORE_FIELD = "ledger.before"  # the sealed before-image's field name (its record: the row's stable key)

SCHEMA = pa.schema([
    ("run_id", pa.string()), ("location", pa.string()), ("location_id", pa.string()), ("object", pa.string()),
    ("stable_key", pa.string()), ("source_id", pa.string()), ("hl_id", pa.string()), ("op", pa.string()),
    ("outcome", pa.string()), ("http_status", pa.int32()), ("payload_hash", pa.string()),
    ("before", pa.string()),
    ("error", pa.string()), ("parent", pa.string()), ("ts", pa.float64()), ("detail", pa.string()),
])
SUCCESS = frozenset({"created", "verified-existing", "updated", "unchanged"})


@dataclass(frozen=True)
class Op:
    run_id: str
    location: str
    location_id: str
    object: str
    stable_key: str
    source_id: str
    hl_id: str | None
    op: str
    outcome: str
    http_status: int | None = None
    payload_hash: str | None = None
    before: str | None = None
    error: str | None = None
    parent: str | None = None  # stable key of the parent (relations, children held for a failed parent)
    ts: float = 0.0
    detail: str | None = None  # what a later step needs of the result (an uploaded file's URL)


class LedgerWriter:
    """Buffers ops and writes one Parquet file per batch under ``ledger/<LOC>/<object>/``."""

    def __init__(self, store: Store, run_id: str, *, writer: str | None = None, batch: int = 500) -> None:
        self.store, self.run_id, self.batch = store, run_id, batch
        self.writer = writer or uuid.uuid4().hex[:8]
        self._buf: dict[tuple[str, str], list[Op]] = {}
        self._n = 0
        self._lock = threading.Lock()

    def add(self, op: Op) -> None:
        if not op.ts:
            op = replace(op, ts=time.time())
        with self._lock:
            buf = self._buf.setdefault((op.location, op.object), [])
            buf.append(op)
            full = len(buf) >= self.batch
        if full:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            bufs, self._buf = self._buf, {}
            for (loc, obj), ops in bufs.items():
                if not ops:
                    continue
                self._n += 1
                table = pa.Table.from_pylist([vars(o) for o in ops], schema=SCHEMA)  # asdict deep-copies
                sink = io.BytesIO()
                pq.write_table(table, sink, compression="zstd")
                self.store.write_bytes(f"ledger/{loc}/{obj}/{self.writer}-{self._n:05d}.parquet",
                                       sink.getvalue())

    def close(self) -> None:
        self.flush()


def seal_before(sealer: Sealer, before: dict[str, Any], key: str) -> str:
    """A before-image as the ledger keeps it: JSON sealed for ``key`` (the row's stable key)."""
    return sealer.seal(json.dumps(before, default=str), BEFORE_FIELD, key)


def open_before(opener: Any, text: str, key: str) -> dict[str, Any]:
    """A ledger row's before-image (sealed, or plain JSON from ledgers written before they were sealed)."""
    from ..phi import PREFIX

    if text.startswith(PREFIX):
        text = opener()(text, BEFORE_FIELD, key)
    return json.loads(text)  # type: ignore[no-any-return]


def _ledger_keys(store: Store, prefix: str, starts: tuple[str, ...] | None) -> list[str]:
    return [k for k in sorted(store.list(prefix))
            if k.endswith(".parquet") and (starts is None or k.rsplit("/", 1)[1].startswith(starts))]


def _read_one(store: Store, key: str) -> pa.Table | None:
    try:
        return pq.ParquetFile(io.BytesIO(store.read_bytes(key))).read()  # one file: no dataset machinery
    except (pa.ArrowException, OSError, ValueError) as exc:
        log.warning("ledger file %s is unreadable (%s): skipped; its records are found again in HighLevel by "
                    "their keys", key, type(exc).__name__)
        return None


def read_ledger(store: Store, *, location: str | None = None, writer: str | tuple[str, ...] | None = None,
                unreadable: list[str] | None = None) -> pa.Table:
    """The union of the ledger files of a run (optionally one location, some writer prefixes), by time.
    A file that cannot be read is skipped (and its key appended to ``unreadable``)."""
    prefix = f"ledger/{location}/" if location else "ledger/"
    starts = None if writer is None else tuple(w + "-" for w in ((writer,) if isinstance(writer, str)
                                                                 else writer))
    tables = []
    for k in _ledger_keys(store, prefix, starts):
        t = _read_one(store, k)
        if t is None:
            if unreadable is not None:
                unreadable.append(k)
            continue
        tables.append(t)
    if not tables:
        return SCHEMA.empty_table()
    return pa.concat_tables(tables, promote_options="default").sort_by("ts")


def unreadable_ledger_files(store: Store) -> list[str]:
    """The keys of the run's ledger files that cannot be read (names are ids: location, object, writer)."""
    bad: list[str] = []
    read_ledger(store, unreadable=bad)
    return bad


class IdMap:
    """stable_key -> HighLevel id for every record a run (or earlier runs) wrote and did not delete."""

    def __init__(self, rows: Iterable[dict[str, Any]] = ()) -> None:
        self._ids: dict[str, str] = {}
        self._failed: dict[str, str] = {}
        self._related: set[tuple[str, str]] = set()
        self._shards: dict[str, str] = {}  # "<LOC>/<object>/<shard>" -> started | done
        self._detail: dict[str, str] = {}
        self._adopted: set[str] = set()  # found in HighLevel under our key, written by someone else
        for r in rows:
            self.apply(r)

    @classmethod
    def from_table(cls, table: pa.Table) -> IdMap:
        return cls(table.to_pylist())

    def apply(self, r: dict[str, Any]) -> None:
        key, outcome = r["stable_key"], r["outcome"]
        if r["op"] == "intent":  # shard markers
            self._shards[key] = outcome
            return
        if r["op"] == "relate":
            if outcome in ("related", "verified-existing"):
                self._related.add((key, r.get("parent") or ""))
            return
        if outcome in SUCCESS and r.get("hl_id"):
            self._ids[key] = r["hl_id"]
            if r["op"] == "adopt":
                self._adopted.add(key)
            self._failed.pop(key, None)
            if r.get("detail"):
                self._detail[key] = r["detail"]
        elif outcome in ("deleted", "gone"):  # rolled back: a later run writes it (and relates it) again
            self._ids.pop(key, None)
            self._adopted.discard(key)
            self._related = {pair for pair in self._related if pair[0] != key}
        elif outcome in ("failed", "held") and key not in self._ids:
            self._failed[key] = r.get("error") or outcome
        elif outcome == "pending":  # a paused location's: no dead letter (its shard is looked up again)
            self._failed.pop(key, None)

    def get(self, key: str) -> str | None:
        return self._ids.get(key)

    def adopted(self, key: str) -> bool:
        """Whether ``key`` was found in HighLevel rather than created by this run (adopted from an earlier
        run or carried): its children may exist there too, unrecorded here."""
        return key in self._adopted

    def detail(self, key: str) -> str | None:
        return self._detail.get(key)

    def relations(self) -> Iterator[tuple[str, str]]:
        """(record key, parent key) of every relation written."""
        return iter(sorted(self._related))

    def related(self, key: str, parent: str) -> bool:
        return (key, parent) in self._related

    def interrupted(self, shard: str) -> bool:
        """A shard an earlier attempt started and never finished: its unrecorded sends may have landed."""
        return self._shards.get(shard) == "started"

    def failed(self) -> dict[str, str]:
        return dict(self._failed)

    def __len__(self) -> int:
        return len(self._ids)

    def items(self) -> Iterator[tuple[str, str]]:
        return iter(self._ids.items())


def dead_letters(table: pa.Table) -> list[dict[str, Any]]:
    """Every record of ``table`` (a run's ledger) whose latest outcome is failed or held, with its error
    class and stable key (what ``dos2hl retry`` replays); ``pending`` (a paused location's outage,
    taken back) and any success end one. From the ledger, so it survives any crash."""
    last: dict[str, dict[str, Any]] = {}
    for r in table.to_pylist():
        if r["op"] == "intent":
            continue
        if r["op"] == "relate" and r["outcome"] in ("related", "verified-existing"):
            last.pop(r["stable_key"], None)
            continue
        if r["outcome"] in SUCCESS and r["op"] != "relate":
            last.pop(r["stable_key"], None)
            continue
        if r["outcome"] in ("failed", "held"):
            last[r["stable_key"]] = r
        elif r["outcome"] == "pending":
            last.pop(r["stable_key"], None)
    return [{"location": r["location"], "object": r["object"], "stable_key": k, "source_id": r["source_id"],
             "outcome": r["outcome"], "error_class": (r.get("error") or "").split(":", 1)[0],
             "http_status": r.get("http_status"), "parent": r.get("parent")} for k, r in sorted(last.items())]
