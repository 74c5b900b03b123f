"""The screenshot of the map review page in docs/ (docs/review.png): the test fixture's export in another
vendor's naming (tests/mapping/review_fixture.py, fake values), its proposed map served by the review
server, the postcode column's target changed to ``contact.postalCode`` and the medical alert's PHI
policy set to ``omit``, photographed in Debian's headless Chromium (`make chromium`) at a laptop's width.

    python bench/review_png.py [--out docs/review.png] [--width 1366]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    from playwright.sync_api import expect, sync_playwright

    from tests.browser import CHROMIUM_ARGS, chromium
    from tests.mapping.review_fixture import running, write_export

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("docs/review.png"))
    ap.add_argument("--width", type=int, default=1366)
    ap.add_argument("--height", type=int, default=820)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="dos2hl-review-") as tmp:
        export, path = write_export(Path(tmp))
        with running(path, export) as server, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS, timeout=120_000)
            try:
                page = browser.new_page(viewport={"width": args.width, "height": args.height},
                                        device_scale_factor=1)
                t0 = time.perf_counter()
                page.goto(server.url, wait_until="load")
                loaded = time.perf_counter() - t0
                page.get_by_label("Target of Patients.PostCode").select_option("col:patient.zip")
                page.get_by_label("PHI policy of Patients.MedAlert").select_option("omit")
                expect(page.locator("#impact")).to_contain_text("− contact.medical_alert")
                page.locator("#by").fill("Dr. Rivera")
                page.mouse.move(0, 0)
                args.out.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(args.out))
            finally:
                browser.close()
    print(f"{args.out}: {args.width}x{args.height}, page loaded in {loaded * 1000:.0f} ms")


if __name__ == "__main__":
    main()
