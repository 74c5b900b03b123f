"""The contract module: specs byte-identical to the shared copy, overlay, routing, 422 shapes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from dos2hl.highlevel import contract
from dos2hl.highlevel.openapi import SPEC_DIR, SPEC_FILES, load_spec

SHARED = Path(__file__).resolve().parents[3] / "shared" / "highlevel-openapi"


@pytest.mark.skipif(not SHARED.exists(), reason="../shared/highlevel-openapi not present")
def test_spec_files_are_byte_identical_to_shared() -> None:
    names = [f"apps/{n}.json" for n in SPEC_FILES] + ["common/common-schemas.json", "LICENSE",
                                                      "SOURCE_COMMIT"]
    for name in names:
        ours, theirs = SPEC_DIR / name, SHARED / name
        assert hashlib.sha256(ours.read_bytes()).digest() == hashlib.sha256(theirs.read_bytes()).digest(), (
            name
        )


def test_all_specs_load_once_and_overlay_applies() -> None:
    for name in SPEC_FILES:
        assert contract._openapi(name) is contract._openapi(name)  # loaded once, then cached
    # Overlay: dateOfBirth is a string, search body is written, raw file unchanged.
    dto = load_spec("contacts")["components"]["schemas"]["CreateContactDto"]
    assert dto["properties"]["dateOfBirth"]["type"] == "string"
    raw = json.loads((SPEC_DIR / "apps" / "contacts.json").read_text())
    assert raw["components"]["schemas"]["SearchBodyV2DTO"] == {"type": "object", "properties": {}}


def test_find_operation_normalises_trailing_slash_and_prefers_literals() -> None:
    assert contract.find_operation("GET", "/workflows").template == "/workflows/"
    assert contract.find_operation("POST", "/contacts").operation_id == "create-contact"
    assert contract.find_operation("POST", "/contacts/search/").operation_id == "search-contacts-advanced"
    op = contract.find_operation("GET", "/contacts/abc")
    assert op.operation_id == "get-contact" and op.path_params == {"contactId": "abc"}
    assert contract.find_operation("DELETE", "/calendars/events/e1").version == contract.CALENDARS_VERSION
    assert contract.find_operation("PATCH", "/contacts/abc") is None
    assert contract.find_operation("GET", "/nowhere") is None
    # Undeclared path parameter (§8.7) is declared by the loader.
    op = contract.find_operation("POST", "/contacts/bulk/tags/update/add")
    assert op.path_params == {"type": "add"}


def test_validate_request_messages() -> None:
    op = contract.find_operation("POST", "/contacts/")
    body = {"locationId": "L", "firstName": 3, "dateAdded": "2020-01-01",
            "customFields": [{"key": "contact.x", "field_value": 3, "extra": 1}], "dateOfBirth": "1990-09-25"}
    problems = contract.validate_request(op, headers={"Version": "2021-07-28"},
                                         body=json.dumps(body).encode())
    assert "firstName must be a string" in problems
    assert "property dateAdded should not exist" in problems
    assert "customFields.0.property extra should not exist" in problems
    assert len(problems) == 3  # numeric field_value, key without id and string dateOfBirth are fine (overlay)
    assert contract.validate_request(op, headers={},
                                     body=b'{"locationId":"L"}') == ["Version header is required"]
    cal = contract.find_operation("GET", "/calendars/")
    bad = contract.validate_request(cal, headers={"Version": "2021-07-28"}, query=[("locationId", "L")])
    assert bad == ["Version header must be one of the following values: 2021-04-15"]
    assert contract.unprocessable(["x"]) == {"statusCode": 422, "message": ["x"],
                                             "error": "Unprocessable Entity"}


def test_validate_request_never_echoes_the_token() -> None:
    op = contract.find_operation("GET", "/contacts/abc")
    problems = contract.validate_request(op, headers={"Authorization": "Bearer SECRET-TOKEN", "Version": "x"})
    assert problems and all("SECRET-TOKEN" not in p for p in problems)


def test_validate_response() -> None:
    op = contract.find_operation("POST", "/contacts/search")
    assert contract.validate_response(op, 200, b'{"contacts":[],"total":0}') == []
    assert contract.validate_response(op, 200, b'{"contacts":[{"id":3}],"total":0}')
    assert contract.validate_response(op, 429, b'{"statusCode":429,"message":"Too many requests"}') == []


def test_sandbox_answers_422_nestjs_style(sb) -> None:
    loc = sb.locs[0]
    r = sb.client.post("/contacts/", json={"locationId": loc, "dateAdded": "2001-01-01"},
                       headers={**sb.headers(), "Version": "2021-04-15"})
    assert r.status_code == 422
    assert r.json() == {"statusCode": 422, "error": "Unprocessable Entity", "message": [
        "Version header must be one of the following values: 2021-07-28",
        "property dateAdded should not exist"]}
    r = sb.client.post("/contacts/", json={"locationId": loc},
                       headers={"Authorization": sb.headers()["Authorization"]})
    assert r.status_code == 422 and r.json()["message"] == ["Version header is required"]
    r = sb.post("/contacts/search", {"locationId": loc, "pageLimit": 501})
    assert r.status_code == 422 and r.json()["message"] == ["pageLimit must not be greater than 500"]
    r = sb.post("/contacts/search", {"locationId": loc})
    assert r.status_code == 422 and r.json()["message"] == ["pageLimit should not be empty"]


def test_unknown_route_is_404_and_unemulated_operation_is_501(sb) -> None:
    assert sb.get("/nowhere").status_code == 404
    r = sb.post("/contacts/c1/campaigns/k1", {})
    assert r.status_code == 501
