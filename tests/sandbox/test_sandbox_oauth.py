"""The sandbox's OAuth token endpoint: refresh, rotation, expiry of access tokens, the journal line."""

from __future__ import annotations

import json
from typing import Any

from dos2hl.sandbox.oauth import OAuthSettings
from tests.sandbox.conftest import API


def _install(sb: Any, loc: int = 0) -> dict[str, str]:
    r = sb.client.post("/_sandbox/oauth", json={"location_id": sb.locs[loc]})
    assert r.status_code == 200, r.text
    return dict(r.json())


def _refresh(sb: Any, app: dict[str, str], refresh_token: str) -> Any:
    return sb.client.post("/oauth/token", data={
        "grant_type": "refresh_token", "client_id": app["client_id"], "client_secret": app["client_secret"],
        "refresh_token": refresh_token, "user_type": "Location"})


def _get_location(sb: Any, token: str, loc: int = 0) -> Any:
    return sb.client.get(f"/locations/{sb.locs[loc]}",
                         headers={"Authorization": f"Bearer {token}", "Version": API})


def _journal(sb: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (sb.state / "journal.jsonl").read_text().splitlines()]


def test_a_refresh_answers_the_specs_fields_and_the_access_token_works(make_sandbox: Any) -> None:
    sb = make_sandbox(oauth=OAuthSettings(access_ttl_s=60))
    app = _install(sb)
    r = _refresh(sb, app, app["refresh_token"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 60 and body["userType"] == "Location"
    assert body["locationId"] == sb.locs[0] and body["refresh_token"] != app["refresh_token"]
    assert "contacts.write" in body["scope"].split()
    assert _get_location(sb, body["access_token"]).status_code == 200


def test_a_used_refresh_token_is_refused_once_rotated_and_the_new_one_works(make_sandbox: Any) -> None:
    sb = make_sandbox(oauth=OAuthSettings(access_ttl_s=60))
    app = _install(sb)
    first = _refresh(sb, app, app["refresh_token"]).json()
    again = _refresh(sb, app, app["refresh_token"])
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert _refresh(sb, app, first["refresh_token"]).status_code == 200


def test_without_rotation_the_refresh_token_stays_valid(make_sandbox: Any) -> None:
    sb = make_sandbox(oauth=OAuthSettings(access_ttl_s=60, rotate=False))
    app = _install(sb)
    a = _refresh(sb, app, app["refresh_token"]).json()
    b = _refresh(sb, app, app["refresh_token"]).json()
    assert a["refresh_token"] == b["refresh_token"] == app["refresh_token"]
    assert a["access_token"] != b["access_token"]


def test_an_expired_access_token_answers_invalid_jwt_and_a_pit_never_expires(make_sandbox: Any) -> None:
    sb = make_sandbox(oauth=OAuthSettings(access_ttl_s=60))
    app = _install(sb)
    access = _refresh(sb, app, app["refresh_token"]).json()["access_token"]
    sb.clock.advance(59)
    assert _get_location(sb, access).status_code == 200
    sb.clock.advance(1)
    r = _get_location(sb, access)
    assert r.status_code == 401 and r.json() == {"statusCode": 401, "message": "Invalid JWT"}
    sb.clock.advance(10 * 86_400)
    assert sb.get(f"/locations/{sb.locs[0]}").status_code == 200  # the location's PIT


def test_expiry_survives_a_restart(make_sandbox: Any) -> None:
    sb = make_sandbox(oauth=OAuthSettings(access_ttl_s=60))
    app = _install(sb)
    access = _refresh(sb, app, app["refresh_token"]).json()["access_token"]
    sb.restart()
    sb.clock.advance(61)
    assert _get_location(sb, access).status_code == 401


def test_wrong_client_secret_code_grant_and_bad_grant_type(make_sandbox: Any) -> None:
    sb = make_sandbox()
    app = _install(sb)
    bad = _refresh(sb, {**app, "client_secret": "nope"}, app["refresh_token"])
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"
    code = {"grant_type": "authorization_code", "client_id": app["client_id"],
            "client_secret": app["client_secret"], "code": app["code"], "user_type": "Location"}
    assert sb.client.post("/oauth/token", data=code).status_code == 200
    assert sb.client.post("/oauth/token", data=code).json()["error"] == "invalid_grant"  # once only
    other = sb.client.post("/oauth/token", data={**code, "grant_type": "password"})
    assert other.status_code == 400 and other.json()["error"] == "unsupported_grant_type"
    # a token of another location's app cannot be refreshed into this app's
    other_app = _install(sb, 1)
    assert _refresh(sb, app, other_app["refresh_token"]).status_code == 400


def test_every_exchange_is_one_journal_line_without_a_secret(make_sandbox: Any) -> None:
    sb = make_sandbox()
    app = _install(sb)
    ok = _refresh(sb, app, app["refresh_token"]).json()
    _refresh(sb, app, app["refresh_token"])  # refused
    lines = [x for x in _journal(sb) if x["operation"] == "oauth-token"]
    assert [(x["status"], x["location"]) for x in lines] == [(200, sb.locs[0]), (400, None)]
    text = (sb.state / "journal.jsonl").read_text()
    for secret in (app["refresh_token"], app["client_secret"], ok["access_token"], ok["refresh_token"]):
        assert secret not in text


def test_the_control_route_refuses_an_unknown_location(sb: Any) -> None:
    r = sb.client.post("/_sandbox/oauth", json={"location_id": "nope"})
    assert r.status_code == 400


def test_serve_passes_the_oauth_flags_to_the_app(monkeypatch: Any, tmp_path: Any) -> None:
    from typer.testing import CliRunner

    from dos2hl.cli import app
    from dos2hl.sandbox import server

    seen: dict[str, Any] = {}
    monkeypatch.setattr(server, "serve", lambda state, **kw: seen.update(kw))
    res = CliRunner().invoke(app, ["sandbox", "serve", "--state", str(tmp_path), "--oauth-access-ttl", "60",
                                   "--no-oauth-rotate"])
    assert res.exit_code == 0, res.output
    assert seen["oauth"] == OAuthSettings(access_ttl_s=60.0, rotate=False)
    res = CliRunner().invoke(app, ["sandbox", "serve", "--state", str(tmp_path)])
    assert seen["oauth"] == OAuthSettings()  # HighLevel's: a day, rotating
