"""The production client (dos2hl.highlevel) against the sandbox (dos2hl.sandbox): issue 3's Tests.

Both sides check the contract: the sandbox runs with ``check_responses=True`` (a response outside
the spec becomes a 500) and validates every request it receives; ``RecordingTransport`` validates
every request the client sends (and every 2xx answer) with ``dos2hl.highlevel.contract``.
Faults are seeded: ``_seeded`` picks the seed whose draws give exactly the wanted fault sequence
for the client's request sequence, so each fault test is deterministic.
"""

from __future__ import annotations

import json
import logging

import httpx
import pytest
from pydantic import SecretStr

from dos2hl.errors import (
    AuthError,
    DuplicateContactError,
    RateLimitedError,
    UnprocessableError,
)
from dos2hl.highlevel import HighLevelClient, RetryPolicy
from dos2hl.highlevel.models import (
    ContactCreate,
    ContactUpdate,
    ContactUpsert,
    CustomFieldInput,
    LocationCustomFieldCreate,
    NoteCreate,
    OpportunityCreate,
    OpportunityUpdate,
    SearchFilter,
    TaskCreate,
)
from dos2hl.sandbox.faults import Faults, parse_faults

from .conftest import FAST, Env, RecordingPermits, RecordingTransport, live_sandbox

ONE_SHOT = RetryPolicy(max_attempts=1, jitter=0.0, verify_delay=0.0)
PATIENT = RetryPolicy(max_attempts=3, backoff_base=0.25, jitter=0.0)  # a 429 wait of 0.25 s = header ignored
RATE_HEADERS = {"x-ratelimit-limit-daily", "x-ratelimit-daily-remaining", "x-ratelimit-interval-milliseconds",
                "x-ratelimit-max", "x-ratelimit-remaining"}


def _seeded(spec: str, draws: list[tuple[str, str | None]]) -> str:
    """``spec`` plus the first seed whose fault draws, for these operations in order, are as wanted."""
    for seed in range(5000):
        faults = Faults(parse_faults(f"{spec},seed={seed}"))
        if all(faults.plan(op).kind == kind for op, kind in draws):
            return f"{spec},seed={seed}"
    raise AssertionError(f"no seed gives {draws}")


def _source_field(client: HighLevelClient) -> str:
    """The Source_System_ID contact field the migration keys patients on; returns its id."""
    w = client.create_custom_field(LocationCustomFieldCreate(name="Source_System_ID", dataType="TEXT"))
    assert w.value.fieldKey == "contact.source_system_id"
    return w.value.id


def _patient(field_id: str, source_id: str, **fields: object) -> ContactCreate:
    return ContactCreate(customFields=[CustomFieldInput(id=field_id, field_value=source_id)], **fields)


# ---- contract, both ways -----------------------------------------------------------------------------

