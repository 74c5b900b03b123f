"""Staging's partition spool: one memory budget for every table, a spill file, Parquet written once."""

from __future__ import annotations

import datetime as dt
import functools
import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dos2hl.api import stage_export
from dos2hl.sources.spool import Budget, PartitionSpool, Writes
from dos2hl.staging import BUDGET_BYTES

SCHEMA = pa.schema([("id", pa.int64()), ("text", pa.string())])


def _chunks(seed: int, n: int, rows: int) -> list[tuple[pa.Table, pa.Array, pa.Array]]:
    rng = random.Random(seed)
    out = []
    for c in range(n):
        ids = list(range(c * rows, (c + 1) * rows))
        data = pa.table({"id": pa.array(ids, pa.int64()),
                         "text": pa.array([f"row {i} " + "x" * rng.randrange(40) for i in ids])})
        loc = pa.array([rng.choice(["L1", "L2", "L3"]) for _ in ids])
        shard = pa.array([rng.randrange(8) for _ in ids], pa.int32())
        out.append((data, loc, shard))
    return out


def test_partitions_spill_under_one_budget_and_keep_their_row_order(tmp_path: Path) -> None:
    budget = Budget(64 << 10)
    writes = Writes()
    spools = {t: PartitionSpool(t, tmp_path, SCHEMA, writes, budget, part_rows=700, stats_columns=["id"])
              for t in ("a", "b")}  # two tables open at once share the budget
    want: dict[tuple[str, str, int], list[int]] = {}
    largest = 0
    for i, (data, loc, shard) in enumerate(_chunks(1, 40, 1_000)):
        table = "ab"[i % 2]
        spools[table].add(data, loc, shard)
        largest = max(largest, data.nbytes)
        for r, lo, sh in zip(data["id"].to_pylist(), loc.to_pylist(), shard.to_pylist(), strict=True):
            want.setdefault((table, lo, sh), []).append(r)
        # what is held never passes the budget by more than the chunk just added
        assert budget.used <= budget.total + data.nbytes
        # no Parquet writer is open while rows come: each one kept every row group's metadata
        assert not list(tmp_path.glob("*.parquet"))
    assert (tmp_path / "a.spill").exists() and (tmp_path / "b.spill").exists()
    for table, spool in spools.items():
        parts = spool.close()
        assert not (tmp_path / f"{table}.spill").exists()
        for (lo, sh), part in parts.items():
            f = pq.ParquetFile(part.path)
            got = f.read()
            assert got["id"].to_pylist() == want[(table, lo, sh)]  # every row, in the order it came
            assert all(t.startswith(f"row {r} ") for r, t in zip(got["id"].to_pylist(),
                                                                 got["text"].to_pylist(), strict=True))
            assert part.rows == len(want[(table, lo, sh)])
            sizes = [f.metadata.row_group(g).num_rows for g in range(f.metadata.num_row_groups)]
            assert max(sizes) <= 700 and sum(sizes) == part.rows
            # spilled in many small flushes, read back as row groups as full as the flushes allow
            assert all(a + b > 700 for a, b in zip(sizes, sizes[1:], strict=False))
    writes.close()
    assert budget.peak <= budget.total + largest
    assert budget.used == 0


