"""report.html (issue 17): a page rendered from the report dict by a template, one self-contained file,
and what a person sees of it in headless Chromium (Debian's, `make chromium`): the headings, the
tables' numbers, the requests-per-minute chart and its budget line."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from dos2hl.execution.report_html import SEGMENTS, chart, render
from tests.browser import open_page

#: report.json of the demo's run (``python -m flows.demo``: 150 patients over two locations, sample 50, the
#: threads executor; its folder renamed to demo/): the numbers a real run produces, rendered with today's
#: template. The same file makes docs/report.png (bench/report_png.py).
DEMO = Path(__file__).parents[1] / "fixtures" / "report" / "demo-report.json"
CANARY = "Zebulon Quagmire-Fairweather"


@pytest.fixture
def demo() -> dict[str, Any]:
    rep: dict[str, Any] = json.loads(DEMO.read_text())
    return rep


def _minutes(*counts: int, start: int = 0) -> list[list[Any]]:
    return [[f"2024-06-28T10:{start + i:02d}Z", n] for i, n in enumerate(counts)]


def test_the_page_is_one_file_that_loads_nothing_from_elsewhere(demo: dict[str, Any]) -> None:
    page = render(demo)
    assert page.startswith("<!doctype html>") and "<style>" in page
    assert not re.search(r"<script|<link|<img|<iframe|@import|url\(|src=", page, re.I)
    assert set(re.findall(r"href=\"([^\"]*)\"", page)) <= {f"#{s}" for s in (
        "records", "requests", "diff", "offices", "owners", "not-migrated", "quarantine")}
    assert "http://" not in page.replace("http://www.w3.org", "") and "https://" not in page


def test_every_value_is_text_not_markup(demo: dict[str, Any]) -> None:
    """Autoescape: a reason, a code or an office name cannot open a tag in the page."""
    evil = "<script>alert(1)</script>"
    demo["note"] = evil
    demo["fields_not_migrated"].append({"source": "PATIENT.X", "phi": "send", "reason": evil})
    demo["quarantine_by_code"]["<b>CODE</b>"] = 3
    page = render(demo)
    assert evil not in page and "<b>CODE" not in page
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 2


def test_the_page_shows_what_the_dict_holds_and_nothing_else(demo: dict[str, Any]) -> None:
    """Only the fields the template names reach the page: a value under any other key (a canary name
    planted in the dict, as a bug upstream might) is not shown."""
    demo["patients"] = [{"name": CANARY}]
    demo["locations"]["L001"]["first_name"] = CANARY
    demo["locations"]["L001"]["objects"]["patient"]["name"] = CANARY
    demo["requests"]["example"] = CANARY
    demo["field_diff"]["examples"] = {"patient": [CANARY]}
    assert CANARY not in render(demo)


def test_each_location_has_a_table_with_its_counts_and_a_bar_that_adds_up(demo: dict[str, Any]) -> None:
    page = render(demo)
    for loc, data in demo["locations"].items():
        table = page.split(f'data-location="{loc}"', 1)[1].split("</table>", 1)[0]
        widest = max(r["source"] for r in data["objects"].values())
        for obj, r in data["objects"].items():
            row = table.split(f'data-object="{obj}"', 1)[1].split("</tr>", 1)[0]
            for col in ("source", "written", "created", "failed", "held", "excluded", "quarantined"):
                assert re.search(rf'data-col="{col}">{r[col]:,}<', row), (loc, obj, col)
            widths = [float(w) for w in re.findall(r"width: ([\d.]+)%", row)]
            assert sum(widths) == pytest.approx(100 * r["source"] / widest, abs=0.05)


def test_the_chart_has_a_bar_per_minute_with_requests_and_the_budget_line() -> None:
    c = chart({"budget_per_minute": 600, "timeline": _minutes(100, 650, 300) + _minutes(20, start=9)})
    assert [b["n"] for b in c["bars"]] == [100, 650, 300, 20]
    assert [b["over"] for b in c["bars"]] == [False, True, False, False]
    heights = [b["h"] for b in c["bars"]]
    assert heights[1] > heights[2] > heights[0] > heights[3] > 0
    assert heights[2] == pytest.approx(3 * heights[0], rel=0.01)  # heights are to scale
    # the budget line at 600 sits just under the top of the 650 bar: y grows downwards
    assert c["bars"][1]["y"] < c["budget_y"] < c["bars"][2]["y"]
    assert len(c["breaks"]) == 1  # minutes 10:03 to 10:08 sent nothing: marked between bars 3 and 4
    assert 650 <= c["ticks"][-1]["v"] <= 1.5 * 650  # a round top with little headroom
    assert chart({"budget_per_minute": 600, "timeline": []}) == {"bars": []}


def test_a_run_without_requests_or_diff_still_renders(demo: dict[str, Any]) -> None:
    demo["requests"], demo["requests_by_class"], demo["field_diff"] = {}, {}, {}
    page = render(demo)
    assert "rpm-chart" not in page and "No request was counted" in page and "Not verified" in page


def test_a_paused_location_says_what_is_pending_and_how_to_resume(demo: dict[str, Any]) -> None:
    demo["status"], demo["paused"] = "paused", {"L002": "TokenRevoked (HTTP 401)"}
    for r in demo["locations"]["L002"]["objects"].values():
        r["pending"], r["written"] = r["written"], 0
    waiting = sum(r["pending"] for r in demo["locations"]["L002"]["objects"].values())
    page = render(demo)
    assert 'class="badge paused"' in page and f"dos2hl resume {demo['run_id']}" in page
    said = r"Location L002 paused:</strong> TokenRevoked \(HTTP 401\)\.\s+([\d,]+)\s+rows are pending"
    assert re.search(said, page).group(1) == f"{waiting:,}"  # type: ignore[union-attr]
    assert page.count('data-col="pending"') == len(demo["locations"]["L002"]["objects"])
    assert "pending" in SEGMENTS and 'class="seg-pending"' in page


def test_what_a_person_sees_in_chromium(demo: dict[str, Any], tmp_path: Path) -> None:
    """The demo's report opened from disk in headless Chromium at a laptop's size: its headings, a table
    cell equal to the dict's count, one visible bar per minute with requests, the budget line across the
    chart, and no horizontal scrolling."""
    path = tmp_path / "report.html"
    path.write_text(render(demo), encoding="utf-8")
    timeline = demo["requests"]["timeline"]
    with open_page(path) as page:
        assert page.locator("h1").inner_text() == "Migration report"
        assert page.locator("#status").inner_text().lower() == demo["status"]
        headings = page.locator("h2").all_inner_texts()
        for h in ("Summary", "Records per location and object", "Requests",
                  "Field-level diff (read back from HighLevel)", "Fields not migrated"):
            assert h in headings, headings
        for loc, data in demo["locations"].items():
            row = page.locator(f'table[data-location="{loc}"] tr[data-object="patient"]')
            cell = row.locator('td[data-col="written"]')
            assert cell.is_visible() and cell.inner_text() == f"{data['objects']['patient']['written']:,}"
        total = sum(r["written"] for d in demo["locations"].values() for r in d["objects"].values())
        assert page.locator("#total-written").inner_text() == f"{total:,}"
        bars = page.locator("#rpm-chart rect.bar")
        assert bars.count() == len(timeline) > 0
        boxes = [bars.nth(i).bounding_box() for i in range(bars.count())]
        assert all(b is not None and b["height"] > 0 and b["width"] > 0 for b in boxes)
        tallest = max(range(len(timeline)), key=lambda i: timeline[i][1])
        assert boxes[tallest]["height"] == max(b["height"] for b in boxes)  # type: ignore[index]
        # the budget line: a horizontal line has no height, so Playwright never calls it "visible": its
        # box spans the chart, inside it, and it is stroked (dashed, in a colour)
        line = page.locator("#budget-line")
        chart_box, line_box = page.locator("#rpm-chart").bounding_box(), line.bounding_box()
        assert chart_box and line_box
        assert line_box["width"] > 0.8 * chart_box["width"]  # across the whole chart
        assert chart_box["y"] <= line_box["y"] <= chart_box["y"] + chart_box["height"]
        stroke = line.evaluate("e => [getComputedStyle(e).stroke, getComputedStyle(e).strokeDasharray]")
        assert stroke[0] not in ("none", "") and stroke[1] not in ("none", ""), stroke
        assert page.get_by_text(f"burst budget {demo['requests']['budget_per_minute']:,}/min").is_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 1366
        page.emulate_media(media="print")  # printable: the chart and the tables stay
        assert bars.first.is_visible() and page.locator("table.records").first.is_visible()


def test_the_chart_keeps_its_bars_on_a_long_run(demo: dict[str, Any], tmp_path: Path) -> None:
    """Ten hours of minutes still draw one bar each, inside the chart."""
    big = copy.deepcopy(demo)
    big["requests"]["timeline"] = [[f"2024-06-28T{10 + i // 60:02d}:{i % 60:02d}Z", 50 + i % 400]
                                   for i in range(600)]
    path = tmp_path / "report.html"
    path.write_text(render(big), encoding="utf-8")
    with open_page(path, width=1280) as page:
        chart_box = page.locator("#rpm-chart").bounding_box()
        assert chart_box
        xs = page.eval_on_selector_all("#rpm-chart rect.bar",
                                       "els => els.map(e => e.getBoundingClientRect().right)")
        assert len(xs) == 600 and max(xs) <= chart_box["x"] + chart_box["width"] + 0.5


def test_the_command_names_the_page(demo: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """`dos2hl migrate` prints where report.html is, before its last line (report.md's path)."""
    from dos2hl.cli.migrate import _summarise

    out = {**demo, "report": "runs/R/report/report.md", "paths": {"html": "runs/R/report/report.html"}}
    _summarise(out, as_json=False)  # completed: returns (exit code 0)
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-2:] == ["report.html: runs/R/report/report.html", "report: runs/R/report/report.md"]