def test_every_client_operation_the_sandbox_emulates_validates_both_ways(env: Env) -> None:
    client, sent = env.client(retry=ONE_SHOT)  # a contract 500 must fail at once, not be retried
    loc = client.get_location()
    assert loc.id == env.locs[0] and loc.companyId
    src = _source_field(client)
    plan = client.create_custom_field(
        LocationCustomFieldCreate(name="Insurance Plan", dataType="SINGLE_OPTIONS", options=["PPO", "HMO"]))
    assert plan.value.picklistOptions == ["PPO", "HMO"]
    assert {f.name for f in client.list_custom_fields("contact")} >= {"Source_System_ID", "Insurance Plan"}
    assert client.custom_field_lookup("Insurance Plan")().id == plan.value.id
    tag = client.create_location_tag("recall-due")
    assert tag.outcome == "created" and "recall-due" in {t.name for t in client.list_location_tags()}

    ann = client.create_contact(_patient(src, "DS-1", firstName="Ann", lastName="Lee",
                                         email="ann@example.com", phone="(555) 201-0001", tags=["Patient"],
                                         dateOfBirth="1980-02-03"), stable_key="patient:DS-1")
    assert ann.outcome == "created" and ann.attempts == 1 and ann.value.phone == "+15552010001"
    bob = client.upsert_contact(ContactUpsert(firstName="Bob", email="bob@example.com",
                                              customFields=[CustomFieldInput(id=src, field_value="DS-2")]))
    assert bob.outcome == "created"
    again = client.upsert_contact(ContactUpsert(email="bob@example.com", lastName="Stone"))
    assert again.outcome == "updated" and again.value.id == bob.value.id
    cal = client.create_contact(_patient(src, "DS-3", firstName="Cal"))
    got = client.get_contact(ann.value.id)
    assert got.custom_value(src) == "DS-1" and got.tags == ["patient"] and got.dateAdded
    updated = client.update_contact(ann.value.id, ContactUpdate(lastName="Lee-Park", tags=["patient", "vip"]))
    assert updated.tags == ["patient", "vip"]
    assert set(client.add_contact_tags(ann.value.id, ["Recall"])) == {"patient", "vip", "recall"}
    client.remove_contact_tags(ann.value.id, ["vip"])
    assert client.get_contact(ann.value.id).tags == ["patient", "recall"]
    note = client.create_note(ann.value.id, NoteCreate(body="first visit"))
    assert [n.id for n in client.list_notes(ann.value.id)] == [note.value.id]
    assert client.note_lookup(ann.value.id, "first visit")().id == note.value.id
    task = client.create_task(ann.value.id, TaskCreate(title="Call back", dueDate="2026-12-01T10:00:00.000Z",
                                                       completed=False))
    assert task.value.title == "Call back"
    everyone = list(client.search_contacts_all(page_limit=2))  # 3 contacts: two pages via searchAfter
    assert sorted(c.id for c in everyone) == sorted([ann.value.id, bob.value.id, cal.value.id])
    assert client.find_contact_by_custom_field(src, "DS-2").id == bob.value.id
    assert client.find_contact_by_custom_field(src, "DS-404") is None
    by_email = SearchFilter(field="email", operator="eq", value="ann@example.com")
    only = list(client.search_contacts_all([by_email]))
    assert [c.id for c in only] == [ann.value.id]

    users = client.list_users()
    assert len(users) == 3
    assert [u.id for u in client.search_users(loc.companyId, "dana")] == [users[0].id]
    pipelines = {p.name: p for p in client.list_pipelines()}
    recall = pipelines["Recall"]
    opp = client.create_opportunity(OpportunityCreate(pipelineId=recall.id, name="Recall 2026", status="open",
                                                      contactId=ann.value.id, monetaryValue=120))
    assert opp.value.pipelineStageId == recall.stages[0]["id"]
    assert client.update_opportunity(opp.value.id, OpportunityUpdate(status="won")).status == "won"
    assert client.find_opportunity(ann.value.id, recall.id).id == opp.value.id
    assert client.opportunity_lookup(ann.value.id, recall.id, "nope")() is None
    client.delete_opportunity(opp.value.id)
    assert client.search_opportunities(contact_id=ann.value.id).opportunities == []
    assert [w.name for w in client.list_workflows()] == ["New patient welcome"]
    media = client.upload_media(b"\x89PNG\r\n\x1a\n0000", filename="xray.png", content_type="image/png",
                                name="xray.png")
    assert media.value.fileId and media.outcome == "created"
    client.delete_contact(cal.value.id)

    assert sent.problems == []
    assert all(s.status is not None and s.status < 400 for s in sent.sent), [s for s in sent.sent]
    expected = {
        "contacts:create-contact", "contacts:upsert-contact", "contacts:get-contact",
        "contacts:update-contact", "contacts:delete-contact", "contacts:search-contacts-advanced",
        "contacts:add-tags",
        "contacts:remove-tags", "contacts:create-note", "contacts:get-all-notes", "contacts:create-task",
        "locations:get-location", "locations:get-custom-fields", "locations:create-custom-field",
        "locations:get-location-tags", "locations:create-tag", "users:get-user-by-location",
        "users:search-users", "opportunities:get-pipelines", "opportunities:create-opportunity",
        "opportunities:update-opportunity", "opportunities:search-opportunity",
        "opportunities:delete-opportunity", "workflows:get-workflow", "medias:upload-media-content",
    }
    assert expected <= sent.operations(), expected - sent.operations()
    state = env.dump()
    assert len(state["contacts"]) == 2 and len(state["notes"]) == 1 and len(state["tasks"]) == 1
    assert state["opportunities"] == [] and len(state["files"]) == 1