def test_a_tiny_budget_stages_the_same_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every partition flushed as soon as it has rows (a 1-byte budget, 7-row row groups) against the
    default: the same shards, rows and order."""
    import dos2hl.api as api
    from dos2hl import staging

    root = tmp_path / "export"
    root.mkdir()
    (root / "LOCATION.CSV").write_bytes(b"LOC_ID,LOC_NAME\r\nL001,Main\r\nL002,North\r\n")
    (root / "PATIENT.CSV").write_bytes(b"PAT_ID,LOC_ID,LNAME,FNAME\r\n" + b"".join(
        f"{i},L00{1 + i % 2},Name{i},First{i}\r\n".encode() for i in range(1, 301)))
    (root / "APPT.CSV").write_bytes(b"APPT_ID,PAT_ID,LOC_ID,APPT_DATE,STATUS\r\n" + b"".join(
        f"{1000 + i},{1 + i % 300},L001,02/03/2024,CMP\r\n".encode() for i in range(900)))
    outs = {"default": tmp_path / "default", "tiny": tmp_path / "tiny"}
    stage_export(root, outs["default"], shards=4, export_date=dt.date(2024, 6, 28))
    monkeypatch.setattr(api, "stage", functools.partial(staging.stage, budget_bytes=1, part_rows=7))
    stage_export(root, outs["tiny"], shards=4, export_date=dt.date(2024, 6, 28))
    ma, mb = (json.loads((o / "manifest.json").read_text()) for o in outs.values())
    assert ma["totals"] == mb["totals"] and ma["totals"]["records"] == 2 + 300 + 900
    for table, meta in ma["tables"].items():
        assert [(s["location"], s["shard"], s["rows"]) for s in meta["shards"]] == \
            [(s["location"], s["shard"], s["rows"]) for s in mb["tables"][table]["shards"]]
        for s, t in zip(meta["shards"], mb["tables"][table]["shards"], strict=True):
            tiny = pq.ParquetFile(outs["tiny"] / t["path"])
            assert tiny.metadata.row_group(0).num_rows == min(7, t["rows"])  # the tiny run did spill
            assert pq.read_table(outs["default"] / s["path"]).equals(tiny.read())


def test_the_budget_comes_from_the_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``DOS2HL_STAGE_MEMORY_MB`` reaches the staging that the CLI and the flows run (``stage_export``)."""
    import dos2hl.api as api

    seen: dict[str, object] = {}
    monkeypatch.setattr(api, "stage", lambda *a, **kw: seen.update(kw))
    monkeypatch.setenv("DOS2HL_STAGE_MEMORY_MB", "3")
    root = tmp_path / "export"
    root.mkdir()
    (root / "LOCATION.CSV").write_bytes(b"LOC_ID,LOC_NAME\r\nL001,Main\r\n")
    (root / "PATIENT.CSV").write_bytes(b"PAT_ID,LOC_ID,LNAME,FNAME\r\n1,L001,A,B\r\n")
    stage_export(root, tmp_path / "out")
    assert seen["budget_bytes"] == 3 << 20
    monkeypatch.delenv("DOS2HL_STAGE_MEMORY_MB")
    stage_export(root, tmp_path / "out")
    assert seen["budget_bytes"] == BUDGET_BYTES == 64 << 20  # the library's default is the CLI's


def test_a_chunk_is_buffered_whole_not_a_table_per_partition(tmp_path: Path) -> None:
    """Rows wait as their chunk, sorted by partition (a table per chunk and partition cost a few KB of
    objects for a few rows each: at 60 locations x 16 shards, more than the rows)."""
    writes = Writes()
    spool = PartitionSpool("a", tmp_path, SCHEMA, writes, Budget(1 << 30), part_rows=10_000,
                           stats_columns=[])
    for data, loc, shard in _chunks(2, 5, 1_000):
        spool.add(data, loc, shard)
    assert [t.num_rows for t, _ in spool.chunks] == [1_000] * 5
    assert all(len(ranges) == 24 for _, ranges in spool.chunks)  # 3 locations x 8 shards, as row ranges
    assert not (tmp_path / "a.spill").exists()  # under the budget nothing is spilled
    parts = spool.close()
    writes.close()
    assert sum(pq.ParquetFile(p.path).metadata.num_rows for p in parts.values()) == 5_000


def test_quarantine_and_findings_are_written_in_row_groups_of_many_chunks(
        practice: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A row group per chunk kept ~1 KB of metadata per column chunk in each open writer until the
    staging ended (thousands of chunks at a DSO): the rows now wait for a row group's worth, and the
    files hold the same rows in the same order."""
    from dos2hl import staging
    from dos2hl.sources.reader import ExportReader

    kwdefaults = ExportReader.__init__.__kwdefaults__
    assert kwdefaults is not None
    monkeypatch.setitem(kwdefaults, "block_bytes", 16 << 10)  # many small chunks per file
    monkeypatch.setattr(staging, "SIDE_GROUP_ROWS", 500)
    given: dict[tuple[str, str], list[pa.Table]] = {}
    real_add = staging.SideFiles.add

    def spy(self: staging.SideFiles, kind: str, table: str, t: pa.Table) -> None:
        if t.num_rows:
            given.setdefault((kind, table), []).append(t)
        real_add(self, kind, table, t)

    monkeypatch.setattr(staging.SideFiles, "add", spy)
    out = tmp_path / "staged"
    stage_export(practice / "export", out, shards=2)
    m = json.loads((out / "manifest.json").read_text())
    chunks = groups = 0
    for kind in ("quarantine", "findings"):
        for table, meta in m[kind].items():
            f = pq.ParquetFile(out / meta["path"])
            pieces = given[(kind, table)]
            assert f.read().equals(pa.concat_tables(pieces))  # the same rows, in order
            assert f.metadata.num_row_groups <= len(pieces)
            chunks, groups = chunks + len(pieces), groups + f.metadata.num_row_groups
    assert chunks > 3 * groups  # the case it is for: far fewer row groups than chunks
