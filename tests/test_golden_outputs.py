"""Byte-identical outputs across speed work: a small generated export's files, and every payload ``plan``
plans from it, hashed and compared with digests recorded from the code before the DSO-tier speed-ups
(generate in processes, plan's shared reference tables and column-wise transforms). A change of the
generator's bytes or of any planned payload fails here; a deliberate change records new digests.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from dos2hl.generate import GenerateParams, generate

PARAMS = GenerateParams(seed=5, patients=600, locations=3, mess="nasty", images="stub")
# recorded with main's code at a08b979 (before the speed-ups); PLANNED re-recorded when plan's answer
# gained each group's "executor" (without that key the answer's digest was still a08b979's, a59c2e2a...).
# GENERATED re-recorded when truth Parquet files got row groups of 131,072 rows (writer.TRUTH_ROW_GROUP):
# only truth/apptproc, commlog and ledger.parquet changed bytes (2-4 row groups -> 1), their tables
# equal, every export file the same (a08b979's digest was 29cae55b...).
GENERATED = "b79342c322861088d65c0648d7217322cbdb43b4cb373e1a051e8061a7068209"
# PLANNED re-recorded when the reader's CSV block went from 4 to 2 MB (sources/reader.BLOCK_BYTES): one
# ledger row the reader recovers from a broken record is emitted before its block's other rows, so its
# place among them follows the block's bounds; in shard L003/000 it moved from record 560 to 710, the
# 150 between one place up; every payload, count and the plan's answer the same (checked; ebae8fa3...).
PLANNED = "0701032636ae1ba140474f9783342411eb06def3a30a3d79d76841a2800f4daf"


def _canon(v: Any) -> Any:
    if isinstance(v, bytes):
        return "bytes:" + hashlib.sha256(v).hexdigest()
    if isinstance(v, (set, frozenset)):
        return sorted(map(str, v))
    if isinstance(v, (dt.date, dt.time, decimal.Decimal)):
        return f"{type(v).__name__}:{v}"
    raise TypeError(type(v).__name__)


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=_canon).encode()).hexdigest()


def files_digest(out: Path) -> str:
    """Every export and truth file of a generated run, by the manifest's sha256s (checked against disk)."""
    files = json.loads((out / "manifest.json").read_text())["files"]
    for rel in (r for r in files if r.startswith(("export/", "truth/")) and "/IMAGES/" not in r):
        assert hashlib.sha256((out / rel).read_bytes()).hexdigest() == files[rel]["sha256"], rel
    return _digest(files)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("golden")
    generate(out, PARAMS)
    return out


def test_generated_bytes_are_as_recorded(generated: Path) -> None:
    got = files_digest(generated)
    assert got == GENERATED, got


def test_tables_written_in_a_second_process_are_the_same_bytes(tmp_path: Path) -> None:
    """workers=2 (the default from 10 k patients): some tables' sinks in another process, the defects
    merged back into emit order."""
    generate(tmp_path, PARAMS, workers=2)
    got = files_digest(tmp_path)
    assert got == GENERATED, got


def test_planned_payloads_are_as_recorded(generated: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Every shard's plan (encrypt fields unsealed: sealing is randomised) and plan's answer. ``plan``
    counts a shard without planning it (``planning.tally``): each shard it counts is planned here too,
    recorded, and its count checked against the plan's."""
    from dos2hl.mapping.model import save_mapping
    from dos2hl.mapping.propose import propose
    from dos2hl.planning import counts as counting
    from dos2hl.planning import plan as planning
    from dos2hl.planning import tally
    from dos2hl.quota import plan_quota

    mapping = save_mapping(propose(generated / "export").confirm("golden test"), tmp_path / "mapping.yaml")
    lean = tally.tally_shard
    plans: dict[str, str] = {}

    def recording(spec: Any, relations: Any) -> Any:
        plan, counts = planning.plan_shard(spec, plain=True)
        plans[spec.name] = _digest([dataclasses.asdict(plan), counts])
        got, want = lean(spec, relations), counting.counted_plan(plan, relations)
        assert (list(got.kinds.items()), got.patients, got.years, got.noted) == (
            list(want.kinds.items()), want.patients, want.years, want.noted), spec.name
        return got

    monkeypatch.setattr(tally, "tally_shard", recording)
    monkeypatch.setenv("DOS2HL_SHARDS", "4")
    out = plan_quota(generated / "export", mapping, export_date=PARAMS.export_date, jobs=1)  # recorded here
    assert len(plans) == 12
    got = _digest([plans, out])
    assert got == PLANNED, got
