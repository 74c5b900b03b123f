"""CSV packages for HighLevel's UI importers, and their import through the sandbox's emulation.

All values are obviously fake ("Testpatient0001", 555 numbers, example.com).
"""

from __future__ import annotations

import csv
import dataclasses
import decimal
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from dos2hl.bulk.importer import ImportRejectedError, ImportRow, import_package, sandbox_import
from dos2hl.bulk.packages import (
    MAX_FILE_BYTES,
    Package,
    checklist,
    contact_row,
    opportunity_row,
    read_package,
    record_row,
    write_package,
)
from dos2hl.errors import HighLevelError, PayloadTooLargeError, StorageError
from dos2hl.highlevel.client import HighLevelClient
from dos2hl.highlevel.models import (
    CustomFieldFolderCreate,
    LocationCustomFieldCreate,
    ObjectFieldCreate,
    ObjectLabels,
    ObjectSchemaCreate,
    PrimaryDisplayProperty,
)
from dos2hl.storage import LocalStore

# -- flattening --------------------------------------------------------------------------------------


def test_contact_row_flattens_custom_fields_tags_lists_numbers_and_none() -> None:
    body = {"locationId": "loc1", "firstName": "Testpatient0001", "lastName": "Fake",
            "dateOfBirth": "1980-02-03",
            "phone": "+15555550100", "email": None, "dnd": False, "assignedTo": "user1",
            "tags": ["dos2hl", "recall due"],
            "customFields": {"contact.patient_id": "P-1", "balance": 12.0, "contact.ratio": 0.25,
                             "contact.allergies": ["Latex", "Penicillin"], "contact.consent": ["Yes"],
                             "contact.visits": 7, "contact.big": decimal.Decimal("10.50"),
                             "contact.empty": None}}
    row = contact_row(body)
    assert row == {"firstName": "Testpatient0001", "lastName": "Fake", "dateOfBirth": "1980-02-03",
                   "phone": "+15555550100", "email": "", "dnd": "false", "assignedTo": "user1",
                   "tags": "dos2hl,recall due", "contact.patient_id": "P-1", "contact.balance": "12",
                   "contact.ratio": "0.25", "contact.allergies": "Latex,Penicillin", "contact.consent": "Yes",
                   "contact.visits": "7", "contact.big": "10.5", "contact.empty": ""}
    assert "locationId" not in row and "customFields" not in row
    assert all(isinstance(v, str) for v in row.values())
    # the API's list form by key works too; by id there is no column
    assert contact_row({"customFields": [{"key": "contact.patient_id", "field_value": 5.0}]}) == \
        {"contact.patient_id": "5"}
    with pytest.raises(ValueError, match="by key"):
        contact_row({"customFields": [{"id": "abc", "field_value": "x"}]})
    with pytest.raises(ValueError, match="dndSettings") as exc:
        contact_row({"dndSettings": {"SMS": {"status": "active"}}})
    assert "active" not in str(exc.value)
    assert contact_row({"tags": None, "firstName": "X"}) == {"tags": "", "firstName": "X"}
    assert contact_row({"phone": 1e16})["phone"] == "10000000000000000"


def test_record_row_and_opportunity_row() -> None:
    memo = "custom_objects.patient_ledger.memo"
    props = {"source_id": 42, "amount": 120.5, "units": 3.0, "posted_on": "2024-01-31",
             "codes": ["D1110", "D0120"], memo: "Testpatient0001 payment", "note": None}
    assert record_row(props) == {"source_id": "42", "amount": "120.5", "units": "3",
                                 "posted_on": "2024-01-31", "codes": "D1110,D0120",
                                 memo: "Testpatient0001 payment", "note": ""}
    row = record_row({"source_id": "L1"}, id="rec123")
    assert list(row) == ["id", "source_id"] and row["id"] == "rec123"
    with pytest.raises(ValueError):
        record_row({"id": "x"})
    opp = {"locationId": "loc1", "name": "Recall Testpatient0001", "pipeline": "Recall", "stage": "Due",
           "status": "Open", "monetaryValue": 250.0, "contactId": "c1", "assignedTo": None,
           "customFields": {"opportunity.source_id": "R-1", "last_visit": "2023-05-06",
                            "opportunity.n": 2.50}}
    assert opportunity_row(opp) == {"name": "Recall Testpatient0001", "pipeline": "Recall", "stage": "Due",
                                    "status": "open", "monetaryValue": "250", "contactId": "c1",
                                    "assignedTo": "",
                                    "opportunity.source_id": "R-1", "opportunity.last_visit": "2023-05-06",
                                    "opportunity.n": "2.5"}


