"""Planning reads a staging's reference tables once, not once per shard (the DSO tier plans 960 shards),
and a new staging of the same folder is read again (its manifest is the cache's key)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from dos2hl.generate import GenerateParams, generate


def _plan_every_shard(staged: Path, mapping: dict[str, Any]) -> None:
    from dos2hl.planning.plan import ShardSpec, plan_shard

    for loc in ("L001", "L002"):
        for shard in range(4):
            plan_shard(ShardSpec("t", "unused", str(staged), mapping, loc, shard, {"time_zone": None}),
                       plain=True)


def test_reference_tables_are_read_once_per_staging(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dos2hl.api import stage_export
    from dos2hl.mapping.propose import propose
    from dos2hl.planning import plan as planning

    generate(tmp_path / "gen", GenerateParams(seed=3, patients=80, locations=2, images="none", mess="clean"))
    export, staged = tmp_path / "gen" / "export", tmp_path / "staged"
    fmap = propose(export).confirm("test")
    assert any(e.target.startswith("custom_objects.insurance_records") for e in fmap.fields)
    reads: Counter[tuple[str, str]] = Counter()
    original = planning.read_staged

    def counting(store: Any, table: str, location: str, shard: int | None = None) -> Any:
        reads[(table, location)] += 1
        return original(store, table, location, shard)

    monkeypatch.setattr(planning, "read_staged", counting)
    stage_export(str(export), str(staged), shards=4)
    _plan_every_shard(staged, fmap.model_dump(mode="json"))
    for table in ("lookup", "recalltyp", "userfld", "insplan", "insco", "refsrc"):
        assert reads[(table, "_all")] == 1, table
    assert reads[("inssub", "L001")] == reads[("inssub", "L002")] == 1
    assert reads[("patient", "L001")] == 4  # the shard's own rows: once per shard

    stage_export(str(export), str(staged), shards=4, overwrite=True,
                 export_date=GenerateParams().export_date.replace(day=27))
    _plan_every_shard(staged, fmap.model_dump(mode="json"))  # a new manifest: read again
    assert reads[("lookup", "_all")] == 2
