"""Auth, tenancy, scopes, rate limits and durability across a restart."""

from __future__ import annotations

from dos2hl.sandbox import add_token


def test_no_or_invalid_token_is_401(sb) -> None:
    r = sb.client.get("/workflows/", params={"locationId": sb.locs[0]}, headers={"Version": "2021-07-28"})
    assert r.status_code == 401 and r.json()["statusCode"] == 401
    assert "x-ratelimit-max" in r.headers
    r = sb.client.get("/workflows/", params={"locationId": sb.locs[0]},
                      headers={"Version": "2021-07-28", "Authorization": "Bearer nope"})
    # HighLevel's own body for a token it cannot read (highlevel-api-docs#213; docs/highlevel-errors.md)
    assert r.status_code == 401 and r.json() == {"statusCode": 401, "message": "Invalid JWT"}


def test_token_of_location_a_on_location_b_is_403(sb) -> None:
    a, b = sb.locs
    r = sb.post("/contacts/", {"locationId": b, "firstName": "X"}, loc=0)
    assert r.status_code == 403
    assert r.json() == {"statusCode": 403, "message": "The token does not have access to this location."}
    assert sb.get(f"/locations/{b}", loc=0).status_code == 403
    theirs = sb.contact(loc=1, firstName="Theirs")
    assert sb.get(f"/contacts/{theirs['id']}", loc=0).status_code == 403
    search = sb.post("/contacts/search", {"locationId": a, "pageLimit": 10}, loc=0).json()
    assert search["total"] == 0  # nothing one location does is visible to another


def test_scopes_are_enforced(sb) -> None:
    token = add_token(sb.state, sb.locs[0], ["contacts.readonly"])
    h = {"Authorization": f"Bearer {token}", "Version": "2021-07-28"}
    r = sb.client.post("/contacts/", json={"locationId": sb.locs[0], "firstName": "X"}, headers=h)
    assert r.status_code == 401 and r.json()["message"] == "The token is not authorized for this scope."
    r = sb.client.post("/contacts/search", json={"locationId": sb.locs[0], "pageLimit": 1}, headers=h)
    assert r.status_code == 200
    r = sb.client.get("/workflows/", params={"locationId": sb.locs[0]}, headers=h)
    assert r.status_code == 401
    # Agency-only operations are closed to sub-account tokens.
    r = sb.post("/users/search/filter-by-email", {"companyId": "c", "emails": "a@b.c"})
    assert r.status_code == 401


def test_rate_limit_headers_and_429_past_the_burst(make_sandbox) -> None:
    sb = make_sandbox(burst=(5, 1.0), daily=8)
    path, params = "/workflows/", {"locationId": sb.locs[0]}
    for i in range(5):
        r = sb.get(path, params=params)
        assert r.status_code == 200
        assert r.headers["X-RateLimit-Remaining"] == str(4 - i)
        assert r.headers["X-RateLimit-Max"] == "5"
        assert r.headers["X-RateLimit-Interval-Milliseconds"] == "1000"
        assert r.headers["X-RateLimit-Limit-Daily"] == "8"
        assert r.headers["X-RateLimit-Daily-Remaining"] == str(7 - i)
    r = sb.get(path, params=params)
    assert r.status_code == 429 and r.json()["statusCode"] == 429
    assert r.headers["X-RateLimit-Remaining"] == "0"
    assert sb.get(path, params={"locationId": sb.locs[1]},
                  loc=1).status_code == 200  # another location has its own bucket
    sb.clock.advance(1.01)
    assert sb.get(path, params=params).status_code == 200
    # Counters survive a restart: 6 used of 8 today, the window holds 1.
    sb.restart()
    assert sb.get(path, params=params).headers["X-RateLimit-Daily-Remaining"] == "1"
    assert sb.get(path, params=params).status_code == 200
    r = sb.get(path, params=params)
    assert r.status_code == 429 and "Daily" in r.json()["message"]
    sb.clock.advance(86_400)
    assert sb.get(path, params=params).status_code == 200


def test_state_is_durable_across_restart(sb) -> None:
    c = sb.contact(firstName="Keep", email="keep@example.com")
    tokens = dict(sb.tokens)
    sb.restart()
    assert sb.get(f"/contacts/{c['id']}").json()["contact"]["firstName"] == "Keep"
    from dos2hl.sandbox import init_locations

    assert init_locations(sb.state, 2) == tokens  # same locations, same tokens
    assert len(init_locations(sb.state, 3)) == 3
