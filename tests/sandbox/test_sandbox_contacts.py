"""Contacts behave like HighLevel's: duplicates, upsert merging, custom fields, search, lag."""

from __future__ import annotations

from dos2hl.highlevel import contract


def _field(sb, name, data_type="TEXT", **extra):
    r = sb.post(f"/locations/{sb.locs[0]}/customFields", {"name": name, "dataType": data_type, **extra})
    assert r.status_code == 201, r.text
    return r.json()["customField"]


def test_create_sets_server_fields_and_rejects_date_added(sb) -> None:
    c = sb.contact(firstName="Ann", lastName="Smith", email="Ann@Example.com", phone="(555) 111-2222",
                   tags=["Patient", "patient", "Recall"])
    assert c["dateAdded"] and c["name"] == "Ann Smith" and c["phone"] == "+15551112222"
    assert c["tags"] == ["patient", "recall"]
    r = sb.post("/contacts/",
                {"locationId": sb.locs[0], "firstName": "X", "dateAdded": "2001-01-01T00:00:00Z"})
    assert r.status_code == 422 and "property dateAdded should not exist" in r.json()["message"]
    got = sb.get(f"/contacts/{c['id']}").json()["contact"]
    assert got == c
    tags = {t["name"] for t in sb.get(f"/locations/{sb.locs[0]}/tags").json()["tags"]}
    assert {"patient", "recall"} <= tags


def test_family_sharing_an_email_duplicate_rule_and_upsert_merge(sb) -> None:
    """A guardian and her child share an email. Create: 400 with meta.contactId. Upsert: the child
    is merged INTO the guardian's contact (her name is overwritten) - the client must key patients
    on a unique custom field and never upsert by email."""
    mom = sb.contact(firstName="Mary", lastName="Jones", email="family@example.com", phone="+15550001111")
    r = sb.post("/contacts/", {"locationId": sb.locs[0], "firstName": "Tim", "email": "FAMILY@example.com"})
    assert r.status_code == 400
    assert r.json() == {"statusCode": 400, "message": "This location does not allow duplicated contacts.",
                        "meta": {"contactId": mom["id"], "contactName": "Mary Jones",
                                 "matchingField": "email"}}
    r = sb.post("/contacts/", {"locationId": sb.locs[0], "firstName": "Tim", "phone": "555-000-1111"})
    assert r.status_code == 400 and r.json()["meta"]["matchingField"] == "phone"
    r = sb.post("/contacts/upsert", {"locationId": sb.locs[0], "firstName": "Tim",
                                     "email": "family@example.com",
                                     "tags": ["child"]})
    assert r.status_code == 200
    body = r.json()
    assert body["new"] is False and body["contact"]["id"] == mom["id"]
    # merged, tags overwritten
    assert body["contact"]["firstName"] == "Tim" and body["contact"]["tags"] == ["child"]
    # createNewIfDuplicateAllowed is ignored while the location disallows duplicates
    r = sb.post("/contacts/upsert", {"locationId": sb.locs[0], "firstName": "Sue",
                                     "email": "family@example.com",
                                     "createNewIfDuplicateAllowed": True})
    assert r.json()["new"] is False


def test_upsert_drops_the_phone_matching_a_second_contact(sb) -> None:
    a = sb.contact(firstName="A", email="a@example.com")
    b = sb.contact(firstName="B", phone="+15550002222")
    r = sb.post("/contacts/upsert",
                {"locationId": sb.locs[0], "email": "a@example.com", "phone": "+15550002222"})
    assert r.json()["contact"]["id"] == a["id"] and "phone" not in r.json()["contact"]
    assert sb.get(f"/contacts/{b['id']}").json()["contact"]["phone"] == "+15550002222"


def test_duplicates_allowed_location(make_sandbox) -> None:
    sb = make_sandbox(allow_duplicates=True)
    sb.contact(firstName="Mary", email="family@example.com")
    sb.contact(firstName="Tim", email="family@example.com")
    r = sb.post("/contacts/upsert", {"locationId": sb.locs[0], "firstName": "Sue",
                                     "email": "family@example.com",
                                     "createNewIfDuplicateAllowed": True})
    assert r.json()["new"] is True


def test_custom_fields_keys_picklists_and_search_by_custom_field(sb) -> None:
    pid = _field(sb, "Dentosoft Patient ID")
    assert pid["fieldKey"] == "contact.dentosoft_patient_id"
    plan = _field(sb, "Insurance Plan", "SINGLE_OPTIONS", options=["PPO", "HMO"])
    assert plan["picklistOptions"] == ["PPO", "HMO"]
    balance = _field(sb, "Balance", "MONETORY")
    for i in range(3):
        sb.contact(
            firstName=f"P{i}",
            customFields=[
                {"key": "contact.dentosoft_patient_id", "field_value": f"D{i}"},
                {"id": plan["id"], "field_value": "PPO"},
                {"key": "contact.balance", "field_value": 12.5},
            ],
        )
    r = sb.post("/contacts/",
                {"locationId": sb.locs[0], "customFields": [{"id": plan["id"], "field_value": "Gold"}]})
    assert r.status_code == 422
    r = sb.post("/contacts/search", {"locationId": sb.locs[0], "pageLimit": 10, "filters": [
        {"field": f"customFields.{pid['id']}", "operator": "eq", "value": "D1"}]})
    assert r.status_code == 200 and [c["firstName"] for c in r.json()["contacts"]] == ["P1"]
    got = r.json()["contacts"][0]["customFields"]
    assert {"id": balance["id"], "value": 12.5} in got
    fields = sb.get(f"/locations/{sb.locs[0]}/customFields",
                    params={"model": "contact"}).json()["customFields"]
    assert [f["fieldKey"] for f in fields] == ["contact.dentosoft_patient_id", "contact.insurance_plan",
                                               "contact.balance"]
    assert (
        sb.get(f"/locations/{sb.locs[0]}/customFields/contact.balance").json()["customField"]["id"]
        == balance["id"]
    )


