"""Issue 17 on the operator's path, over HTTP: a location whose daily quota runs out mid-run waits for the
reset. ``dos2hl migrate`` exits 5 and says when it resumes; ``dos2hl resume --wait-for-quota`` sleeps until
then (in this process, holding no worker) and finishes the run with every record exactly once."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import httpx
from typer.testing import CliRunner

from dos2hl.cli import app
from tests.migrate.conftest import EXPORT_DATE, http_world
from tests.migrate.test_pause import held_once


def test_a_spent_day_exits_5_with_its_reset_and_wait_for_quota_finishes_the_run(
        tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import dos2hl.cli.migrate as cli_migrate

    run = CliRunner().invoke
    with http_world(tmp_path, monkeypatch) as (w, base):
        lid = w.loc_ids["L001"]
        assert httpx.post(f"{base}/_sandbox/quota", json={"location_id": lid, "daily": 40}).status_code == 200
        common = ["--mapping", str(w.mapping), "--locations", str(w.locations), "--sample", "0", "--json"]
        res = run(app, ["migrate", str(w.export), *common, "--run-id", "r-day",
                        "--export-date", EXPORT_DATE.isoformat()])
        assert res.exit_code == 5, res.output
        out = json.loads(res.stdout)
        today = dt.datetime.now(dt.timezone.utc).date()
        until = f"{today + dt.timedelta(days=1)}T00:00:00Z"
        assert out["status"] == "waiting_for_quota" and out["resume_at"] == {"L001": until}
        l1, l2 = out["locations"]["L001"]["objects"], out["locations"]["L002"]["objects"]
        assert sum(r["failed"] + r["held"] for loc in (l1, l2) for r in loc.values()) == 0
        assert all(r["written"] + r["excluded"] == r["staged"] for r in l2.values())  # L002 completed
        assert l1["patient"]["pending"] > 0
        assert f"waits for its daily quota** to reset at {until}" in Path(out["report"]).read_text()

        waited: list[float] = []

        def new_day(t: float) -> None:  # instead of sleeping until t: the sandbox's and governor's new day
            waited.append(t)
            assert httpx.delete(f"{base}/_sandbox/quota").json()["new_day"] is True
            (tmp_path / "runs" / "state" / "governor.json").unlink(missing_ok=True)

        monkeypatch.setattr(cli_migrate, "_wait_until", new_day)
        res = run(app, ["resume", "r-day", *common, "--wait-for-quota"])
        assert res.exit_code == 0, res.output
        assert waited == [dt.datetime.fromisoformat(until.replace("Z", "+00:00")).timestamp()]
        assert f"run r-day: waiting for the daily quota until {until}" in res.output
        done = json.loads(res.stdout.strip().splitlines()[-1])
        assert done["status"] == "completed" and "resume_at" not in done
        contacts, records = held_once(w)
        written = {obj: sum(d["objects"][obj]["written"] for d in done["locations"].values())
                   for obj in done["locations"]["L001"]["objects"]}
        assert contacts == written["patient"]
        assert records == sum(n for obj, n in written.items() if obj != "patient")


def test_migrate_help_documents_the_quota_exit_code_and_the_wait_option() -> None:
    for command in ("migrate", "resume"):
        res = CliRunner().invoke(app, [command, "--help"])
        text = " ".join(res.output.split())
        assert res.exit_code == 0 and "--wait-for-quota" in text
    text = " ".join(CliRunner().invoke(app, ["migrate", "--help"]).output.split())
    assert "5 waiting for the daily quota" in text


def test_wait_for_quota_resumes_the_same_run_id_after_the_reset_the_run_returned(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The loop alone: a run returned ``waiting_for_quota`` -> sleep until its latest reset -> the same run
    id again; without the option the first answer is the command's (exit 5)."""
    import contextlib
    from types import SimpleNamespace

    import dos2hl.cli.migrate as cli_migrate
    import dos2hl.pipeline as pipeline
    from dos2hl.params import MigrateParams

    answers = [{"run_id": "r-new", "status": "waiting_for_quota", "locations": {},
                "resume_at": {"L001": "2026-12-06T00:00:00Z", "L002": "2026-12-06T01:00:00Z"}},
               {"run_id": "r-new", "status": "completed", "locations": {}}]
    seen: list[str | None] = []

    def run_migration(params, env, gates):  # type: ignore[no-untyped-def]
        seen.append(params.run_id)
        return SimpleNamespace(to_dict=lambda: answers[len(seen) - 1])

    waited: list[float] = []
    monkeypatch.setattr(pipeline, "run_migration", run_migration)
    monkeypatch.setattr(pipeline, "open_env",  # a run's env is a context (it closes its governor)
                        lambda params: contextlib.nullcontext(SimpleNamespace(progress=())))
    monkeypatch.setattr(cli_migrate, "_wait_until", waited.append)
    params = MigrateParams(source="export", mapping="m.yaml", locations="l.yaml", sample=0)
    assert cli_migrate._run_migration(params, wait_for_quota=True)["status"] == "completed"
    assert len(seen) == 2 and seen[0] and seen[1] == seen[0]  # the continuation is the same run
    assert waited == [dt.datetime(2026, 12, 6, 1, tzinfo=dt.timezone.utc).timestamp()]  # the latest reset
    seen.clear()
    assert cli_migrate._run_migration(params)["status"] == "waiting_for_quota" and len(seen) == 1
