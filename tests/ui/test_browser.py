"""A real browser: the app served on 127.0.0.1, driven by headless Chromium through Playwright."""

from __future__ import annotations

import os

import pytest
from ui_fixtures import E5_NTREX_LINES

from msm.ui.server import CHROMIUM_ARGS, find_chromium, running_app

RUNNING = '[data-testid="stStatusWidgetRunningIcon"], [data-testid="stStatusWidgetRunningManIcon"]'


def wait_idle(page, timeout_ms: int = 60_000) -> None:
    """Wait until Streamlit has finished the rerun an upload or a key press started (its running icon is gone)."""
    page.wait_for_timeout(500)  # the icon shows only after the rerun has begun
    page.wait_for_function(f"() => !document.querySelector('{RUNNING}')", timeout=timeout_ms)


def build_until(page, text: str, timeout_ms: int, tries: int = 3) -> None:
    """Press "Build / load index" until ``text`` shows: a click landing mid-rerun can be dropped by the browser."""
    from playwright.sync_api import expect

    for attempt in range(tries):
        wait_idle(page)
        page.get_by_role("button", name="Build / load index").click()
        try:
            expect(page.get_by_text(text, exact=False)).to_be_visible(timeout=timeout_ms)
            return
        except AssertionError:
            if attempt == tries - 1:
                raise


@pytest.mark.timeout(300)
def test_search_in_chromium(e5_small, shared_data, data_root, tmp_path):
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("Chromium not found at /usr/bin/chromium (apt-get install chromium fonts-wqy-microhei)")
    from playwright.sync_api import expect, sync_playwright

    env = {"MSM_UI_DATA_ROOTS": os.pathsep.join([str(data_root), str(shared_data)]), "MSM_DATA_DIR": str(shared_data),
           "MSM_UI_MODEL": "e5-small", "HF_HUB_OFFLINE": "1"}
    ntrex = shared_data / "ntrex"
    english = (ntrex / "newstest2019-src.eng.txt").read_text(encoding="utf-8").splitlines()
    german = (ntrex / "newstest2019-ref.deu.txt").read_text(encoding="utf-8").splitlines()
    with running_app(env, log=tmp_path / "streamlit.log") as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        lines = page.get_by_label("Lines per language")
        lines.fill(str(E5_NTREX_LINES))
        lines.press("Enter")
        build_until(page, "Index ready", timeout_ms=90_000)
        expect(page.get_by_text(f"{3 * E5_NTREX_LINES} passages", exact=False)).to_be_visible()
        query = page.get_by_label("Query (any language)")
        query.fill(german[2])
        query.press("Enter")
        expect(page.get_by_text(english[2], exact=True)).to_be_visible(timeout=60_000)
        expect(page.get_by_text("latency", exact=False)).to_be_visible()
        page.screenshot(path=str(tmp_path / "search.png"), full_page=True)

        nasty = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=1</script>'
        query.fill(nasty)
        query.press("Enter")
        expect(page.get_by_text(f"Results for: {nasty}", exact=True)).to_be_visible(timeout=60_000)  # literal text
        assert page.evaluate("window.__pwned") is None
        assert page.locator("img[src=x]").count() == 0

        upload = tmp_path / "mine.jsonl"
        upload.write_text('{"id": "u1", "text": "Der Zug nach Berlin hat Verspätung.", "lang": "de"}\n{oops\n'
                          '{"id": "u2", "text": "The cat sleeps on the sofa.", "lang": "en"}\n', encoding="utf-8")
        corrupt = tmp_path / "broken.parquet"
        corrupt.write_bytes(b"PAR1 this is not parquet")
        page.get_by_text("Upload JSONL/Parquet").click()
        page.locator("input[type=file]").set_input_files(str(upload))
        expect(page.get_by_text("mine.jsonl", exact=True)).to_be_visible(timeout=60_000)
        build_until(page, "Index ready: mine.jsonl, 2 passages", timeout_ms=60_000)
        expect(page.get_by_text("1 records skipped, first: mine.jsonl:2", exact=False)).to_be_visible()
        query.fill("Eine Katze schläft auf dem Sofa")
        query.press("Enter")
        expect(page.get_by_text("The cat sleeps on the sofa.", exact=True)).to_be_visible(timeout=60_000)
        page.locator("input[type=file]").set_input_files(str(corrupt))
        expect(page.get_by_text("broken.parquet", exact=True)).to_be_visible(timeout=60_000)
        build_until(page, "not a readable Parquet file", timeout_ms=30_000)
        browser.close()
    assert (tmp_path / "search.png").stat().st_size > 10_000
