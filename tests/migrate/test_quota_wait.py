"""Issue 17: a location whose daily quota is spent (HighLevel's 429 with ``X-RateLimit-Daily-Remaining: 0``,
or the governor's own count) waits for the reset without holding a worker: nothing is marked failed, the
other location completes, the run says when it resumes, and resuming after the reset finishes it with
every record exactly once."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest

from dos2hl.errors import QuotaExhausted
from dos2hl.execution.status import run_status
from dos2hl.pipeline import migrate
from tests.migrate.conftest import BASE, World
from tests.migrate.test_pause import _failed_rows, _opts, _reconciles, held_once


def _quota(w: World, method: str, **kw: Any) -> httpx.Response:
    """The sandbox's daily-limit control (``/_sandbox/quota``)."""
    response = w.transport.handle_request(httpx.Client(base_url=BASE).build_request(
        method, "/_sandbox/quota", **kw))
    response.read()
    return response


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _next_midnight(t: float) -> str:
    day = dt.datetime.fromtimestamp(t, dt.timezone.utc).date() + dt.timedelta(days=1)
    return f"{day.isoformat()}T00:00:00Z"


def test_a_spent_day_waits_for_the_reset_and_resume_completes_the_run(world: World) -> None:
    w = world
    lid = w.loc_ids["L001"]
    used = _quota(w, "GET").json()["used_today"].get(lid, 0)  # provisioning's requests, today
    assert _quota(w, "POST", json={"location_id": lid, "daily": used + 60}).status_code == 200
    start = w.clock.now
    out = migrate(_opts(w, run_id="r-quota"), client_factory=w.factory)
    assert out["status"] == "waiting_for_quota", out["paused"]
    assert list(out["paused"]) == ["L001"]
    until = _next_midnight(start)
    assert out["resume_at"] == {"L001": until}
    assert out["paused"]["L001"] == f"waiting for the daily quota reset until {until}"
    assert f"L001 resumes at {until}" in out["next"] and "dos2hl resume r-quota" in out["next"]
    _reconciles(out)
    assert sum(r["failed"] + r["held"] for d in out["locations"].values() for r in d["objects"].values()) == 0
    l1, l2 = out["locations"]["L001"]["objects"], out["locations"]["L002"]["objects"]
    assert all(r["written"] + r["excluded"] == r["staged"] for r in l2.values())  # L002 completed
    assert l1["patient"]["pending"] > 0
    run_uri = out["paths"]["json"].rsplit("/report/", 1)[0]
    assert _failed_rows(run_uri) == 0
    st = run_status(run_uri.rsplit("/", 1)[0], "r-quota")  # dos2hl status RUN_ID
    assert st["state"] == "waiting_for_quota"
    assert st["locations"]["L001"]["state"] == "waiting_for_quota"
    assert st["locations"]["L001"]["resume_at"] == until and st["locations"]["L002"]["state"] != "paused"
    # nobody slept for the reset (client sleeps move this clock): the 429 of the spent day is not retried
    assert w.clock.now - start < 600
    assert sum(1 for _, _, status in w.sent if status == 429) <= 2  # one per shard in flight at most

    # resumed before the reset: prepare's first read of L001 meets the spent day, the run waits (exit 5)
    with pytest.raises(QuotaExhausted) as early:
        migrate(_opts(w, run_id="r-quota"), client_factory=w.factory)
    assert early.value.location == "L001" and early.value.exit_code == 5
    assert _iso(early.value.resume_at) == until

    w.clock.now = dt.datetime.fromisoformat(until.replace("Z", "+00:00")).timestamp() + 1  # the new day
    assert _quota(w, "DELETE").status_code == 200  # (the scaled limit lifted: the rest fits in one day)
    done = migrate(_opts(w, run_id="r-quota"), client_factory=w.factory)
    assert done["status"] == "completed", done["reconciliation"]
    assert not done["paused"] and not done["resume_at"]
    contacts, records = held_once(w)
    written = {obj: sum(d["objects"][obj]["written"] for d in done["locations"].values())
               for obj in done["locations"]["L001"]["objects"]}
    assert contacts == written["patient"]
    assert records == sum(n for obj, n in written.items() if obj != "patient")
