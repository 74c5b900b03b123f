"""One refresher of OAuth tokens for every Ray worker and flow process: a named actor beside the governor.

HighLevel rotates the refresh token on every refresh; two processes refreshing with the same one fork
it, and the loser's token is dead (an outage). With Ray workers the refreshes of every location go
through ``_TokenActor`` (named ``oauth-tokens`` in namespace ``dos2hl``, detached, on the head like the
governor): it holds the process's ``OAuthToken`` per location (``highlevel.tokens``: its lock, its sealed
store) and hands out the current access token. A worker's ``ActorToken`` keeps that token until it
nears expiry (the same margin), so the actor is asked about once per expiry per worker, and exactly one
refresh is made per expiry.

The actor builds each provider with a factory the caller passes (``locations``: from the names in
locations.yaml, read from the actor's own environment, as the workers read their tokens): no secret is
an argument. A 401's token is passed as a digest. Ray is imported inside functions: the library stays
importable without it (tests/test_layering.py).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from typing import Any

from pydantic import SecretStr

from ..errors import AuthError, HighLevelError, TransportError

__all__ = ["TOKEN_ACTOR", "ActorToken", "actor_token", "digest"]

TOKEN_ACTOR = "oauth-tokens"


def digest(token: str) -> str:
    """What identifies a token between processes without sending it."""
    return hashlib.sha256(token.encode()).hexdigest()[:32]


class _TokenActor:
    """Every location's ``OAuthToken`` in one process (plain class: tested without Ray)."""

    def __init__(self) -> None:
        self._providers: dict[str, Any] = {}
        self._lock = threading.Lock()

    def current(self, key: str, make: Callable[[], Any], failed: str | None) -> tuple[Any, ...]:
        """("ok", access token, expires_at, issued_at, requests sent) or ("error", kind, status, cause,
        sent); ``failed``: the digest of a token that got 401 (refreshed unless already replaced)."""
        with self._lock:
            provider = self._providers.get(key)
            if provider is None:
                provider = self._providers[key] = make()
        sent = [0]

        def count() -> None:
            sent[0] += 1

        record = provider._record
        bad = failed is not None and record is not None and digest(record.access_token) == failed
        try:
            rec = provider.current(record.access_token if bad else None, count)
        except AuthError as exc:
            return ("error", "auth", exc.status, exc.cause, sent[0])
        except HighLevelError as exc:
            return ("error", "transport", getattr(exc, "status", None), None, sent[0])
        return ("ok", rec.access_token, rec.expires_at, rec.issued_at, sent[0])

    def ping(self) -> bool:
        return True


class ActorToken:
    """A worker's ``TokenProvider`` whose refreshes are the token actor's."""

    def __init__(self, actor: Any, key: str, make: Callable[[], Any], *, margin_s: float,
                 clock: Callable[[], float] = time.time, timeout_s: float = 120.0) -> None:
        self._actor, self._key, self._make = actor, key, make
        self.margin_s, self._clock, self._timeout = margin_s, clock, timeout_s
        self._lock = threading.Lock()
        self._held: tuple[SecretStr, float, float] | None = None  # token, expires_at, issued_at

    def __repr__(self) -> str:
        return f"ActorToken({self._key!r})"

    def _fresh(self) -> bool:
        if self._held is None:
            return False
        _, expires_at, issued_at = self._held
        return self._clock() < expires_at - min(self.margin_s, (expires_at - issued_at) / 5)

    def token(self, on_send: Callable[[], None] | None = None) -> SecretStr:
        held = self._held
        if held is not None and self._fresh():
            return held[0]
        return self._fetch(None, on_send)

    def renew(self, failed: SecretStr, on_send: Callable[[], None] | None = None) -> bool:
        self._fetch(failed.get_secret_value(), on_send)
        return True

    def _fetch(self, failed: str | None, on_send: Callable[[], None] | None) -> SecretStr:
        import ray

        with self._lock:
            held = self._held
            if held is not None and self._fresh() and held[0].get_secret_value() != failed:
                return held[0]  # another thread of this worker fetched it meanwhile
            answer = ray.get(self._actor.current.remote(self._key, self._make,
                                                        digest(failed) if failed else None),
                             timeout=self._timeout)
            for _ in range(answer[-1]):
                if on_send is not None:
                    on_send()  # the actor's requests, counted by the client that asked for them
            if answer[0] == "error":
                _, kind, status, cause, _ = answer
                if kind == "auth":
                    raise AuthError(status or 401, cause=cause or "token", method="POST", path="/oauth/token")
                raise TransportError("the token endpoint failed", sent=True, retryable=False,
                                     method="POST", path="/oauth/token")
            _, access, expires_at, issued_at, _ = answer
            self._held = (SecretStr(access), float(expires_at), float(issued_at))
            return self._held[0]


def actor_token(address: str, key: str, make: Callable[[], Any], *, margin_s: float) -> ActorToken:
    """The facade on the named token actor of the Ray cluster at ``address`` (``local``: this process's
    in-process cluster), creating the actor on first use."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from .actor import NAMESPACE, _head_node, ensure_ray

    ensure_ray(None if address == "local" else address)
    actor = ray.remote(_TokenActor).options(
        name=TOKEN_ACTOR, namespace=NAMESPACE, get_if_exists=True, lifetime="detached", num_cpus=0,
        max_restarts=-1, max_concurrency=16,
        scheduling_strategy=NodeAffinitySchedulingStrategy(_head_node(), soft=False),
    ).remote()
    return ActorToken(actor, key, make, margin_s=margin_s)
