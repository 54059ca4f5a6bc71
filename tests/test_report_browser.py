"""The HTML report in a real headless browser: it loads offline with no console error, requests nothing, and every
figure decodes; the one-run and the comparison reports of a tiny real pipeline (`intuitor demo` at toy sizes: the
real trainer and harness) have every section filled. Needs Debian's chromium (`apt-get install -y chromium`) and
`pip install playwright` (its Python package only: no `playwright install`, the system browser is used;
INTUITOR_CHROMIUM=/path/to/browser picks another Chromium build). Skipped when either is missing."""

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


def _open(browser, out: Path):
    """The page, and the console messages, page errors and requests seen while loading it."""
    page = browser.new_page()
    seen = {"console": [], "errors": [], "requests": []}
    page.on("console", lambda m: seen["console"].append((m.type, m.text)))
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))
    page.on("request", lambda r: seen["requests"].append(r.url))
    page.goto(out.as_uri(), wait_until="load")
    assert seen["errors"] == []
    assert [c for c in seen["console"] if c[0] in ("error", "warning")] == []
    assert all(u == out.as_uri() or u.startswith("data:") for u in seen["requests"]), seen["requests"]
    imgs = page.eval_on_selector_all("img", "els => els.map(e => [e.complete, e.naturalWidth, e.naturalHeight])")
    assert imgs and all(complete and w > 0 and h > 0 for complete, w, h in imgs), imgs
    return page


@pytest.fixture(scope="module")
def tiny_demo(tmp_path_factory):
    """`intuitor demo` at toy sizes: base, INTUITOR and GRPO runs with evaluations and training completions."""
    from rich.console import Console

    from intuitor.demo.runner import DemoConfig, run_demo

    out = tmp_path_factory.mktemp("demo")
    cfg = DemoConfig(
        output_dir=str(out),
        seeds=1,
        steps=2,
        eval_items=6,
        sampled_k=2,
        precondition_items=4,
        precondition_k=4,
        prompts_per_step=2,
        num_generations=4,
    )
    run_demo(cfg, console=Console(quiet=True))
    return out


def _section_texts(page) -> dict[str, str]:
    """{section id: its text without the heading}."""
    js = (
        "els => Object.fromEntries(els.map(e => "
        "[e.id, e.innerText.replace(e.querySelector('h2').innerText, '').trim()]))"
    )
    return page.eval_on_selector_all("section", js)


@pytest.mark.slow
def test_tiny_pipeline_reports_have_every_section_filled(browser, tiny_demo, tmp_path):
    from intuitor.analysis.report import SECTIONS, build_report

    one = _open(browser, build_report(tiny_demo / "intuitor-seed0", tmp_path / "one.html"))
    texts = _section_texts(one)
    assert list(texts) == [sid for sid, _ in SECTIONS] and all(texts.values()), texts
    # the run's own evaluations (eval/greedy, eval/sampled), calibration figure, rollouts and eval responses
    assert one.locator("section#evaluation table").count() == 2
    assert "addition · greedy" in texts["evaluation"] and "addition · sampled" in texts["evaluation"]
    assert one.locator("section#calibration img").count() == 1
    assert "step 1" in texts["completions"] and "step 2" in texts["completions"]
    assert "side by side" in texts["completions"]
    one.close()

    runs = [tiny_demo / "base", tiny_demo / "intuitor-seed0", tiny_demo / "grpo_gold-seed0"]
    cmp = _open(browser, build_report(runs, tmp_path / "compare.html"))
    texts = _section_texts(cmp)
    assert all(texts.values()), texts
    assert cmp.title() == "intuitor report: base vs intuitor-seed0, grpo_gold-seed0"
    # one row per run in each evaluation table, deltas and McNemar against the base (greedy: one response each)
    greedy = cmp.locator("section#evaluation table").first
    assert greedy.locator("tr").count() == 4 and "base" in greedy.inner_text() and "McNemar" in greedy.inner_text()
    assert "Config differences" in texts["config"] and "rewards" in texts["config"]
    # side by side: a column per run; the calibration figure has a panel per run and evaluation
    assert cmp.locator("section#completions table.side").first.locator("th").count() == 3
    assert "base · preflight" in texts["calibration"] and "Preflight verdicts" in texts["calibration"]
    cmp.close()


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
