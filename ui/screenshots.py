"""Screenshots of every page for docs/screenshots/ (headless Chromium, like tests/ui/test_browser.py).

    HF_HUB_OFFLINE=1 .venv/bin/python ui/screenshots.py [--out docs/screenshots] [--compare outputs/<run>/export]

Uses the default data roots (outputs/ and ../shared/data): the Search page indexes 50 NTREX lines in
English, German and Chinese with e5-small; the other pages show what msm mine / pretrain / eval left in outputs/.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from msm.ui.server import CHROMIUM_ARGS, find_chromium, running_app

QUERY = "Wer befürchtet Verwechslungen mit den Muppets?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "docs" / "screenshots"))
    parser.add_argument("--compare", default=None, help="second model for the side-by-side search shot")
    args = parser.parse_args()
    from playwright.sync_api import expect, sync_playwright

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    chromium = find_chromium()
    if chromium is None:
        raise SystemExit("Chromium not found: apt-get install chromium fonts-wqy-microhei")
    with running_app({"HF_HUB_OFFLINE": "1"}) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        page.goto(url)
        if args.compare:
            page.get_by_text("Compare with a second model").click()
            second = page.get_by_label("Second model", exact=True)
            second.fill(args.compare)
            second.press("Enter")
        page.get_by_role("button", name="Build / load index").click()
        expect(page.get_by_text("Index ready")).to_be_visible(timeout=300_000)
        query = page.get_by_label("Query (any language)")
        query.fill(QUERY)
        query.press("Enter")
        expect(page.get_by_text("latency", exact=False).first).to_be_visible(timeout=60_000)
        page.wait_for_timeout(1000)
        page.screenshot(path=str(out / "search.png"), full_page=True)

        page.set_viewport_size({"width": 1500, "height": 1750})  # the main area scrolls inside a fixed-height page
        page.goto(f"{url}/alignment")
        expect(page.get_by_text("Similarity and alignment path")).to_be_visible(timeout=60_000)
        expect(page.locator("[data-testid='stImage'] img").first).to_be_visible(timeout=120_000)
        page.wait_for_timeout(1500)
        page.screenshot(path=str(out / "alignment.png"), full_page=True)

        page.goto(f"{url}/runs")
        expect(page.get_by_text("masked-sentence accuracy")).to_be_visible(timeout=60_000)
        page.wait_for_timeout(2000)
        page.screenshot(path=str(out / "runs-pretraining.png"), full_page=True)
        page.set_viewport_size({"width": 1500, "height": 1100})
        page.get_by_role("tab", name="Evaluation").click()
        page.wait_for_timeout(2000)
        page.screenshot(path=str(out / "runs-evaluation.png"), full_page=True)
        browser.close()
    print("\n".join(str(p) for p in sorted(out.glob("*.png"))))


if __name__ == "__main__":
    main()
