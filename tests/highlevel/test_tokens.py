"""Token providers against the sandbox's token endpoint (in-process, a hand-moved clock, 60 s tokens):
refresh ahead of expiry, once on a 401, the rotated refresh token sealed and durable, one refresh for
many threads, PIT rotation picked up without a restart."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from dos2hl.errors import AuthError
from dos2hl.highlevel import HighLevelClient
from dos2hl.highlevel.oauth import OAuthApp
from dos2hl.highlevel.systemic import is_systemic
from dos2hl.highlevel.token_store import TokenStore
from dos2hl.highlevel.tokens import OAuthToken, StaticToken
from dos2hl.phi import Sealer
from dos2hl.sandbox.oauth import OAuthSettings
from tests.fakes import FakeClock

BASE = "http://127.0.0.1:9"  # never dialled: the app answers in this process


class _Shared(httpx.BaseTransport):
    """The in-process app for many clients: closing one client leaves it open."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self.inner.handle_request(request)


@dataclass
class Env:
    state: Path
    lid: str
    pit: str
    app: dict[str, str]
    clock: FakeClock
    transport: Any
    store: TokenStore
    tmp: Path

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=BASE, transport=self.transport)

    def provider(self, *, margin_s: float = 10.0, clock: Any = None, first: str | None = None,
                 store: TokenStore | None | bool = True) -> OAuthToken:
        return OAuthToken(self.lid, OAuthApp(self.app["client_id"], SecretStr(self.app["client_secret"])),
                          SecretStr(first or self.app["refresh_token"]), http=self.http(),
                          store=self.store if store is True else (store or None), margin_s=margin_s,
                          clock=clock or self.clock, sleep=lambda s: None)

    def client(self, token: Any) -> HighLevelClient:
        return HighLevelClient(BASE, token, self.lid, transport=self.transport, sleep=lambda s: None)

    def journal(self, operation: str | None = None) -> list[dict[str, Any]]:
        lines = [json.loads(x) for x in (self.state / "journal.jsonl").read_text().splitlines()]
        return [x for x in lines if operation is None or x["operation"] == operation]

    def refreshes(self) -> int:
        return sum(1 for x in self.journal("oauth-token") if x["status"] == 200)

    def api_401s(self) -> int:
        return sum(1 for x in self.journal() if x["operation"] != "oauth-token" and x["status"] == 401)


@pytest.fixture()
def env(tmp_path: Path) -> Iterator[Env]:
    from dos2hl.sandbox import InProcessTransport, add_oauth_app, create_app, init_locations

    state = tmp_path / "state"
    tokens = init_locations(state, 1)
    lid = next(iter(tokens))
    app_creds = add_oauth_app(state, lid)
    clock = FakeClock()
    app = create_app(state, clock=clock, oauth=OAuthSettings(access_ttl_s=60))
    transport = InProcessTransport(app)
    store = TokenStore(str(tmp_path / "tokens"), Sealer(os.urandom(32)))
    yield Env(state, lid, tokens[lid], app_creds, clock, _Shared(transport), store, tmp_path)
    transport.close()
    app.state.store.close()


def test_the_access_token_is_refreshed_ahead_of_expiry_and_not_before(env: Env) -> None:
    with env.client(env.provider(margin_s=10)) as c:
        c.get_location()
        assert env.refreshes() == 1
        env.clock.advance(49)  # refreshed at 50 s: 60 s lifetime, 10 s margin
        c.get_location()
        assert env.refreshes() == 1
        env.clock.advance(2)
        c.get_location()
        assert env.refreshes() == 2
        assert env.api_401s() == 0
        assert c.tally.by_class["auth"] == 2 and c.stats["sent"] == c.tally.total == 5


def test_the_margin_is_at_most_a_fifth_of_the_lifetime(env: Env) -> None:
    with env.client(env.provider(margin_s=300)) as c:  # HighLevel's default margin, a 60 s token
        c.get_location()
        env.clock.advance(47)
        c.get_location()
        assert env.refreshes() == 1  # not refreshing on every request


