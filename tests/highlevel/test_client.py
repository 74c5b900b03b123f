"""Headers, paths, request models and paging of HighLevelClient (scripted fake HighLevel)."""

from __future__ import annotations

import logging

import httpx
import pydantic
import pytest
from pydantic import SecretStr

from dos2hl.errors import PayloadTooLargeError, UnexpectedResponseError
from dos2hl.highlevel import MAX_UPLOAD_BYTES, HighLevelClient, PermitSource, UnlimitedPermits
from dos2hl.highlevel.models import (
    AppointmentCreate,
    ContactCreate,
    ContactSearch,
    CustomFieldInput,
    OpportunityCreate,
    RecordCreate,
    SearchFilter,
)
from dos2hl.settings import Dos2hlSettings, HighLevelSettings

from .conftest import LOC, TOKEN, CountingPermits, FakeHighLevel, reply

CONTACT = {"contact": {"id": "c1", "locationId": LOC}}


def test_bearer_and_version_per_family(client: HighLevelClient, fake: FakeHighLevel) -> None:
    fake.on("POST", "/contacts/", reply(201, CONTACT)).on("GET", "/calendars/", reply(200, {"calendars": []}))
    client.create_contact(ContactCreate(firstName="A"))
    client.list_calendars()
    contacts, calendars = fake.requests
    assert contacts.headers["Authorization"] == f"Bearer {TOKEN}"
    assert contacts.headers["Version"] == "2021-07-28"
    assert calendars.headers["Version"] == "2021-04-15"
    assert calendars.headers["Authorization"] == f"Bearer {TOKEN}"
    assert calendars.url.params["locationId"] == LOC


@pytest.mark.parametrize("call, method, path", [
    (lambda c: c.list_workflows(), "GET", "/workflows/"),
    (lambda c: c.list_users(), "GET", "/users/"),
    (lambda c: c.list_object_schemas(), "GET", "/objects/"),
    (lambda c: c.list_associations(), "GET", "/associations/"),
    (lambda c: c.list_calendars(), "GET", "/calendars/"),
    (lambda c: c.create_opportunity(OpportunityCreate(pipelineId="p", name="n", status="open",
                                                      contactId="c")),
     "POST", "/opportunities/"),
    (lambda c: c.create_contact(ContactCreate(firstName="A")), "POST", "/contacts/"),
])
def test_collection_paths_keep_the_trailing_slash(client: HighLevelClient, fake: FakeHighLevel,
                                                  call, method: str, path: str) -> None:
    fake.on(method, path, httpx.Response(200, json={}))
    try:
        call(client)
    except UnexpectedResponseError:
        pass  # the empty reply is not the point here
    assert [(r.method, r.url.path) for r in fake.requests] == [(method, path)]


def test_location_id_is_filled_in_and_none_fields_are_not_sent(client: HighLevelClient,
                                                               fake: FakeHighLevel) -> None:
    fake.on("POST", "/contacts/", reply(201, CONTACT))
    fields = [CustomFieldInput(id="f1", field_value=3)]
    client.create_contact(ContactCreate(firstName="A", customFields=fields))
    assert fake.body(fake.requests[0]) == {"firstName": "A", "locationId": LOC,
                                           "customFields": [{"id": "f1", "field_value": 3}]}


@pytest.mark.parametrize("model, fields", [
    (ContactCreate, {"firstName": "A", "dateAdded": "2020-01-01"}),
    (ContactCreate, {"additionalEmails": ["x@example.com"]}),
    (RecordCreate, {"properties": {}, "relations": []}),
    (AppointmentCreate, {"calendarId": "c", "contactId": "c", "startTime": "t", "notes": "n"}),
    (CustomFieldInput, {"id": "f", "field_value": 1, "value": 1}),
])
def test_request_models_forbid_unknown_fields(model, fields) -> None:
    with pytest.raises(pydantic.ValidationError) as info:
        model(**fields)
    assert "extra_forbidden" in str(info.value)
    assert "x@example.com" not in str(info.value)  # inputs are hidden in validation errors


