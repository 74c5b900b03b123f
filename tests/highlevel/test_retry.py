"""Retries, classification of failures, and verify-before-retry for creates."""

from __future__ import annotations

import random

import httpx
import pytest

from dos2hl.errors import (
    AuthError,
    BadRequestError,
    DuplicateContactError,
    HighLevelHTTPError,
    NotFoundError,
    RateLimitedError,
    RequestTimeoutError,
    ServerError,
    TransportError,
    UnprocessableError,
)
from dos2hl.highlevel import HighLevelClient, RetryPolicy
from dos2hl.highlevel.models import ContactCreate, ContactUpsert, CustomFieldInput, RecordCreate
from dos2hl.highlevel.retry import parse_retry_after

from .conftest import CountingPermits, FakeHighLevel, reply

CONTACT = {"contact": {"id": "c1"}}
FOUND = {"contacts": [{"id": "c-existing", "customFields": [{"id": "src", "value": "P-1"}]}], "total": 1}
NOT_FOUND = {"contacts": [], "total": 0}
PATIENT = ContactCreate(firstName="Ann", customFields=[CustomFieldInput(id="src", field_value="P-1")])


def test_429_honours_retry_after_then_succeeds(client: HighLevelClient, fake: FakeHighLevel,
                                               sleeps: list[float], permits: CountingPermits) -> None:
    fake.on("GET", "/contacts/c1", reply(429, {"statusCode": 429}, {"Retry-After": "7"}), reply(200, CONTACT))
    assert client.get_contact("c1").id == "c1"
    assert sleeps == [7.0]
    assert len(permits.acquired) == 2 and permits.reported == [429, 200]


def test_429_without_retry_after_waits_the_burst_interval(client: HighLevelClient, fake: FakeHighLevel,
                                                          sleeps: list[float]) -> None:
    limited = reply(429, {}, {"X-RateLimit-Interval-Milliseconds": "10000", "X-RateLimit-Remaining": "0"})
    fake.on("GET", "/contacts/c1", limited, reply(200, CONTACT))
    client.get_contact("c1")
    assert sleeps == [10.0]


def test_5xx_is_retried_with_backoff_then_capped(client: HighLevelClient, fake: FakeHighLevel,
                                                 sleeps: list[float]) -> None:
    fake.on("GET", "/contacts/c1", reply(502, {}))
    with pytest.raises(ServerError) as info:
        client.get_contact("c1")
    assert info.value.status == 502
    assert len(fake.requests) == 4  # max_attempts
    assert sleeps == [1.0, 2.0, 4.0]


def test_backoff_is_capped_and_jittered() -> None:
    p = RetryPolicy(backoff_base=1.0, backoff_cap=5.0, jitter=0.5)
    rng = random.Random(1)
    delays = [p.backoff(n, rng) for n in range(1, 8)]
    assert all(0 < d <= 5.0 for d in delays) and delays[-1] >= 2.5
    assert RetryPolicy(max_retry_after=30).delay(1, RateLimitedError(429, method="GET", path="/x",
                                                                     retry_after=3600)) == 30


def test_retry_after_as_http_date() -> None:
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:10 GMT"}, now=1445412480.0) == 10.0
    assert parse_retry_after({}) is None


def test_timeouts_and_connection_errors_are_retried_for_reads(client: HighLevelClient, fake: FakeHighLevel,
                                                              permits: CountingPermits) -> None:
    fake.on("GET", "/contacts/c1", httpx.ReadTimeout("slow"), httpx.ConnectError("refused"),
            reply(200, CONTACT))
    assert client.get_contact("c1").id == "c1"
    assert len(fake.requests) == 3 and len(permits.acquired) == 3
    assert permits.reported == [200]  # only responses are reported


@pytest.mark.parametrize("status, body, cls", [
    (400, {"statusCode": 400, "message": "bad"}, BadRequestError),
    (401, {"statusCode": 401, "message": "Invalid JWT"}, AuthError),
    (403, {"statusCode": 403, "message": "The token does not have access to this location."}, AuthError),
    (404, {"statusCode": 404}, NotFoundError),
    (422, {"statusCode": 422, "message": ["property dateAdded should not exist"]}, UnprocessableError),
    (409, {}, HighLevelHTTPError),
])
def test_other_4xx_are_fatal_and_classified(client: HighLevelClient, fake: FakeHighLevel, sleeps: list[float],
                                            status: int, body: dict, cls: type) -> None:
    fake.on("PUT", "/contacts/c1", reply(status, body, {"x-trace-id": "tr-9"}))
    from dos2hl.highlevel.models import ContactUpdate
    with pytest.raises(cls) as info:
        client.update_contact("c1", ContactUpdate(firstName="A"), stable_key="sk-1")
    err = info.value
    assert type(err) is cls and err.status == status and err.path == "/contacts/{contactId}"
    assert err.trace_id == "tr-9" and err.stable_key == "sk-1"
    assert len(fake.requests) == 1 and sleeps == []
    if status == 422:
        assert err.fields == ("dateAdded",)


def test_duplicate_400_carries_the_existing_contact_id(client: HighLevelClient, fake: FakeHighLevel) -> None:
    fake.on("POST", "/contacts/", reply(400, {
        "statusCode": 400, "message": "This location does not allow duplicated contacts.",
        "meta": {"contactId": "c-dup", "contactName": "Ann Smith", "matchingField": "email"}}))
    with pytest.raises(DuplicateContactError) as info:
        client.create_contact(PATIENT, stable_key="sk-1", lookup=client.contact_lookup("src", "P-1"))
    assert info.value.existing_id == "c-dup" and info.value.matching_field == "email"
    assert "Ann Smith" not in str(info.value)
    assert len(fake.requests) == 1  # fatal, and no lookup either


