"""``dos2hl status RUN_ID`` (issue 17) against the sandbox over HTTP: a paused run shows its location paused
with the reason and pending records, a finished run's counts equal its report, an unknown run id exits 2,
and no patient value of the export ever appears in the output."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import httpx
from typer.testing import CliRunner

from dos2hl.cli import app
from tests.migrate.conftest import EXPORT_DATE, http_world

COUNTS = ("source", "written", "failed", "held", "pending")


def _patient_values(export: Path) -> set[str]:
    """Canaries: every generated patient's last name and email (the export's own values)."""
    with (export / "PATIENT.CSV").open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("PAT_ID", "").isdigit()]
    assert rows
    return {v for r in rows for v in (r["LNAME"], r["EMAIL"]) if v and len(v) > 3}


def _matches_report(st: dict, report: dict) -> None:  # type: ignore[type-arg]
    assert set(st["locations"]) == set(report["locations"])
    for loc, d in report["locations"].items():
        for obj, row in d["objects"].items():
            got = st["locations"][loc]["objects"][obj]
            for c in ("source", "written", "failed", "held"):
                assert got[c] == row[c], (loc, obj, c)
            assert got["pending"] == row.get("pending", 0)


def test_status_of_a_paused_then_finished_run(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    run = CliRunner().invoke
    storage = str(tmp_path / "runs")
    with http_world(tmp_path, monkeypatch, faults=lambda w: f"outage={w.loc_ids['L001']}@3") as (w, base):
        canaries = _patient_values(w.export)
        common = ["--mapping", str(w.mapping), "--locations", str(w.locations), "--sample", "0", "--json"]
        res = run(app, ["migrate", str(w.export), *common, "--run-id", "r-st",
                        "--export-date", EXPORT_DATE.isoformat()])
        assert res.exit_code == 4, res.output
        report = json.loads((Path(json.loads(res.stdout)["report"]).parent / "report.json").read_text())

        res = run(app, ["status", "r-st", "--storage", storage, "--json"])
        assert res.exit_code == 0, res.output
        st = json.loads(res.stdout)  # one JSON object
        assert set(st) == {"run_id", "state", "paused", "counts_from", "locations", "eta"}
        assert st["run_id"] == "r-st" and st["state"] == "paused" and st["eta"] is None
        assert list(st["paused"]) == ["L001"] and st["paused"]["L001"] == report["paused"]["L001"]
        assert st["paused"]["L001"].startswith("HighLevel answered 401 (token)")
        l1 = st["locations"]["L001"]
        assert l1["state"] == "paused" and l1["paused"] == st["paused"]["L001"]
        assert l1["location_id"] == w.loc_ids["L001"]
        assert l1["totals"]["pending"] > 0 and l1["objects"]["patient"]["pending"] > 0
        assert st["locations"]["L002"]["state"] == "done"
        assert set(l1["totals"]) == set(COUNTS)
        q = l1["requests"]
        assert q["requests_today"] > 0 and q["requests_left"] == q["ceiling"] - q["requests_today"]
        _matches_report(st, report)

        text = run(app, ["status", "r-st", "--storage", storage])
        assert text.exit_code == 0, text.output
        assert "location L001 paused: HighLevel answered 401 (token)" in text.output
        assert "requests today" in text.output
        for out in (res.output, text.output):
            assert not [v for v in canaries if v in out]  # ids, counts and statuses only

        assert httpx.delete(f"{base}/_sandbox/outages").json() == {"restored": [w.loc_ids["L001"]]}
        res = run(app, ["resume", "r-st", *common])
        assert res.exit_code == 0, res.output
        report = json.loads((Path(json.loads(res.stdout)["report"]).parent / "report.json").read_text())
        res = run(app, ["status", "r-st", "--storage", storage, "--json"])
        assert res.exit_code == 0, res.output
        st = json.loads(res.stdout)
        assert st["state"] == "completed" and st["paused"] == {}
        assert all(d["state"] == "completed" and d["totals"]["pending"] == 0
                   for d in st["locations"].values())
        _matches_report(st, report)
        assert not [v for v in canaries if v in res.output]


def test_status_in_flight_from_the_ledger(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Without a report (the run still writing) the counts come from the ledger, with an ETA."""
    import shutil

    storage = str(tmp_path / "runs")
    with http_world(tmp_path, monkeypatch) as (w, _):
        common = ["--mapping", str(w.mapping), "--locations", str(w.locations), "--sample", "0", "--json"]
        res = CliRunner().invoke(app, ["migrate", str(w.export), *common, "--run-id", "r-fl",
                                       "--export-date", EXPORT_DATE.isoformat()])
        assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "runs" / "r-fl" / "report" / "report.json").read_text())
    shutil.rmtree(tmp_path / "runs" / "r-fl" / "report")  # as before the run wrote it
    from dos2hl.execution.status import run_status

    st = run_status(storage, "r-fl")
    assert st["state"] == "running" and st["counts_from"] == "ledger"
    assert st["eta"] is not None and st["eta"]["method"]
    for loc, d in report["locations"].items():
        assert st["locations"][loc]["objects"]["patient"]["written"] == d["objects"]["patient"]["written"]


def test_status_of_an_unknown_run_exits_2(tmp_path: Path) -> None:
    (tmp_path / "runs" / "other" / "ledger").mkdir(parents=True)
    res = CliRunner().invoke(app, ["status", "no-such-run", "--storage", str(tmp_path / "runs")])
    assert res.exit_code == 2
    assert "no run 'no-such-run'" in res.output
