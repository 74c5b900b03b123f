"""Custom objects, custom-fields v2, associations/relations and calendars behave like HighLevel's.

Every response is validated against the spec + overlay (the fixture sets check_responses=True).
"""

from __future__ import annotations

from dos2hl.highlevel.contract import CALENDARS_VERSION as CAL
from dos2hl.sandbox import dump


def _xray(sb, loc=0, name="xray"):
    r = sb.post("/objects/", {"key": f"custom_objects.{name}", "locationId": sb.locs[loc],
                              "labels": {"singular": "X-ray", "plural": "X-rays"},
                              "primaryDisplayPropertyDetails": {"key": f"custom_objects.{name}.name",
                                                                "name": "Name", "dataType": "TEXT"}}, loc=loc)
    assert r.status_code == 201, r.text
    return r.json()["object"]


def _fields(sb, key="custom_objects.xray"):
    r = sb.get(f"/custom-fields/object-key/{key}", params={"locationId": sb.locs[0]})
    assert r.status_code == 200, r.text
    return r.json()


def _add_field(sb, folder, short, data_type, key="custom_objects.xray", **extra):
    r = sb.post("/custom-fields/", {"locationId": sb.locs[0], "showInForms": True, "dataType": data_type,
                                    "fieldKey": f"{key}.{short}", "objectKey": key, "parentId": folder,
                                    **extra})
    assert r.status_code == 201, r.text
    return r.json()["field"]


def _setup(sb):
    schema = _xray(sb)
    folder = sb.post("/custom-fields/folder", {"objectKey": "custom_objects.xray", "name": "Imaging",
                                               "locationId": sb.locs[0]})
    assert folder.status_code == 201, folder.text
    fid = folder.json()["id"]
    _add_field(sb, fid, "legacy_id", "TEXT")
    _add_field(sb, fid, "tooth", "NUMERICAL")
    _add_field(sb, fid, "fee", "MONETORY")
    _add_field(sb, fid, "kind", "SINGLE_OPTIONS", options=[{"key": "bitewing", "label": "Bitewing"},
                                                           {"key": "pano", "label": "Panoramic"}])
    _add_field(sb, fid, "taken_on", "DATE")
    return schema, fid


def _record(sb, loc=0, **props):
    r = sb.post("/objects/custom_objects.xray/records", {"locationId": sb.locs[loc], "properties": props},
                loc=loc)
    assert r.status_code == 201, r.text
    return r.json()["record"]


def test_schema_create_list_get_and_fields(sb) -> None:
    schema, folder = _setup(sb)
    assert (
        schema["key"] == "custom_objects.xray"
        and schema["primaryDisplayProperty"] == "custom_objects.xray.name"
    )
    keys = [o["key"] for o in sb.get("/objects/", params={"locationId": sb.locs[0]}).json()["objects"]]
    assert keys == ["contact", "opportunity", "business", "custom_objects.xray"]
    got = sb.get("/objects/custom_objects.xray",
                 params={"locationId": sb.locs[0], "fetchProperties": "true"}).json()
    assert got["object"]["id"] == schema["id"]
    assert {f["fieldKey"] for f in got["fields"]} == {f"custom_objects.xray.{k}" for k in
                                                       ("name", "legacy_id", "tooth", "fee", "kind",
                                                        "taken_on")}
    listed = _fields(sb)
    assert folder in {f["id"] for f in listed["folders"]} and len(listed["folders"]) == 2  # default + Imaging
    fee = next(f for f in listed["fields"] if f["fieldKey"].endswith(".fee"))
    assert fee["dataType"] == "MONETORY"
    # bare names are prefixed; duplicates refused; the spec's custom_object. prefix is normalised
    r = sb.post("/custom-fields/", {"locationId": sb.locs[0], "showInForms": True, "dataType": "TEXT",
                                    "fieldKey": "custom_object.xray.tooth", "objectKey": "custom_object.xray",
                                    "parentId": folder})
    assert r.status_code == 400 and "already exists" in r.json()["message"]
    r = sb.post("/custom-fields/", {"locationId": sb.locs[0], "showInForms": True, "dataType": "RADIO",
                                    "fieldKey": "custom_objects.xray.side",
                                    "objectKey": "custom_objects.xray",
                                    "parentId": folder})
    assert r.status_code == 422 and r.json()["message"] == ["options should not be empty"]
    # the other location sees none of it
    keys_b = [o["key"] for o in sb.get("/objects/", params={"locationId": sb.locs[1]},
                                       loc=1).json()["objects"]]
    assert "custom_objects.xray" not in keys_b
    assert sb.get("/objects/custom_objects.xray", params={"locationId": sb.locs[1]}, loc=1).status_code == 404


