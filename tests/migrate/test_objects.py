"""Every seed object end to end (issue 7): appointments as opportunities + calendar events, recalls,
referrals, activities, documents and clinical notes with their inline images, against the sandbox.

One world (a messy practice with large and missing documents), one migration, then checks against the
sandbox's state and the source rows; a rollback at the end leaves the sub-accounts as they were."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from tests.migrate.conftest import EXPORT_DATE, World, make_world


def _staged(run: Path, table: str) -> list[dict[str, Any]]:
    files = sorted((run / "staged" / table).rglob("*.parquet"))
    return [r for f in files for r in pq.read_table(f).to_pylist()]


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from dos2hl.phi import create_key_file
    from dos2hl.pipeline import MigrateParams, migrate

    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("objects")
    mp.setenv("DOS2HL_STORAGE", str(root / "runs"))
    mp.setenv("DOS2HL_PHI_KEY_FILE", str(create_key_file(root / "keys" / "phi.key")))
    w = make_world(root, mp, patients=30, mess="nasty", crm=True, large_docs=True)
    _damage_documents(w)
    journal = w.state / "journal.jsonl"
    seen = len(journal.read_text().splitlines())
    rep = migrate(MigrateParams(source=str(w.export), mapping=str(w.mapping), locations=str(w.locations),
                                 sample=6, executor="threads", workers=2, export_date=EXPORT_DATE),
                  approve=lambda r: True, client_factory=w.factory)
    w.journaled = len(journal.read_text().splitlines()) - seen  # type: ignore[attr-defined]  # the run's requests
    yield w, rep, root / "runs" / rep["run_id"]
    w.stop()
    mp.undo()


def _damage_documents(w: World) -> None:
    """One zero-byte file (the generator makes missing and over-25 MB ones itself)."""
    files = sorted(p for p in (w.export / "IMAGES").rglob("*") if p.is_file()
                   and 0 < p.stat().st_size < 10**6)
    files[0].write_bytes(b"")


def test_every_object_reconciles_and_the_sample_diff_is_clean(migrated: Any) -> None:
    _w, rep, _run = migrated
    assert rep["status"] == "completed", (rep["reconciliation"], rep.get("pending"))
    for loc, data in rep["locations"].items():
        objs = data["objects"]
        for name in ("appointment", "recall", "referral", "activity", "document", "clinical_note", "patient"):
            o = objs[name]
            assert o["source"] - o["quarantined"] == o["written"] + o["excluded"] + o["failed"] + o["held"], (
                loc,
                name,
            )
            assert o["written"] > 0, (loc, name)
        # a fresh sub-account: every contact was created by this run, the sample's included
        assert objs["patient"]["created"] == objs["patient"]["written"]
    d = rep["field_diff"]
    assert d["mismatches"] == 0, {k: v for k, v in d["examples"].items()}
    for obj in ("appointment", "appointment_event", "recall", "activity", "document", "clinical_note"):
        assert d["read_back"].get(obj, 0) > 0, obj


def test_appointments_are_opportunities_with_silent_calendar_events(migrated: Any) -> None:
    w, rep, run = migrated
    appts = {r["appt_id"]: r for r in _staged(run, "appt")}
    for loc in w.loc_ids:
        state = w.dump(loc)
        pipelines = {p["id"]: p for p in state["pipelines"]}
        opps = [o for o in state["opportunities"] if pipelines[o["pipelineId"]]["name"] == "Appointments"]
        assert len(opps) == rep["locations"][loc]["objects"]["appointment"]["written"]
        contacts = {c["id"] for c in state["contacts"]}
        assert all(o["contactId"] in contacts for o in opps)
        events = state["appointments"]
        assert events and all(e["toNotify"] is False for e in events)  # never a text or email to a patient
        assert {e["contactId"] for e in events} <= contacts
        stages = {s["id"]: s["name"] for p in pipelines.values() for s in p["stages"]}
        for o in opps:
            aid = int(o["name"].rsplit("#", 1)[1].rstrip(")"))
            src = appts[aid]
            assert stages[o["pipelineStageId"]] == {"CMP": "Completed", "BRK": "Broken / No-show",
                                                    "CAN": "Cancelled",
                                                   "UNS": "Cancelled", "SCH": "Scheduled", "PLN": "Scheduled"
                                                   }.get(src["status"], stages[o["pipelineStageId"]])
    fees: Counter[int] = Counter()
    for p in _staged(run, "apptproc"):
        fees[p["appt_id"]] += float(p["fee"] or 0)
    some = [o for loc in w.loc_ids for o in w.dump(loc)["opportunities"] if "(#" in o["name"]]
    checked = 0
    for o in some:
        aid = int(o["name"].rsplit("#", 1)[1].rstrip(")"))
        if fees[aid]:
            assert o["monetaryValue"] == pytest.approx(fees[aid])
            checked += 1
    assert checked > 10


def test_recalls_merge_to_one_opportunity_per_patient_and_type(migrated: Any) -> None:
    w, _rep, run = migrated
    rows = _staged(run, "recall")
    groups = {(r["pat_id"], r["recall_type"]) for r in rows}
    total = 0
    for loc in w.loc_ids:
        state = w.dump(loc)
        recall = {p["id"] for p in state["pipelines"] if p["name"] == "Recall"}
        total += sum(o["pipelineId"] in recall for o in state["opportunities"])
    excluded_patients = {
        r["pat_id"] for r in _staged(run, "patient") if r.get("deleted_flg") or r.get("merged_into_id")
    }
    assert total == len({g for g in groups if g[0] not in excluded_patients})


def test_referrals_are_tags_and_a_canonical_pick_list_value(migrated: Any) -> None:
    w, rep, _run = migrated
    tagged = [c for loc in w.loc_ids for c in w.dump(loc)["contacts"]
              if any(t.startswith("referral: ") for t in c.get("tags", []))]
    assert tagged
    notices = rep["notices"]
    assert notices["referral_variants"], "the nasty profile types free-text sources"
    assert all(set(v) == {"canonical", "rows"} and v["rows"] > 0 for v in notices["referral_variants"])


def test_documents_that_cannot_go_are_reported_one_row_each(migrated: Any) -> None:
    w, rep, run = migrated
    excluded = list(csv.DictReader(io.StringIO((run / "report" / "excluded.csv").read_text())))
    reasons = Counter(r["reason"].split(":")[0].split(" is ")[0] for r in excluded
                      if r["object"] == "document")
    assert reasons["zero-byte file"] == 1
    assert reasons["file missing from the export's IMAGES folder"] >= 1
    assert any("over HighLevel's 25 MB" in r["reason"] for r in excluded)
    docs = sum(d["objects"]["document"]["excluded"] for d in rep["locations"].values())
    assert docs == sum(1 for r in excluded if r["object"] == "document")
    names = {r["file_name"] for r in _staged(run, "document") if r.get("file_name")}
    assert not any(n in (run / "report" / "excluded.csv").read_text() for n in names if len(n) > 6)
    uploaded = [f for loc in w.loc_ids for f in w.dump(loc)["files"]]
    assert all(f["name"].startswith(("doc-", "note-")) for f in uploaded)  # ids only in file names
    assert all(f["size"] <= 25 * 2**20 for f in uploaded)


def test_clinical_notes_are_text_with_history_and_their_images_are_files(migrated: Any) -> None:
    from dos2hl.phi import load_sealer
    from dos2hl.planning.keys import stable_key
    from dos2hl.settings import Dos2hlSettings

    w, rep, run = migrated
    sealer = load_sealer(Dos2hlSettings().phi_key_file)
    texts = []
    for loc in w.loc_ids:
        for rec in w.dump(loc)["objects"].get("custom_objects.clinical_notes", []):
            sealed = rec["properties"].get("note_text")
            if sealed:
                texts.append(sealer.open(sealed, "custom_objects.clinical_notes.note_text",
                                         stable_key(loc, "clinical_note",
                                                    str(rec["properties"]["source_id"]))))
    assert texts
    assert not any("{\\rtf" in t or "\\par" in t or "<p>" in t or "<br" in t for t in texts)
    assert any("Amendment history" in t for t in texts)
    images = rep["notices"]["note_images"]
    assert images > 0
    note_files = [f for loc in w.loc_ids for f in w.dump(loc)["files"] if f["name"].startswith("note-")]
    assert len(note_files) == images
    links = [n for loc in w.loc_ids for n in w.dump(loc)["notes"]
             if "[Dent-O-Soft clinical note #" in n["body"]]
    assert len(links) == images


def test_activities_are_notes_with_their_original_time(migrated: Any) -> None:
    w, rep, run = migrated
    notes = [n["body"] for loc in w.loc_ids for n in w.dump(loc)["notes"]]
    logged = [b for b in notes if b.startswith("[Dent-O-Soft ") and "· log #" in b]
    assert len(logged) == sum(d["objects"]["activity"]["written"] for d in rep["locations"].values())
    when = {str(r["comm_id"]): r["comm_dttm"] for r in _staged(run, "commlog")}
    for b in logged[:50]:
        cid = b.split("· log #", 1)[1].split("]", 1)[0]
        assert when[cid].strftime("%Y-%m-%d %H:%M") in b.splitlines()[0]


def test_rollback_removes_every_kind_in_order(migrated: Any) -> None:
    from dos2hl.writing.rollback import rollback

    w, rep, run = migrated
    done = rollback(str(run), rep["run_id"], w.factory)
    assert done["status"] == "rolled back", done["not_undone"]
    for loc in w.loc_ids:
        state = w.dump(loc)
        assert not state["contacts"] and not state["opportunities"] and not state["appointments"]
        assert not state["notes"] and not state["files"] and not any(state["objects"].values())
    again = rollback(str(run), rep["run_id"], w.factory)
    assert again["deleted"] == {}
    print(json.dumps(done["deleted"]))


def test_the_planner_counts_what_the_run_sent(migrated: Any) -> None:
    """``dos2hl plan --json``: the API path's requests (writes, schema reads, discovery pages, the sample's
    and the final read-back) are within 3 % of every request the sandbox's journal recorded for the run,
    the timeline is derived from the limits, and the manual steps are listed."""
    from typer.testing import CliRunner

    from dos2hl.cli import app

    w, rep, _run = migrated
    res = CliRunner().invoke(app, ["plan", str(w.export), "--mapping", str(w.mapping), "--json", "--sample",
                                   "6", "--executor", "ray", "--workers", "1",
                                   "--verify", "sample", "--export-date", EXPORT_DATE.isoformat()])
    assert res.exit_code == 0, res.output
    plan = json.loads(res.output.strip().splitlines()[-1])
    planned = sum(v["api_path"]["requests"] for v in plan["locations"].values())
    assert rep["requests"]["sent"] == w.journaled
    assert abs(planned - w.journaled) <= 0.03 * w.journaled, (
        planned,
        w.journaled,
        rep["requests"]["by_class"],
    )
    reads = sum(v["api_path"]["verify_reads"] + v["api_path"]["prepare_reads"]
                for v in plan["locations"].values())
    assert reads > 0
    from dos2hl.quota import plan_quota

    full = plan_quota(w.export, w.mapping, sample=6, verify="full", export_date=EXPORT_DATE)
    for loc, v in full["locations"].items():  # every location reads back all of it (the second once
        # planned the first's read count as its mode, and so only the sample)
        assert v["api_path"]["verify_reads"] > plan["locations"][loc]["api_path"]["verify_reads"], loc
    group = plan["group"]["api_path"]  # the two offices at once: as long as the slower one
    assert group["requests"] == planned and group["locations"] == 2
    assert group["executor"] == "ray" and group["workers"] == 2  # one Ray worker writes both at once
    assert group["elapsed_hours"] == max(v["api_path"]["elapsed_hours"] for v in plan["locations"].values())
    for v in plan["locations"].values():
        a = v["api_path"]
        assert a["hours_at_burst_limit"] == pytest.approx(a["requests"] / 10 / 3600, abs=0.01)
        assert all(r["path"] == "API" for r in v["rows"])  # a small practice: nothing above 5,000
        lean = v["with_bulk_and_lookup_fields"]  # the policy the planner offers: no relation calls
        relations = sum(r["records"] for r in v["rows"] if r["object"].startswith("relation:"))
        assert lean["relations_saved"] == relations > 0
        assert lean["requests"] == v["with_bulk_path"]["requests"] - relations
    assert plan["grade"].startswith("A")
    assert any("pipeline 'Appointments'" in s for s in plan["manual_steps"])


def test_a_location_without_the_manual_steps_is_refused_before_any_write(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from dos2hl.errors import ConfigError
    from dos2hl.phi import create_key_file
    from dos2hl.pipeline import MigrateParams, migrate

    monkeypatch.setenv("DOS2HL_STORAGE", str(tmp_path / "runs"))
    monkeypatch.setenv("DOS2HL_PHI_KEY_FILE", str(create_key_file(tmp_path / "keys" / "phi.key")))
    w = make_world(tmp_path, monkeypatch, patients=20, crm=True, manual_steps=False)
    try:
        with pytest.raises(ConfigError, match="pipeline 'Appointments'.*UI"):
            migrate(MigrateParams(source=str(w.export), mapping=str(w.mapping), locations=str(w.locations),
                                   sample=0, export_date=EXPORT_DATE), client_factory=w.factory)
        assert not any(w.dump(loc)["contacts"] for loc in w.loc_ids)
    finally:
        w.stop()


def test_the_workflow_reference_is_in_the_run_and_on_the_cli(migrated: Any, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from dos2hl.cli import app

    w, rep, run = migrated
    wf = (run / "report" / "workflows.md").read_text()
    assert "Recall program" in wf and "Pipeline **Appointments**" in wf
    assert "workflows.md" in (run / "report" / "report.md").read_text()
    res = CliRunner().invoke(app, ["workflows", str(w.export), "--mapping", str(w.mapping), "--out",
                                   str(tmp_path),
                                   "--export-date", EXPORT_DATE.isoformat()])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "workflows.md").read_text().startswith(wf.splitlines()[0])
