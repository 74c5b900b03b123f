"""End to end against the sandbox: sample -> approve -> full -> verify -> report; resume; idempotent
re-run."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq

from dos2hl.pipeline import MigrateParams, migrate
from dos2hl.storage import open_store
from dos2hl.writing.ledger import read_ledger
from tests.migrate.conftest import EXPORT_DATE, World


def _opts(w: World, **kw: object) -> MigrateParams:
    return MigrateParams(source=str(w.export), mapping=str(w.mapping), locations=str(w.locations),
                          export_date=EXPORT_DATE, workers=2, **kw)  # type: ignore[arg-type]


def _truth(w: World, table: str) -> list[dict]:
    return pq.read_table(w.export.parent / "truth" / f"{table}.parquet").to_pylist()


def test_sample_then_full_run_writes_every_patient_once_with_its_records(world: World) -> None:
    w = world
    first = migrate(_opts(w, sample=10), approve=lambda rep: False, client_factory=w.factory)
    assert first["status"] == "incomplete" and "--approve" in first["next"]
    sampled = sum(first["sample"].values())
    assert 10 <= sampled <= 25
    assert first["field_diff"]["mismatches"] == 0, first["field_diff"]
    assert sum(len(w.dump(loc)["contacts"]) for loc in w.loc_ids) == sum(
        o["objects"]["patient"]["written"] for o in first["locations"].values())

    out = migrate(_opts(w, sample=10, run_id=first["run_id"]), approve=lambda rep: True,
                  client_factory=w.factory)
    assert out["status"] == "completed", out["reconciliation"]
    assert out["field_diff"]["mismatches"] == 0 and out["field_diff"]["read_back"]["patient"] >= 10
    patients = [p for p in _truth(w, "patient") if not p["deleted_flg"] and p["merged_into_id"] is None]
    by_loc = Counter(p["loc_id"] for p in patients)
    for loc, data in out["locations"].items():
        objs = data["objects"]
        assert objs["patient"]["written"] == by_loc[loc]
        contacts = w.dump(loc)["contacts"]
        assert len(contacts) == by_loc[loc]  # one contact per patient: families are not merged
        for name in ("insurance_record", "treatment_plan", "ledger_entry", "insurance_claim"):
            assert objs[name]["failed"] == 0 and objs[name]["held"] == 0
    # the sample's records were promoted, not re-created: every stable key created exactly once
    ledger = read_ledger(open_store(f"{Path(w.root) / 'runs'}/{out['run_id']}")).to_pylist()
    created = Counter(r["stable_key"] for r in ledger if r["op"] == "create" and r["outcome"] == "created")
    assert created and max(created.values()) == 1
    rep = (Path(w.root) / "runs" / out["run_id"] / "report" / "report.json")
    assert json.loads(rep.read_text())["status"] == "completed"
    # every request counted (reads, the inventory's pages, verification): within 5 % of the creates' minimum
    req = out["requests"]
    assert (
        req["http_429"] == 0
        and req["minimum_for_creates"] <= req["sent"] <= 1.05 * req["minimum_for_creates"]
    ), req
    assert sum(n for _, n in req["timeline"]) > 0
    assert "<svg" in rep.with_name("report.html").read_text()
    # each export office beside the sub-account it went to, both by name (read from HighLevel before writing)
    assert {loc: t["location_id"] for loc, t in out["sub_accounts"].items()} == w.loc_ids
    assert all(t["sub_account"] and t["office"] for t in out["sub_accounts"].values()), out["sub_accounts"]
    assert "## Where each office went" in rep.with_name("report.md").read_text()

    # a second run of the same run id writes nothing new
    w.sent.clear()
    again = migrate(_opts(w, sample=0, run_id=out["run_id"], verify="full"), client_factory=w.factory)
    assert again["status"] == "completed"
    assert [s for s in w.sent if s[0] == "POST" and not s[1].endswith("/search")] == []
    # --verify full: every record read back by search pages, not one GET each, and all of them match
    diff = again["field_diff"]
    assert diff["read_back"]["patient"] == sum(by_loc.values()) and diff["mismatches"] == 0
    assert sum(diff["read_back"].values()) > 10 * len([s for s in w.sent if s[1].endswith("/search")])
    assert not [s for s in w.sent if s[0] == "GET" and "/records/" in s[1]]


def test_a_location_failing_does_not_stop_the_others(world, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """An error escaping one location's shards stops those shards only: the other location completes, the
    report names the stopped shards, the run is incomplete (and retry/resume picks them up)."""
    from dos2hl.execution import shard as run_mod
    from dos2hl.pipeline import MigrateParams, migrate

    real = run_mod.migrate_shard

    def flaky(spec, client):  # type: ignore[no-untyped-def]
        if spec.location == "L002":
            raise RuntimeError("simulated outage of this sub-account")
        return real(spec, client)

    monkeypatch.setattr(run_mod, "migrate_shard", flaky)
    w = world
    out = migrate(MigrateParams(source=str(w.export), mapping=str(w.mapping), locations=str(w.locations),
                                 sample=0, workers=2, export_date=EXPORT_DATE), client_factory=w.factory)
    assert out["status"] == "incomplete"
    l1 = out["locations"]["L001"]["objects"]["patient"]
    assert l1["written"] == l1["source"] - l1["quarantined"] - l1["excluded"] > 0
    assert out["locations"]["L002"]["objects"]["patient"]["written"] == 0
    assert any(p.startswith("L002/shard") and "RuntimeError" in p for p in out["reconciliation"]["problems"])
    monkeypatch.setattr(run_mod, "migrate_shard", real)
    again = migrate(MigrateParams(source=str(w.export), mapping=str(w.mapping), locations=str(w.locations),
                                   sample=0, workers=2, export_date=EXPORT_DATE, run_id=out["run_id"]),
                    client_factory=w.factory)
    assert again["status"] == "completed", again["reconciliation"]


def test_a_token_of_another_sub_account_is_refused_before_any_write(world) -> None:  # type: ignore[no-untyped-def]
    import json

    import pytest

    from dos2hl.errors import ConfigError
    from dos2hl.pipeline import MigrateParams, migrate

    w = world
    journal = w.state / "journal.jsonl"
    seen = len(journal.read_text().splitlines())
    with pytest.raises(ConfigError, match=r"DOS2HL_TEST_TOKEN_L00\d does not open location"):
        migrate(MigrateParams(source=str(w.export), mapping=str(w.mapping), locations=str(w.locations),
                               sample=0, export_date=EXPORT_DATE), client_factory=_swapped(w))
    lines = [json.loads(x) for x in journal.read_text().splitlines()[seen:]]
    assert lines and all(x["method"] == "GET" for x in lines)  # the check read; nothing was written
    assert {x["status"] for x in lines} == {403}  # HighLevel's tenancy answer to the other location's token


def _swapped(w):  # type: ignore[no-untyped-def]
    """Clients whose token belongs to the other location (a locations.yaml mix-up)."""
    from pydantic import SecretStr

    from dos2hl.highlevel import HighLevelClient
    from tests.migrate.conftest import BASE, FAST, Counting

    other = {"L001": "L002", "L002": "L001"}

    def factory(loc: str) -> HighLevelClient:
        token = w.tokens[w.loc_ids[other[loc]]]
        return HighLevelClient(BASE, SecretStr(token), w.loc_ids[loc], retry=FAST, sleep=w.clock.advance,
                               transport=Counting(w.transport, w.sent))
    return factory
