"""The token store's lease on S3 (moto's server on 127.0.0.1): taken with ``If-None-Match: *``, taken over
when expired with ``If-Match``, a lost race waits, release deletes only its own lease, a refused
conditional write (412) is an answer, a store without conditional writes an error that says so."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from dos2hl.errors import StorageError
from dos2hl.highlevel.lease import Lease, LeaseTimeout, S3Lease
from dos2hl.storage import S3Store
from tests.fakes import FakeClock

pytestmark = pytest.mark.s3
KEY = "loc1.lease"


@pytest.fixture()
def store(s3_server: str, s3_bucket: str) -> S3Store:
    from dos2hl.settings import S3Settings

    return S3Store(s3_bucket, "tokens", S3Settings(endpoint_url=s3_server))


def _lease(store: Any, clock: FakeClock, owner: str, **kw: Any) -> S3Lease:
    return S3Lease(store, KEY, ttl_s=kw.pop("ttl_s", 10.0), owner=owner, clock=clock,
                   sleep=kw.pop("sleep", clock.advance), **kw)


def _holder(store: S3Store) -> str | None:
    found = store.read_tagged(KEY)
    return None if found is None else json.loads(found[0])["owner"]  # type: ignore[no-any-return]


def test_a_free_lease_is_taken_held_and_released(store: S3Store) -> None:
    clock = FakeClock()
    a = _lease(store, clock, "a")
    with a.held() as lease:
        assert _holder(store) == "a" and lease.expires_at == clock.now + 10
        assert _lease(store, clock, "b").try_acquire() is None  # held: nobody else gets it
    assert store.read_tagged(KEY) is None  # released: the object is gone
    again = _lease(store, clock, "b").acquire()
    assert again.owner == "b" and _holder(store) == "b"


def test_a_live_lease_makes_the_other_wait_a_bounded_time(store: S3Store) -> None:
    clock = FakeClock()
    _lease(store, clock, "a", ttl_s=100.0).acquire()
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        clock.advance(s)

    b = _lease(store, clock, "b", max_wait_s=5.0, sleep=sleep)
    with pytest.raises(LeaseTimeout, match="still held"):
        b.acquire()
    assert sum(slept) == pytest.approx(5.0) and len(slept) <= b.max_rounds  # bounded: time and rounds
    assert slept[0] == pytest.approx(0.1) and max(slept) <= 2.0  # polls grow, capped
    assert _holder(store) == "a"


def test_a_waiter_gets_the_lease_once_the_holder_releases_it(store: S3Store) -> None:
    clock = FakeClock()
    a = _lease(store, clock, "a", ttl_s=100.0)
    held = a.acquire()
    sleeps = []

    def sleep(s: float) -> None:  # the holder finishes while the other waits
        sleeps.append(s)
        if len(sleeps) == 2:
            assert a.release(held)

    got = _lease(store, clock, "b", sleep=sleep).acquire()
    assert got.owner == "b" and len(sleeps) == 2 and _holder(store) == "b"


def test_an_expired_lease_is_taken_over_and_its_late_release_keeps_the_new_one(store: S3Store) -> None:
    clock = FakeClock()
    a = _lease(store, clock, "a")
    held = a.acquire()  # and then a dies, or stalls past its lease
    clock.advance(9.9)
    b = _lease(store, clock, "b")
    assert b.try_acquire() is None  # not yet expired
    clock.advance(0.2)
    taken = b.try_acquire()
    assert taken is not None and b.taken_over == 1 and _holder(store) == "b"
    assert a.release(held) is False  # If-Match on the old ETag: the new holder's lease stays
    assert _holder(store) == "b"
    assert b.release(taken) is True and store.read_tagged(KEY) is None


def test_an_unreadable_lease_counts_as_expired(store: S3Store) -> None:
    store.write_bytes(KEY, b"not json")
    got = _lease(store, FakeClock(), "b").try_acquire()
    assert got is not None and _holder(store) == "b"


def test_a_refused_conditional_write_is_an_answer_not_an_error(store: S3Store) -> None:
    first = store.put_if(KEY, b"{}", etag=None)
    assert first is not None
    assert store.put_if(KEY, b"{}", etag=None) is None  # If-None-Match: * on an existing object: 412
    second = store.put_if(KEY, b'{"v": 2}', etag=first)  # If-Match on the current ETag: written
    assert second is not None and second != first
    assert store.put_if(KEY, b'{"v": 3}', etag=first) is None  # If-Match on a stale ETag: 412
    assert store.delete_if(KEY, first) is False  # likewise for a delete
    assert store.read_tagged(KEY) == (b'{"v": 2}', second)
    store.delete([KEY])  # the holder released it between our read and our take-over
    assert store.put_if(KEY, b'{"v": 4}', etag=second) is None  # If-Match on nothing (404): lost, read again
    assert store.read_tagged(KEY) is None


class _Rival:
    """The store, where a rival's lease lands between each of our reads and our conditional write."""

    def __init__(self, inner: S3Store, clock: FakeClock, races: int) -> None:
        self.inner, self.races, self.lost = inner, races, 0
        self.rival = _lease(inner, clock, "rival", ttl_s=3.0)

    def read_tagged(self, key: str) -> tuple[bytes, str] | None:
        return self.inner.read_tagged(key)

    def put_if(self, key: str, data: bytes, *, etag: str | None) -> str | None:
        if self.races > 0:
            self.races -= 1
            assert self.rival.try_acquire() is not None  # the rival wins the lease we just read
            got = self.inner.put_if(key, data, etag=etag)
            assert got is None  # our write is refused (412): the object is no longer the one we read
            self.lost += 1
            return got
        return self.inner.put_if(key, data, etag=etag)

    def delete_if(self, key: str, etag: str) -> bool:
        return self.inner.delete_if(key, etag)


