"""The UI CSV importers (/_sandbox/imports), the contact delete cascade, custom values, and 429 bodies.

Every API response is validated against the spec + overlay (the fixture sets check_responses=True).
"""

from __future__ import annotations

import csv
import io

from dos2hl.highlevel.contract import CALENDARS_VERSION as CAL
from dos2hl.sandbox import dump
from dos2hl.sandbox.imports import MAX_IMPORT_BYTES


def _import(sb, text, loc=0, **params):
    r = sb.client.post("/_sandbox/imports", params=params, content=text.encode(), headers=sb.headers(loc))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(r.text)))


def _state(sb, loc=0):
    return dump(sb.state)["locations"][sb.locs[loc]]


def _pipelines(sb):
    return {p["name"]: p for p in sb.get("/opportunities/pipelines", params={"locationId": sb.locs[0]})
            .json()["pipelines"]}


def test_import_rejects_bad_requests_and_large_files(sb) -> None:
    post = sb.client.post
    assert post("/_sandbox/imports", params={"mode": "merge"}, content=b"a\n",
                headers=sb.headers()).status_code == 400
    r = post("/_sandbox/imports", params={"object": "custom_objects.nope"}, content=b"a\n",
             headers=sb.headers())
    assert r.status_code == 400 and "custom_objects" in r.json()["message"]
    r = post("/_sandbox/imports", params={"object": "opportunities", "dedupe": "email"}, content=b"a\n",
             headers=sb.headers())
    assert r.status_code == 400
    big = b"firstName\n" + b"x" * MAX_IMPORT_BYTES
    for obj in ("contacts", "opportunities"):
        r = post("/_sandbox/imports", params={"object": obj}, content=big, headers=sb.headers())
        assert r.status_code == 413 and "30 MB" in r.json()["message"]
    assert _state(sb)["contacts"] == []


