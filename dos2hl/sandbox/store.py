"""The sandbox's durable state: one SQLite file under the state folder.

Every HighLevel object is a JSON document in one table, keyed by (kind, id) and owned by one
location, so tenancy is a column, not a convention. Each document also keeps the version the
search index sees (``prev`` until ``visible_at``), which is how writes reach search late by the
configured index lag. Rate-limit counters live here too, so they survive a restart.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import string
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["Store", "new_id", "DB_NAME"]

DB_NAME = "sandbox.sqlite3"
_ALPHABET = string.ascii_letters + string.digits
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS locations (id TEXT PRIMARY KEY, seq INTEGER, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (token TEXT PRIMARY KEY, location_id TEXT NOT NULL, app TEXT NOT NULL,
                                   scopes TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS docs (kind TEXT NOT NULL, id TEXT NOT NULL, location_id TEXT NOT NULL,
                                 seq INTEGER NOT NULL, data TEXT, prev TEXT, visible_at REAL NOT NULL,
                                 deleted INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (kind, id));
CREATE INDEX IF NOT EXISTS docs_loc ON docs (kind, location_id, seq);
CREATE INDEX IF NOT EXISTS docs_seq ON docs (seq);
CREATE INDEX IF NOT EXISTS docs_rel_first ON docs (location_id, json_extract(data, '$.firstRecordId'))
    WHERE kind = 'relation' AND deleted = 0;
CREATE INDEX IF NOT EXISTS docs_rel_second ON docs (location_id, json_extract(data, '$.secondRecordId'))
    WHERE kind = 'relation' AND deleted = 0;
CREATE TABLE IF NOT EXISTS rl_hits (bucket TEXT NOT NULL, ts REAL NOT NULL);
CREATE INDEX IF NOT EXISTS rl_hits_b ON rl_hits (bucket, ts);
CREATE TABLE IF NOT EXISTS rl_daily (bucket TEXT NOT NULL, day TEXT NOT NULL, count INTEGER NOT NULL,
                                     PRIMARY KEY (bucket, day));
"""