def test_a_lost_race_waits_and_then_takes_the_expired_winner_over(store: S3Store) -> None:
    clock = FakeClock()
    rival = _Rival(store, clock, races=1)
    mine = S3Lease(rival, KEY, ttl_s=10.0, owner="me", clock=clock, sleep=clock.advance)
    got = mine.acquire()  # created-race lost (412), the rival holds 3 s, then it expires and is ours
    assert isinstance(got, Lease) and got.owner == "me" and rival.lost == 1
    assert mine.taken_over == 1 and _holder(store) == "me"
    assert clock.now - 1_750_000_000.0 >= 3.0  # it waited for the rival's lease to expire


def test_a_store_without_conditional_writes_fails_with_a_hint(store: S3Store, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from botocore.exceptions import ClientError

    def refuse(**kw: Any) -> Any:
        assert kw.get("IfNoneMatch") == "*"
        raise ClientError({"Error": {"Code": "NotImplemented", "Message": "x"},
                           "ResponseMetadata": {"HTTPStatusCode": 501}}, "PutObject")

    monkeypatch.setattr(store.client, "put_object", refuse)
    with pytest.raises(StorageError, match="does not take conditional writes"):
        _lease(store, FakeClock(), "a").acquire()


def test_the_token_store_locks_with_the_lease_on_s3_and_flock_locally(s3_server: str, s3_bucket: str,
                                                                      tmp_path) -> None:  # type: ignore[no-untyped-def]
    from dos2hl.highlevel.token_store import TokenStore
    from dos2hl.phi import Sealer
    from dos2hl.settings import S3Settings
    from dos2hl.storage import open_store

    uri = f"s3://{s3_bucket}/oauth"
    s3 = TokenStore(uri, Sealer(os.urandom(32)), store=open_store(uri, S3Settings(endpoint_url=s3_server)))
    raw = S3Store(s3_bucket, "oauth", S3Settings(endpoint_url=s3_server))
    with s3.locked("loc1"):
        found = raw.read_tagged("loc1.lease")
        assert found is not None and json.loads(found[0])["expires_at"] > 0
        assert s3.lease("loc1") is not None and s3.lease("loc1").try_acquire() is None  # type: ignore[union-attr]
    assert raw.read_tagged("loc1.lease") is None
    local = TokenStore(str(tmp_path / "tokens"), Sealer(os.urandom(32)))
    assert local.lease("loc1") is None
    with local.locked("loc1"):
        assert (tmp_path / "tokens" / "loc1.token.lock").exists()