def test_the_real_server_over_loopback(make_env) -> None:
    env: Env = make_env(locations=1)
    env.close()  # the in-process app lets go of the state; uvicorn serves it instead
    with live_sandbox(env.state) as base:
        transport = RecordingTransport(httpx.HTTPTransport())
        permits = RecordingPermits()
        with HighLevelClient(base, SecretStr(env.tokens[env.locs[0]]), env.locs[0], transport=transport,
                             permits=permits, retry=FAST, timeout=5.0) as client:
            src = _source_field(client)
            w = client.create_contact(_patient(src, "W-1", firstName="Wire", email="wire@example.com"))
            assert client.get_contact(w.value.id).firstName == "Wire"
            assert client.contact_lookup(src, "W-1")().id == w.value.id
            client.upload_media(b"%PDF-1.4 x", filename="consent.pdf", content_type="application/pdf")
        assert transport.problems == []
        assert [s.status for s in transport.sent] == [201, 201, 200, 200, 200]
        assert all(RATE_HEADERS <= set(h) for _, h in permits.reports)


# ---- auth and tenancy --------------------------------------------------------------------------------

@pytest.mark.parametrize("token", ["", "pit-not-a-real-token"])
def test_missing_or_invalid_token_is_an_auth_error(env: Env, token: str) -> None:
    client, sent = env.client(token=token)
    with pytest.raises(AuthError) as err:
        client.list_workflows()
    assert err.value.status == 401 and len(sent.sent) == 1  # fatal, not retried
    assert env.tokens[env.locs[0]] not in str(err.value)


def test_a_token_for_location_a_is_refused_on_location_b(env: Env) -> None:
    a, _ = env.client(0)
    mine = a.create_contact(ContactCreate(firstName="Private", email="private@example.com")).value
    wrong, sent = env.client(0, location_id=env.locs[1])  # A's token, B's location id
    with pytest.raises(AuthError) as err:
        wrong.get_location()
    assert err.value.status == 403 and err.value.path == "/locations/{locationId}"
    with pytest.raises(AuthError) as err:
        wrong.create_contact(ContactCreate(firstName="Intruder"))
    assert err.value.status == 403
    assert len(sent.sent) == 2 and env.dump(1)["contacts"] == []
    b, _ = env.client(1)
    with pytest.raises(AuthError) as err:
        b.get_contact(mine.id)  # B's token on A's contact
    assert err.value.status == 403
    assert list(b.search_contacts_all()) == [] and b.find_contact_by_custom_field("x", "y") is None


# ---- duplicate rules: a family sharing an email ------------------------------------------------------