def test_search_pages_with_search_after(sb) -> None:
    ids = []
    for i in range(7):
        ids.append(sb.contact(firstName=f"N{i}")["id"])
        sb.clock.advance(1)
    seen, after = [], None
    while True:
        body = {"locationId": sb.locs[0], "pageLimit": 3,
                "sort": [{"field": "dateAdded", "direction": "asc"}]}
        if after:
            body["searchAfter"] = after
        page = sb.post("/contacts/search", body).json()
        assert page["total"] == 7
        if not page["contacts"]:
            break
        seen += [c["id"] for c in page["contacts"]]
        after = page["contacts"][-1]["searchAfter"]
    assert seen == ids
    r = sb.post("/contacts/search", {"locationId": sb.locs[0], "pageLimit": 500, "page": 21})
    assert r.status_code == 400  # page mode stops at 10,000 results


def test_search_index_lags_writes(make_sandbox) -> None:
    sb = make_sandbox(index_lag_s=2.0)
    c = sb.contact(firstName="Late")
    search = {"locationId": sb.locs[0], "pageLimit": 10}
    assert sb.post("/contacts/search", search).json()["total"] == 0
    assert sb.get(f"/contacts/{c['id']}").status_code == 200  # reads by id are immediate
    sb.clock.advance(2.1)
    assert sb.post("/contacts/search", search).json()["total"] == 1
    sb.client.delete(f"/contacts/{c['id']}", headers=sb.headers())
    assert sb.post("/contacts/search", search).json()["total"] == 1
    sb.clock.advance(2.1)
    assert sb.post("/contacts/search", search).json()["total"] == 0


def test_update_delete_tags_notes_tasks(sb) -> None:
    c = sb.contact(firstName="Ann", email="ann@example.com")
    other = sb.contact(firstName="Bob", email="bob@example.com")
    h = sb.headers()
    r = sb.client.put(f"/contacts/{c['id']}", json={"lastName": "Lee", "tags": ["a"]}, headers=h)
    assert r.status_code == 200 and r.json()["contact"]["name"] == "Ann Lee"
    r = sb.client.put(f"/contacts/{c['id']}", json={"email": "bob@example.com"}, headers=h)
    assert r.status_code == 400 and r.json()["meta"]["contactId"] == other["id"]
    assert sb.post(f"/contacts/{c['id']}/tags", {"tags": ["B"]}).json() == {"tags": ["a", "b"]}
    r = sb.client.request("DELETE", f"/contacts/{c['id']}/tags", json={"tags": ["a"]}, headers=h)
    assert r.json() == {"tags": ["b"]}
    note = sb.post(f"/contacts/{c['id']}/notes", {"body": "Prefers mornings"})
    assert note.status_code == 201
    assert sb.get(f"/contacts/{c['id']}/notes").json()["notes"][0]["body"] == "Prefers mornings"
    task = sb.post(f"/contacts/{c['id']}/tasks", {"title": "Call", "dueDate": "2024-01-01T00:00:00Z",
                                                   "completed": False})
    assert task.status_code == 201
    tid = task.json()["task"]["id"]
    r = sb.client.put(f"/contacts/{c['id']}/tasks/{tid}/completed", json={"completed": True}, headers=h)
    assert r.json()["task"]["completed"] is True
    r = sb.post("/contacts/bulk/tags/update/add", {"locationId": sb.locs[0],
                                                   "contacts": [c["id"], other["id"]],
                                                   "tags": ["bulk"]})
    assert r.status_code == 201 and r.json()["errorCount"] == 0
    assert sb.client.delete(f"/contacts/{c['id']}", headers=h).json() == {"succeded": True}
    assert sb.get(f"/contacts/{c['id']}").status_code == 404
    assert sb.get(f"/contacts/{c['id']}/notes").status_code == 404


def test_every_response_validates(sb) -> None:
    """check_responses=True makes a contract mismatch a 500; spot-check the validator directly too."""
    c = sb.contact(firstName="Val")
    r = sb.get(f"/contacts/{c['id']}")
    op = contract.find_operation("GET", f"/contacts/{c['id']}")
    assert contract.validate_response(op, r.status_code, r.content) == []
    r = sb.get("/contacts/search/duplicate", params={"locationId": sb.locs[0], "email": "nobody@example.com"})
    assert r.status_code == 200 and r.json() == {"contact": None}


def test_request_checks_validate_each_operations_first_requests_then_one_in_n(make_sandbox) -> None:
    """The volume worlds' knob: every request validated by default; ``request_checks=N`` validates an
    operation's first N requests and each Nth after (the others reach the handler unchecked)."""
    sb = make_sandbox(request_checks=2)
    bad = {"locationId": sb.locs[0], "firstName": "X", "dateAdded": "2001-01-01T00:00:00Z"}
    codes = [sb.post("/contacts/", {**bad, "lastName": f"N{i}"}).status_code for i in range(5)]
    assert codes == [422, 422, 201, 422, 201]
    assert make_sandbox().post("/contacts/", bad).status_code == 422  # the default checks all
