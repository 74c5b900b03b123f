"""Stage an export as Parquet shards: ``<table>/location=<LOC>/shard=<NNN>.parquet``.

A patient and every row that belongs to them (appointments, ledger, claims and claim lines, notes,
documents...) land in the same location and shard, so later stages transform shards
independently. The location is the patient's home location; the shard is a stable hash of the
patient id (``shard_of``). Reference tables (providers, codes, lookups...) go to
``location=_all/shard=000``.

Memory is bounded by one budget for the whole staging, whatever the number of rows, locations or
tables open at once: rows are buffered per partition, spilled when a partition or the whole buffer
passes its limit, and each partition is written as Parquet once its table is complete
(``sources.spool``). Column statistics are written only for columns
whose PHI class is R (reference) and for lineage columns, so min/max of a name or a birth date never
sits in a Parquet footer. ``manifest.json`` is written last and atomically.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import tempfile
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .errors import ConfigError, SourceError
from .model import TABLES
from .sources.discover import Export
from .sources.idmap import IdMap
from .sources.reader import FINDINGS_SCHEMA, QUARANTINE_SCHEMA, Chunk, ExportReader, FileStats, staged_schema
from .sources.spool import Budget, PartitionSpool, Writes
from .storage import Store

__all__ = ["Partitioner", "SideFiles", "StageResult", "stage", "shard_of", "move_to_quarantine",
           "ALL_LOCATIONS", "BUDGET_BYTES", "MANIFEST", "SIDE_GROUP_ROWS", "require_balanced"]

ALL_LOCATIONS = "_all"
NO_LOCATION = "_none"
MANIFEST = "manifest.json"
_GOLDEN = 2654435761  # Knuth's multiplicative hash constant
SIDE_GROUP_ROWS = 65_536  # quarantine and findings rows a row group of their files holds (``SideFiles``)
BUDGET_BYTES = 64 << 20  # rows held in memory by the partition buffers (every table together; the
# settings' stage_memory_mb, DOS2HL_STAGE_MEMORY_MB, for stage_export). 128 MB held 50 MB more at 200 k
# patients (a group's tables barely fill it), for no CPU time saved (stage at 200 k: 200 s both ways).


def shard_of(patient_ids: pa.Array, shards: int) -> pa.Array:
    """Stable shard number of each patient id: ``(id * 2654435761 mod 2**32) mod shards``.

    The same id always lands in the same shard, in every run and process (no Python ``hash``).
    Null ids (appointment placeholders without a patient) hash as 0.
    """
    ids = pc.fill_null(patient_ids.cast(pa.int64()), 0)
    mixed = pc.bit_wise_and(pc.multiply(pc.bit_wise_and(ids, 0xFFFFFFFF), _GOLDEN), 0xFFFFFFFF)
    return pc.cast(pc.remainder(mixed, shards), pa.int32())


@dataclass
class StageResult:
    """What ``stage`` wrote and the accounting identity behind it."""

    uri: str
    manifest: dict[str, object]
    stats: dict[str, FileStats]
    seconds: float

    @property
    def totals(self) -> dict[str, int]:
        return self.manifest["totals"]  # type: ignore[return-value]

    @property
    def balanced(self) -> bool:
        return bool(self.manifest["balanced"])


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def stage(export: Export, out: Store, *, shards: int = 16, export_date: dt.date | None = None,
          progress: Callable[[str, int], None] | None = None, part_rows: int = 100_000,
          budget_bytes: int = BUDGET_BYTES, overwrite: bool = False) -> StageResult:
    """Read ``export`` and write its Parquet shards, quarantine, findings and manifest to ``out``.

    ``budget_bytes``: the rows held in memory at once, every table's partitions together
    (``sources.spool.Budget``); ``part_rows``: a partition flushes at this many rows, and its Parquet
    row groups hold at most this many.

    A destination that already holds files is refused unless ``overwrite``: then its previous
    contents are removed first (after the export passed its preflight), so no stale shard of an
    earlier staging can sit beside the new manifest.
    """
    t0 = time.perf_counter()
    reader = ExportReader(export, export_date=export_date)
    reader.preflight()  # raises before anything is written
    existing = [k for k in out.list("") if not k.split("/")[-1].startswith(".dos2hl-stage-")]
    if existing and not overwrite:
        raise ConfigError(f"{out.uri} already holds {len(existing)} files (an earlier staging?); stage into "
                          "an empty location or pass --overwrite to replace it")
    if existing:
        out.delete(existing)
    partition = Partitioner(shards)
    tables_out: dict[str, dict[str, object]] = {}
    side_out: dict[str, dict[str, dict[str, object]]] = {"quarantine": {}, "findings": {}}
    # Spool next to the destination when it is a local folder, so finished shards are renamed into
    # place rather than copied.
    local_root = out.local_path("")
    if local_root is not None:
        from .storage import make_private_dirs

        make_private_dirs(local_root)  # 0700: the staged export holds every patient's values
    writes = Writes()
    budget = Budget(budget_bytes)
    with tempfile.TemporaryDirectory(prefix=".dos2hl-stage-", dir=local_root) as tmpdir:
        tmp = Path(tmpdir)
        writers: dict[str, PartitionSpool] = {}
        side = SideFiles(tmp)

        def writer_for(table: str) -> PartitionSpool:
            if table not in writers:
                schema = staged_schema(table)
                stats = [f.name for f in schema if (f.metadata or {}).get(b"phi", b"R") == b"R"]
                writers[table] = PartitionSpool(table, tmp, schema, writes, budget, part_rows=part_rows,
                                                stats_columns=stats)
            return writers[table]

        done_rows = 0
        for chunk in reader.iter_all():
            # Tables are read in TABLE_ORDER; once a later file starts, earlier tables are complete
            # (rows a file derives for other tables, e.g. apptproc from APPT or insco from a coverage
            # file, keep those tables open while it is read: ``open_tables``).
            source_table = reader.stats[chunk.file].table
            still_open = export.open_tables(source_table)
            for t in [t for t in writers if t not in still_open]:
                _finish_table(t, writers.pop(t), out, tables_out)
            partition.retire(still_open)
            side.add("quarantine", chunk.table, chunk.quarantine)
            side.add("findings", chunk.table, chunk.findings)
            data, loc, shard, orphans = partition(chunk)
            if orphans is not None and orphans.num_rows:
                side.add("quarantine", chunk.table, orphans)
                move_to_quarantine(reader.stats, chunk, orphans)
            writer_for(chunk.table).add(data, loc, shard)
            done_rows += chunk.data.num_rows + chunk.quarantine.num_rows
            if progress:
                progress(chunk.table, done_rows)
        for table in list(writers):
            _finish_table(table, writers.pop(table), out, tables_out)
        writes.close()
        for (kind, table), (local, rows) in side.close().items():
            key = f"{kind}/{table}.parquet"
            side_out[kind][table] = {"path": key, "rows": rows, "sha256": _sha256(local)}
            out.put_file(key, local)
    stats = reader.stats
    totals = {k: sum(getattr(s, k) for s in stats.values())
              for k in ("records", "clean", "repaired", "quarantined", "derived", "blank_lines",
                        "trailer_lines", "banner_lines", "header_lines")}
    balanced = all(s.balanced for s in stats.values())
    manifest: dict[str, object] = {
        "version": 1,
        "source": export.store.uri,
        "profile": export.profile.name,
        "export_date": str(reader.export_date),
        "shards_per_location": shards,
        "files": {k: s.to_dict() for k, s in sorted(stats.items())},
        "unknown_files": export.unknown_files,
        "tables": tables_out,
        "quarantine": side_out["quarantine"],
        "findings": side_out["findings"],
        "totals": totals,
        "balanced": balanced,
        "identity": (f"{totals['records']} records = {totals['clean']} clean + {totals['repaired']} repaired"
                     f" + {totals['quarantined']} quarantined"),
    }
    out.write_bytes(MANIFEST, json.dumps(manifest, indent=2, sort_keys=True, default=str).encode())
    return StageResult(out.uri, manifest, stats, time.perf_counter() - t0)


def require_balanced(manifest: dict[str, Any] | StageResult, staged_uri: str) -> None:
    """Refuse a staging whose identity does not balance: a file was not read to its end (a read error),
    was refused (unreadable, or most of its records unreadable) or lost rows. Names files and lines,
    never a value."""
    m: dict[str, Any] = manifest.manifest if isinstance(manifest, StageResult) else manifest
    if m.get("balanced"):
        return
    files = m.get("files", {})
    why = [str(st.get("error") or f"{name}: {st.get('records')} records are not all staged or quarantined")
           for name, st in sorted(files.items()) if not st.get("balanced", False)]
    raise SourceError(f"the staged export {staged_uri} is not balanced, so nothing is migrated: "
                      + "; ".join(why or ["no per-file detail"])
                      + ". Fix or re-export those files and stage again (a new run).")


class SideFiles:
    """The quarantine and findings rows of a staging: a Parquet file per (kind, table), written in row
    groups of up to ``SIDE_GROUP_ROWS`` rows.

    A row group per chunk (as first written) made each open writer keep ~1 KB of metadata per column
    chunk of every row group until the staging ended: a row group for every chunk of every table with
    a finding (thousands at a 1 M-patient DSO), growing with the export. Rows wait per file until a
    row group's worth; past ``4 x SIDE_GROUP_ROWS`` waiting in all, the files with the most are written.
    """

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self._writers: dict[tuple[str, str], pq.ParquetWriter] = {}
        self._waiting: dict[tuple[str, str], list[pa.Table]] = {}
        self._held: dict[tuple[str, str], int] = {}
        self.rows: dict[tuple[str, str], int] = {}

    def add(self, kind: str, table: str, t: pa.Table) -> None:
        if not t.num_rows:
            return
        key = (kind, table)
        self._waiting.setdefault(key, []).append(t)
        self._held[key] = self._held.get(key, 0) + t.num_rows
        self.rows[key] = self.rows.get(key, 0) + t.num_rows
        if self._held[key] >= SIDE_GROUP_ROWS:
            self._write(key)
        while sum(self._held.values()) >= 4 * SIDE_GROUP_ROWS:  # the most waiting first
            self._write(max(self._held, key=lambda k: self._held[k]))

    def _write(self, key: tuple[str, str]) -> None:
        pieces = self._waiting.pop(key, [])
        self._held[key] = 0
        if not pieces:
            return
        w = self._writers.get(key)
        if w is None:
            schema = QUARANTINE_SCHEMA if key[0] == "quarantine" else FINDINGS_SCHEMA
            w = self._writers[key] = pq.ParquetWriter(self._path(key), schema, compression="zstd",
                                                      write_statistics=False)
        w.write_table(pa.concat_tables(pieces), row_group_size=SIDE_GROUP_ROWS)

    def _path(self, key: tuple[str, str]) -> Path:
        return self.tmp / f"{key[0]}.{key[1]}.parquet"

    def close(self) -> dict[tuple[str, str], tuple[Path, int]]:
        """Every file written and closed: (kind, table) -> (local path, rows)."""
        for key in list(self._waiting):
            self._write(key)
        out = {}
        for key, w in self._writers.items():
            w.close()
            out[key] = (self._path(key), self.rows[key])
        return out


def _finish_table(table: str, writer: PartitionSpool, out: Store,
                  tables_out: dict[str, dict[str, object]]) -> None:
    parts = writer.close()
    shards_meta = []
    total = 0
    for (loc, sh), part in sorted(parts.items()):
        if not part.rows:
            continue
        key = f"{table}/location={loc}/shard={sh:03d}.parquet"
        shards_meta.append({"location": loc, "shard": sh, "path": key, "rows": part.rows,
                            "sha256": _sha256(part.path), "bytes": part.path.stat().st_size})
        out.put_file(key, part.path)
        part.path.unlink(missing_ok=True)
        total += part.rows
    tables_out[table] = {"rows": total, "shards": shards_meta}


# parent -> the tables it places (itself, and those whose rows reach a patient through it)
_CHILDREN = {p: {p} | {t.name for t in TABLES.values() if (t.patient_via or "").endswith("->" + p)}
             for p in ("appt", "claim")}


class Partitioner:
    """Location and shard of every staged row, from the parents already seen.

    Patients map to their home location; appointments and claims remember their patient's location
    and shard (``IdMap``: not the patient id, only what it decides) so that appointment procedures and
    claim lines follow them. Rows whose patient is unknown are orphans.
    """

    def __init__(self, shards: int) -> None:
        self.shards = shards
        self.patients = IdMap()
        self.parents: dict[str, IdMap | None] = {"appt": IdMap(), "claim": IdMap()}

    def retire(self, open_tables: Collection[str]) -> None:
        """Drop the map of each parent that neither it nor a child table of it can still receive rows
        for (``Export.open_tables`` of the file being read): at a 1 M-patient DSO the appointments' map
        is ~20 MB at 2 bytes an id, needed only until the appointment procedures are read, where the
        ledger, claims and recalls that follow made the staging's and the audit's peaks."""
        for parent, tables in _CHILDREN.items():
            if self.parents[parent] is not None and not any(t in open_tables for t in tables):
                self.parents[parent] = None

    def __call__(self, chunk: Chunk) -> tuple[pa.Table, pa.Array, pa.Array, pa.Table | None]:
        """``(rows, location, shard, orphans as quarantine rows or None)`` for one chunk."""
        data = chunk.data
        t = TABLES[chunk.table]
        n = data.num_rows
        if t.patient_via is None:
            return data, pa.repeat(ALL_LOCATIONS, n), pa.repeat(pa.scalar(0, pa.int32()), n), None
        if chunk.table == "patient":
            loc = pc.fill_null(data["loc_id"], NO_LOCATION)
            self.patients.add(data["pat_id"], None, loc)
            return data, loc, shard_of(data["pat_id"], self.shards), None
        via = t.patient_via
        if "->" in via:
            col, parent = via.split("->")
            shard_ids, loc = self._parent(parent, chunk.table).lookup(data[col])
            shard = pc.cast(pc.fill_null(shard_ids, 0), pa.int32())
        else:
            col = via
            pid = data[via]
            _, loc = self.patients.lookup(pid)
            shard = shard_of(pid, self.shards)
        if chunk.table == "appt":
            # Placeholders (no patient) stay with the appointment's own location.
            placeholder = pc.is_null(pid)
            loc = pc.if_else(placeholder, pc.fill_null(data["loc_id"], NO_LOCATION), loc)
            self._parent("appt", chunk.table).add(data["appt_id"], shard, loc)
            orphan = pc.and_(pc.invert(placeholder), pc.is_null(loc))
        else:
            orphan = pc.is_null(loc)
            if chunk.table == "claim":
                self._parent("claim", chunk.table).add(data["claim_id"], shard, loc)
        orphans = None
        if pc.any(orphan).as_py():
            o = data.filter(orphan)
            orphans = pa.table({
                "file": o["_file"], "table": pa.repeat(chunk.table, o.num_rows), "record": o["_record"],
                "line": o["_line"], "code": pa.repeat("FK1", o.num_rows),
                "reason": pa.repeat(f"{col} refers to a patient (or parent row) that is not in the export: "
                                    "re-export with the missing patient, or leave it quarantined",
                                    o.num_rows),
                "raw": pa.repeat(None, o.num_rows).cast(pa.string()),
            }, schema=QUARANTINE_SCHEMA)
            keep = pc.invert(orphan)
            data, loc, shard = data.filter(keep), loc.filter(keep), shard.filter(keep)
        return data, loc, shard, orphans

    def _parent(self, parent: str, table: str) -> IdMap:
        m = self.parents[parent]
        if m is None:  # a retired map would make every later child row an orphan: never silently
            raise RuntimeError(f"rows of {table} after the {parent} map was retired (open_tables is wrong)")
        return m


def move_to_quarantine(stats: dict[str, FileStats], chunk: Chunk, orphans: pa.Table) -> None:
    """Orphans were counted staged by the reader; move them (exactly) to quarantined."""
    st = stats[chunk.file]
    rep = chunk.data.filter(pc.is_in(chunk.data["_record"], orphans["record"]))["_repaired"]
    n_rep = int(pc.sum(rep.cast(pa.int64())).as_py() or 0)
    if chunk.table != st.table:  # derived rows are not records of the file
        st.derived -= orphans.num_rows
        st.derived_tables[chunk.table] -= orphans.num_rows
        st.derived_quarantined += orphans.num_rows
        return
    st.repaired -= n_rep
    st.clean -= orphans.num_rows - n_rep
    st.quarantined += orphans.num_rows
    st.findings["FK1"] += orphans.num_rows