def test_family_sharing_an_email(env: Env) -> None:
    client, sent = env.client()
    src = _source_field(client)
    mom = client.create_contact(_patient(src, "P-1", firstName="Mary", lastName="Jones",
                                         email="family@example.com")).value
    with pytest.raises(DuplicateContactError) as err:
        client.create_contact(_patient(src, "P-2", firstName="Tim", lastName="Jones",
                                       email="FAMILY@example.com"), lookup=client.contact_lookup(src, "P-2"))
    assert err.value.existing_id == mom.id and err.value.matching_field == "email"
    assert "family@example.com" not in str(err.value).lower()
    assert len(env.dump()["contacts"]) == 1
    # The migration's way on a location that disallows duplicates: the guarantor's channels on one
    # record only; the child is keyed and found by its Source_System_ID.
    tim = client.create_contact(_patient(src, "P-2", firstName="Tim", lastName="Jones"),
                                lookup=client.contact_lookup(src, "P-2"))
    assert tim.outcome == "created" and tim.value.id != mom.id
    assert client.find_contact_by_custom_field(src, "P-1").id == mom.id
    assert client.find_contact_by_custom_field(src, "P-2").id == tim.value.id
    assert len(env.dump()["contacts"]) == 2
    # Upsert matches by email and MERGES the next family member into Mary's contact: her name and
    # her Source_System_ID are overwritten. That is why the client never upserts family members.
    sue = client.upsert_contact(ContactUpsert(firstName="Sue", email="family@example.com",
                                              customFields=[CustomFieldInput(id=src, field_value="P-3")],
                                              createNewIfDuplicateAllowed=True))  # ignored here
    assert sue.outcome == "updated" and sue.value.id == mom.id
    merged = client.get_contact(mom.id)
    assert merged.firstName == "Sue" and merged.custom_value(src) == "P-3"
    assert client.find_contact_by_custom_field(src, "P-1") is None  # Mary is gone as a patient
    assert len(env.dump()["contacts"]) == 2
    assert sent.problems == []


def test_family_sharing_an_email_where_duplicates_are_allowed(make_env) -> None:
    env: Env = make_env(locations=1, allow_duplicates=True)
    client, sent = env.client()
    src = _source_field(client)
    mom = client.create_contact(_patient(src, "P-1", firstName="Mary", email="family@example.com"),
                                lookup=client.contact_lookup(src, "P-1"))
    tim = client.create_contact(_patient(src, "P-2", firstName="Tim", email="family@example.com"),
                                lookup=client.contact_lookup(src, "P-2"))
    sue = client.upsert_contact(ContactUpsert(firstName="Sue", email="family@example.com",
                                              createNewIfDuplicateAllowed=True,
                                              customFields=[CustomFieldInput(id=src, field_value="P-3")]))
    assert [w.outcome for w in (mom, tim, sue)] == ["created"] * 3
    assert len({mom.value.id, tim.value.id, sue.value.id}) == 3
    for key, w in (("P-1", mom), ("P-2", tim), ("P-3", sue)):
        assert client.find_contact_by_custom_field(src, key).id == w.value.id
    contacts = env.dump()["contacts"]
    assert len(contacts) == 3 and {c["email"] for c in contacts} == {"family@example.com"}
    # even here, an upsert without the flag merges into the first match
    zed = client.upsert_contact(ContactUpsert(firstName="Zed", email="family@example.com"))
    assert zed.outcome == "updated" and zed.value.id == mom.value.id
    assert len(env.dump()["contacts"]) == 3 and sent.problems == []


# ---- rate limits -------------------------------------------------------------------------------------

def test_rate_limit_headers_reach_the_permit_source_and_429_is_retried_after_the_interval(make_env) -> None:
    env: Env = make_env(burst=(5, 1.0), daily=1000)
    permits = RecordingPermits()
    client, sent = env.client(permits=permits, retry=PATIENT)
    for _ in range(5):
        client.list_workflows()
    assert [h["x-ratelimit-remaining"] for _, h in permits.reports] == ["4", "3", "2", "1", "0"]
    daily = [h["x-ratelimit-daily-remaining"] for _, h in permits.reports]
    assert daily == ["999", "998", "997", "996", "995"]
    assert all(h["x-ratelimit-max"] == "5" and h["x-ratelimit-interval-milliseconds"] == "1000"
               and h["x-ratelimit-limit-daily"] == "1000" for _, h in permits.reports)
    assert env.sleeps == []
    client.list_workflows()  # the 6th inside the window: 429, wait the interval, then 200
    assert [s for s, _ in permits.reports] == [200] * 5 + [429, 200]
    assert env.sleeps == [1.0]  # X-RateLimit-Interval-Milliseconds, no backoff guess
    assert len(permits.acquired) == len(sent.sent) == 7  # the retry took a permit too
    assert RATE_HEADERS <= set(permits.reports[5][1])


