"""Exports shaped like another vendor's, read through a field map: list columns become child rows,
a denormalised coverage file feeds four tables, a table split over two files is joined on its key.
The fixtures are hand-made (tests/fixtures/shaped); every staged row is asserted exactly."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest

from dos2hl.api import open_export
from dos2hl.sources.reader import ExportReader

FIXTURES = Path(__file__).parents[1] / "fixtures" / "shaped"
EXPORT_DATE = dt.date(2024, 6, 28)


def read(name: str, block_bytes: int = 4 << 20) -> tuple[ExportReader, dict[str, pa.Table]]:
    """Read fixture export ``name`` with its map; every chunk's rows, findings and quarantine."""
    reader = ExportReader(open_export(FIXTURES / name, profile=str(FIXTURES / f"{name}.mapping.yaml")),
                          export_date=EXPORT_DATE, block_bytes=block_bytes)
    tables: dict[str, list[pa.Table]] = {}
    for chunk in reader.iter_all():
        tables.setdefault(chunk.table, []).append(chunk.data)
        tables.setdefault("_findings", []).append(chunk.findings)
        tables.setdefault("_quarantine", []).append(chunk.quarantine)
    return reader, {t: pa.concat_tables(v) for t, v in tables.items()}


def rows(t: pa.Table, *cols: str) -> list[tuple[object, ...]]:
    return sorted(zip(*(t[c].to_pylist() for c in cols), strict=True), key=repr)


def test_a_list_column_becomes_child_rows_and_a_bad_item_is_quarantined_alone() -> None:
    reader, out = read("vendor_b")
    assert rows(out["appt"], "appt_id", "pat_id") == [(5001, 101), (5002, 101), (5003, 102), (5004, 103),
                                                      (5005, 102)]
    assert rows(out["apptproc"], "appt_id", "seq", "proc_code", "_line") == sorted([
        (5001, 1, "D0120", 2), (5001, 2, "D1110", 2),
        (5002, 1, "D0274", 3), (5002, 2, "D0120", 3),  # "D0274, D0120": the empty item between is none
        (5003, 1, "D2391", 4), (5003, 2, "D2392", 4),
        (5005, 1, "D0140", 6), (5005, 3, "D0220", 6),  # item 2 ("??") is quarantined, its appt is staged
    ], key=repr)
    q = out["_quarantine"].filter(pa.compute.equal(out["_quarantine"]["table"], "apptproc"))
    assert rows(q, "file", "line", "code") == [("Visits.csv", 6, "LST1")]
    assert "item 2 of list column Codes" in q["reason"][0].as_py()
    st = reader.stats["Visits.csv"]
    assert (st.records, st.clean, st.repaired, st.quarantined) == (5, 5, 0, 0)  # the parent rows: all staged
    assert (st.derived, dict(st.derived_tables), st.derived_quarantined) == (8, {"apptproc": 8}, 1)
    assert st.balanced
    assert "Codes" not in st.unknown_columns  # consumed by the list, not an unmapped column


def stage(name: str, tmp_path: Path) -> dict[str, object]:
    from dos2hl.api import stage_export

    res = stage_export(FIXTURES / name, tmp_path / "staged", profile=str(FIXTURES / f"{name}.mapping.yaml"),
                       export_date=EXPORT_DATE)
    return res.manifest


def test_staging_a_list_column_balances_and_counts_the_children_as_derived(tmp_path: Path) -> None:
    m = stage("vendor_b", tmp_path)
    assert m["balanced"] is True
    tables = m["tables"]
    assert isinstance(tables, dict)
    assert (tables["appt"]["rows"], tables["apptproc"]["rows"]) == (5, 8)
    visits = m["files"]["Visits.csv"]  # type: ignore[index]
    got = (visits["records"], visits["clean"], visits["derived"], visits["derived_quarantined"])
    assert got == (5, 5, 8, 1)
    assert m["quarantine"]["apptproc"]["rows"] == 1  # type: ignore[index]