def test_request_models_check_documented_limits() -> None:
    with pytest.raises(pydantic.ValidationError):
        ContactSearch(pageLimit=501)
    with pytest.raises(pydantic.ValidationError):
        ContactSearch(page=2, searchAfter=[1, "a"])
    with pytest.raises(pydantic.ValidationError):
        CustomFieldInput(field_value="x")  # neither id nor key
    with pytest.raises(pydantic.ValidationError):
        RecordCreate(properties={}, owner=["u1", "u2"])


def _contacts(start: int, n: int) -> list[dict]:
    return [{"id": f"c{i}", "searchAfter": [i, f"c{i}"]} for i in range(start, start + n)]


def test_search_contacts_all_follows_search_after(client: HighLevelClient, fake: FakeHighLevel,
                                                  permits: CountingPermits) -> None:
    fake.on("POST", "/contacts/search", reply(200, {"contacts": _contacts(0, 2), "total": 5}),
            reply(200, {"contacts": _contacts(2, 2), "total": 5}),
            reply(200, {"contacts": _contacts(4, 1), "total": 5}))
    flt = SearchFilter(field="customFields.src", operator="exists")
    ids = [c.id for c in client.search_contacts_all([flt], page_limit=2)]
    assert ids == ["c0", "c1", "c2", "c3", "c4"]
    bodies = [fake.body(r) for r in fake.requests]
    assert [b.get("searchAfter") for b in bodies] == [None, [1, "c1"], [3, "c3"]]
    assert all(b["pageLimit"] == 2 and b["locationId"] == LOC and "page" not in b for b in bodies)
    assert bodies[0]["filters"] == [{"field": "customFields.src", "operator": "exists"}]
    assert len(permits.acquired) == 3


def test_search_all_stops_on_a_cursor_that_does_not_advance(client: HighLevelClient,
                                                            fake: FakeHighLevel) -> None:
    stuck = [{"id": "a", "searchAfter": [1]}, {"id": "b", "searchAfter": [1]}]
    fake.on("POST", "/contacts/search", reply(200, {"contacts": stuck}))
    with pytest.raises(UnexpectedResponseError):
        list(client.search_contacts_all(page_limit=2))


def test_contact_lookup_searches_by_custom_field(client: HighLevelClient, fake: FakeHighLevel) -> None:
    hit = {"id": "c9", "customFields": [{"id": "src", "value": "P-1"}]}
    fake.on("POST", "/contacts/search", reply(200, {"contacts": [hit], "total": 1}))
    found = client.contact_lookup("src", "P-1")()
    assert found is not None and found.id == "c9"
    assert fake.body(fake.requests[0])["filters"] == [
        {"field": "customFields.src", "operator": "eq", "value": "P-1"}]


def test_opportunity_search_uses_snake_case(client: HighLevelClient, fake: FakeHighLevel) -> None:
    fake.on("GET", "/opportunities/search", reply(200, {"opportunities": [{"id": "o1", "name": "x"}]}))
    assert client.find_opportunity("c1", "p1", "x").id == "o1"
    params = dict(fake.requests[0].url.params)
    assert params == {"location_id": LOC, "contact_id": "c1", "pipeline_id": "p1", "limit": "100"}


def test_deletes_with_bodies(client: HighLevelClient, fake: FakeHighLevel) -> None:
    fake.on("DELETE", "/contacts/c1/tags", reply(200, {"tags": []}))
    fake.on("DELETE", "/calendars/events/e1", reply(201, {"succeeded": True}))
    client.remove_contact_tags("c1", ["legacy"])
    client.delete_event("e1")
    assert fake.body(fake.requests[0]) == {"tags": ["legacy"]}
    assert fake.body(fake.requests[1]) == {}
    assert fake.requests[1].headers["Version"] == "2021-04-15"


def test_path_parameters_are_escaped(client: HighLevelClient, fake: FakeHighLevel) -> None:
    fake.on("GET", "/objects/custom_objects.xray/records/r/1", reply(200, {"record": {"id": "r/1"}}))
    assert client.get_record("custom_objects.xray", "r/1").id == "r/1"
    assert fake.requests[0].url.raw_path.startswith(b"/objects/custom_objects.xray/records/r%2F1?")


