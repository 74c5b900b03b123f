"""The review page's state, without a server or a browser: rows and their order, the targets a column may
take, edits applied back to the map (and refused), pick-list values, the schema an edit changes, and the
map gate's summary for the Prefect form."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dos2hl.mapping.model import load_mapping, require_confirmed, save_mapping
from dos2hl.mapping.review import (
    LIST_SEPARATORS,
    LOW_CONFIDENCE,
    ReviewError,
    apply_edits,
    pick_values,
    read_export,
    review_rows,
    target_options,
)
from dos2hl.provision.impact import map_summary, proposals_table, schema_impact
from tests.mapping.review_fixture import CANARIES, write_export


@pytest.fixture
def world(tmp_path: Path) -> tuple[Path, Path]:
    return write_export(tmp_path)


def test_rows_list_low_confidence_then_phi_first_with_masked_shapes_and_no_value(world) -> None:
    export, path = world
    m = load_mapping(path)
    shapes, cells = read_export(export)
    rows = review_rows(m, shapes, pick_values(m, cells))
    assert len(rows) == len(m.fields)
    flags = [(not r["low"], not r["phi_row"]) for r in rows]
    assert flags == sorted(flags)
    assert rows[0]["confidence"] < LOW_CONFIDENCE
    post = next(r for r in rows if r["source"] == "Patients.PostCode")
    assert post["shapes"] == [{"shape": "#####", "n": 4}] and post["distinct"] == 4 and post["null_rate"] == 0
    med = next(r for r in rows if r["source"] == "Patients.MedAlert")
    assert med["phi_row"] and med["phi"] == "encrypt"
    text = json.dumps(rows)
    for canary in CANARIES:
        assert canary not in text


def test_a_column_may_take_skip_a_standard_field_of_its_tables_or_a_new_custom_field(world) -> None:
    _, path = world
    m = load_mapping(path)
    post = next(e for e in m.fields if e.source == "Patients.PostCode")
    opts = {o.id: o for o in target_options(m, post)}
    assert opts["skip"].target == "skip"
    med = next(e for e in m.fields if e.source == "Patients.MedAlert")
    assert apply_edits(m, [{"source": med.source, "option": "skip"}]).fields[m.fields.index(med)].phi == \
        "encrypt"  # skipping a column keeps its PHI policy
    zip_ = opts["col:patient.zip"]
    assert zip_.target == "contact.postalCode" and zip_.type == "STANDARD"
    assert opts["new:contact.source_postcode"].creates
    codes = next(e for e in m.fields if e.source == "Appointments.Codes")
    ids = {o.id for o in target_options(m, codes)}
    assert "col:apptproc.proc_code" in ids  # an appointment file may hold its procedure codes
    assert not any(i.startswith("col:patient.") for i in ids)


def test_edits_change_target_type_policy_values_and_the_hash_and_confirm_like_the_command(world) -> None:
    _, path = world
    m = load_mapping(path)
    assert apply_edits(m, []).content_hash() == m.content_hash()
    edited = apply_edits(m, [
        {"source": "Patients.PostCode", "option": "col:patient.zip"},
        {"source": "Patients.MedAlert", "phi": "omit"},
        {"source": "Patients.Status", "values": {"A": "Active", "I": "Former", "N": ""}},
        {"source": "Appointments.Codes", "option": "col:apptproc.proc_code", "split": ";"},
    ])
    post = next(e for e in edited.fields if e.source == "Patients.PostCode")
    assert (post.table, post.column, post.target, post.type) == ("patient", "zip", "contact.postalCode",
                                                                  "STANDARD")
    assert post.confidence == 1.0 and post.reasons[-1] == "reviewed: target set to contact.postalCode"
    assert next(e for e in edited.fields if e.source == "Patients.MedAlert").phi == "omit"
    assert next(e for e in edited.fields if e.source == "Patients.Status").values == {"A": "Active",
                                                                                      "I": "Former"}
    codes = next(e for e in edited.fields if e.source == "Appointments.Codes")
    assert (codes.table, codes.column, codes.split) == ("apptproc", "proc_code", ";")
    assert edited.content_hash() != m.content_hash()
    save_mapping(edited.confirm("Dr. Rivera"), path)
    done = require_confirmed(path)
    assert done.confirmed is not None and done.confirmed.sha256 == edited.content_hash()


@pytest.mark.parametrize("edit, words", [
    ({"source": "Nope.Col", "phi": "omit"}, "no such column"),
    ({"source": "Patients.PostCode", "option": "col:claim.status"}, "not a target"),
    ({"source": "Patients.PostCode", "type": "BLOB"}, "type 'BLOB'"),
    ({"source": "Patients.PostCode", "phi": "shred"}, "PHI policy"),
    ({"source": "Patients.PostCode", "color": "red"}, "malformed"),
    ({"source": "Patients.PostCode", "split": ";"}, "split needs"),
])
def test_an_edit_that_cannot_apply_is_refused_with_its_column(world, edit, words) -> None:
    _, path = world
    with pytest.raises(ReviewError, match=words):
        apply_edits(load_mapping(path), [edit])


def test_a_column_pointed_at_a_detail_table_becomes_a_list_column(world) -> None:
    _, path = world
    m = load_mapping(path)
    codes = apply_edits(m, [{"source": "Appointments.Codes", "option": "col:apptproc.proc_code"}])
    entry = next(e for e in codes.fields if e.source == "Appointments.Codes")
    assert (entry.table, entry.column, entry.split) == ("apptproc", "proc_code", LIST_SEPARATORS)
    status = apply_edits(m, [{"source": "Appointments.ApptStatus", "option": "col:appt.status"}])
    assert next(e for e in status.fields if e.source == "Appointments.ApptStatus").split is None


def test_pick_values_only_for_code_columns_whose_sample_looks_like_codes(world) -> None:
    _, path = world
    m = load_mapping(path)
    picks = pick_values(m, {"Patients.Status": ["A", "I", "A", "A"], "Patients.LastName": ["SMITH"] * 4})
    assert picks == {"Patients.Status": ["A", "I"]}  # a name column is no pick-list
    # a name column mis-matched to an enum: its names are not offered as codes
    wrong = apply_edits(m, [{"source": "Patients.LastName", "option": "col:patient.sex"}])
    names = ["Quixotesque", "Zamboni", "Brown", "Green"]
    assert pick_values(wrong, {"Patients.LastName": names}) == {}
    assert pick_values(wrong, {"Patients.LastName": ["BROWN", "GREEN", "BRAY", "BELL"]}) == {}  # no repeats


def test_the_schema_impact_names_the_fields_an_edit_adds_or_removes(world) -> None:
    _, path = world
    m = load_mapping(path)
    edited = apply_edits(m, [{"source": "Patients.PostCode", "option": "col:patient.zip"},
                             {"source": "Patients.MedAlert", "phi": "omit"},
                             {"source": "Appointments.Codes", "option": "col:apptproc.proc_code",
                              "split": ";"}])
    imp = schema_impact(m, edited)
    assert imp["removed"] == ["contact.medical_alert", "contact.source_postcode"]
    assert imp["added"] == ["opportunity.cdt_codes"] and imp["fields"]["opportunity.cdt_codes"] == \
        "MULTIPLE_OPTIONS"
    assert imp["after"] == imp["before"] - 1


def test_the_gates_summary_and_table_name_columns_policies_and_fields_never_values(world) -> None:
    _, path = world
    m = load_mapping(path)
    md = map_summary(m, "mapping.yaml")
    assert "`Patients.PostCode` -> `contact.source_postcode` (0.30)" in md
    assert "`Patients.MedAlert` encrypt" in md
    assert "Fields to create in HighLevel: 9" in md and "dos2hl map review mapping.yaml" in md
    rows = proposals_table(m)
    assert {r["source"] for r in rows} == {e.source for e in m.fields}
    for canary in CANARIES:
        assert canary not in md and canary not in json.dumps(rows)


def test_a_code_column_outside_a_pick_list_offers_no_value_map() -> None:
    from dos2hl.mapping.propose import reference_mapping

    m = reference_mapping(["appt", "apptproc"])
    picks = pick_values(m, {"APPT.PROV_ID": ["DR1", "DR2"] * 3, "APPT.STATUS": ["CMP", "SCH"] * 3,
                            "APPTPROC.PROC_CODE": ["D0120", "D1110"] * 3})
    assert picks == {"APPT.STATUS": ["CMP", "SCH"], "APPTPROC.PROC_CODE": ["D0120", "D1110"]}


def test_a_models_disagreement_is_shown_on_its_row_and_comes_first_among_those_to_review(world) -> None:
    """Issue 18: a model-backed proposal that contradicts the matcher is shown in the review page (its
    row names both targets, a filter shows only those rows) and is looked at first."""
    from dos2hl.mapping.merge import DISAGREE

    export, path = world
    m = load_mapping(path)
    shapes, _ = read_export(export)
    low = [e for e in m.fields if e.confidence < LOW_CONFIDENCE]
    last = max(low, key=lambda e: (e.confidence, e.source))  # the one looked at last, before
    said = "model proposes patient.zip; matcher proposes patient.city"
    fields = [e.model_copy(update={"reasons": [*e.reasons, DISAGREE + said]}) if e is last else e
              for e in m.fields]
    rows = review_rows(m.model_copy(update={"fields": fields}), shapes)
    assert rows[0]["source"] == last.source and rows[0]["disagree"] == said
    assert [r["source"] for r in rows if r["disagree"]] == [last.source]
    assert review_rows(m, shapes)[0]["disagree"] is None
    page = (Path(__file__).parents[2] / "dos2hl" / "mapping" / "templates" / "review.html.j2").read_text()
    assert 'id="f-disagree"' in page and "row.disagree" in page  # the tag and the filter
