"""The token actor's logic without Ray (its class and the workers' facade, the remote call made direct):
workers asking at expiry cause one refresh, a 401 already answered by another worker causes none, the
refresh requests are counted by the client that caused them, and a refused refresh is an AuthError."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import SecretStr

from dos2hl.errors import AuthError
from dos2hl.governor.token_actor import ActorToken, _TokenActor, digest
from tests.highlevel.test_tokens import Env, env

__all__ = ["env"]  # the fixture, shared with the providers' tests


def _direct(actor: _TokenActor) -> Any:
    """A stand-in for the actor's handle: ``current.remote(...)`` answers at once."""
    return SimpleNamespace(current=SimpleNamespace(remote=actor.current))


@pytest.fixture()
def direct_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    import ray

    monkeypatch.setattr(ray, "get", lambda value, timeout=None: value)


def test_workers_share_one_refresh_per_expiry_and_a_401_once(env: Env, direct_ray: None) -> None:
    actor = _TokenActor()
    made: list[int] = []

    def make() -> Any:
        made.append(1)
        return env.provider(margin_s=5, store=True)

    workers = [ActorToken(_direct(actor), "k", make, margin_s=5, clock=env.clock) for _ in range(2)]
    counted: list[str] = []
    first = [w.token(lambda: counted.append("auth")) for w in workers]
    assert first[0].get_secret_value() == first[1].get_secret_value()
    assert env.refreshes() == 1 and counted == ["auth"] and made == [1]
    env.clock.advance(56)  # within the margin: both ask the actor, one refresh between them
    second = [w.token(lambda: counted.append("auth")) for w in workers]
    assert env.refreshes() == 2 and len(counted) == 2
    assert second[0].get_secret_value() != first[0].get_secret_value()
    # a 401 on the current token: the first worker's renew refreshes, the second's finds it replaced
    assert workers[0].renew(second[0]) and env.refreshes() == 3
    assert workers[1].renew(second[1]) and env.refreshes() == 3
    assert workers[1].token().get_secret_value() == workers[0].token().get_secret_value()


def test_a_refused_refresh_reaches_the_worker_as_a_token_auth_error(env: Env, direct_ray: None) -> None:
    env.provider(store=False).token()  # the first refresh token is used up elsewhere (a fork)
    worker = ActorToken(_direct(_TokenActor()), "k", lambda: env.provider(store=False), margin_s=5,
                        clock=env.clock)
    with pytest.raises(AuthError) as caught:
        worker.token()
    assert caught.value.cause == "token" and caught.value.path == "/oauth/token"


def test_a_token_crosses_as_a_digest() -> None:
    assert digest("at-secret") != "at-secret" and len(digest("at-secret")) == 32
    assert digest("at-secret") == digest(SecretStr("at-secret").get_secret_value())