def test_a_401_refreshes_once_and_the_request_is_sent_again(env: Env) -> None:
    late = FakeClock(env.clock.now)  # this process's clock falls behind HighLevel's: the token looks fresh
    provider = env.provider(margin_s=0, clock=late)
    with env.client(provider) as c:
        c.get_location()
        env.clock.advance(61)
        late.advance(30)
        c.get_location()  # 401 Invalid JWT -> one refresh -> the same call again: no error
    assert env.refreshes() == 2 and env.api_401s() == 1 and provider.refreshes == 2


def test_the_rotated_refresh_token_is_sealed_and_a_new_run_uses_it_not_the_first(env: Env) -> None:
    with env.client(env.provider()) as c:
        c.get_location()
    stored = env.store.load(env.lid)
    assert stored is not None and stored.refresh_token != env.app["refresh_token"]
    raw = (env.tmp / "tokens" / f"{env.lid}.token").read_text()
    assert stored.refresh_token not in raw and stored.access_token not in raw
    assert stored.refresh_token not in repr(stored)
    assert oct((env.tmp / "tokens" / f"{env.lid}.token").stat().st_mode & 0o777) == "0o600"
    # the next run: its environment still has the first refresh token, which the server refuses now
    again = env.provider()
    with env.client(again) as c:
        c.get_location()  # the stored access token, still fresh: no refresh at all
        assert env.refreshes() == 1
        env.clock.advance(61)
        c.get_location()  # refreshed with the stored (rotated) refresh token
    assert env.refreshes() == 2 and env.api_401s() == 0


def test_a_record_sealed_for_another_location_does_not_open(env: Env) -> None:
    with env.client(env.provider()) as c:
        c.get_location()
    folder = env.tmp / "tokens"
    (folder / "other.token").write_bytes((folder / f"{env.lid}.token").read_bytes())
    with pytest.raises(Exception, match="cannot decrypt"):
        env.store.load("other")


def test_a_used_refresh_token_is_a_systemic_auth_error(env: Env) -> None:
    with env.client(env.provider(store=False)) as c:
        c.get_location()  # rotates the first refresh token
    forked = env.provider(store=False)  # the same first token, no store: a fork
    with env.client(forked) as c, pytest.raises(AuthError) as caught:
        c.get_location()
    assert is_systemic(caught.value) and caught.value.path == "/oauth/token"
    assert env.app["refresh_token"] not in str(caught.value)


def test_the_stored_record_wins_under_the_lock_whatever_the_clocks_say(env: Env) -> None:
    """Two machines' clocks disagree: the record the other stored under the lock is the newer one even
    when its issued_at (its writer's clock) is earlier; it is used, no refresh with a used token."""
    a = env.provider(margin_s=5)
    first = a.current()  # exchange 1, issued at A's clock
    b = env.provider(margin_s=5, clock=FakeClock(env.clock.now - 30))  # B's clock is 30 s behind
    assert b.renew(first.access)  # B got a 401 for it: exchange 2 with the stored refresh token, stored
    second = env.store.load(env.lid)
    assert second is not None and second.issued_at < first.issued_at
    assert a.renew(first.access)  # A got one too: the stored record is the new one, whatever its issued_at
    assert a.current().access_token == second.access_token
    assert [x["status"] for x in env.journal("oauth-token")] == [200, 200]  # no used refresh token sent


def test_many_threads_at_expiry_cause_exactly_one_refresh(env: Env) -> None:
    provider = env.provider(margin_s=5)
    clients = [env.client(provider) for _ in range(8)]
    clients[0].get_location()
    for round_ in range(3):
        env.clock.advance(56)
        start = threading.Barrier(len(clients))
        errors: list[BaseException] = []

        def one(c: HighLevelClient, start: threading.Barrier = start,
                errors: list[BaseException] = errors) -> None:
            try:
                start.wait(timeout=30)
                c.get_location()
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=one, args=(c,)) for c in clients]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not errors
        assert env.refreshes() == 2 + round_
    assert env.api_401s() == 0
    assert sum(c.tally.by_class["auth"] for c in clients) == 4
    for c in clients:
        c.close()