def test_422_but_created_is_found_by_lookup_and_not_created_again(
        client: HighLevelClient, fake: FakeHighLevel, permits: CountingPermits, sleeps: list[float]) -> None:
    fake.on("POST", "/contacts/", reply(422, {"statusCode": 422, "message": ["something"]}))
    fake.on("POST", "/contacts/search", reply(200, FOUND))
    w = client.create_contact(PATIENT, stable_key="sk-1", lookup=client.contact_lookup("src", "P-1"))
    assert (w.value.id, w.outcome, w.attempts) == ("c-existing", "verified-existing", 1)
    assert len(fake.sent("POST", "/contacts/")) == 1
    assert sleeps == [3.0]  # verify_delay: HighLevel's search index lags its writes
    assert len(permits.acquired) == 2  # the create and the lookup


def test_422_on_create_not_found_is_raised_not_retried(client: HighLevelClient, fake: FakeHighLevel) -> None:
    fake.on("POST", "/contacts/", reply(422, {"statusCode": 422, "message": ["email must be an email"]}))
    fake.on("POST", "/contacts/search", reply(200, NOT_FOUND))
    with pytest.raises(UnprocessableError) as info:
        client.create_contact(PATIENT, stable_key="sk-1", lookup=client.contact_lookup("src", "P-1"))
    assert info.value.fields == ("email",) and info.value.ambiguous
    assert len(fake.sent("POST", "/contacts/")) == 1 and len(fake.sent("POST", "/contacts/search")) == 1


def test_timeout_on_create_found_by_lookup(client: HighLevelClient, fake: FakeHighLevel,
                                           permits: CountingPermits) -> None:
    fake.on("POST", "/contacts/", httpx.ReadTimeout("timed out"))
    fake.on("POST", "/contacts/search", reply(200, FOUND))
    w = client.create_contact(PATIENT, lookup=client.contact_lookup("src", "P-1"))
    assert w.outcome == "verified-existing" and w.value.id == "c-existing"
    assert len(fake.sent("POST", "/contacts/")) == 1
    assert len(permits.acquired) == len(fake.requests) == 2


def test_timeout_on_create_retried_only_when_lookup_finds_nothing(
        client: HighLevelClient, fake: FakeHighLevel, permits: CountingPermits, sleeps: list[float]) -> None:
    fake.on("POST", "/contacts/", httpx.ReadTimeout("timed out"), reply(201, CONTACT))
    fake.on("POST", "/contacts/search", reply(200, NOT_FOUND))
    w = client.create_contact(PATIENT, lookup=client.contact_lookup("src", "P-1"))
    assert (w.value.id, w.outcome, w.attempts) == ("c1", "created", 2)
    assert [r.url.path for r in fake.requests] == ["/contacts/", "/contacts/search", "/contacts/"]
    assert sleeps == [3.0]  # max(backoff 1.0, verify_delay 3.0)
    assert len(permits.acquired) == 3


def test_5xx_on_create_without_lookup_is_never_re_sent(client: HighLevelClient, fake: FakeHighLevel) -> None:
    fake.on("POST", "/contacts/", reply(503, {}))
    with pytest.raises(ServerError) as info:
        client.create_contact(PATIENT)
    assert info.value.ambiguous and len(fake.requests) == 1


def test_create_is_retried_when_the_request_never_left(client: HighLevelClient, fake: FakeHighLevel) -> None:
    fake.on("POST", "/contacts/", httpx.ConnectError("refused"), reply(429, {}, {"Retry-After": "1"}),
            reply(201, CONTACT))
    w = client.create_contact(PATIENT)  # no lookup needed: nothing can have been stored
    assert w.outcome == "created" and w.attempts == 3 and len(fake.requests) == 3


def test_ambiguous_create_out_of_attempts_gets_one_last_lookup(
        client: HighLevelClient, fake: FakeHighLevel, permits: CountingPermits) -> None:
    fake.on("POST", "/objects/custom_objects.xray/records", reply(500, {}))
    fake.on("POST", "/objects/custom_objects.xray/records/search",
            reply(200, {"records": []}), reply(200, {"records": []}), reply(200, {"records": []}),
            reply(200, {"records": [{"id": "r1", "properties": {"source_key": "k1"}}]}))
    lookup = client.record_lookup("custom_objects.xray", "source_key", "k1")
    w = client.create_record("custom_objects.xray", RecordCreate(properties={"source_key": "k1"}),
                             stable_key="k1", lookup=lookup)
    assert w.outcome == "verified-existing" and w.value.id == "r1" and w.attempts == 4
    assert len(fake.sent("POST", "/objects/custom_objects.xray/records")) == 4
    assert len(permits.acquired) == len(fake.requests) == 8


def test_upsert_reports_created_or_updated(client: HighLevelClient, fake: FakeHighLevel) -> None:
    fake.on("POST", "/contacts/upsert", reply(200, {"new": True, "contact": {"id": "c1"}, "traceId": "t"}),
            reply(200, {"new": False, "contact": {"id": "c1"}, "traceId": "t"}))
    assert client.upsert_contact(ContactUpsert(firstName="A")).outcome == "created"
    assert client.upsert_contact(ContactUpsert(firstName="A")).outcome == "updated"


def test_transport_errors_are_typed(client: HighLevelClient, fake: FakeHighLevel) -> None:
    fake.on("GET", "/contacts/c1", httpx.ReadTimeout("slow"))
    with pytest.raises(RequestTimeoutError) as info:
        client.get_contact("c1")
    assert isinstance(info.value, TimeoutError) and isinstance(info.value, TransportError)
    assert info.value.sent and info.value.path == "/contacts/{contactId}"
