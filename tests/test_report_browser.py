"""The HTML report in a real headless browser: it loads offline with no console error, requests nothing, and every
figure decodes. Needs Debian's chromium (`apt-get install -y chromium`) and `pip install playwright` (its Python
package only: no `playwright install`, the system browser is used; INTUITOR_CHROMIUM=/path/to/browser picks another
Chromium build). Skipped when either is missing."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "analysis"
# INTUITOR_CHROMIUM overrides (e.g. a CI image with google-chrome instead of Debian's chromium).
CHROMIUM = (
    os.environ.get("INTUITOR_CHROMIUM")
    or shutil.which("chromium")
    or shutil.which("chromium-browser")
    or shutil.which("google-chrome")
    or "/usr/bin/chromium"
)
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _missing(reason: str):
    # CI sets INTUITOR_REQUIRE_BROWSER=1 so that a missing browser fails instead of silently skipping.
    (pytest.fail if os.environ.get("INTUITOR_REQUIRE_BROWSER") else pytest.skip)(reason)


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright import sync_api
    except ImportError:
        _missing("playwright not installed (pip install playwright; no `playwright install` needed)")
    if not Path(CHROMIUM).exists():
        _missing("chromium not installed (apt-get install -y chromium)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def test_report_renders_in_headless_chromium(browser, tmp_path):
    from intuitor.analysis.report import build_report

    out = build_report(FIXTURES / "run_online", tmp_path / "report.html")
    page = browser.new_page()
    console, errors, requests = [], [], []
    page.on("console", lambda m: console.append((m.type, m.text)))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(out.as_uri(), wait_until="load")

    assert errors == []
    assert [c for c in console if c[0] in ("error", "warning")] == []
    # Only the page itself and its data: images; nothing over the network.
    assert all(u == out.as_uri() or u.startswith("data:") for u in requests), requests

    imgs = page.eval_on_selector_all("img", "els => els.map(e => [e.complete, e.naturalWidth, e.naturalHeight])")
    assert len(imgs) >= 3  # curves, calibration, answer types
    assert all(complete and w > 0 and h > 0 for complete, w, h in imgs), imgs

    assert page.title() == "intuitor report: run_online"
    ids = page.eval_on_selector_all("section", "els => els.map(e => e.id)")
    assert ids == ["config", "curves", "evaluation", "calibration", "answer-types", "completions"]
    # Text from the run is escaped: the fixture's <script> and <b> tags show up as text, never as elements.
    assert page.locator("script").count() == 0
    assert page.locator("section#config b").count() == 0
    assert "<script>alert('x')</script>" in page.text_content("section#completions")
    page.close()