def test_a_429_storm_is_retried_no_more_than_max_attempts(make_env) -> None:
    env: Env = make_env(locations=1, faults="storm429=1.0,storm_len=10")
    permits = RecordingPermits()
    client, sent = env.client(permits=permits, retry=PATIENT)
    with pytest.raises(RateLimitedError) as err:
        client.list_workflows()
    assert err.value.retry_after == 10.0  # the interval header: the default burst window is 10 s
    assert len(sent.sent) == 3 and len(permits.acquired) == 3 and env.sleeps == [10.0, 10.0]
    assert [s for s, _ in permits.reports] == [429, 429, 429]


# ---- durability --------------------------------------------------------------------------------------

def test_contacts_and_rate_limit_counters_survive_a_restart(make_env) -> None:
    env: Env = make_env(burst=(50, 60.0), daily=1000)
    client, _ = env.client()
    src = _source_field(client)
    made = [client.create_contact(_patient(src, f"R-{i}", firstName=f"Kept{i}")).value for i in range(3)]
    client.create_note(made[0].id, NoteCreate(body="survives"))
    env.restart()
    permits = RecordingPermits()
    client, _ = env.client(permits=permits)
    for i, c in enumerate(made):
        back = client.get_contact(c.id)
        assert back.firstName == f"Kept{i}" and back.custom_value(src) == f"R-{i}"
    assert [n.body for n in client.list_notes(made[0].id)] == ["survives"]
    # 5 requests before the restart (field, 3 contacts, note); the counters went on from there
    assert [h["x-ratelimit-remaining"] for _, h in permits.reports] == ["44", "43", "42", "41"]
    assert permits.reports[-1][1]["x-ratelimit-daily-remaining"] == str(1000 - 9)


# ---- faults ------------------------------------------------------------------------------------------

def test_422_but_created_is_verified_by_lookup_not_re_sent(make_env) -> None:
    env: Env = make_env(locations=1, faults="created422=1.0")  # only creates are faulted
    client, sent = env.client()
    src = _source_field(client)
    w = client.create_contact(_patient(src, "F-1", firstName="Ghost"), stable_key="patient:F-1",
                              lookup=client.contact_lookup(src, "F-1"))
    assert w.outcome == "verified-existing" and w.attempts == 1
    contacts = env.dump()["contacts"]
    assert len(contacts) == 1 and w.value.id == contacts[0]["id"]
    assert [s.operation for s in sent.sent].count("contacts:create-contact") == 1
    # without a lookup the client cannot know: it raises, and still never re-sends
    with pytest.raises(UnprocessableError) as err:
        client.create_contact(_patient(src, "F-2", firstName="Ghost2"), stable_key="patient:F-2")
    assert err.value.stable_key == "patient:F-2"
    assert [s.operation for s in sent.sent].count("contacts:create-contact") == 2
    assert len(env.dump()["contacts"]) == 2


def test_5xx_is_retried_and_succeeds(make_env) -> None:
    create, search = "contacts:create-contact", "contacts:search-contacts-advanced"
    get = "contacts:get-contact"
    spec = _seeded("5xx=0.5", [("locations:create-custom-field", None), (create, "5xx"), (search, None),
                               (create, None), (get, "5xx"), (get, "5xx"), (get, None)])
    env: Env = make_env(locations=1, faults=spec)
    client, sent = env.client()
    src = _source_field(client)
    w = client.create_contact(_patient(src, "F-5", firstName="Five"),
                              lookup=client.contact_lookup(src, "F-5"))
    # 5xx stores nothing: the lookup finds nothing, so the create is sent again
    assert w.outcome == "created" and w.attempts == 2
    assert [s.operation for s in sent.sent[1:]] == [create, search, create]
    assert client.get_contact(w.value.id).firstName == "Five"  # a read: two 5xx, then 200
    statuses = [s.status or 0 for s in sent.sent]
    assert statuses[1] >= 500 and statuses[2:4] == [200, 201]
    assert [s >= 500 for s in statuses[4:]] == [True, True, False] and statuses[-1] == 200
    assert len(env.dump()["contacts"]) == 1 and len(env.sleeps) == 3