def test_import_opportunities_modes_dedupe_and_row_errors(sb) -> None:
    ann = sb.contact(firstName="Ann", email="ann@example.com")
    bob = sb.contact(firstName="Bob", email="bob@example.com")
    pipes = _pipelines(sb)
    recall = pipes["Recall"]
    booked = next(s for s in recall["stages"] if s["name"] == "Booked")
    text = ("name,pipeline,stage,contactId,email,monetaryValue,status\n"
            f"Recall Ann,Recall,booked,{ann['id']},,120.50,open\n"       # pipeline/stage by name
            f"Recall Bob,{recall['id']},,,bob@example.com,80,won\n"      # pipeline by id, contact by email
            "Nobody,Recall,,,nobody@example.com,1,open\n"                # unknown contact
            f"Bad stage,Appointments,Nowhere,{ann['id']},,,open\n"             # unknown stage
            f"Bad pipeline,Hygiene,,{ann['id']},,,open\n"                # unknown pipeline
            f"Bad status,Appointments,,{ann['id']},,,maybe\n"
            f"Bad value,Appointments,,{ann['id']},,lots,open\n")
    rows = _import(sb, text, object="opportunities", mode="create")
    assert list(rows[0]) == ["row", "status", "opportunityId", "error"]
    assert [r["row"] for r in rows] == [str(i) for i in range(1, 8)]
    assert [r["status"] for r in rows] == ["created", "created"] + ["error"] * 5
    assert all(r["error"] for r in rows[2:]) and not any(r["opportunityId"] for r in rows[2:])
    assert "nobody@example.com" in rows[2]["error"] and "Nowhere" in rows[3]["error"]
    opps = {o["id"]: o for o in _state(sb)["opportunities"]}
    assert set(opps) == {rows[0]["opportunityId"], rows[1]["opportunityId"]}  # error rows stored nothing
    first = opps[rows[0]["opportunityId"]]
    assert (first["pipelineId"], first["pipelineStageId"], first["contactId"], first["monetaryValue"],
            first["status"]) == (recall["id"], booked["id"], ann["id"], 120.5, "open")
    second = opps[rows[1]["opportunityId"]]
    assert second["contactId"] == bob["id"] and second["pipelineStageId"] == recall["stages"][0]["id"]
    assert second["status"] == "won"
    # the API sees them (and they validate against the spec)
    r = sb.get(f"/opportunities/{first['id']}")
    assert r.status_code == 200 and r.json()["opportunity"]["contact"]["id"] == ann["id"]
    # dedupe on contact + pipeline: create skips, update / create_update update, update never creates
    text = ("pipeline,stage,email,monetaryValue,status\n"
            "Recall,Lost,ann@example.com,99,lost\n"
            "Appointments,,ann@example.com,10,open\n")
    rows = _import(sb, text, object="opportunities", mode="create")
    assert [r["status"] for r in rows] == ["skipped", "error"]  # no name for a new opportunity
    rows = _import(sb, text, object="opportunities", mode="update")
    assert [(r["status"], r["opportunityId"]) for r in rows] == [("updated", first["id"]), ("skipped", "")]
    got = sb.get(f"/opportunities/{first['id']}").json()["opportunity"]
    assert (got["monetaryValue"], got["status"], got["name"]) == (99, "lost", "Recall Ann")
    assert got["pipelineStageId"] == next(s["id"] for s in recall["stages"] if s["name"] == "Lost")
    rows = _import(sb, "name,pipeline,email\nVisit,Appointments,ann@example.com\n", object="opportunities",
                   mode="create_update")
    assert rows[0]["status"] == "created"
    # dedupe on the opportunity id
    rows = _import(sb, f"id,monetaryValue\n{second['id']},5\nmissing,6\n", object="opportunities",
                   mode="create_update", dedupe="id")
    assert [r["status"] for r in rows] == ["updated", "error"]
    assert sb.get(f"/opportunities/{second['id']}").json()["opportunity"]["monetaryValue"] == 5
    assert len(_state(sb)["opportunities"]) == 3
    assert _state(sb, 1)["opportunities"] == []
    # another location's contact is not found from this location
    other = sb.contact(loc=1, firstName="Cy", email="cy@example.com")
    rows = _import(sb, f"name,pipeline,contactId\nX,Recall,{other['id']}\n", object="opportunities")
    assert rows[0]["status"] == "error"


def _pet_object(sb):
    r = sb.post("/objects/", {"key": "custom_objects.pet", "locationId": sb.locs[0],
                              "labels": {"singular": "Pet", "plural": "Pets"},
                              "primaryDisplayPropertyDetails": {"key": "custom_objects.pet.name",
                                                                "name": "Name", "dataType": "TEXT"}})
    assert r.status_code == 201, r.text
    folder = sb.post("/custom-fields/folder", {"objectKey": "custom_objects.pet", "name": "More",
                                               "locationId": sb.locs[0]}).json()["id"]
    for short, data_type, extra in (
        ("chip", "TEXT", {}),
        ("age", "NUMERICAL", {}),
        (
            "kind",
            "SINGLE_OPTIONS",
            {"options": [{"key": "dog", "label": "Dog"}, {"key": "cat", "label": "Cat"}]},
        ),
    ):
        r = sb.post("/custom-fields/", {"locationId": sb.locs[0], "showInForms": True, "dataType": data_type,
                                        "fieldKey": f"custom_objects.pet.{short}",
                                        "objectKey": "custom_objects.pet",
                                        "parentId": folder, **extra})
        assert r.status_code == 201, r.text


