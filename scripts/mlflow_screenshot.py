"""Screenshot MLflow's compare view of two runs (how docs/img/mlflow-compare.png was taken).

Needs what the project does not install: Python's `playwright` package and a Chromium (Debian: `apt-get install
chromium`), and an MLflow server on the store, e.g. `make ui` or
`.venv/bin/mlflow server --backend-store-uri sqlite:///$PWD/mlruns/mlflow.db --host 127.0.0.1 --port 5000`.

    python scripts/mlflow_screenshot.py --url http://127.0.0.1:5000 --experiment 1 RUN_A RUN_B --out compare.png

The page is opened headless with no network besides the server, "Show diff only" is switched on, and the run
details, parameters and metrics are captured.
"""

import argparse
import json
import urllib.parse


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs=2, help="the two run ids to compare")
    ap.add_argument("--url", default="http://127.0.0.1:5000")
    ap.add_argument("--experiment", default="1", help="the experiment id the runs belong to")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--out", default="mlflow-compare.png")
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    q = urllib.parse.quote
    page_url = (f"{args.url}/#/compare-runs?runs={q(json.dumps(args.runs))}"
                f"&experiments={q(json.dumps([args.experiment]))}")
    flags = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--no-first-run"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=flags)
        page = browser.new_page(viewport={"width": 1280, "height": 1500})
        page.goto(page_url, wait_until="load", timeout=120_000)
        page.get_by_text("Run details").first.wait_for(timeout=60_000)
        page.wait_for_timeout(3000)
        close = page.get_by_role("button", name="Close")  # MLflow 3's assistant side panel, where it opens
        if close.count():
            close.first.click()
        for switch in page.get_by_role("switch").all():  # "Show diff only" for params, metrics and tags
            switch.click()
        page.get_by_text("Run details").first.scroll_into_view_if_needed()
        page.mouse.wheel(0, 350)
        page.wait_for_timeout(800)
        page.screenshot(path=args.out)
        browser.close()
    print(args.out)


if __name__ == "__main__":
    main()
