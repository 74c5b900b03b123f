"""The review page as a practice's admin uses it, in Debian's headless Chromium (``make chromium``): load
it, change a target and a PHI policy, see the schema change, confirm as a name with the keyboard, and
find the written map confirmed with the edited content's hash."""

from __future__ import annotations

from pathlib import Path

from dos2hl.mapping.model import load_mapping, require_confirmed
from tests.browser import CHROMIUM_ARGS, chromium
from tests.mapping.review_fixture import CANARIES, running, write_export

#: a loaded 2-core machine answers the page's calls slowly: every expectation waits up to a minute
EXPECT_TIMEOUT_MS = 60_000


def test_an_admin_changes_a_target_and_a_phi_policy_and_confirms(tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)

    export, path = write_export(tmp_path)
    with running(path, export) as server, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS, timeout=120_000)
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 900})
            page.set_default_timeout(60_000)
            page.goto(server.url, wait_until="load")
            rows = page.locator("#grid > tbody > tr")
            assert rows.count() == len(load_mapping(path).fields)
            assert rows.first.get_attribute("class") and "low" in (rows.first.get_attribute("class") or "")
            # filters: PHI only hides the rest
            page.check("#f-phi")
            assert page.locator("#grid > tbody > tr:not([hidden])").count() < rows.count()
            page.uncheck("#f-phi")
            page.keyboard.press("/")
            page.keyboard.type("PostCode")
            assert page.locator("#grid > tbody > tr:not([hidden])").count() == 1
            target = page.get_by_label("Target of Patients.PostCode")
            target.select_option("col:patient.zip")
            expect(page.get_by_label("Type of Patients.PostCode")).to_have_value("STANDARD")
            expect(page.locator("#impact")).to_contain_text("− contact.source_postcode")
            page.fill("#f-text", "")  # every row again
            phi = page.get_by_label("PHI policy of Patients.MedAlert")
            expect(phi).to_have_value("encrypt")
            phi.focus()
            page.keyboard.press("ArrowDown")  # encrypt -> omit, with the keyboard alone
            expect(phi).to_have_value("omit")
            expect(page.locator("#impact")).to_contain_text("− contact.medical_alert")
            status = page.locator("#grid > tbody > tr[data-source='Patients.Status']")
            status.locator("summary", has_text="value map").click()  # the codes found in the export
            page.get_by_label("Value I of Patients.Status becomes").fill("Former patient")
            page.keyboard.press("Tab")  # the change lands when the field is left
            expect(page.locator("#counts")).to_contain_text("3 changed")
            page.locator("#by").focus()
            page.keyboard.type("Dr. Rivera")
            page.keyboard.press("Enter")
            expect(page.locator("#status")).to_contain_text("Confirmed by Dr. Rivera")
            expect(page.get_by_label("Target of Patients.PostCode")).to_be_disabled()  # the server stopped
            html = page.content()
            page.screenshot(path=str(tmp_path / "review.png"))
        finally:
            browser.close()
    m = require_confirmed(path)
    assert m.confirmed is not None and m.confirmed.by == "Dr. Rivera"
    assert m.confirmed.sha256 == m.content_hash()
    post = next(e for e in m.fields if e.source == "Patients.PostCode")
    assert (post.target, post.column, post.type) == ("contact.postalCode", "zip", "STANDARD")
    assert next(e for e in m.fields if e.source == "Patients.MedAlert").phi == "omit"
    values = next(e for e in m.fields if e.source == "Patients.Status").values
    assert values is not None and values["I"] == "Former patient" and values["A"] == "Active"
    for canary in CANARIES:
        assert canary not in html
    assert (tmp_path / "review.png").stat().st_size > 10_000


def test_the_page_refuses_to_confirm_without_a_name(tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)

    export, path = write_export(tmp_path)
    with running(path, export) as server, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS, timeout=120_000)
        try:
            page = browser.new_page()
            page.set_default_timeout(60_000)
            page.goto(server.url, wait_until="load")
            page.fill("#by", "   ")
            page.click("#confirm")
            expect(page.locator("#status")).to_contain_text("Type your name")
        finally:
            browser.close()
    assert load_mapping(path).confirmed is None


def test_the_page_shows_the_request_plan_before_and_after_an_edit(tmp_path: Path) -> None:
    import shutil

    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)

    from dos2hl.cli.review import request_plan
    from dos2hl.mapping.model import save_mapping
    from dos2hl.mapping.propose import reference_mapping
    from dos2hl.mapping.review import read_export
    from dos2hl.mapping.review_server import ReviewServer

    export = tmp_path / "export"
    shutil.copytree(Path(__file__).resolve().parents[1] / "fixtures" / "two_zones", export,
                    ignore=shutil.ignore_patterns("*.md"))
    path = save_mapping(reference_mapping(), tmp_path / "mapping.yaml")
    shapes, _ = read_export(export)
    server = ReviewServer(path, shapes, {}, planner=request_plan(str(export)), idle_s=120)
    from threading import Thread

    t = Thread(target=server.serve, daemon=True)
    t.start()
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS, timeout=120_000)
            try:
                page = browser.new_page(viewport={"width": 1366, "height": 900})
                page.set_default_timeout(60_000)
                page.goto(server.url, wait_until="load")
                page.select_option("#f-file", "COMMLOG")  # the comm log is not migrated: every column skipped
                for select in page.locator("#grid > tbody > tr:not([hidden]) select.target").all():
                    select.select_option("skip")
                page.click("#plan-btn")
                plan = page.locator("#plan")
                expect(plan).to_contain_text("note:activity", timeout=180_000)  # stages the export twice
                row = plan.locator("tr", has_text="note:activity")
                expect(row.locator("td").nth(1)).to_have_text("2")
                expect(row.locator("td").nth(2)).to_have_text("0")
            finally:
                browser.close()
    finally:
        server.stop()
        t.join(timeout=10)
