"""Debian's headless Chromium driven by Playwright, for the tests that look at report.html as a person
does. ``make test`` installs chromium first (``make chromium``); Playwright never downloads a browser here.
A missing chromium fails the test (it is not skipped): the check would otherwise vanish silently."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["CHROMIUM_ARGS", "chromium", "open_page"]

#: Without the background-networking flags Chromium tries the internet; the tests talk to nothing.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "chromium is not installed: `make chromium` installs Debian's (make test runs it first)"
    return path


@contextmanager
def open_page(html: Path, width: int = 1366, height: int = 900, **context: Any) -> Iterator[Any]:
    """``html`` opened as file:// in a fresh headless Chromium (a new empty profile: Playwright's temporary
    user-data-dir) at a laptop's viewport; yields Playwright's Page."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS, timeout=120_000)
        try:
            page = browser.new_page(viewport={"width": width, "height": height}, **context)
            page.set_default_timeout(60_000)
            page.goto(html.resolve().as_uri(), wait_until="load")
            yield page
        finally:
            browser.close()