def test_ten_custom_objects_per_location(sb) -> None:
    for i in range(10):
        _xray(sb, name=f"obj_{i}")
    r = sb.post(
        "/objects/",
        {
            "key": "custom_objects.obj_10",
            "locationId": sb.locs[0],
            "labels": {"singular": "O", "plural": "Os"},
            "primaryDisplayPropertyDetails": {"key": "name", "name": "Name", "dataType": "TEXT"},
        },
    )
    assert r.status_code == 400 and "maximum of 10 custom objects" in r.json()["message"]
    _xray(sb, loc=1, name="obj_10")  # the cap is per location
    r = sb.post(
        "/objects/",
        {
            "key": "custom_objects.obj_0",
            "locationId": sb.locs[1],
            "labels": {"singular": "O", "plural": "Os"},
            "primaryDisplayPropertyDetails": {"key": "name", "name": "Name", "dataType": "DATE"},
        },
        loc=1,
    )
    assert r.status_code == 422


def test_records_crud_validation_and_tenancy(sb) -> None:
    _setup(sb)
    rec = _record(sb, name="Bitewing 2019", legacy_id="X1", tooth=14,
                  fee={"currency": "default", "value": 45},
                  kind="bitewing", taken_on="2019-03-01")
    assert rec["properties"]["tooth"] == 14 and rec["objectKey"] == "custom_objects.xray"
    path = f"/objects/custom_objects.xray/records/{rec['id']}"
    assert sb.get(path, params={"locationId": sb.locs[0]}).json()["record"] == rec
    # unknown property, wrong type, unknown option, dateAdded on the body: 422
    r = sb.post("/objects/custom_objects.xray/records",
                {"locationId": sb.locs[0], "properties": {"colour": "red"}})
    assert r.status_code == 422 and r.json()["message"] == ["properties.colour is not a field of "
                                                            "custom_objects.xray"]
    r = sb.post("/objects/custom_objects.xray/records", {"locationId": sb.locs[0],
                                                         "properties": {"tooth": "fourteen", "kind": "cbct"}})
    assert r.status_code == 422 and len(r.json()["message"]) == 2
    r = sb.post("/objects/custom_objects.xray/records", {"locationId": sb.locs[0], "properties": {},
                                                         "dateAdded": "2001-01-01"})
    assert r.status_code == 422 and "property dateAdded should not exist" in r.json()["message"]
    # update merges properties, full keys are shortened
    r = sb.client.put(path, params={"locationId": sb.locs[0]}, headers=sb.headers(),
                      json={"properties": {"custom_objects.xray.tooth": 15}})
    assert r.status_code == 200, r.text
    assert (
        r.json()["record"]["properties"]["tooth"] == 15
        and r.json()["record"]["properties"]["legacy_id"] == "X1"
    )
    r = sb.client.put(path, params={"locationId": sb.locs[0]}, headers=sb.headers(),
                      json={"properties": {"bogus": 1}})
    assert r.status_code == 422
    # another location's token: 403 on the record, 403 naming another location
    assert sb.get(path, loc=1).status_code == 403
    r = sb.post("/objects/custom_objects.xray/records", {"locationId": sb.locs[0], "properties": {}}, loc=1)
    assert r.status_code == 403
    r = sb.client.delete(path, params={"locationId": sb.locs[0]}, headers=sb.headers(1))
    assert r.status_code == 403
    r = sb.client.delete(path, params={"locationId": sb.locs[0]}, headers=sb.headers())
    assert r.status_code == 200 and r.json() == {"id": rec["id"], "success": True}
    assert sb.get(path, params={"locationId": sb.locs[0]}).status_code == 404


def test_record_search_by_field_value_and_pagination(sb) -> None:
    schema, _ = _setup(sb)
    for i in range(7):
        _record(sb, name=f"Film {i}", legacy_id=f"L{i}", tooth=i)
    search = "/objects/custom_objects.xray/records/search"
    # only searchable properties can be queried (the primary one by default)
    r = sb.post(search, {"locationId": sb.locs[0], "pageLimit": 10, "query": "legacy_id:L3"})
    assert r.status_code == 400
    r = sb.client.put("/objects/custom_objects.xray", headers=sb.headers(),
                      json={"locationId": sb.locs[0], "searchableProperties": ["name", "legacy_id"]})
    assert r.status_code == 200, r.text
    r = sb.post(search, {"locationId": sb.locs[0], "pageLimit": 10, "query": "legacy_id:L3"})
    assert r.status_code == 200, r.text
    assert [x["properties"]["name"] for x in r.json()["records"]] == ["Film 3"] and r.json()["total"] == 1
    r = sb.post(search, {"locationId": sb.locs[0], "pageLimit": 10, "query": "film"})
    assert r.json()["total"] == 7
    seen, after = [], None
    while True:
        body = {"locationId": sb.locs[0], "pageLimit": 3, **({"searchAfter": after} if after else {})}
        page = sb.post(search, body)
        assert page.status_code == 200, page.text
        records = page.json()["records"]
        if not records:
            break
        seen += [x["id"] for x in records]
        after = records[-1]["searchAfter"]
    assert len(seen) == len(set(seen)) == 7
    r = sb.post(search, {"locationId": sb.locs[0], "pageLimit": 3, "page": 3})
    assert len(r.json()["records"]) == 1
    assert sb.post(search, {"locationId": sb.locs[0], "pageLimit": 3}, loc=1).status_code == 403


