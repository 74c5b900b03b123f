"""The canonical model is consistent: keys, references, kinds, schemas and record models agree."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest
from pydantic import ValidationError

from dos2hl.model import ARROW_TYPES, TABLES, arrow_schema, phi_columns, record_model
from dos2hl.sources.discover import TABLE_ORDER

SEED_OBJECTS = {  # the seed's object map: every object the migration moves has a table
    "location", "provider", "operatory", "proccode", "lookup", "patient", "insco", "insplan", "inssub",
    "patins", "appt", "apptproc", "txplan", "txitem", "clinnote", "ledger", "claim", "claimln", "recalltyp",
    "recall", "refsrc", "patref", "document", "userfld", "patudf", "commlog",
}


def test_every_object_of_the_seed_map_has_a_table() -> None:
    assert set(TABLES) == SEED_OBJECTS


@pytest.mark.parametrize("name", sorted(TABLES))
def test_table_is_well_formed(name: str) -> None:
    t = TABLES[name]
    assert t.pk, "every table has a primary key"
    for c in t.columns:
        if c.fk:
            assert c.fk in TABLES, f"{name}.{c.name} refers to unknown table {c.fk}"
        if c.kind == "enum":
            assert c.values, f"{name}.{c.name} is an enum without values"
        if c.kind == "lookup":
            assert c.lookup, f"{name}.{c.name} is a lookup without a category"
    schema = arrow_schema(name)
    assert schema.names == list(t.column_names)
    for c in t.columns:
        assert schema.field(c.name).type == ARROW_TYPES[c.kind]
        assert schema.field(c.name).metadata[b"phi"] == c.phi.encode()
    if t.patient_via and name != "patient":
        col = t.patient_via.split("->")[0]
        assert col in t.by_name
        parent = t.patient_via.split("->")[1] if "->" in t.patient_via else "patient"
        assert TABLE_ORDER.index(parent) < TABLE_ORDER.index(name), "parents are read first"


def test_record_model_validates_types_enums_and_extra_fields() -> None:
    Patient = record_model("patient")
    p = Patient(pat_id=412, loc_id="L001", birthdate=dt.date(1945, 3, 15), bal_total=Decimal("-45.00"),
                sex="M")
    assert p.pat_id == 412 and p.bal_total == Decimal("-45.00")
    with pytest.raises(ValidationError):
        Patient(pat_id=1, loc_id="L001", sex="Q")  # not one of M F U O
    with pytest.raises(ValidationError):
        Patient(pat_id=1, loc_id="L001", nickname="x")  # unknown field
    with pytest.raises(ValidationError):
        Patient(loc_id="L001")  # primary key required


def test_phi_columns_cover_direct_identifiers() -> None:
    direct = phi_columns("patient", "D")
    assert {"lname", "fname", "birthdate", "ssn", "hphone", "email"} <= set(direct)
    assert "loc_id" not in phi_columns("patient")


def test_arrow_types_round_trip_through_parquet(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import pyarrow.parquet as pq

    schema = arrow_schema("appt")
    t = pa.Table.from_pylist([{"appt_id": 1, "appt_time": dt.time(8, 30)}], schema=schema)
    pq.write_table(t, tmp_path / "a.parquet")
    back = pq.read_table(tmp_path / "a.parquet", schema=schema)
    assert back.schema.equals(schema) and back.to_pylist()[0]["appt_time"] == dt.time(8, 30)
