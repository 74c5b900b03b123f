"""A single-office export (no file carries a location column): the map's ``export.location`` names the
office, ``map propose`` proposes it, the reader fills ``loc_id``/``home_loc_id`` with it, and a file
that has a location column keeps its own."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from dos2hl.api import open_export, stage_export
from dos2hl.errors import ConfigError
from dos2hl.mapping.model import load_mapping, require_confirmed, save_mapping
from dos2hl.mapping.propose import DEFAULT_LOCATION, propose
from dos2hl.sources.reader import ExportReader

FIXTURES = Path(__file__).parents[1] / "fixtures" / "shaped"
MAP = FIXTURES / "single_office.mapping.yaml"
EXPORT_DATE = dt.date(2024, 6, 28)


def _read(source: Path, profile: Path) -> tuple[ExportReader, dict[str, pa.Table]]:
    reader = ExportReader(open_export(source, profile=str(profile)), export_date=EXPORT_DATE)
    out: dict[str, list[pa.Table]] = {}
    for chunk in reader.iter_all():
        out.setdefault(chunk.table, []).append(chunk.data)
        out.setdefault("_quarantine", []).append(chunk.quarantine)
    return reader, {t: pa.concat_tables(v) for t, v in out.items()}


def test_rows_of_a_file_without_a_location_column_are_the_maps_office() -> None:
    reader, out = _read(FIXTURES / "single_office", MAP)
    assert out["patient"]["loc_id"].to_pylist() == ["L002"] * 3  # "l002" in the map: a code, upper-cased
    # Visits.csv has its own column: kept, a blank cell stays blank (not the map's office)
    assert out["appt"]["loc_id"].to_pylist() == [None, "EAST", None]
    assert out["_quarantine"].num_rows == 0
    assert all(st.balanced for st in reader.stats.values())


def test_without_the_office_every_patient_is_quarantined(tmp_path: Path) -> None:
    m = load_mapping(MAP)
    plain = save_mapping(m.model_copy(update={"export": m.export.model_copy(update={"location": None})}),
                         tmp_path / "m.yaml")
    _, out = _read(FIXTURES / "single_office", plain)
    assert "patient" not in out or out["patient"].num_rows == 0
    q = out["_quarantine"]
    assert q.filter(pa.compute.equal(q["table"], "patient"))["code"].to_pylist() == ["KEY1"] * 3


def test_a_file_refused_for_a_missing_column_says_which_and_how(tmp_path: Path) -> None:
    src = tmp_path / "export"
    src.mkdir()
    lines = [f"{100 + i},Name{i},Given{i},04/02/1980" for i in range(25)]
    (src / "Patients.csv").write_text("PatID,Last,First,BirthDate\n" + "\n".join(lines) + "\n")
    m = load_mapping(MAP)
    plain = m.model_copy(update={"export": m.export.model_copy(update={"location": None}),
                                 "files": {"Patients": "patient"},
                                 "fields": [e for e in m.fields if e.file == "Patients"]})
    manifest = stage_export(src, tmp_path / "st", profile=str(save_mapping(plain, tmp_path / "m.yaml")),
                            export_date=EXPORT_DATE).manifest
    assert manifest["balanced"] is False
    err = manifest["files"]["Patients.csv"]["error"]  # type: ignore[index]
    assert "no column for loc_id" in err and "export.location" in err
    assert "misread" not in err  # the file was read fine: the message must not send a person to the CSV
    manifest = stage_export(src, tmp_path / "st2", profile=str(save_mapping(m.model_copy(update={
        "files": plain.files, "fields": plain.fields}), tmp_path / "m2.yaml")),
        export_date=EXPORT_DATE).manifest
    assert manifest["balanced"] is True
    assert manifest["files"]["Patients.csv"]["clean"] == 25  # type: ignore[index]


def test_propose_names_the_office_only_when_no_file_says_it(tmp_path: Path) -> None:
    src = tmp_path / "one"
    src.mkdir()
    shutil.copy(FIXTURES / "single_office" / "Patients.csv", src)
    assert propose(src).export.location == DEFAULT_LOCATION
    assert propose(src, location="east").export.location == "EAST"
    # split_patients' Demographics has an Office column: each row's own office, no map-wide one
    assert propose(FIXTURES / "split_patients", location="EAST").export.location is None


def test_the_office_is_confirmed_content_and_older_maps_keep_their_hash(tmp_path: Path) -> None:
    m = load_mapping(MAP).confirm("Dr. Example")
    path = save_mapping(m, tmp_path / "m.yaml")
    assert require_confirmed(path).export.location == "L002"
    moved = m.model_copy(update={"export": m.export.model_copy(update={"location": "L003"})})
    with pytest.raises(ConfigError, match="export"):
        require_confirmed(save_mapping(moved, tmp_path / "m2.yaml"))
    # a map without the field keeps the hash it had before the field existed: tests/mapping/
    # test_mapping_split.py's confirmed_v1 fixture (it fails if an unset location enters the hash)


def test_cli_propose_says_which_office_and_how_to_choose(tmp_path: Path) -> None:
    from dos2hl.cli.main import app

    src = tmp_path / "one"
    src.mkdir()
    shutil.copy(FIXTURES / "single_office" / "Patients.csv", src)
    res = CliRunner().invoke(app, ["map", "propose", str(src), "--out", str(tmp_path / "m.yaml"),
                                   "--location", "L007"])
    assert res.exit_code == 0, res.output
    assert "single office" in res.output and "L007" in res.output and "--location" in res.output
    assert load_mapping(tmp_path / "m.yaml").export.location == "L007"


def test_an_office_the_location_file_does_not_list_is_warned_about(tmp_path: Path) -> None:
    src = tmp_path / "export"
    shutil.copytree(FIXTURES / "single_office", src)
    (src / "Offices.csv").write_text("Code,Name\nL001,Main\nL002,East\n")
    m = load_mapping(MAP)
    m = m.model_copy(update={"files": {**m.files, "Offices": "location"}, "fields": [*m.fields, *[
        e.model_copy(update={"source": f"Offices.{src_col}", "table": "location", "column": col})
        for e, src_col, col in ((m.fields[0], "Code", "loc_id"), (m.fields[1], "Name", "loc_name"))]]})
    warned = "export.location L002 is not one of"
    reader, out = _read(src, save_mapping(m, tmp_path / "m.yaml"))
    assert out["patient"]["loc_id"].to_pylist() == ["L002"] * 3
    assert not any(warned in w for st in reader.stats.values() for w in st.warnings)  # L002 is listed
    m3 = m.model_copy(update={"export": m.export.model_copy(update={"location": "L003"})})
    reader, _ = _read(src, save_mapping(m3, tmp_path / "m3.yaml"))
    assert reader.stats["Patients.csv"].warnings == [
        "export.location L003 is not one of the 2 offices of the export's location file"]