def test_latency_still_succeeds(make_env) -> None:
    env: Env = make_env(locations=1, faults="latency=20ms..40ms,seed=3")
    client, sent = env.client()
    w = client.create_contact(ContactCreate(firstName="Slow"))
    assert w.outcome == "created" and client.get_contact(w.value.id).firstName == "Slow"
    lines = [json.loads(line) for line in (env.state / "journal.jsonl").read_text().splitlines()]
    assert len(lines) == 2 and all(line["latency_ms"] >= 20 for line in lines)
    assert sent.problems == []


@pytest.mark.parametrize("kind", ["timeout", "reset"])
def test_timeout_and_reset_after_a_create_lead_to_a_lookup_not_a_duplicate(make_env, kind: str) -> None:
    """Over loopback: the sandbox stores the contact, then holds the answer past the client's timeout
    (or drops the connection). The client looks the contact up instead of creating it twice."""
    env: Env = make_env(locations=1)
    env.close()
    create, search = "contacts:create-contact", "contacts:search-contacts-advanced"
    spec = _seeded(f"{kind}=0.5,timeout_after=0.5", [("locations:create-custom-field", None), (create, kind),
                                                     (search, None)])
    with live_sandbox(env.state, faults=spec) as base:
        transport = RecordingTransport(httpx.HTTPTransport())
        sleeps: list[float] = []
        short = httpx.Timeout(0.2, connect=2.0)  # the sandbox holds the answer 0.5 s
        with HighLevelClient(base, SecretStr(env.tokens[env.locs[0]]), env.locs[0], transport=transport,
                             retry=FAST, timeout=short, sleep=sleeps.append) as client:
            src = _source_field(client)
            w = client.create_contact(_patient(src, "T-1", firstName="Held"), stable_key="patient:T-1",
                                      lookup=client.contact_lookup(src, "T-1"))
        assert w.outcome == "verified-existing" and w.attempts == 1
        assert [(s.operation, s.status) for s in transport.sent] == [
            ("locations:create-custom-field", 201), (create, None), (search, 200)]
        assert transport.problems == []
    contacts = env.dump()["contacts"]
    assert len(contacts) == 1 and contacts[0]["id"] == w.value.id


# ---- nothing secret in the journal or the logs -------------------------------------------------------

def test_journal_and_client_logs_hold_no_token_and_no_body_values(env: Env, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="dos2hl.highlevel")
    client, _ = env.client()
    src = _source_field(client)
    phi = ["Marguerite", "Okonkwo-Brandt", "marguerite.ob@example.com", "+15559871234", "1957-04-19",
           "17 Molar Lane", "PT-884213", "penicillin allergy", "Crown on tooth 14"]
    w = client.create_contact(_patient(src, phi[6], firstName=phi[0], lastName=phi[1], email=phi[2],
                                       phone=phi[3], dateOfBirth=phi[4], address1=phi[5]),
                              stable_key="patient:opaque-key-1")
    client.create_note(w.value.id, NoteCreate(body=phi[7]))
    client.update_contact(w.value.id, ContactUpdate(tags=[phi[8]]))
    client.find_contact_by_custom_field(src, phi[6])
    with pytest.raises(DuplicateContactError):
        client.create_contact(ContactCreate(firstName=phi[0], email=phi[2]))
    journal = (env.state / "journal.jsonl").read_text()
    logs = caplog.text + "".join(json.dumps(getattr(r, "highlevel", {})) for r in caplog.records)
    assert len(journal.splitlines()) == 6 and "stable_key=patient:opaque-key-1" in caplog.text
    for text in (journal, logs):
        assert env.tokens[env.locs[0]] not in text and "Bearer" not in text
        for value in phi + [phi[2].upper(), "okonkwo", "marguerite"]:
            assert value not in text, value
        assert w.value.id not in text  # concrete paths are not logged either, only templates
