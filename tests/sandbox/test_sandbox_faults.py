"""Every fault kind is observable, seeded and reproducible."""

from __future__ import annotations

import time

import pytest

from dos2hl.sandbox.faults import Faults, parse_faults


def test_parse_faults() -> None:
    cfg = parse_faults(
        "latency=50ms..200ms,5xx=0.02,reset=0.01,timeout=0.01,storm429=0.01,created422=0.02,seed=7"
    )
    assert cfg.latency == (0.05, 0.2) and cfg.seed == 7 and dict(cfg.rates)["created422"] == 0.02
    with pytest.raises(ValueError):
        parse_faults("bogus=1")
    with pytest.raises(ValueError):
        parse_faults("5xx=0.9,reset=0.5")


def test_same_seed_same_faults() -> None:
    spec = "5xx=0.2,reset=0.1,storm429=0.1,created422=0.2,seed=3"
    a = [Faults(parse_faults(spec)).plan("contacts:create-contact") for _ in range(1)]
    f1, f2 = Faults(parse_faults(spec)), Faults(parse_faults(spec))
    seq1 = [f1.plan("contacts:create-contact").kind for _ in range(200)]
    seq2 = [f2.plan("contacts:create-contact").kind for _ in range(200)]
    assert seq1 == seq2 and {"5xx", "reset", "storm429", "created422", None} <= set(seq1) and a


def _create(sb, name):
    return sb.post("/contacts/", {"locationId": sb.locs[0], "firstName": name})


def _count(sb):
    from dos2hl.sandbox import dump

    return len(dump(sb.state)["locations"][sb.locs[0]]["contacts"])


def test_5xx_stores_nothing(make_sandbox) -> None:
    sb = make_sandbox(faults="5xx=1.0,seed=1")
    r = _create(sb, "A")
    assert r.status_code in (500, 502, 503) and _count(sb) == 0


def test_created_422_stores_the_record(make_sandbox) -> None:
    sb = make_sandbox(faults="created422=1.0")
    r = _create(sb, "A")
    assert r.status_code == 422 and r.json()["error"] == "Unprocessable Entity"
    assert _count(sb) == 1  # the real API's "422 but created" (issue #64)
    assert sb.get("/workflows/", params={"locationId": sb.locs[0]}).status_code == 200  # reads unaffected


def test_storm_429(make_sandbox) -> None:
    sb = make_sandbox(faults="storm429=1.0,storm_len=3")
    codes = [sb.get("/workflows/", params={"locationId": sb.locs[0]}).status_code for _ in range(3)]
    assert codes == [429, 429, 429]


def test_reset_drops_the_connection_after_processing(make_sandbox) -> None:
    sb = make_sandbox(faults="reset=1.0")
    with pytest.raises(ConnectionResetError):
        _create(sb, "A")
    assert _count(sb) == 1  # the write landed: a client must verify before retrying


def test_timeout_and_latency(make_sandbox) -> None:
    sb = make_sandbox(faults="timeout=1.0,timeout_after=0.3")
    started = time.perf_counter()
    assert _create(sb, "A").status_code == 201
    assert time.perf_counter() - started >= 0.3 and _count(sb) == 1
    sb = make_sandbox(faults="latency=100ms")
    started = time.perf_counter()
    sb.get("/workflows/", params={"locationId": sb.locs[0]})
    assert time.perf_counter() - started >= 0.1


def test_faults_are_journaled(make_sandbox) -> None:
    sb = make_sandbox(faults="created422=1.0")
    _create(sb, "A")
    assert '"fault":"created422"' in (sb.state / "journal.jsonl").read_text()


def test_concurrency_queues_requests_and_counts_them_when_handled(tmp_path) -> None:
    """Fault ``concurrency=1``: requests sent at once are handled one after the other (each holding the
    slot for its 50 ms latency) and counted by the rate limiter when their turn comes; the journal says
    when (``counted``) and how long each waited (``queued_ms``)."""
    import json
    import threading

    import httpx

    from dos2hl.sandbox.seed import init_locations
    from dos2hl.sandbox.server import running

    assert parse_faults("concurrency=2").concurrency == 2
    with pytest.raises(ValueError):
        parse_faults("concurrency=-1")
    state = tmp_path / "sb"
    tokens = init_locations(state, 1)
    (loc, token), = tokens.items()
    with running(state, faults="concurrency=1,latency=50ms") as base:
        go = threading.Barrier(3)

        def one() -> None:
            with httpx.Client(base_url=base) as c:
                go.wait()
                c.get("/workflows/", params={"locationId": loc},
                      headers={"Authorization": f"Bearer {token}", "Version": "2021-07-28"})

        threads = [threading.Thread(target=one) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    rows = [json.loads(line) for line in (state / "journal.jsonl").read_text().splitlines()]
    assert [r["status"] for r in rows] == [200, 200, 200]
    counted = sorted(r["counted"] for r in rows)
    assert all(b - a >= 0.05 for a, b in zip(counted, counted[1:], strict=False))  # one at a time
    assert max(r["queued_ms"] for r in rows) > 0  # and the later ones waited their turn


def test_an_outage_refuses_a_location_after_its_creates_until_restored() -> None:
    from dos2hl.sandbox.faults import OUTAGE_KINDS, Outage

    cfg = parse_faults("outage=loc-a@2,outage=loc-b@0/5xx")
    assert cfg.outages == (Outage("loc-a", 2, "token"), Outage("loc-b", 0, "5xx"))
    with pytest.raises(ValueError, match="outage kind"):
        parse_faults("outage=loc-a@1/bogus")
    f = Faults(cfg)
    assert f.outage("loc-b", "contacts:get-contact") == (503, "Service Unavailable", None)
    assert f.outage("loc-a", "contacts:search-contacts-advanced") is None  # reads do not count
    assert f.outage("loc-a", "contacts:create-contact") is None
    assert f.outage("loc-a", "contacts:create-contact") is None
    assert f.outage("loc-a", "contacts:get-contact") == OUTAGE_KINDS["token"] == (401, "Invalid JWT", None)
    assert f.outage("loc-c", "contacts:create-contact") is None  # another location goes on
    assert f.restore("loc-a") == ["loc-a"] and f.outage("loc-a", "contacts:create-contact") is None
    f.set_outage(Outage("loc-c", 0, "scope"))
    assert f.outage("loc-c", "x")[:2] == (401, "The token is not authorized for this scope.")  # type: ignore[index]
    assert sorted(f.restore()) == ["loc-b", "loc-c"]