# -- writing packages --------------------------------------------------------------------------------


def _rows(n: int, start: int = 1) -> list[dict[str, str]]:
    return [{"firstName": f"Testpatient{i:04d}", "lastName": "Fake, \"Jr\"",
             "phone": f"+1555{i:07d}", "email": f"testpatient{i:04d}@example.com",
             "contact.patient_id": f"P{i:05d}", "tags": "dos2hl,imported"} for i in range(start, start + n)]


def _read_csv(data: bytes) -> tuple[list[str], list[dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(data.decode("utf-8"), newline=""))
    return list(reader.fieldnames or []), list(reader)


def test_write_package_splits_under_the_limit_and_round_trips(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    rows = _rows(60)
    rows[7]["note"] = "multi\nline"  # a column first seen late; quoted newline inside a cell
    gen = (r for r in rows)  # an iterable, not a list
    pkg = write_package(store, "loc1/contacts", "loc1", "contacts", gen, dedupe="email", max_bytes=2000)
    assert len(pkg.files) >= 4
    assert pkg.columns == ["firstName", "lastName", "phone", "email", "contact.patient_id", "tags", "note"]
    assert [f.key for f in pkg.files] == [f"loc1/contacts/contacts-{i:03d}.csv"
                                          for i in range(1, len(pkg.files) + 1)]
    got: list[dict[str, str]] = []
    expected_first = 1
    for f in pkg.files:
        data = store.read_bytes(f.key)
        assert len(data) == f.bytes <= 2000
        assert b"\r" not in data and data.endswith(b"\n")
        header, parsed = _read_csv(data)
        assert header == pkg.columns
        assert len(parsed) == f.rows and f.first_row == expected_first
        expected_first += f.rows
        got += parsed
    assert got == [{c: r.get(c, "") for c in pkg.columns} for r in rows]
    assert sum(f.rows for f in pkg.files) == pkg.rows == 60
    # package.json round-trips
    assert store.exists("loc1/contacts/package.json")
    assert read_package(store, "loc1/contacts") == pkg
    assert Package.from_json(pkg.to_json()) == pkg
    # a generous limit: one file
    one = write_package(store, "one", "loc1", "custom_objects.patient_ledger", rows, dedupe="id")
    assert [f.key for f in one.files] == ["one/custom_objects_patient_ledger-001.csv"]
    assert one.files[0].bytes < MAX_FILE_BYTES


def test_write_package_refuses_a_row_too_big_for_any_file(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    rows = _rows(3)
    rows[1]["note"] = "Testpatientsecret " * 200
    with pytest.raises(PayloadTooLargeError) as exc:
        write_package(store, "p", "loc1", "contacts", rows, dedupe="email", max_bytes=1000)
    assert "row 2" in str(exc.value) and "Testpatientsecret" not in str(exc.value)
    assert store.list("") == []  # nothing written
    with pytest.raises(ValueError):
        write_package(store, "p", "loc1", "contacts", rows, mode="merge", dedupe="email")


def test_checklist_names_importers_settings_and_files_but_no_row_value(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    canary = "Zqxcanaryname"
    rows = _rows(30)
    rows[3]["firstName"] = canary
    contacts = write_package(store, "a/contacts", "locA", "contacts", rows, dedupe="contact.patient_id",
                             max_bytes=2000)
    records = write_package(store, "a/ledger", "locA", "custom_objects.patient_ledger",
                            [record_row({"source_id": "L1", "memo": canary})], mode="create_update",
                            dedupe="source_id")
    opps = write_package(store, "b/opps", "locB", "opportunities",
                         [opportunity_row({"name": f"Recall {canary}", "pipeline": "Recall",
                                           "contactId": "c1"})],
                         dedupe="contact")
    text = checklist([contacts, records, opps], location_names={"locA": "Sandbox Dental 1"})
    assert canary not in text and "555" not in text and "example.com" not in text
    assert "## Location Sandbox Dental 1 (`locA`)" in text and "## Location `locB`" in text
    assert "Contacts > Import" in text and "Opportunities > Import" in text
    assert "Custom Objects > patient_ledger > Import" in text
    assert "**Create and Update**" in text and "unique field `source_id`" in text
    for f in contacts.files + records.files + opps.files:
        assert f"`{f.key}` | {f.rows} |" in text and f.sha256 in text
    assert "| `firstName` | First Name |" in text
    assert "| `contact.patient_id` | custom field `contact.patient_id` |" in text
    assert "| `memo` | field `custom_objects.patient_ledger.memo` |" in text
    assert "confirm in the flow; dos2hl reconciles by reading back" in text


# -- against the sandbox ------------------------------------------------------------------------------


@dataclasses.dataclass
class Sandbox:
    base: str
    tokens: dict[str, str]
    opened: list[HighLevelClient] = dataclasses.field(default_factory=list)

    @property
    def locs(self) -> list[str]:
        return list(self.tokens)

    def token(self, loc: int = 0) -> SecretStr:
        return SecretStr(self.tokens[self.locs[loc]])

    def client(self, loc: int = 0) -> HighLevelClient:
        self.opened.append(HighLevelClient(self.base, self.token(loc), self.locs[loc]))
        return self.opened[-1]


@pytest.fixture()
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    from dos2hl.sandbox import init_locations, running

    tokens = init_locations(tmp_path / "state", 2)
    with running(tmp_path / "state", burst=(10_000, 1.0), daily=1_000_000, request_checks=25) as base:
        sb = Sandbox(base, tokens)
        yield sb
        for c in sb.opened:
            c.close()


def _contact_rows(n: int, *, custom: bool = True) -> list[dict[str, str]]:
    return [contact_row({"firstName": f"Testpatient{i:04d}", "lastName": "Fake",
                         "email": f"testpatient{i:04d}@example.com", "phone": f"+1555{i:07d}",
                         "dateOfBirth": "1980-01-01", "tags": ["dos2hl"],
                         "customFields": {"contact.patient_id": f"P{i:05d}"} if custom else {}})
            for i in range(1, n + 1)]


def test_import_contacts_then_reimport_updates_without_duplicates(sandbox: Sandbox, tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "out")
    with sandbox.client() as client:
        field = client.create_custom_field(LocationCustomFieldCreate(name="Patient Id", dataType="TEXT",
                                                                     model="contact")).value
        assert field.fieldKey == "contact.patient_id"
        pkg = write_package(store, "loc/contacts", sandbox.locs[0], "contacts", _contact_rows(1200),
                            dedupe="contact.patient_id", max_bytes=64_000)
        assert len(pkg.files) > 1
        rows = import_package(store, pkg, sandbox.client())
        assert [r.row for r in rows] == list(range(1, 1201))
        assert {r.status for r in rows} == {"created"}, [r for r in rows if r.status != "created"][:3]
        ids = [r.id for r in rows]
        assert all(ids) and len(set(ids)) == 1200
        contacts = list(client.search_contacts_all())
        assert len(contacts) == 1200
        by_id = {c.id: c for c in contacts}
        assert by_id[ids[41]].firstName == "Testpatient0042"  # row N is the Nth row written
        assert by_id[ids[41]].custom_value(field.id) == "P00042"
        # the same package again, create + update: every row finds its contact
        update = dataclasses.replace(pkg, mode="create_update")
        again = import_package(store, update, sandbox.client())
        assert {r.status for r in again} == {"updated"} and [r.id for r in again] == ids
        # and in create mode: skipped
        f = pkg.files[1]
        skipped = sandbox_import(sandbox.client(), "contacts", store.read_bytes(f.key),
                                 dedupe="contact.patient_id")
        assert {r.status for r in skipped} == {"skipped"}
        assert [r.id for r in skipped] == ids[f.first_row - 1:f.first_row - 1 + f.rows]
        assert len(list(client.search_contacts_all())) == 1200
    # the other location saw nothing
    with sandbox.client(1) as other:
        assert list(other.search_contacts_all()) == []


def test_import_custom_object_records(sandbox: Sandbox, tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "out")
    key = "custom_objects.patient_ledger"
    with sandbox.client() as client:
        client.create_object_schema(ObjectSchemaCreate(
            key=key, labels=ObjectLabels(singular="Ledger entry", plural="Ledger entries"),
            primaryDisplayPropertyDetails=PrimaryDisplayProperty(key=f"{key}.name", name="Name",
                                                                 dataType="TEXT")))
        folder = client.create_field_folder(CustomFieldFolderCreate(objectKey=key, name="Ledger")).value
        for short, data_type in (("source_id", "TEXT"), ("amount", "MONETORY"), ("posted_on", "DATE")):
            client.create_object_field(ObjectFieldCreate(fieldKey=f"{key}.{short}", objectKey=key,
                                                         parentId=folder.id, dataType=data_type))
        rows = [record_row({"name": f"Testpatient{i:04d} visit", "source_id": f"L{i:05d}", "amount": i * 10.5,
                            "posted_on": f"2024-01-{i % 28 + 1:02d}"}) for i in range(1, 51)]
        pkg = write_package(store, "loc/ledger", sandbox.locs[0], key, rows, dedupe="source_id",
                            max_bytes=1500)
        assert len(pkg.files) > 1
        result = import_package(store, pkg, sandbox.client())
        assert [r.row for r in result] == list(range(1, 51))
        assert {r.status for r in result} == {"created"}, [r for r in result if r.status != "created"][:3]
        rec = client.get_record(key, result[9].id or "")
        assert rec.properties["source_id"] == "L00010" and rec.properties["amount"] == 105
        assert len(list(client.search_records_all(key))) == 50
        # again in create mode: deduped on the unique field
        assert {r.status for r in import_package(store, pkg, sandbox.client())} == {"skipped"}
        assert len(list(client.search_records_all(key))) == 50


def test_import_opportunities_for_contacts_created_first(sandbox: Sandbox, tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "out")
    people = write_package(store, "loc/contacts", sandbox.locs[0], "contacts", _contact_rows(5, custom=False),
                           dedupe="email")
    contacts = import_package(store, people, sandbox.client())
    assert {r.status for r in contacts} == {"created"}
    rows = [opportunity_row({"name": f"Recall Testpatient{i:04d}", "pipeline": "Recall", "stage": "Contacted",
                             "status": "open", "monetaryValue": 95.0, "contactId": c.id})
            for i, c in enumerate(contacts, start=1)]
    rows.append(opportunity_row({"name": "Nobody", "pipeline": "Recall", "contactId": "nope"}))
    pkg = write_package(store, "loc/opps", sandbox.locs[0], "opportunities", rows, dedupe="contact")
    result = import_package(store, pkg, sandbox.client())
    assert [r.status for r in result] == ["created"] * 5 + ["error"]
    assert result[5].id is None and "nope" in result[5].error
    with sandbox.client() as client:
        recall = next(p for p in client.list_pipelines() if p.name == "Recall")
        for r, c in zip(result[:5], contacts, strict=True):
            page = client.search_opportunities(contact_id=c.id, pipeline_id=recall.id)
            assert [o.id for o in page.opportunities] == [r.id]
    # again: one open opportunity per contact and pipeline, so the rows are skipped
    again = import_package(store, pkg, sandbox.client())
    assert [r.status for r in again] == ["skipped"] * 5 + ["error"]


def test_a_file_over_the_limit_is_refused_naming_its_key(sandbox: Sandbox, tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "out")
    cell = "Testpatientbulky " * 62_000  # ~1 MB a row
    rows = [{"firstName": f"Testpatient{i:04d}", "contact.note": cell} for i in range(31)]
    pkg = write_package(store, "loc/big", sandbox.locs[0], "contacts", rows, dedupe="email",
                        max_bytes=MAX_FILE_BYTES + 2 * 1024 * 1024)  # a package written past the UI limit
    assert len(pkg.files) == 1 and pkg.files[0].bytes > MAX_FILE_BYTES
    with pytest.raises(HighLevelError) as exc:
        import_package(store, pkg, sandbox.client())
    err = exc.value
    assert isinstance(err, ImportRejectedError) and err.status == 413
    assert pkg.files[0].key in str(err) and "30 MB" in str(err)
    assert "Testpatient" not in str(err) and sandbox.tokens[sandbox.locs[0]] not in str(err) + repr(err)
    with sandbox.client() as client:
        assert list(client.search_contacts_all()) == []


def test_sandbox_import_errors_and_a_tampered_file(sandbox: Sandbox, tmp_path: Path) -> None:
    with pytest.raises(ImportRejectedError) as exc:
        sandbox_import(HighLevelClient(sandbox.base, SecretStr("pit-wrong"), sandbox.locs[0]), "contacts",
                       b"firstName\nX\n")
    assert exc.value.status == 401 and "pit-wrong" not in str(exc.value)
    with pytest.raises(ImportRejectedError) as exc:
        sandbox_import(sandbox.client(), "custom_objects.nope", b"name\nX\n")
    assert exc.value.status == 400 and "custom_objects" in str(exc.value)
    store = LocalStore(tmp_path / "out")
    pkg = write_package(store, "p", sandbox.locs[0], "contacts", _contact_rows(2, custom=False),
                        dedupe="email")
    store.write_bytes(pkg.files[0].key, store.read_bytes(pkg.files[0].key) + b"Extra,Row\n")
    with pytest.raises(StorageError, match="sha256"):
        import_package(store, pkg, sandbox.client())
    assert ImportRow(1, "created", "x", "") == ImportRow(1, "created", "x", "")
