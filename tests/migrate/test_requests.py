"""Every request counted (issue 13.4): the run's total is what the sandbox's journal recorded, split
by class; verification of every record costs search pages, not one GET per record."""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from dos2hl.highlevel import HighLevelClient, RetryPolicy, counting_as
from dos2hl.highlevel.models import ContactCreate
from tests.migrate.conftest import EXPORT_DATE, make_world


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from dos2hl.phi import create_key_file
    from dos2hl.pipeline import MigrateParams, migrate

    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("requests")
    mp.setenv("DOS2HL_STORAGE", str(root / "runs"))
    mp.setenv("DOS2HL_PHI_KEY_FILE", str(create_key_file(root / "keys" / "phi.key")))
    w = make_world(root, mp, patients=20, crm=True)
    journal = w.state / "journal.jsonl"
    seen = len(journal.read_text().splitlines())
    rep = migrate(MigrateParams(source=str(w.export), mapping=str(w.mapping), locations=str(w.locations),
                                 sample=4, verify="full", workers=2, export_date=EXPORT_DATE),
                  approve=lambda r: True, client_factory=w.factory)
    lines = [json.loads(x) for x in journal.read_text().splitlines()[seen:]]
    yield w, rep, lines, root / "runs" / rep["run_id"]
    w.stop()
    mp.undo()


def test_the_run_counts_every_request_the_sandbox_received(full_run: Any) -> None:
    """prepare's schema reads, the sample, its read-back, the full run and the full read-back: the
    summary's total is the journal's count, the classes add up to it, and so does the per-minute chart."""
    w, rep, lines, run = full_run
    assert rep["status"] == "completed", rep["reconciliation"]
    req = rep["requests"]
    assert req["sent"] == len(lines) > 0
    assert sum(req["by_class"].values()) == req["sent"]
    assert rep["requests_by_class"] == req["by_class"]
    assert {"write", "schema", "verify"} <= set(req["by_class"])
    assert req["by_class"]["schema"] == sum(1 for x in lines if x["method"] == "GET" and x["path"] in (
        "/locations/{locationId}", "/locations/{locationId}/customFields", "/users/", "/associations/",
        "/opportunities/pipelines", "/calendars/", "/custom-fields/object-key/{objectKey}"))
    # the inventory's pages before each phase (issue 13.1) are a step of their own; no object of this
    # practice reaches the CSV path, so the bulk step sends nothing (not even an inventory)
    assert set(req["by_step"]) == {"prepare", "discovery", "sample", "verify-sample", "full", "verify-full"}
    assert req["by_class"]["discovery"] == req["by_step"]["discovery"] > 0
    assert sum(n for _m, n in req["timeline"]) == req["sent"]
    on_disk = json.loads((run / "report" / "report.json").read_text())["requests"]
    assert on_disk["sent"] == req["sent"]
    html = (run / "report" / "report.html").read_text()
    bars = re.findall(r"<rect[^>]*><title>[^<]*: (\d+)</title>", html)  # the chart's bars, one per minute
    assert bars and sum(map(int, bars)) == req["sent"]


def test_the_runs_report_html_reads_right_in_headless_chromium(full_run: Any) -> None:
    """The run's own report.html, opened from its storage in headless Chromium (issue 17): the status, each
    location's patients written as the report counts them, one bar per minute with requests (their
    titles add up to every request sent) and the budget line."""
    from tests.browser import open_page

    w, rep, lines, run = full_run
    with open_page(run / "report" / "report.html") as page:
        assert page.locator("#status").inner_text().lower() == rep["status"] == "completed"
        for loc, data in rep["locations"].items():
            cell = page.locator(f'table[data-location="{loc}"] tr[data-object="patient"]').locator(
                'td[data-col="written"]')
            assert cell.is_visible() and cell.inner_text() == f"{data['objects']['patient']['written']:,}"
        bars = page.locator("#rpm-chart rect.bar")
        assert bars.count() == len(rep["requests"]["timeline"]) > 0
        titles = bars.evaluate_all("els => els.map(e => e.querySelector('title').textContent)")
        assert sum(int(t.rsplit(": ", 1)[1]) for t in titles) == rep["requests"]["sent"]
        assert page.locator("#budget-line").bounding_box()