def test_a_denormalised_coverage_file_feeds_carrier_plan_subscriber_and_coverage_linked_by_key() -> None:
    reader, out = read("vendor_b")
    carriers = {r["carrier_id"]: r for r in out["insco"].to_pylist()}
    plans = {r["plan_id"]: r for r in out["insplan"].to_pylist()}
    subs = {r["sub_rec_id"]: r for r in out["inssub"].to_pylist()}
    # two carriers named on six rows: each once (a key hashed from name + payer id), lineage = first row
    assert sorted((c["carrier_name"], c["payer_id"], c["_line"]) for c in carriers.values()) == [
        ("Cigna Dental", "62308", 3), ("Delta Dental", "94276", 2)]
    assert sorted((p["group_no"], carriers[p["carrier_id"]]["carrier_name"]) for p in plans.values()) == [
        ("G-100", "Delta Dental"), ("G-200", "Cigna Dental"), ("G-300", "Delta Dental")]
    # every coverage row is a patins row linked to its subscription -> plan -> carrier
    chain = sorted(
        (c["pat_id"], c["pat_member_id"], c["elig_stat"], subs[c["sub_rec_id"]]["member_id"],
         subs[c["sub_rec_id"]]["subscriber_pat_id"], plans[subs[c["sub_rec_id"]]["plan_id"]]["group_no"],
         carriers[plans[subs[c["sub_rec_id"]]["plan_id"]]["carrier_id"]]["carrier_name"], c["_line"])
        for c in out["patins"].to_pylist())
    assert chain == [
        (101, "M-1", "V", "S1001", 101, "G-100", "Delta Dental", 2),
        (101, "M-2", "I", "S2001", 101, "G-200", "Cigna Dental", 3),
        (102, "M-3", "V", "S1002", 102, "G-100", "Delta Dental", 4),
        (102, "M-4", "V", "S2002", 102, "G-200", "Cigna Dental", 5),
        (103, "M-5", "V", "S3001", 103, "G-300", "Delta Dental", 6),
        (103, "M-6", "U", "S2003", 103, "G-200", "Cigna Dental", 7),
    ]
    ids = out["patins"]["patins_id"]  # the file has no coverage id: one hashed from the row's values
    assert len(set(ids.to_pylist())) == 6 and ids.null_count == 0
    st = reader.stats["Coverage.csv"]
    assert (st.records, st.clean, st.repaired, st.quarantined, st.derived) == (6, 6, 0, 0, 2 + 3 + 6)
    assert dict(st.derived_tables) == {"insco": 2, "insplan": 3, "inssub": 6} and st.balanced
    assert not st.unknown_columns
    # the synthesised keys are deterministic: a second read (another run) gives the same ids
    _, again = read("vendor_b")
    for t in ("insco", "insplan", "inssub", "patins"):
        assert sorted(again[t].column(0).to_pylist()) == sorted(out[t].column(0).to_pylist()), t


def test_staging_a_coverage_file_writes_every_derived_table_and_balances(tmp_path: Path) -> None:
    m = stage("vendor_b", tmp_path)
    tables = m["tables"]
    assert isinstance(tables, dict) and m["balanced"] is True
    assert {t: tables[t]["rows"] for t in ("patient", "insco", "insplan", "inssub", "patins")} == {
        "patient": 3, "insco": 2, "insplan": 3, "inssub": 6, "patins": 6}
    cov = m["files"]["Coverage.csv"]  # type: ignore[index]
    assert (cov["records"], cov["clean"], cov["quarantined"], cov["derived"]) == (6, 6, 0, 11)
    totals = m["totals"]
    assert isinstance(totals, dict)
    # source records: 3 patients + 6 coverage rows + 5 visits; derived rows are counted apart
    assert (totals["records"], totals["clean"], totals["derived"]) == (14, 14, 11 + 8)


def test_the_maps_profile_refuses_an_entry_it_cannot_honour(tmp_path: Path) -> None:
    """Never a silently dropped entry: each one the reader cannot place is a ConfigError naming it."""
    from dos2hl.errors import ConfigError
    from dos2hl.mapping.model import load_mapping

    m = load_mapping(FIXTURES / "vendor_b.mapping.yaml")
    profile = m.to_profile()
    assert profile.spec("patins").derived["insco"] == {"Carrier": "carrier_name", "PayerID": "payer_id"}
    assert profile.spec("appt").lists["Codes"].table == "apptproc"

    orphan = m.model_copy(update={"files": {k: v for k, v in m.files.items() if k != "Visits"}})
    with pytest.raises(ConfigError, match=r"Visits\.VisitID maps to appt\.appt_id but its file 'Visits'"):
        orphan.to_profile()
    wrong = m.model_copy(update={"files": {**m.files, "Visits": "patient"}})
    with pytest.raises(ConfigError, match=r"Visits\.Codes: a list of apptproc\.proc_code cannot be read from "
                                          r"a patient file"):
        wrong.to_profile()
    split = load_mapping(FIXTURES / "split_patients.mapping.yaml")
    keyless = split.model_copy(update={"fields": [e for e in split.fields
                                                  if e.source != "ContactInfo.PatID"]})
    with pytest.raises(ConfigError, match="ContactInfo and Demographics both hold patient: each must map"):
        keyless.to_profile()