def _revoke(env: Env, token: str) -> None:
    from dos2hl.sandbox.store import Store

    store = Store(env.state)
    try:
        with store.tx() as db:
            db.execute("DELETE FROM tokens WHERE token=?", (token,))
    finally:
        store.close()


def test_a_rotated_pit_in_the_environment_is_picked_up_after_a_401(env: Env,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from dos2hl.sandbox import add_token

    monkeypatch.setenv("T_PIT", env.pit)
    with env.client(StaticToken("T_PIT")) as c:
        c.get_location()
        new = add_token(env.state, env.lid)  # the admin rotates the PIT: the old one stops working
        _revoke(env, env.pit)
        monkeypatch.setenv("T_PIT", new)
        c.get_location()
    assert env.api_401s() == 1


def test_a_rotated_pit_in_a_file_is_picked_up_and_an_unchanged_one_fails(env: Env) -> None:
    from dos2hl.sandbox import add_token

    path = env.tmp / "pit.txt"
    path.write_text(env.pit + "\n")
    with env.client(StaticToken(file=path)) as c:
        c.get_location()
        _revoke(env, env.pit)
        with pytest.raises(AuthError):
            c.get_location()  # nothing new in the file: the 401 stands (the location pauses)
        path.write_text(add_token(env.state, env.lid))
        c.get_location()


def test_a_pit_file_written_after_the_old_token_was_revoked_is_waited_for(env: Env) -> None:
    """The admin revokes the old PIT, then writes the new one to the file: the 401 that comes between
    waits for the file (up to ``settle_s``) instead of pausing the location; an unchanged file still
    fails, once the wait is over."""
    from dos2hl.sandbox import add_token

    path = env.tmp / "pit.txt"
    path.write_text(env.pit + "\n")
    new = add_token(env.state, env.lid)
    with env.client(StaticToken(file=path, settle_s=5.0, poll_s=0.05)) as c:
        c.get_location()
        _revoke(env, env.pit)
        writer = threading.Timer(0.3, lambda: path.write_text(new + "\n"))
        writer.start()
        t0 = time.monotonic()
        c.get_location()  # refused with the old token, then sent with the one written 0.3 s later
        assert 0.25 <= time.monotonic() - t0 < 5.0
        writer.join()
    assert env.api_401s() == 1
    _revoke(env, new)
    with env.client(StaticToken(file=path, settle_s=0.3, poll_s=0.05)) as c:
        t0 = time.monotonic()
        with pytest.raises(AuthError):
            c.get_location()
        assert time.monotonic() - t0 >= 0.3


def test_a_new_installations_first_token_starts_a_new_chain(env: Env) -> None:
    from dos2hl.sandbox.oauth import register
    from dos2hl.sandbox.store import Store

    with env.client(env.provider()) as c:
        c.get_location()
    old = env.store.load(env.lid)
    store = Store(env.state)  # the admin installs the app again: a new first refresh token
    try:
        again = register(store, env.lid, ["locations.readonly"], client_id=env.app["client_id"])
    finally:
        store.close()
    with env.client(env.provider(first=again["refresh_token"])) as c:
        c.get_location()  # not the stored chain's access token: the new installation's
    new = env.store.load(env.lid)
    assert old is not None and new is not None and new.seed != old.seed
    assert env.refreshes() == 2 and env.api_401s() == 0
    with env.client(env.provider(first=again["refresh_token"])) as c:  # a later run, the same env
        env.clock.advance(61)
        c.get_location()  # follows the stored chain (rotated since), not the used first token
    assert env.refreshes() == 3 and {x["status"] for x in env.journal("oauth-token")} == {200}
