"""A full-page PNG of a sweep's dashboard, as Chromium draws it (for the README).

    python scripts/dashboard_screenshot.py EXPERIMENT_DIR OUT.png [--width 1400]

Builds the page into a temporary folder (the experiment folder is only read), serves it on
127.0.0.1 as `mmse dashboard --serve` does, opens it in headless Chromium (Debian's
/usr/bin/chromium, or $CHROMIUM) through Playwright with every other request refused,
scrolls to each view that is drawn on sight, and saves the whole page.
Exits 1 when the page logs an error or asks for anything off the machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmse_app.dashboard import Dashboard, start_server
from mmse_model.core.errors import InputError

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def screenshot(experiment: str, out: Path, width: int = 1400) -> list[str]:
    """Save the page's screenshot to `out`; returns the errors the page logged (none expected)."""
    from playwright.sync_api import sync_playwright

    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="mmse-dashboard-") as folder:
        board = Dashboard(experiment, Path(folder))
        board.refresh(write_version=True)
        server = start_server(Path(folder), 0)
        base = f"http://127.0.0.1:{server.server_address[1]}/"
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                page = browser.new_page(viewport={"width": width, "height": 1000})
                page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda e: problems.append(f"page error: {e}"))

                def route(request_route):
                    if request_route.request.url.startswith(base):
                        request_route.continue_()
                    else:
                        problems.append(f"refused a request for {request_route.request.url}")
                        request_route.abort()

                page.route("**/*", route)
                page.goto(base)
                page.wait_for_function("window.dashboardReady === true", timeout=120_000)
                for pending in page.evaluate("window.dashboard.pending()"):  # views drawn when seen
                    page.locator(f"#{pending}").scroll_into_view_if_needed()
                page.wait_for_function("window.dashboard.pending().length === 0", timeout=120_000)
                page.evaluate("window.scrollTo(0, 0)")
                out.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(out), full_page=True)
                browser.close()
        finally:
            server.shutdown()
            server.server_close()
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", help="the sweep's experiment folder (or its storage URI)")
    parser.add_argument("out", type=Path, help="the PNG to write")
    parser.add_argument(
        "--width", type=int, default=1400, help="the browser window's width in pixels (1400)"
    )
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(
            f"dashboard_screenshot: no chromium at {CHROMIUM} (apt-get install -y chromium)",
            file=sys.stderr,
        )
        return 2
    try:
        problems = screenshot(args.experiment, args.out, args.width)
    except InputError as exc:
        print(f"dashboard_screenshot: {exc}", file=sys.stderr)
        return 2
    for problem in problems:
        print(f"dashboard_screenshot: {problem}", file=sys.stderr)
    print(f"wrote {args.out}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