def test_record_search_lags_writes(make_sandbox) -> None:
    sb = make_sandbox(index_lag_s=5.0)
    _setup(sb)
    _record(sb, name="Late")
    search = "/objects/custom_objects.xray/records/search"
    assert sb.post(search, {"locationId": sb.locs[0], "pageLimit": 5}).json()["total"] == 0
    sb.clock.advance(5)
    assert sb.post(search, {"locationId": sb.locs[0], "pageLimit": 5}).json()["total"] == 1


def test_associations_and_relations(sb) -> None:
    _setup(sb)
    contact = sb.contact(firstName="Ann")
    rec = _record(sb, name="Film")
    r = sb.post("/associations/", {"locationId": sb.locs[0], "key": "patient_xray",
                                   "firstObjectKey": "contact",
                                   "firstObjectLabel": "Patient", "secondObjectKey": "custom_objects.xray",
                                   "secondObjectLabel": "X-ray"})
    assert r.status_code == 201, r.text
    assoc = r.json()
    assert assoc["associationType"] == "USER_DEFINED"
    r = sb.post("/associations/", {"locationId": sb.locs[0], "key": "patient_xray",
                                   "firstObjectKey": "contact",
                                   "firstObjectLabel": "P", "secondObjectKey": "custom_objects.xray",
                                   "secondObjectLabel": "X"})
    assert r.status_code == 400
    r = sb.post("/associations/", {"locationId": sb.locs[0], "key": "nope", "firstObjectKey": "contact",
                                   "firstObjectLabel": "P", "secondObjectKey": "custom_objects.missing",
                                   "secondObjectLabel": "X"})
    assert r.status_code == 400
    listed = sb.get("/associations/", params={"locationId": sb.locs[0], "skip": 0, "limit": 10}).json()
    assert [a["id"] for a in listed["associations"]] == [assoc["id"]]
    rel_body = {"locationId": sb.locs[0], "associationId": assoc["id"], "firstRecordId": contact["id"],
                "secondRecordId": rec["id"]}
    # missing record, swapped order, another location's contact: refused
    assert sb.post("/associations/relations", {**rel_body, "secondRecordId": "missing"}).status_code == 400
    assert sb.post("/associations/relations", {**rel_body, "firstRecordId": rec["id"],
                                               "secondRecordId": contact["id"]}).status_code == 400
    other = sb.contact(loc=1, firstName="Bob")
    assert sb.post("/associations/relations", {**rel_body, "firstRecordId": other["id"]}).status_code == 400
    r = sb.post("/associations/relations", rel_body)
    assert r.status_code == 201, r.text
    rel = r.json()
    r = sb.post("/associations/relations", rel_body)  # same pair twice: HighLevel's own answer (#73)
    assert r.status_code == 400 and r.json() == {
        "statusCode": 400, "error": "Bad Request",
        "message": f"Could not create relation: duplicate relation of object Ids for given association "
                   f"{assoc['id']}"}
    for rid in (contact["id"], rec["id"]):
        got = sb.get(f"/associations/relations/{rid}",
                     params={"locationId": sb.locs[0], "skip": 0, "limit": 10})
        assert got.status_code == 200 and [x["id"] for x in got.json()["relations"]] == [rel["id"]]
    state = dump(sb.state)["locations"][sb.locs[0]]
    assert [a["id"] for a in state["associations"]] == [assoc["id"]]
    assert [x["id"] for x in state["relations"]] == [rel["id"]]
    assert [x["id"] for x in state["objects"]["custom_objects.xray"]] == [rec["id"]]
    assert sb.client.delete(f"/associations/relations/{rel['id']}", params={"locationId": sb.locs[0]},
                            headers=sb.headers(1)).status_code == 403
    r = sb.client.delete(f"/associations/relations/{rel['id']}", params={"locationId": sb.locs[0]},
                         headers=sb.headers())
    assert r.status_code == 200 and r.json()["id"] == rel["id"]
    assert dump(sb.state)["locations"][sb.locs[0]]["relations"] == []
    # deleting a record deletes its relations
    rel2 = sb.post("/associations/relations", rel_body).json()
    sb.client.delete(f"/objects/custom_objects.xray/records/{rec['id']}", params={"locationId": sb.locs[0]},
                     headers=sb.headers())
    assert sb.client.get(f"/associations/relations/{contact['id']}", headers=sb.headers(),
                         params={"locationId": sb.locs[0], "skip": 0, "limit": 10}).json()["relations"] == []
    assert rel2["id"] not in {x["id"] for x in dump(sb.state)["locations"][sb.locs[0]]["relations"]}