def new_id(n: int = 20) -> str:
    """A HighLevel-looking id (20 alphanumerics)."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(n))


class Store:
    """Thread-safe access to the SQLite file; every ``tx()`` commits as one transaction."""

    def __init__(self, state_dir: Path) -> None:
        from ..storage import FILE_MODE, make_private_dirs

        make_private_dirs(state_dir)
        db = state_dir / DB_NAME
        os.close(os.open(db, os.O_RDWR | os.O_CREAT, FILE_MODE))  # SQLite gives its -wal/-shm the file's mode
        os.chmod(db, FILE_MODE)
        self._db = sqlite3.connect(db, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.RLock()
        self._depth = 0

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One atomic unit of work (re-entrant: nested calls join the outer transaction)."""
        with self._lock:
            outer = self._depth == 0
            if outer:
                self._db.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield self._db
            except BaseException:
                self._depth -= 1
                if outer:
                    self._db.execute("ROLLBACK")
                raise
            self._depth -= 1
            if outer:
                self._db.execute("COMMIT")

    # -- meta, locations, tokens -------------------------------------------------------------
    def meta(self, key: str, default: Any = None) -> Any:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def set_meta(self, key: str, value: Any) -> None:
        with self.tx() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def locations(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT data FROM locations ORDER BY seq").fetchall()
        return [json.loads(r[0]) for r in rows]

    def location(self, location_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT data FROM locations WHERE id=?", (location_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def put_location(self, doc: dict[str, Any]) -> None:
        with self.tx() as db:
            seq = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM locations").fetchone()[0]
            old = db.execute("SELECT seq FROM locations WHERE id=?", (doc["id"],)).fetchone()
            db.execute("INSERT OR REPLACE INTO locations VALUES (?, ?, ?)",
                       (doc["id"], old[0] if old else seq, json.dumps(doc)))

    def add_token(self, token: str, location_id: str, app: str, scopes: list[str]) -> None:
        with self.tx() as db:
            db.execute("INSERT OR REPLACE INTO tokens VALUES (?, ?, ?, ?)",
                       (token, location_id, app, json.dumps(scopes)))

    def token(self, token: str) -> tuple[str, str, list[str]] | None:
        """(location id, app, scopes) of a token, or None."""
        with self._lock:
            row = self._db.execute("SELECT location_id, app, scopes FROM tokens WHERE token=?",
                                   (token,)).fetchone()
        return (row[0], row[1], json.loads(row[2])) if row else None

    def tokens(self) -> dict[str, str]:
        """{location id: first token issued for it} (the tokens file)."""
        with self._lock:
            rows = self._db.execute("SELECT location_id, token FROM tokens ORDER BY rowid").fetchall()
        out: dict[str, str] = {}
        for loc, tok in rows:
            out.setdefault(loc, tok)
        return out

    # -- documents -----------------------------------------------------------------------------
    def put(self, kind: str, location_id: str, doc: dict[str, Any], *, now: float, lag: float = 0.0) -> None:
        """Insert or replace a document; search sees the new version ``lag`` seconds from now."""
        with self.tx() as db:
            row = db.execute("SELECT data, prev, visible_at, seq FROM docs WHERE kind=? AND id=?",
                             (kind, doc["id"])).fetchone()
            if row is None:
                seq = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM docs").fetchone()[0]
                prev = None
            else:
                seq = row[3]
                prev = row[0] if now >= row[2] else row[1]  # what the index shows right now
            db.execute("INSERT OR REPLACE INTO docs VALUES (?, ?, ?, ?, ?, ?, ?, 0)",
                       (kind, doc["id"], location_id, seq, json.dumps(doc), prev, now + lag))

    def get(self, kind: str, doc_id: str) -> tuple[str, dict[str, Any]] | None:
        """(owning location, document) of a live document, or None."""
        with self._lock:
            row = self._db.execute("SELECT location_id, data FROM docs WHERE kind=? AND id=? AND deleted=0",
                                   (kind, doc_id)).fetchone()
        return (row[0], json.loads(row[1])) if row else None

    def delete(self, kind: str, doc_id: str, *, now: float, lag: float = 0.0) -> None:
        with self.tx() as db:
            row = db.execute("SELECT data, prev, visible_at FROM docs WHERE kind=? AND id=?",
                             (kind, doc_id)).fetchone()
            if row is None:
                return
            prev = row[0] if now >= row[2] else row[1]
            db.execute("UPDATE docs SET deleted=1, data=NULL, prev=?, visible_at=? WHERE kind=? AND id=?",
                       (prev, now + lag, kind, doc_id))

    def relations_of(self, location_id: str, record_ids: Iterable[str]) -> list[dict[str, Any]]:
        """Live relations of one location that one of ``record_ids`` is a side of, oldest first (by the
        two partial indexes on the sides: a location's relations grow with every record written)."""
        ids = sorted(set(record_ids))
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        sql = ("SELECT seq, data FROM docs WHERE kind = 'relation' AND deleted = 0 AND location_id = ? "
               f"AND json_extract(data, '$.{{side}}RecordId') IN ({marks})")
        with self._lock:
            rows = {seq: data for side in ("first", "second")
                    for seq, data in self._db.execute(sql.format(side=side), (location_id, *ids)).fetchall()}
        return [json.loads(rows[seq]) for seq in sorted(rows)]

    def list(self, kind: str, location_id: str) -> list[dict[str, Any]]:
        """Live documents of one kind in one location, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT data FROM docs WHERE kind=? AND location_id=? AND deleted=0 ORDER BY seq",
                (kind, location_id)).fetchall()
        return [json.loads(r[0]) for r in rows]

    def list_where(self, kind: str, location_id: str, field: str, value: str) -> list[dict[str, Any]]:
        """``list`` of the documents whose top-level ``field`` is ``value``, filtered by SQLite before any
        is decoded (a custom object's fields among every object's, on each record written)."""
        if not field.isidentifier():
            raise ValueError(f"not a field name: {field!r}")
        with self._lock:
            rows = self._db.execute("SELECT data FROM docs WHERE kind=? AND location_id=? AND deleted=0 "
                                    f"AND json_extract(data, '$.{field}') = ? ORDER BY seq",
                                    (kind, location_id, value)).fetchall()
        return [json.loads(r[0]) for r in rows]

    def indexed(self, kind: str, location_id: str, now: float) -> list[dict[str, Any]]:
        """Documents as the lagging search index sees them at ``now``, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT data, prev, visible_at FROM docs WHERE kind=? AND location_id=? ORDER BY seq",
                (kind, location_id)).fetchall()
        out = []
        for data, prev, visible_at in rows:
            seen = data if now >= visible_at else prev
            if seen is not None:
                out.append(json.loads(seen))
        return out

    def count(self, kind: str, location_id: str) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM docs WHERE kind=? AND location_id=? AND deleted=0",
                                    (kind, location_id)).fetchone()[0]