def test_import_custom_object_records(sb) -> None:
    _pet_object(sb)
    text = ("name,custom_objects.pet.chip,age,kind\n"
            "Rex,C1,4,dog\n"
            "Tom,C2,2,cat\n"
            "Bad,C3,old,dog\n"       # not a number
            "Worse,C4,1,parrot\n")   # not an option
    rows = _import(sb, text, object="custom_objects.pet", mode="create", dedupe="chip")
    assert list(rows[0]) == ["row", "status", "recordId", "error"]
    assert [r["status"] for r in rows] == ["created", "created", "error", "error"]
    assert "age" in rows[2]["error"] and "kind" in rows[3]["error"]
    records = {r["id"]: r for r in _state(sb)["objects"]["custom_objects.pet"]}
    assert set(records) == {rows[0]["recordId"], rows[1]["recordId"]}
    rex = records[rows[0]["recordId"]]
    assert rex["properties"] == {"name": "Rex", "chip": "C1", "age": 4, "kind": "dog"}
    r = sb.get(f"/objects/custom_objects.pet/records/{rex['id']}", params={"locationId": sb.locs[0]})
    assert r.status_code == 200 and r.json()["record"]["properties"]["age"] == 4
    # dedupe on the unique field: create skips, update / create_update update, update never creates
    text = "chip,age\nC1,5\nC9,1\n"
    assert [r["status"] for r in _import(sb, text, object="pet", mode="create", dedupe="chip")] == \
        ["skipped", "created"]
    rows = _import(sb, "chip,age\nC1,6\nC10,1\n", object="custom_objects.pet", mode="update", dedupe="chip")
    assert [(r["status"], r["recordId"]) for r in rows] == [("updated", rex["id"]), ("skipped", "")]
    got = sb.get(f"/objects/custom_objects.pet/records/{rex['id']}", params={"locationId": sb.locs[0]})
    assert got.json()["record"]["properties"] == {"name": "Rex", "chip": "C1", "age": 6, "kind": "dog"}
    # dedupe on the record id (the default); an unknown dedupe field or column is a row error
    rows = _import(sb, f"id,name\n{rex['id']},Rexy\n", object="custom_objects.pet", mode="create_update")
    assert rows[0]["status"] == "updated"
    assert _import(sb, "chip\nC1\n", object="custom_objects.pet", dedupe="colour")[0]["status"] == "error"
    assert _import(sb, "name,colour\nX,red\n", object="custom_objects.pet")[0]["status"] == "error"
    assert len(_state(sb)["objects"]["custom_objects.pet"]) == 3
    # another location has no such object
    r = sb.client.post("/_sandbox/imports", params={"object": "custom_objects.pet"}, content=b"name\nX\n",
                       headers=sb.headers(1))
    assert r.status_code == 400


def test_contact_import_row_errors_are_atomic(sb) -> None:
    sb.post(f"/locations/{sb.locs[0]}/customFields", {"name": "Plan", "dataType": "SINGLE_OPTIONS",
                                                      "options": ["PPO", "HMO"]})
    rows = _import(sb, "firstName,tags,contact.plan\nAnn,newtag,Gold\nBob,,PPO\n", mode="create", dedupe="id")
    assert [r["status"] for r in rows] == ["error", "created"] and rows[0]["error"]
    state = _state(sb)
    assert [c["firstName"] for c in state["contacts"]] == ["Bob"]
    assert "newtag" not in {t["name"] for t in state["tags"]}  # the failed row left nothing behind


