"""mapping.yaml: the confirmation gate (missing, stale, what changed), the derived export profile, the CLI."""

from __future__ import annotations

import csv
import datetime as dt
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from dos2hl.cli import app
from dos2hl.errors import ConfigError
from dos2hl.mapping.model import Mapping, load_mapping, require_confirmed, save_mapping
from dos2hl.mapping.objectmap import OBJECTS, VALUE_LABELS
from dos2hl.mapping.propose import reference_mapping
from dos2hl.model import TABLES

RENAME = {"PAT_ID": "PatNum", "LNAME": "PatLast", "FNAME": "PatFirst", "BIRTHDATE": "BirthDt",
          "CPHONE": "CellNo"}


def identity_mapping(tables: list[str] | None = None) -> Mapping:
    """The reference layout mapped onto itself, targets from the object map."""
    return reference_mapping(tables)


def test_every_canonical_column_has_a_target_and_the_seed_object_map_holds() -> None:
    m = identity_mapping()
    by = {(e.table, e.column): e for e in m.fields}
    assert by[("patient", "pat_id")].target == "contact.source_system_id"
    assert by[("patient", "created_dt")].type == "DATE"
    assert by[("patient", "ssn")].target == "skip" and by[("patient", "ssn")].phi == "omit"
    assert by[("patient", "lname")].target == "contact.lastName"
    assert by[("patins", "elig_stat")].target == "custom_objects.insurance_records.elig_stat"
    assert by[("apptproc", "proc_code")].type == "MULTIPLE_OPTIONS"
    assert by[("appt", "status")].values == VALUE_LABELS[("appt", "status")]
    assert by[("clinnote", "note_text")].phi == "encrypt"
    assert by[("recall", "due_dt")].target == "opportunity.recall_due_date"
    assert set(OBJECTS) == set(TABLES)
    objects = {e.target.split(".")[1] for e in m.fields if e.target.startswith("custom_objects.")}
    assert objects == {"insurance_records", "treatment_plans", "clinical_notes", "patient_ledger",
                       "insurance_claims"}  # within HighLevel's 10 per location


def test_confirmation_gate_missing_then_confirmed_then_stale(tmp_path: Path) -> None:
    path = save_mapping(identity_mapping(["patient"]), tmp_path / "mapping.yaml")
    with pytest.raises(ConfigError, match="not confirmed.*dos2hl map confirm"):
        require_confirmed(path)
    save_mapping(load_mapping(path).confirm("Dr. Rivera", dt.datetime(2026, 11, 26, tzinfo=dt.timezone.utc)),
                 path)
    m = require_confirmed(path)
    assert (
        m.confirmed is not None and m.confirmed.by == "Dr. Rivera" and m.confirmed.sha256 == m.content_hash()
    )
    # re-serialising or reordering keys does not void it; changing a target does, and the error says which
    data = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump(data, sort_keys=True))
    require_confirmed(path)
    for f in data["fields"]:
        if f["source"] == "PATIENT.MED_ALERT":
            f["phi"] = "send"
    data["fields"] = [f for f in data["fields"] if f["source"] != "PATIENT.USER4"]
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as err:
        require_confirmed(path)
    msg = str(err.value)
    assert "changed after Dr. Rivera confirmed it" in msg
    assert "PATIENT.MED_ALERT changed" in msg and "PATIENT.USER4 removed" in msg


def test_invalid_mapping_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such mapping file.*map propose"):
        load_mapping(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nfiles: {PATIENT: patients}\n")
    with pytest.raises(ConfigError, match="unknown table 'patients'"):
        load_mapping(bad)
    bad.write_text("version: 1\nfields:\n- {source: P.X, table: patient, column: nope, target: skip, type: "
                   "TEXT, "
                   "confidence: 1}\n")
    with pytest.raises(ConfigError, match="patient has no column 'nope'"):
        load_mapping(bad)


def test_the_maps_profile_reads_a_renamed_export(practice: Path, tmp_path: Path) -> None:
    """A vendor's file and column names, through the confirmed map, give the canonical rows."""
    from dos2hl.api import open_export
    from dos2hl.sources.reader import ExportReader

    src = practice / "export"
    renamed = tmp_path / "export"
    shutil.copytree(src, renamed)
    (renamed / "PATIENT.CSV").rename(renamed / "Patients.csv")
    raw = (renamed / "Patients.csv").read_bytes()  # the typical mess has cp1252 bytes: touch the header only
    first, _, rest = raw.partition(b"\r\n")
    header = next(csv.reader([first.decode("ascii")]))
    (renamed / "Patients.csv").write_bytes(",".join(RENAME.get(h,
                                                               h) for h in header).encode() + b"\r\n" + rest)
    m = identity_mapping()
    m.files.pop("PATIENT")
    m.files["Patients"] = "patient"
    for e in m.fields:
        if e.table == "patient":
            e.source = f"Patients.{RENAME.get(e.source.split('.')[1], e.source.split('.')[1])}"
    path = save_mapping(m, tmp_path / "mapping.yaml")

    def patients(export: Path, profile: object) -> list[tuple]:
        rows = []
        for ch in ExportReader(open_export(export, profile=profile)).iter_table("patient"):
            d = ch.data.select(["pat_id", "lname", "birthdate", "cphone"])
            rows += list(zip(*(d[c].to_pylist() for c in d.column_names), strict=True))
        return sorted(rows, key=lambda r: r[0])

    want = patients(src, "reference")
    assert len(want) > 100
    assert patients(renamed, str(path)) == want  # --profile mapping.yaml works wherever a profile does


def test_cli_confirm_and_check(tmp_path: Path) -> None:
    path = save_mapping(identity_mapping(["patient"]), tmp_path / "mapping.yaml")
    runner = CliRunner()
    res = runner.invoke(app, ["map", "check", str(path)])
    assert res.exit_code == 2 and "not confirmed" in res.output
    res = runner.invoke(app, ["map", "confirm", str(path), "--by", "Dr. Rivera"])
    assert res.exit_code == 0 and "confirmed by Dr. Rivera" in res.output
    assert runner.invoke(app, ["map", "check", str(path)]).exit_code == 0
    text = path.read_text().replace("target: contact.lastName", "target: contact.last_name_custom")
    path.write_text(text)
    res = runner.invoke(app, ["map", "check", str(path)])
    assert res.exit_code == 2 and "PATIENT.LNAME changed" in res.output
    res = runner.invoke(app, ["map", "confirm", str(path)], input="")
    assert res.exit_code == 2 and "--by NAME is required" in res.output


def test_the_sources_profile_loader_refuses_a_field_map_and_names_the_entry_point(tmp_path: Path) -> None:
    """The sources layer knows nothing of maps (no import back up): a map given to its loader is a
    clear error, and ``dos2hl.api.export_profile`` is the one door that reads either."""
    from dos2hl.api import export_profile
    from dos2hl.sources.profile import Profile, load_profile

    path = save_mapping(identity_mapping(["patient"]), tmp_path / "mapping.yaml")
    with pytest.raises(ConfigError, match="is a field map.*export_profile"):
        load_profile(path)
    assert isinstance(export_profile(path), Profile)
    assert export_profile("reference").name == "reference"