def test_a_table_split_over_two_files_is_joined_on_its_key() -> None:
    reader, out = read("split_patients")
    got = rows(out["patient"], "pat_id", "loc_id", "lname", "zip", "cphone", "email", "_file", "_line")
    assert got == [
        (101, "MAIN", "Rivera", "01103", "+14135550101", "ana@example.com", "Demographics.csv", 2),
        (102, "MAIN", "Rivera", "01103", None, None, "Demographics.csv", 3),  # its contact row conflicts
        (103, "MAIN", "Chen", "01104", None, None, "Demographics.csv", 4),  # only in Demographics: migrates
    ]
    q = rows(out["_quarantine"], "file", "line", "code")
    assert q == [
        ("ContactInfo.csv", 3, "JOIN1"),  # 102: another ZIP than Demographics says
        ("ContactInfo.csv", 4, "KEY1"),  # 104: only in ContactInfo, which has no office (loc_id)
        ("ContactInfo.csv", 5, "JOIN1"),  # 101 a second time in the same file
    ]
    demo, contact = reader.stats["Demographics.csv"], reader.stats["ContactInfo.csv"]
    assert (demo.records, demo.clean, demo.quarantined, demo.joined) == (3, 3, 0, 0)
    assert (contact.records, contact.clean, contact.repaired, contact.quarantined, contact.joined) == (
        4, 1, 0, 3, 1)
    assert demo.balanced and contact.balanced
    # staged rows = every file's staged records, less those merged into another file's row
    staged = sum(s.clean + s.repaired - s.joined for s in (demo, contact))
    assert staged == out["patient"].num_rows == 3


def test_staging_a_split_table_balances(tmp_path: Path) -> None:
    m = stage("split_patients", tmp_path)
    assert m["balanced"] is True
    assert m["tables"]["patient"]["rows"] == 3  # type: ignore[index]
    assert m["quarantine"]["patient"]["rows"] == 3  # type: ignore[index]
    assert m["files"]["ContactInfo.csv"]["findings"] == {"JOIN1": 2, "KEY1": 1}  # type: ignore[index]


