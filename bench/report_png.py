"""The screenshot of report.html in docs/ (docs/report.png): a run's report.json rendered with today's
template and photographed whole in Debian's headless Chromium (`make chromium`), at a laptop's width.
Prints the page's size and the render time (the median of a few renders).

    python bench/report_png.py demo/runs/RUN/report/report.json [--out docs/report.png] [--width 1280]

The picture is the page's top down to the end of the requests section (``--down-to all``: all of it).
docs/report.png is the demo's report (its report.json is tests/fixtures/report/demo-report.json):
    python bench/report_png.py tests/fixtures/report/demo-report.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    from dos2hl.execution.report_html import render
    from tests.browser import open_page

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("report_json", type=Path)
    ap.add_argument("--out", type=Path, default=Path("docs/report.png"))
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--down-to", default="requests",
                    help="the page from its top down to the end of this section (id); 'all': the whole page")
    args = ap.parse_args()
    rep = json.loads(args.report_json.read_text())
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        page = render(rep)
        times.append(time.perf_counter() - t0)
    with tempfile.TemporaryDirectory(prefix="dos2hl-report-") as tmp:
        html = Path(tmp) / "report.html"
        html.write_text(page, encoding="utf-8")
        with open_page(html, width=args.width, height=800, device_scale_factor=1) as p:
            height = p.evaluate("document.documentElement.scrollHeight")
            if args.down_to != "all":
                box = p.locator(f"#{args.down_to}").bounding_box()
                assert box, f"no section #{args.down_to}"
                height = int(box["y"] + box["height"] + 16)
            p.screenshot(path=str(args.out), full_page=True,
                         clip={"x": 0, "y": 0, "width": args.width, "height": height})
    print(json.dumps({"html_bytes": len(page.encode()), "render_s_median": round(statistics.median(times), 4),
                      "render_s_first": round(times[0], 4), "timeline_minutes":
                      len((rep.get("requests") or {}).get("timeline") or []),
                      "png": str(args.out), "page_px": [args.width, height]}))


if __name__ == "__main__":
    main()
