"""Every instant at the right place and zone (issue 13.3).

Unit tests of the wall-time -> instant rule (DST gaps and repeated hours, zones without DST), and a
migration of the hand-made export tests/fixtures/two_zones (its README.md has the table of expected
instants): an appointment is read in the zone of the office where it took place, lands in the patient's
home sub-account, and the verify step reads the same instant back."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import pytest

from dos2hl.planning.crm import activity_notes, event_times
from dos2hl.planning.zones import blank_zone_warnings, office_zones
from tests.migrate.conftest import EXPORT_DATE, make_world

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "two_zones"
UTC = dt.timezone.utc


def _utc(iso: str) -> dt.datetime:
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(UTC)


# --- the rule, unit by unit -------------------------------------------------------------------------

def test_a_time_in_the_spring_forward_gap_is_read_with_the_offset_before_the_change() -> None:
    start, end = event_times(dt.date(2024, 3, 10), dt.time(2, 30), 30, "America/Chicago")  # type: ignore[misc]
    # 02:30 does not exist in Chicago that night: it is 02:30 CST, written as the wall time it became
    assert (start, end) == ("2024-03-10T03:30:00-05:00", "2024-03-10T04:00:00-05:00")
    assert _utc(start) == dt.datetime(2024, 3, 10, 8, 30, tzinfo=UTC)


def test_a_repeated_hour_is_its_first_occurrence_and_the_length_is_elapsed_time() -> None:
    start, end = event_times(dt.date(2024, 11, 3), dt.time(1, 30), 60, "America/Chicago")  # type: ignore[misc]
    assert start == "2024-11-03T01:30:00-05:00"  # CDT, the first 01:30
    assert _utc(end) - _utc(start) == dt.timedelta(minutes=60)  # not 2 h (wall 02:30 CST)
    start, end = event_times(dt.date(2024, 11, 3), dt.time(0, 30), 90, "America/Chicago")  # type: ignore[misc]
    assert _utc(end) - _utc(start) == dt.timedelta(minutes=90)
    assert end == "2024-11-03T01:00:00-06:00"


@pytest.mark.parametrize(("zone", "offset"), [("America/Phoenix", "-07:00"), ("Pacific/Honolulu", "-10:00")])
@pytest.mark.parametrize("day", [dt.date(2024, 1, 16), dt.date(2024, 3, 10), dt.date(2024, 7, 16),
                                 dt.date(2024, 11, 3)])
def test_zones_without_dst_keep_one_offset_all_year(zone: str, offset: str, day: dt.date) -> None:
    start, _end = event_times(day, dt.time(2, 30), 30, zone)  # type: ignore[misc]
    assert start == f"{day.isoformat()}T02:30:00{offset}"


def test_an_activity_header_carries_the_zone_and_offset_of_the_office() -> None:
    rows = [{"comm_id": 7, "pat_id": 1, "comm_dttm": dt.datetime(2024, 3, 10, 9, 30), "mode": "PH",
             "direction": "S", "comm_type": "APPT"}]
    key = lambda loc, obj, sid: f"{loc}/{obj}/{sid}"  # noqa: E731
    for zone, shown in (("America/Phoenix", "2024-03-10 09:30 MST (-07:00)"),
                        ("America/Denver", "2024-03-10 09:30 MDT (-06:00)"),
                        ("Pacific/Honolulu", "2024-03-10 09:30 HST (-10:00)")):
        notes, _ = activity_notes(
            rows, location="L001", key=key, with_text=False, excluded_patients=set(), tz=zone
        )
        assert (
            notes[0].body.splitlines()[0]
            == f"[Dent-O-Soft appointment phone call, outbound · {shown} · log #7]"
        )


def test_office_zones_prefer_locations_yaml_then_the_export_then_the_sub_account() -> None:
    export = {"L001": "America/Denver", "L002": "", "L003": "Mountain", "L004": ""}
    zones = office_zones(export, {"L001": "America/Boise"},
                         {"L002": "America/Chicago", "L001": "America/New_York"})
    assert zones == {"L001": "America/Boise", "L002": "America/Chicago"}  # L003/L004: the home office's
    warned = blank_zone_warnings(export, {"L004": "Pacific/Honolulu"}, ["L002"])
    assert [w.split(":", 1)[0] for w in warned] == ["location L002", "location L003"]
    assert "sub-account's timezone" in warned[0] and "not an IANA time zone" in warned[1]
    assert "home office's zone" in warned[1]


# --- a migration of the hand-made export ------------------------------------------------------------

EXPECTED = {  # appointment id -> (sub-account it lands in, start instant UTC, length in minutes)
    101: ("L001", dt.datetime(2024, 7, 15, 15, 0), 60),
    102: ("L001", dt.datetime(2024, 7, 16, 16, 0), 60),  # kept at Phoenix: MST, not Denver's MDT
    103: ("L001", dt.datetime(2024, 1, 16, 16, 0), 30),
    104: ("L001", dt.datetime(2024, 7, 17, 18, 0), 30),  # Honolulu
    105: ("L001", dt.datetime(2024, 1, 17, 18, 0), 30),
    106: ("L001", dt.datetime(2024, 3, 10, 8, 30), 30),
    # blank-TZ office: its sub-account's Chicago, in the gap
    107: ("L001", dt.datetime(2024, 11, 3, 7, 30), 60),  # Denver's repeated hour: the first 01:30 (MDT)
    108: ("L001", dt.datetime(2024, 6, 3, 16, 0), 30),  # no office: the home office's zone
    109: ("L002", dt.datetime(2024, 6, 3, 15, 0), 30),
    110: ("L002", dt.datetime(2024, 6, 4, 16, 0), 30),  # a Chicago patient seen in Denver
}


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from dos2hl.phi import create_key_file
    from dos2hl.pipeline import MigrateParams, migrate

    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("zones")
    mp.setenv("DOS2HL_STORAGE", str(root / "runs"))
    mp.setenv("DOS2HL_PHI_KEY_FILE", str(create_key_file(root / "keys" / "phi.key")))
    export = root / "export"
    shutil.copytree(FIXTURE, export, ignore=shutil.ignore_patterns("*.md"))
    w = make_world(root, mp, crm=True, export=export)
    rep = migrate(MigrateParams(source=str(export), mapping=str(w.mapping), locations=str(w.locations),
                                 sample=0, verify="full", executor="threads", workers=2,
                                 export_date=EXPORT_DATE),
                  client_factory=w.factory)
    yield w, rep, root / "keys" / "phi.key"
    w.stop()
    mp.undo()


def test_every_appointment_lands_at_home_at_the_instant_of_the_office_where_it_took_place(
    migrated: Any,
) -> None:
    w, rep, _key = migrated
    assert rep["status"] == "completed", rep.get("reconciliation")
    events = {}
    for loc in w.loc_ids:
        state = w.dump(loc)
        by_title = {}
        for e in state["appointments"]:
            by_title.setdefault(e["contactId"], []).append(e)
        for o in state["opportunities"]:
            if "(#" in o["name"]:
                aid = int(o["name"].rsplit("#", 1)[1].rstrip(")"))
                events[aid] = (loc, o, by_title.get(o["contactId"], []))
    assert sorted(events) == sorted(EXPECTED)
    for aid, (home, start, minutes) in EXPECTED.items():
        loc, opp, candidates = events[aid]
        assert loc == home, aid  # the visit stays with the patient's contact in the home sub-account
        want = start.replace(tzinfo=UTC)
        got = [e for e in candidates if _utc(e["startTime"]) == want]
        assert len(got) == 1, (aid, sorted(str(_utc(e["startTime"])) for e in candidates))
        assert _utc(got[0]["endTime"]) - want == dt.timedelta(minutes=minutes), aid
    # a visit at another office says where it happened; one at home does not
    assert events[102][1]["name"].endswith(" at L003 (#102)") and events[101][1]["name"].endswith(
        " 09:00 (#101)"
    )
    assert events[110][1]["name"].endswith(" at L001 (#110)")


def test_the_verify_step_reads_the_same_instants_back(migrated: Any) -> None:
    _w, rep, _key = migrated
    d = rep["field_diff"]
    assert d["read_back"].get("appointment_event") == len(EXPECTED)
    assert d["mismatches"] == 0, d["examples"]


def test_activity_headers_carry_the_home_offices_offset_and_recall_dates_do_not_move(migrated: Any) -> None:
    w, _rep, _key = migrated
    bodies = [n["body"] for loc in w.loc_ids for n in w.dump(loc)["notes"]]
    heads = sorted(b.splitlines()[0] for b in bodies if "· log #" in b)
    assert heads == ["[Dent-O-Soft appointment phone call, outbound · 2024-03-10 09:30 MDT (-06:00) · log "
                     "#201]",
                     "[Dent-O-Soft recall text message, inbound · 2024-01-05 16:15 CST (-06:00) · log #202]"]
    state = w.dump("L001")
    fields = {f["id"]: f.get("fieldKey") for f in state["custom_fields"]}
    recall = [o for o in state["opportunities"] if "recall" in o["name"].lower()]
    assert len(recall) == 1
    values = {fields.get(cf["id"]): cf.get("fieldValue", cf.get("value")) for cf in recall[0]["customFields"]}
    assert values["opportunity.recall_due_date"] == "2025-01-01", values  # a date: no zone conversion


def test_clinical_note_times_carry_the_zone_of_the_office_where_they_were_written(migrated: Any) -> None:
    from dos2hl.phi import PREFIX, load_sealer
    from dos2hl.planning.keys import stable_key

    w, _rep, key = migrated
    sealer = load_sealer(key)
    notes = {}
    for loc in w.loc_ids:
        for r in w.dump(loc)["objects"].get("custom_objects.clinical_notes", []):
            props = r["properties"]
            text = props.get("note_text") or ""
            if text.startswith(PREFIX):
                text = sealer.open(text, "custom_objects.clinical_notes.note_text",
                                   stable_key(loc, "clinical_note", str(props["source_id"])))
            notes[str(props["source_id"])] = (loc, props.get("note_tm"), text)
    assert sorted(notes) == ["402", "403"]  # 401 is history inside 402
    loc, tm, text = notes["402"]
    assert (loc, tm) == ("L001", "10:05 MST (-07:00)")  # written at Phoenix (appointment 102), filed at home
    assert "2024-07-16 09:50 MST (-07:00) (note 401):" in text
    assert notes["403"][:2] == ("L002", "14:00 CST (-06:00)")  # no appointment: the home office's zone


def test_the_plan_warns_about_an_office_without_a_zone_by_id(tmp_path: Path) -> None:
    from dos2hl.mapping.model import save_mapping
    from dos2hl.mapping.propose import reference_mapping
    from dos2hl.quota import plan_quota, render_plan

    export = tmp_path / "export"
    shutil.copytree(FIXTURE, export, ignore=shutil.ignore_patterns("*.md"))
    mapping = save_mapping(reference_mapping(), tmp_path / "mapping.yaml")
    out = plan_quota(export, mapping, export_date=EXPORT_DATE)
    assert [w.split(":", 1)[0] for w in out["warnings"]] == ["location L002"]  # the blank TZ, nothing else
    assert "sub-account's timezone" in out["warnings"][0]
    text = render_plan(out)
    assert "Warnings:" in text and "- location L002: LOCATION.TZ is blank" in text
    assert "Testperson" not in text and "Fixture" not in text  # ids only


def test_locations_yaml_refuses_a_zone_that_is_not_iana(tmp_path: Path) -> None:
    from dos2hl.errors import ConfigError
    from dos2hl.locations import load_locations

    path = tmp_path / "locations.yaml"
    path.write_text("locations:\n  - {source: L001, location_id: abc, token_env: T, time_zone: Mountain}\n")
    with pytest.raises(ConfigError, match="not an IANA time zone"):
        load_locations(path)
    path.write_text("locations:\n  - {source: L001, location_id: abc, token_env: T}\n"
                    "time_zones: {l003: America/Phoenix}\n")
    assert load_locations(path).zone_overrides() == {"L003": "America/Phoenix"}
