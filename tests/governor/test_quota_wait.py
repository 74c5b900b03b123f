"""Issue 17: a location whose day is spent is not waited for. The governor (in process, or the shared
actor behind ``GovernorHandle``) raises ``QuotaExhausted`` with the reset time instead of sleeping past
``Limits.max_wait_s``, holding no permit; the client does not retry a 429 of a spent day."""

from __future__ import annotations

import asyncio
import email.utils
import pickle
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from dos2hl.errors import DailyLimitError, QuotaExhausted
from dos2hl.governor import Limits, LocalGovernor
from dos2hl.highlevel import HighLevelClient
from tests.fakes import FakeClock

LIM = Limits(burst=100, window_s=1.0, daily=10, margin_s=0.01, reserve=0.0)


def _midnight_after(t: float) -> float:
    return (t // 86_400 + 1) * 86_400


def test_the_local_governor_raises_at_a_spent_day_instead_of_sleeping_to_the_reset() -> None:
    clock = FakeClock()
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        clock.advance(s)

    gov = LocalGovernor(LIM, clock=clock, sleep=sleep)
    for _ in range(9):
        gov.acquire("loc1")
    with pytest.raises(QuotaExhausted) as spent:
        gov.acquire("loc1", 3)  # one permit left today: the two that do not fit are not waited for
    assert spent.value.resume_at == _midnight_after(clock.now)
    assert spent.value.location == "loc1" and spent.value.exit_code == 5
    assert "waiting for the daily quota reset until" in spent.value.reason
    again = pickle.loads(pickle.dumps(spent.value))  # crosses a Ray worker's or a Prefect task's process
    assert (again.location, again.resume_at, again.reason) == ("loc1", spent.value.resume_at,
                                                               spent.value.reason)
    assert max(slept) < LIM.max_wait_s  # never a sleep towards the reset
    assert gov.status("loc1").day_used == 9  # the permit it got was given back: the day keeps it
    gov.acquire("loc1")  # the last one of the day still goes
    clock.now = _midnight_after(clock.now)
    gov.acquire("loc1")  # a new day


def test_the_shared_actors_handle_raises_too(monkeypatch: pytest.MonkeyPatch) -> None:
    import dos2hl.governor.actor as actor_mod
    from dos2hl.governor.actor import GovernorHandle, _GovernorActor

    clock = [1_750_000_000.0]
    a = _GovernorActor({"burst": 100, "window_s": 1.0, "daily": 10, "margin_s": 0.01, "reserve": 0.0},
                       clock=lambda: clock[0])

    def lease_packed(blob: bytes) -> bytes:
        return asyncio.run(a.lease_packed(blob))

    actor = SimpleNamespace(lease_packed=SimpleNamespace(remote=lease_packed),
                            status=SimpleNamespace(remote=lambda key: asyncio.run(a.status(key))))
    monkeypatch.setattr(actor_mod.ray, "get", lambda ref: ref)
    h = GovernorHandle(actor, margin_s=0.01, limits=LIM, clock=lambda: clock[0],
                       sleep=lambda s: clock.__setitem__(0, clock[0] + s))
    start = clock[0]
    with pytest.raises(QuotaExhausted) as spent:
        for _ in range(11):
            h.acquire("loc1")
    assert spent.value.resume_at == _midnight_after(start)
    assert clock[0] - start < LIM.max_wait_s


def test_a_429_of_a_spent_day_is_not_retried_and_says_when_it_resets() -> None:
    sent: list[str] = []
    now = 1_750_000_000.0

    def transport(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        return httpx.Response(429, json={"message": "Daily API request limit reached"},
                              headers={"X-RateLimit-Daily-Remaining": "0", "X-RateLimit-Limit-Daily": "10",
                                       "X-RateLimit-Interval-Milliseconds": "10000",
                                       "Date": email.utils.formatdate(now, usegmt=True)})

    slept: list[Any] = []
    with HighLevelClient("https://example.test", SecretStr("tok"), "loc1",
                         transport=httpx.MockTransport(transport), sleep=slept.append) as client:
        with pytest.raises(DailyLimitError) as spent:
            client.get_contact("c1")
    assert len(sent) == 1 and not slept  # not retried: nothing succeeds before the reset
    assert spent.value.reset_at == _midnight_after(now)  # from the answer's Date (the server's day)