def test_deleting_a_contact_cascades(sb) -> None:
    ann = sb.contact(firstName="Ann", email="ann@example.com")
    keep = sb.contact(firstName="Keep", email="keep@example.com")
    loc = sb.locs[0]
    for who in (ann, keep):
        assert sb.post(f"/contacts/{who['id']}/notes", {"body": "n"}).status_code == 201
        assert sb.post(f"/contacts/{who['id']}/tasks", {"title": "t", "dueDate": "2024-01-01T00:00:00Z",
                                                        "completed": False}).status_code == 201
    cal = sb.client.get("/calendars/", params={"locationId": loc},
                        headers=sb.headers(0, CAL)).json()["calendars"][0]
    events = []
    for who in (ann, keep):
        r = sb.client.post("/calendars/events/appointments", headers=sb.headers(0, CAL), json={
            "calendarId": cal["id"], "locationId": loc, "contactId": who["id"],
            "startTime": "2019-03-01T09:00:00Z", "ignoreDateRange": True, "ignoreFreeSlotValidation": True})
        assert r.status_code == 200, r.text
        events.append(r.json()["id"])
    pipeline = _pipelines(sb)["Recall"]["id"]
    opps = [sb.post("/opportunities/", {"locationId": loc, "pipelineId": pipeline,
                                        "name": f"R {w['firstName']}",
                                        "status": "open", "contactId": w["id"]}).json()["opportunity"]["id"]
            for w in (ann, keep)]
    assoc = sb.post("/associations/", {"locationId": loc, "key": "opp_contact",
                                       "firstObjectKey": "opportunity",
                                       "firstObjectLabel": "Opportunity", "secondObjectKey": "contact",
                                       "secondObjectLabel": "Contact"}).json()
    rels = []
    for opp, who in ((opps[0], keep), (opps[1], ann), (opps[1], keep)):
        r = sb.post("/associations/relations", {"locationId": loc, "associationId": assoc["id"],
                                                "firstRecordId": opp, "secondRecordId": who["id"]})
        assert r.status_code == 201, r.text
        rels.append(r.json()["id"])
    assert sb.client.delete(f"/contacts/{ann['id']}", headers=sb.headers()).json() == {"succeded": True}
    state = _state(sb)
    assert [c["id"] for c in state["contacts"]] == [keep["id"]]
    for kind in ("notes", "tasks", "appointments", "opportunities"):
        assert {d["contactId"] for d in state[kind]} == {keep["id"]}, kind
    assert [r["id"] for r in state["relations"]] == [rels[2]]  # via the contact and via its opportunity
    assert sb.client.get(f"/calendars/events/appointments/{events[0]}",
                         headers=sb.headers(0, CAL)).status_code == 404
    assert sb.get(f"/opportunities/{opps[0]}").status_code == 404
    r = sb.get(f"/contacts/{keep['id']}/appointments")
    assert [e["id"] for e in r.json()["events"]] == [events[1]]
    # deleting an opportunity deletes its relations too
    assert sb.client.delete(f"/opportunities/{opps[1]}", headers=sb.headers()).status_code == 200
    assert _state(sb)["relations"] == []


def test_custom_values_crud(sb) -> None:
    loc, other = sb.locs
    base = f"/locations/{loc}/customValues"
    r = sb.post(base, {"name": "Office Phone", "value": "555-0100"})
    assert r.status_code == 201, r.text
    cv = r.json()["customValue"]
    assert cv["fieldKey"] == "{{ custom_values.office_phone }}" and cv["value"] == "555-0100"
    assert cv["locationId"] == loc and cv["id"]
    assert sb.post(base, {"name": "office phone", "value": "x"}).status_code == 400  # same key
    assert sb.post(base, {"name": "No value"}).status_code == 422
    assert sb.get(base).json() == {"customValues": [cv]}
    assert sb.get(f"{base}/{cv['id']}").json() == {"customValue": cv}
    r = sb.client.put(f"{base}/{cv['id']}", json={"name": "Front Desk Phone", "value": "555-0199"},
                      headers=sb.headers())
    assert r.status_code == 200
    got = r.json()["customValue"]
    assert (got["name"], got["value"], got["fieldKey"]) == ("Front Desk Phone", "555-0199", cv["fieldKey"])
    assert _state(sb)["custom_values"] == [got]
    # tenancy: the other location neither sees nor touches it
    assert sb.get(f"/locations/{other}/customValues", loc=1).json() == {"customValues": []}
    assert sb.get(f"/locations/{other}/customValues/{cv['id']}", loc=1).status_code == 403
    assert sb.get(f"{base}/{cv['id']}", loc=1).status_code == 403
    r = sb.client.delete(f"{base}/{cv['id']}", headers=sb.headers())
    assert r.status_code == 200 and r.json() == {"succeded": True}
    assert sb.get(f"{base}/{cv['id']}").status_code == 404
    assert sb.get(base).json() == {"customValues": []}