def _cal(sb, loc=0):
    r = sb.client.get("/calendars/", params={"locationId": sb.locs[loc]}, headers=sb.headers(loc, CAL))
    assert r.status_code == 200, r.text
    return r.json()["calendars"][0]


def test_calendar_version_header_and_historical_appointment(sb) -> None:
    r = sb.client.get("/calendars/", params={"locationId": sb.locs[0]}, headers=sb.headers())  # 2021-07-28
    assert r.status_code == 422 and any("Version" in m for m in r.json()["message"])
    cal = _cal(sb)
    contact = sb.contact(firstName="Ann")
    body = {"calendarId": cal["id"], "locationId": sb.locs[0], "contactId": contact["id"],
            "startTime": "2019-03-01T09:00:00-06:00", "appointmentStatus": "showed", "title": "Cleaning"}
    # in the past without the import flags: no slot
    r = sb.client.post("/calendars/events/appointments", json=body, headers=sb.headers(0, CAL))
    assert r.status_code == 400
    flags = {"ignoreDateRange": True, "ignoreFreeSlotValidation": True, "toNotify": False}
    r = sb.client.post("/calendars/events/appointments", json={**body, **flags}, headers=sb.headers(0, CAL))
    assert r.status_code == 200, r.text
    event = r.json()
    assert event["appointmentStatus"] == "showed" and event["endTime"] == "2019-03-01T10:00:00-06:00"
    assert event["assignedUserId"] == cal["teamMembers"][0]["userId"]
    r = sb.client.get(f"/calendars/events/appointments/{event['id']}", headers=sb.headers(0, CAL))
    assert r.status_code == 200 and r.json()["event"]["id"] == event["id"]
    assert sb.client.get(f"/calendars/events/appointments/{event['id']}",
                         headers=sb.headers(1, CAL)).status_code == 403
    r = sb.get(f"/contacts/{contact['id']}/appointments")
    assert r.status_code == 200 and [e["id"] for e in r.json()["events"]] == [event["id"]]
    # the contact must exist in the location; the calendar must be the location's
    r = sb.client.post("/calendars/events/appointments", json={**body, **flags, "contactId": "missing"},
                       headers=sb.headers(0, CAL))
    assert r.status_code == 400
    r = sb.client.post("/calendars/events/appointments",
                       json={**body, **flags, "calendarId": _cal(sb, 1)["id"]},
                       headers=sb.headers(0, CAL))
    assert r.status_code == 400
    assert [e["id"] for e in dump(sb.state)["locations"][sb.locs[0]]["appointments"]] == [event["id"]]
    r = sb.client.request("DELETE", f"/calendars/events/{event['id']}", json={}, headers=sb.headers(0, CAL))
    assert r.status_code == 201 and r.json() == {"succeeded": True}
    assert dump(sb.state)["locations"][sb.locs[0]]["appointments"] == []


def test_future_appointment_slot_rules(sb) -> None:
    cal = _cal(sb)
    contact = sb.contact(firstName="Ann")
    body = {"calendarId": cal["id"], "locationId": sb.locs[0], "contactId": contact["id"],
            "startTime": "2030-01-07T09:00:00Z", "endTime": "2030-01-07T10:00:00Z"}
    assert sb.client.post("/calendars/events/appointments", json=body,
                          headers=sb.headers(0, CAL)).status_code == 200
    r = sb.client.post("/calendars/events/appointments", json={**body, "startTime": "2030-01-07T09:30:00Z",
                                                               "endTime": "2030-01-07T10:30:00Z"},
                       headers=sb.headers(0, CAL))
    assert r.status_code == 400  # overlap for the same team member
    r = sb.client.post("/calendars/events/appointments", json={**body, "ignoreFreeSlotValidation": True},
                       headers=sb.headers(0, CAL))
    assert r.status_code == 200
    r = sb.client.post("/calendars/events/appointments", json={**body, "assignedUserId": "someone-else",
                                                               "ignoreFreeSlotValidation": True},
                       headers=sb.headers(0, CAL))
    assert r.status_code == 400