def test_media_upload_is_multipart_and_refuses_over_25_mb(client: HighLevelClient, fake: FakeHighLevel,
                                                           permits: CountingPermits) -> None:
    fake.on("POST", "/medias/upload-file", reply(200, {"fileId": "f1", "url": "https://x/f1"}))
    w = client.upload_media(b"%PDF-1.4", filename="xray.pdf", content_type="application/pdf", name="xray")
    assert w.value.fileId == "f1" and w.outcome == "created"
    req = fake.requests[0]
    assert req.headers["content-type"].startswith("multipart/form-data")
    assert b'name="file"; filename="xray.pdf"' in req.content and b"%PDF-1.4" in req.content
    with pytest.raises(PayloadTooLargeError):
        client.upload_media(b"\0" * (MAX_UPLOAD_BYTES + 1), filename="big.bin")
    assert len(fake.requests) == 1 and len(permits.acquired) == 1  # nothing sent, no permit spent


def test_unexpected_response_shape_names_the_field_not_the_value(client: HighLevelClient,
                                                                 fake: FakeHighLevel) -> None:
    fake.on("GET", "/contacts/c1", reply(200, {"contact": {"firstName": "Zelda-PHI"}}))
    with pytest.raises(UnexpectedResponseError) as info:
        client.get_contact("c1")
    assert "id: missing" in str(info.value) and "Zelda-PHI" not in str(info.value)


def test_one_log_line_per_request(client: HighLevelClient, fake: FakeHighLevel,
                                  caplog: pytest.LogCaptureFixture) -> None:
    fake.on("GET", "/contacts/c1", reply(200, CONTACT, headers={"x-trace-id": "tr-1"}))
    with caplog.at_level(logging.DEBUG, logger="dos2hl.highlevel"):
        client.get_contact("c1")
    records = [r for r in caplog.records if r.name == "dos2hl.highlevel"]
    assert len(records) == 1
    fields = records[0].highlevel
    assert fields["method"] == "GET" and fields["path"] == "/contacts/{contactId}"
    assert fields["status"] == 200 and fields["attempt"] == 1 and fields["trace_id"] == "tr-1"
    assert fields["latency_ms"] >= 0


def test_permit_source_protocol_and_settings() -> None:
    assert isinstance(UnlimitedPermits(), PermitSource) and isinstance(CountingPermits(), PermitSource)
    s = HighLevelSettings(token="abc")
    assert s.base_url == "https://services.leadconnectorhq.com"
    assert isinstance(s.token, SecretStr) and "abc" not in repr(s)
    assert Dos2hlSettings().highlevel.max_attempts == 5
    with pytest.raises(TypeError):
        HighLevelClient("https://x", "plain-token", LOC)  # type: ignore[arg-type]
    assert TOKEN not in repr(HighLevelClient("https://x", SecretStr(TOKEN), LOC))


def test_public_surface_is_pinned() -> None:
    import dos2hl.highlevel as hl

    public = sorted(n for n in vars(hl) if not n.startswith("_") and n != "annotations"
                    and not isinstance(getattr(hl, n), type(hl)))
    assert sorted(hl.__all__) == public


def test_clients_share_one_tls_context(monkeypatch: pytest.MonkeyPatch) -> None:
    """A run opens a client per location and shard thread; building a TLS context loads the CA bundle
    (about 90 ms and 0.9 MB each, measured), so the process builds one and every client shares it."""
    import ssl

    from dos2hl.highlevel import _core

    made: list[ssl.SSLContext] = []
    real = ssl.create_default_context

    def counting(*args: object, **kwargs: object) -> ssl.SSLContext:
        made.append(real(*args, **kwargs))  # type: ignore[arg-type]
        return made[-1]

    monkeypatch.setattr(ssl, "create_default_context", counting)
    _core._tls.cache_clear()
    clients = [HighLevelClient("https://services.leadconnectorhq.com", SecretStr(TOKEN), f"{LOC}{i}")
               for i in range(3)]
    try:
        assert len(made) == 1
        pools = {id(c._http._transport._pool._ssl_context) for c in clients}  # type: ignore[attr-defined]
        assert pools == {id(made[0])}
    finally:
        for c in clients:
            c.close()
        _core._tls.cache_clear()
