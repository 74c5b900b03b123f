"""One exchange at the token endpoint: which failures are tried again, which pause, and that no secret
(client secret, refresh token) is reachable from an error it raises."""

from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr

from dos2hl.errors import AuthError, ServerError, TransportError
from dos2hl.highlevel.oauth import OAuthApp, exchange
from dos2hl.highlevel.systemic import is_outage, is_systemic
from tests.hostile.test_outputs import _reachable

SECRET, REFRESH = "cs-canary-4711", "rt-canary-0815"
APP = OAuthApp("app-1", SecretStr(SECRET))


def _run(handler: object, **kw: object) -> tuple[object, int]:
    sent = []
    http = httpx.Client(base_url="https://services.leadconnectorhq.com",
                        transport=httpx.MockTransport(handler))  # type: ignore[arg-type]
    try:
        return exchange(http, APP, SecretStr(REFRESH), location_id="loc1", sleep=lambda s: None,
                        on_send=lambda: sent.append(1), **kw), len(sent)  # type: ignore[arg-type]
    finally:
        http.close()


@pytest.mark.parametrize("failure", ["400", "connect_then_503s", "read_timeout"])
def test_no_secret_is_reachable_from_an_exchange_error(failure: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = request.content.decode()
        assert SECRET in body and REFRESH in body and "grant_type=refresh_token" in body
        if failure == "400":
            return httpx.Response(400, json={"error": "invalid_grant"}, request=request)
        if failure == "read_timeout":
            raise httpx.ReadTimeout("timed out", request=request)
        if not getattr(handler, "dialled", False):
            handler.dialled = True  # type: ignore[attr-defined]
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(503, json={}, request=request)

    with pytest.raises((AuthError, ServerError, TransportError)) as info:
        _run(handler)
    assert _reachable(info.value, SECRET) == [] and _reachable(info.value, REFRESH) == []
    assert info.value.__context__ is None
    if failure == "400":
        assert is_systemic(info.value)
    else:
        assert is_outage(info.value)


def test_a_lost_answer_is_not_sent_again_but_a_5xx_is() -> None:
    calls: list[int] = []

    def timeout(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(TransportError):
        _run(timeout)
    assert len(calls) == 1  # the server may have rotated: the old token would only be refused

    def flaky(request: httpx.Request) -> httpx.Response:
        calls.append(2)
        if calls.count(2) < 3:
            return httpx.Response(502, request=request)
        return httpx.Response(200, json={"access_token": "a", "refresh_token": "r", "expires_in": 60},
                              request=request)

    grant, sent = _run(flaky)
    assert sent == 3 and grant.expires_in == 60  # type: ignore[attr-defined]