def test_cli_stage_and_audit_read_a_shaped_export_through_its_map(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from dos2hl.cli.main import app

    runner = CliRunner()
    profile = str(FIXTURES / "vendor_b.mapping.yaml")
    res = runner.invoke(app, ["stage", str(FIXTURES / "vendor_b"), "--to", str(tmp_path / "st"),
                              "--profile", profile, "--export-date", "2024-06-28"])
    assert res.exit_code == 0, res.output
    assert ("Coverage.csv: 6 records = 6 clean + 0 repaired + 0 quarantined "
            "(+11 derived rows: insco 2, insplan 3, inssub 6)") in res.output
    assert "(+8 derived rows: apptproc 8; 1 derived rows quarantined)" in res.output
    res = runner.invoke(app, ["audit", str(FIXTURES / "vendor_b"), "--out", str(tmp_path / "audit"),
                              "--profile", profile, "--export-date", "2024-06-28"])
    assert res.exit_code == 0, res.output  # (an apptproc without a PROCCODE file: no orphan check crash)
    assert "14 records = 14 clean + 0 repaired + 0 quarantined" in res.output
    res = runner.invoke(app, ["stage", str(FIXTURES / "split_patients"), "--to", str(tmp_path / "st2"),
                              "--profile", str(FIXTURES / "split_patients.mapping.yaml")])
    assert res.exit_code == 0, res.output
    assert ("ContactInfo.csv: 4 records = 1 clean + 0 repaired + 3 quarantined "
            "(1 joined into another file's rows)") in res.output


def test_tiny_blocks_give_the_same_rows() -> None:
    """One carrier on rows of different blocks is still one carrier; a join spans blocks."""
    for name in ("vendor_b", "split_patients"):
        _, whole = read(name)
        _, tiny = read(name, block_bytes=64)  # a block or two per row
        for t in whole:
            cols = [c for c in whole[t].column_names if c not in ("record",)]
            assert rows(tiny[t], *cols) == rows(whole[t], *cols), (name, t)


def test_a_mapped_carrier_id_is_the_key_and_a_quarantined_row_derives_nothing(tmp_path: Path) -> None:
    """The file's own carrier id is used as the key (no hash); a coverage row without its patient is
    quarantined whole: no subscription or plan of it is staged (a carrier other rows name still is)."""
    import shutil

    import yaml

    export = tmp_path / "export"
    shutil.copytree(FIXTURES / "vendor_b", export)
    (export / "Coverage.csv").write_text(
        "PatID,CarrierID,Carrier,PayerID,GroupNo,SubscriberID,MemberID,Eligibility\r\n"
        "101,7,Delta Dental,94276,G-100,S1001,M-1,V\r\n"
        "102,7,Delta Dental,94276,G-100,S1002,M-3,V\r\n"
        ",8,Cigna Dental,62308,G-900,S9,M-9,V\r\n"
        "103,7,Delta Dental of MA,94276,G-100,S3,M-7,V\r\n")  # carrier 7 again, under another name
    data = yaml.safe_load((FIXTURES / "vendor_b.mapping.yaml").read_text())
    data["fields"].append({"source": "Coverage.CarrierID", "table": "insco", "column": "carrier_id",
                           "target": "custom_objects.insurance_records.source_carrier_id",
                           "type": "NUMERICAL", "confidence": 1.0})
    (tmp_path / "export.mapping.yaml").write_text(yaml.safe_dump(data))
    reader = ExportReader(open_export(export, profile=str(tmp_path / "export.mapping.yaml")),
                          export_date=EXPORT_DATE)
    out: dict[str, list[dict[str, object]]] = {}
    for chunk in reader.iter_all():
        out.setdefault(chunk.table, []).extend(chunk.data.to_pylist())
        out.setdefault("_quarantine", []).extend(chunk.quarantine.to_pylist())
        out.setdefault("_findings", []).extend(chunk.findings.to_pylist())
    assert [(r["carrier_id"], r["carrier_name"]) for r in out["insco"]] == [(7, "Delta Dental")]
    assert [(r["carrier_id"], r["group_no"]) for r in out["insplan"]] == [(7, "G-100")]
    assert sorted(r["member_id"] for r in out["inssub"]) == ["S1001", "S1002", "S3"]
    # the first values of a key the file maps are kept; the same key with other values is flagged
    assert [(f["table"], f["line"], f["column"], f["key"], f["code"], f["action"]) for f in out["_findings"]
            if f["table"] == "insco"] == [("insco", 5, "CarrierID", "7", "KEY2", "flagged")]
    assert [(q["file"], q["line"], q["code"]) for q in out["_quarantine"] if q["table"] != "apptproc"] == [
        ("Coverage.csv", 4, "KEY1")]
    st = reader.stats["Coverage.csv"]
    assert (st.records, st.clean, st.quarantined, dict(st.derived_tables)) == (
        4, 3, 1, {"insco": 1, "insplan": 1, "inssub": 3})
    assert st.balanced


def test_a_profile_yaml_expresses_the_shapes_and_refuses_what_it_cannot_read(tmp_path: Path) -> None:
    from dos2hl.errors import ConfigError
    from dos2hl.sources.profile import load_profile

    ok = tmp_path / "vendor.yaml"
    ok.write_text("""
name: vendor
files:
  patins:
    file: Coverage
    columns: {PatID: pat_id}
    derived: {insco: {Carrier: carrier_name}}
  appt:
    file: Visits
    lists: {Codes: {table: apptproc, column: proc_code, split: ";"}}
  patient:
    file: Demographics
    parts: {Contacts: {columns: {PatID: pat_id, Mobile: cphone}}}
""")
    p = load_profile(ok)
    assert p.feeds("patins") == ["insco", "patins"] and p.feeds("appt") == ["appt", "apptproc"]
    assert p.stems["CONTACTS"] == "patient"
    assert p.canonical_column("patient", "Mobile", "Contacts") == "cphone"
    assert p.spec("patins").consumed() == {"CARRIER"}
    for bad, why in (("derived: {insco: {Carrier: nope}}", "derives insco columns it does not have"),
                     ("lists: {Codes: {table: insco, column: carrier_name, split: ';'}}",
                      "insco has no column referring to patins")):
        path = tmp_path / "bad.yaml"
        path.write_text(f"name: bad\nfiles:\n  patins:\n    file: Coverage\n    {bad}\n")
        with pytest.raises(ConfigError, match=why):
            load_profile(path)