def test_429_says_which_limit_and_keeps_the_documented_headers(make_sandbox) -> None:
    sb = make_sandbox(burst=(2, 1.0), daily=3)
    path, params = "/workflows/", {"locationId": sb.locs[0]}
    assert [sb.get(path, params=params).status_code for _ in range(2)] == [200, 200]
    r = sb.get(path, params=params)
    assert r.status_code == 429
    assert r.json() == {"statusCode": 429, "message": r.json()["message"], "error": "Too Many Requests",
                        "meta": {"limit": "burst"}}
    assert (r.headers["X-RateLimit-Remaining"], r.headers["X-RateLimit-Max"],
            r.headers["X-RateLimit-Interval-Milliseconds"]) == ("0", "2", "1000")
    assert r.headers["X-RateLimit-Daily-Remaining"] == "1" and r.headers["X-RateLimit-Limit-Daily"] == "3"
    assert "retry-after" not in r.headers  # undocumented for HighLevel: not invented
    sb.clock.advance(1.01)
    assert sb.get(path, params=params).status_code == 200
    sb.clock.advance(1.01)
    r = sb.get(path, params=params)
    assert r.status_code == 429 and r.json()["meta"] == {"limit": "daily"} and "Daily" in r.json()["message"]
    assert r.headers["X-RateLimit-Daily-Remaining"] == "0" and r.headers["X-RateLimit-Limit-Daily"] == "3"
    assert r.headers["X-RateLimit-Remaining"] == "2"  # the burst window is free: it is the daily limit
    assert "retry-after" not in r.headers
    # the UI importer is outside the API limits
    rows = _import(sb, "firstName\nOutside\n")
    assert rows[0]["status"] == "created"


def test_a_row_finds_what_an_earlier_row_of_the_same_file_wrote_and_the_oldest_match_first(sb) -> None:
    """The importer's lookups index the location once per file and learn each row's write: a later row
    matches a contact an earlier row created (by email, phone or a custom field) or one that was there
    before the file, and an error row adds nothing."""
    there = sb.contact(firstName="There", email="there@example.com")
    text = ("firstName,email,phone\n"
            "Cy,cy@example.com,+1 555 0100 111\n"
            "Cy again,CY@example.com,\n"             # the row above's contact, by email, any case
            "There too,there@example.com,\n")        # a contact from before the file
    rows = _import(sb, text, mode="create_update", dedupe="email")
    assert [r["status"] for r in rows] == ["created", "updated", "updated"]
    assert rows[1]["contactId"] == rows[0]["contactId"] and rows[2]["contactId"] == there["id"]
    by_phone = _import(sb, "firstName,phone\nCy by phone,+15550100111\nDee,+15550100222\n"
                           "Dee 2,+15550100222\n", mode="create", dedupe="phone")
    assert [r["status"] for r in by_phone] == ["skipped", "created", "skipped"]
    assert by_phone[0]["contactId"] == rows[0]["contactId"]
    assert by_phone[2]["contactId"] == by_phone[1]["contactId"]
    sb.post(f"/locations/{sb.locs[0]}/customFields", {"name": "Chart", "dataType": "TEXT"})
    sb.post(f"/locations/{sb.locs[0]}/customFields", {"name": "Plan", "dataType": "SINGLE_OPTIONS",
                                                      "options": ["PPO", "HMO"]})
    charts = _import(sb, "firstName,contact.chart,contact.plan\nEd,C-1,\nEd 2,C-1,\nBad,C-2,Gold\n"
                         "Fay,C-2,\n", mode="create", dedupe="contact.chart")
    assert [r["status"] for r in charts][:2] == ["created", "skipped"]
    assert charts[1]["contactId"] == charts[0]["contactId"]
    assert charts[3]["status"] == "created"  # C-2's failed row indexed nothing
    assert charts[2]["status"] == "error"  # not an option of the field: the row leaves nothing
    names = [x["firstName"] for x in _state(sb)["contacts"]]
    assert names.count("Ed") == 1 and "Ed 2" not in names and "Cy again" in names and "Cy" not in names