def test_verifying_every_record_costs_pages_not_records(full_run: Any) -> None:
    """--verify full reads each location by search pages (500 contacts or records, 100 opportunities, a
    calendar range per year of events) and one notes list per contact: far fewer requests than records."""
    w, rep, lines, run = full_run
    diff = rep["field_diff"]
    assert diff["mismatches"] == 0 and not any(diff["not_found"].values())
    verified = sum(diff["read_back"].values())
    spent = rep["requests"]["by_step"]["verify-full"]
    bound = 0
    for loc in w.loc_ids:
        state = w.dump(loc)
        bound += len(state["contacts"]) // 500 + 1 + sum(len(v) // 500 + 1 for v in state["objects"].values()
                                                         if v)
        bound += len(state["opportunities"]) // 100 + 1
        bound += len({a["startTime"][:4] for a in state["appointments"]}) + 1  # a year either side of UTC
        bound += len({n["contactId"] for n in state["notes"]})  # notes: one list per contact (no search)
    assert spent <= bound, (spent, bound)
    assert spent * 10 < verified, (spent, verified)
    gets = Counter(x["path"] for x in lines if x["method"] == "GET")
    assert not gets["/contacts/{contactId}"] and not gets["/opportunities/{id}"]
    assert not gets["/objects/{schemaKey}/records/{id}"]
    # the sample's few events are cheaper by GET than by a calendar range per year (choose by count); the
    # full read-back's are not read one by one
    events = sum(len(w.dump(loc)["appointments"]) for loc in w.loc_ids)
    assert gets["/calendars/events/appointments/{eventId}"] < events / 2 and gets["/calendars/events"] > 0
    assert rep["requests"]["ratio"] <= 1.05, rep["requests"]


def _client(handler: Any) -> HighLevelClient:
    return HighLevelClient("https://hl.invalid", SecretStr("t"), "loc1",
                           transport=httpx.MockTransport(handler),
                           retry=RetryPolicy(max_attempts=3, backoff_base=0, jitter=0, verify_delay=0),
                           sleep=lambda s: None)


def test_re_sends_lookups_and_scoped_reads_have_their_own_class() -> None:
    """A 429 then a success: one write, one retry. A create that fails ambiguously (500) is looked up
    (class lookup), not re-sent. A read in ``counting_as(client, "verify")`` is verify; a location read
    is schema."""
    calls = Counter()

    def handler(request: httpx.Request) -> httpx.Response:
        calls[request.url.path] += 1
        if request.url.path == "/contacts/" and calls["/contacts/"] == 1:
            return httpx.Response(429, json={"message": "slow down"})
        if request.url.path == "/contacts/":
            return httpx.Response(500, json={"message": "boom"})
        if request.url.path == "/contacts/search":
            return httpx.Response(200, json={"contacts": [{"id": "c1"}], "total": 1})
        if request.url.path == "/locations/loc1":
            return httpx.Response(200, json={"location": {"id": "loc1"}})
        return httpx.Response(200, json={"contact": {"id": "c1"}})

    c = _client(handler)
    got = c.create_contact(ContactCreate(firstName="x"), lookup=c.contact_lookup("f", "1"))
    assert got.outcome == "verified-existing"
    with counting_as(c, "verify"):
        c.get_contact("c1")
    c.get_location()
    assert dict(c.tally.by_class) == {"write": 1, "retry": 1, "lookup": 1, "verify": 1, "schema": 1}
    assert c.tally.total == c.stats["sent"] == 5 and c.tally.http_429 == 1
    assert sum(c.tally.per_minute.values()) == 5
    assert math.isclose(sum(calls.values()), 5)
