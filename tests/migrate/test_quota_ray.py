"""Issue 17 with Ray: two shard workers (processes) and the governor actor; L001's daily limit, scaled down in
the sandbox, runs out mid-write. L001 waits for the reset (nothing failed, its shards not handed out),
L002 completes and is read back; after the reset the resumed run finishes L001 with every record exactly
once, and its read-back (search pages, after the last write) reads L001's records only: L002's verified
shards are kept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.migrate.conftest import EXPORT_DATE, http_world
from tests.migrate.test_pause import held_once

GOVERNOR = "gov-quota-ray-test"


def _journal(w: Any) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (w.state / "journal.jsonl").read_text().splitlines()]


def _new_governor_day(tmp_path: Path) -> None:
    """The governor's new day: its actor (which learnt the scaled limit) gone, its state with it."""
    from dos2hl.governor.actor import connect, kill

    kill(connect(name=GOVERNOR))
    (tmp_path / "runs" / "state" / "governor.json").unlink(missing_ok=True)


@pytest.mark.slow  # ~60 s of Ray (two runs) for make test's budget; the threads variants run there
def test_a_spent_day_with_two_ray_workers_pauses_one_location_and_resume_finishes_it_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ray

    from dos2hl.pipeline import MigrateParams, migrate

    monkeypatch.setenv("DOS2HL_GOVERNOR_NAME", GOVERNOR)
    if ray.is_initialized():
        ray.shutdown()
    try:
        with http_world(tmp_path, monkeypatch) as (w, base):
            lid1, lid2 = w.loc_ids["L001"], w.loc_ids["L002"]
            used = httpx.get(f"{base}/_sandbox/quota").json()["used_today"].get(lid1, 0)
            assert httpx.post(f"{base}/_sandbox/quota", json={"location_id": lid1,
                                                              "daily": used + 60}).status_code == 200
            params = MigrateParams(source=str(w.export), mapping=str(w.mapping), locations=str(w.locations),
                                   sample=0, executor="ray", workers=2, verify="full", run_id="r-ray-q",
                                   export_date=EXPORT_DATE, bulk_threshold=10**6)
            out = migrate(params)
            assert out["status"] == "waiting_for_quota", (out["paused"], out["reconciliation"])
            assert list(out["resume_at"]) == ["L001"] and out["verify_paused"] == []
            l1, l2 = out["locations"]["L001"]["objects"], out["locations"]["L002"]["objects"]
            assert sum(r["failed"] + r["held"] for loc in (l1, l2) for r in loc.values()) == 0
            assert all(r["written"] + r["excluded"] == r["staged"] for r in l2.values())  # L002 completed
            assert l1["patient"]["pending"] > 0
            assert out["field_diff"]["read_back"]["patient"] == l2["patient"]["written"]  # L002's, verified
            assert out["shards_per_node"]  # the shards ran on the Ray workers

            assert httpx.delete(f"{base}/_sandbox/quota").json()["new_day"] is True
            _new_governor_day(tmp_path)
            skip = len(_journal(w))
            done = migrate(params)
            assert done["status"] == "completed", done["reconciliation"]
            contacts, records = held_once(w)  # every key at most once
            written = {obj: sum(d["objects"][obj]["written"] for d in done["locations"].values())
                       for obj in done["locations"]["L001"]["objects"]}
            assert contacts == written["patient"] and records == sum(
                n for obj, n in written.items() if obj != "patient")
            lines = _journal(w)[skip:]
            writes = [i for i, x in enumerate(lines) if x["method"] in ("POST", "PUT", "DELETE")
                      and not x["path"].endswith("/search")]
            assert writes and not [i for i in writes if lines[i]["location"] == lid2]  # none of L002's again
            # the read-back comes after the last write (the report sends nothing): L001's lines only, all
            # of this attempt's verify requests among them (L002's verified shards were kept)
            after = lines[writes[-1] + 1:]
            verified = done["requests"]["by_step"]["verify-full"] - out["requests"]["by_step"]["verify-full"]
            assert {x["location"] for x in after} == {lid1} and len(after) >= verified > 0
            diff = done["field_diff"]
            assert diff["read_back"]["patient"] == written["patient"] and diff["mismatches"] == 0
    finally:
        if ray.is_initialized():
            from dos2hl.governor.actor import connect, kill

            kill(connect(name=GOVERNOR))
            ray.shutdown()
