"""Issue 17 on the operator's path, against the sandbox over HTTP: a token revoked mid-run pauses its location
(exit 4, nothing failed, the other location done); restored, ``dos2hl resume`` completes the same run with
every record in HighLevel exactly once."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from typer.testing import CliRunner

from dos2hl.cli import app
from tests.migrate.conftest import EXPORT_DATE, http_world
from tests.migrate.test_pause import held_once


def test_revoked_token_pauses_with_exit_4_and_resume_completes_the_run(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    run = CliRunner().invoke
    with http_world(tmp_path, monkeypatch, faults=lambda w: f"outage={w.loc_ids['L001']}@3") as (w, base):
        lid = w.loc_ids["L001"]
        common = ["--mapping", str(w.mapping), "--locations", str(w.locations), "--sample", "0", "--json"]
        res = run(app, ["migrate", str(w.export), *common, "--run-id", "r-http",
                        "--export-date", EXPORT_DATE.isoformat()])
        assert res.exit_code == 4, res.output
        out = json.loads(res.stdout)
        assert out["status"] == "paused"
        assert out["paused"] == {"L001": out["paused"]["L001"]}
        assert out["paused"]["L001"].startswith("HighLevel answered 401 (token) on ")
        l1, l2 = out["locations"]["L001"]["objects"], out["locations"]["L002"]["objects"]
        assert l1["patient"]["written"] == 3 and l1["patient"]["pending"] > 0
        assert sum(r["failed"] + r["held"] for loc in (l1, l2) for r in loc.values()) == 0
        assert all(r["written"] + r["excluded"] == r["staged"] for r in l2.values())  # L002 completed
        for r in l1.values():
            assert r["staged"] == r["written"] + r["excluded"] + r["pending"]
        pending_csv = Path(out["report"]).parent / "pending.csv"
        assert pending_csv.read_text().count("\n") == 1  # the header: no dead letter
        assert "Location L001 paused" in Path(out["report"]).read_text()

        res = run(app, ["resume", "r-http", *common])  # the token still revoked: paused, nothing written
        assert res.exit_code == 4 and "location L001 paused: HighLevel answered 401 (token)" in res.output, \
            res.output
        assert httpx.delete(f"{base}/_sandbox/outages").json() == {"restored": [lid]}
        res = run(app, ["resume", "r-http", *common])
        assert res.exit_code == 0, res.output
        done = json.loads(res.stdout)
        assert done["status"] == "completed" and "paused" not in done
        contacts, records = held_once(w)
        staged = {obj: sum(d["objects"][obj]["staged"] for d in done["locations"].values())
                  for obj in done["locations"]["L001"]["objects"]}
        written = {obj: sum(d["objects"][obj]["written"] for d in done["locations"].values())
                   for obj in staged}
        assert contacts == written["patient"] == staged["patient"]
        assert records == sum(n for obj, n in written.items() if obj != "patient")


def test_migrate_help_documents_the_paused_exit_code() -> None:
    res = CliRunner().invoke(app, ["migrate", "--help"])
    assert res.exit_code == 0
    text = " ".join(res.output.split())
    assert "4 paused" in text and "dos2hl resume RUN_ID" in text
    assert CliRunner().invoke(app, ["resume", "--help"]).exit_code == 0
