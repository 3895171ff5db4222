"""How long the dashboard takes with 5,000 trials: building the page, and loading it in a browser.

Writes a synthetic finished sweep (`tests.fixtures.synthetic_sweep`: 36 signatures x 5 tasks x 28
samples, one signature per trial = 5,040 trials, ASHA max_t 100, grace 5, reduction 3), builds
its page (read, data, render: timed apart) and opens it in headless Chromium (Debian's, through
Playwright) from disk with every network request refused, timing from navigation to the moment
every view is drawn (`window.dashboardReady`), and each view's own drawing time. Prints the
median over `--repeat` loads and ends with `load with N trials: X s`.

    python benchmarks/dashboard_load.py [--trials-per-cell 28] [--repeat 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmse_app.dashboard import render_page
from mmse_app.dashboard_data import load_experiment, page_data
from mmse_model.core import atomic
from tests.fixtures.synthetic_sweep import many_signatures, write_synthetic_sweep

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--trials-per-cell", type=int, default=28, help="samples per (task, signature)"
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="write the experiment here and keep it")
    args = parser.parse_args()
    tmp = None
    if args.keep is None:
        tmp = tempfile.TemporaryDirectory(prefix="mmse-dash-bench-")
        folder = Path(tmp.name) / "bench_sweep"
    else:
        folder = args.keep
    start = time.perf_counter()
    sweep = write_synthetic_sweep(
        folder,
        name="bench_sweep",
        tasks=("Q1", "Q2", "Q3", "Q4", "Q5"),
        signatures=many_signatures(36),
        samples=args.trials_per_cell,
        signatures_per_trial=1,
        max_t=100,
        grace_period=5,
        reduction_factor=3,
        errored=3,
        early_stopped=40,
        baseline_wins=("Q2",),
    )
    n = len(sweep.trials)
    epochs = sum(t.last_epoch for t in sweep.trials)
    print(
        f"synthetic sweep: {n} trials, {epochs} epoch records "
        f"({time.perf_counter() - start:.1f} s to write)"
    )

    t0 = time.perf_counter()
    experiment = load_experiment(str(folder))
    t1 = time.perf_counter()
    data = page_data(experiment)
    t2 = time.perf_counter()
    page = render_page(data)
    t3 = time.perf_counter()
    out = atomic.write_text(folder / "dashboard" / "index.html", page)
    print(
        f"build: read {t1 - t0:.2f} s, page data {t2 - t1:.2f} s, render {t3 - t2:.2f} s; "
        f"index.html {out.stat().st_size / 1e6:.1f} MB"
    )

    if not Path(CHROMIUM).exists():
        print(f"no browser at {CHROMIUM}: apt-get install -y chromium (or set CHROMIUM)")
        return 1
    from playwright.sync_api import sync_playwright

    url = out.resolve().as_uri()
    loads, views = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for _ in range(args.repeat):
            page_ = browser.new_page(viewport={"width": 1400, "height": 900})
            errors: list[str] = []
            page_.on(
                "console",
                lambda m, *, errors=errors: errors.append(m.text) if m.type == "error" else None,
            )
            page_.route("**/*", lambda r: r.continue_() if r.request.url == url else r.abort())
            t = time.perf_counter()
            page_.goto(url)
            page_.wait_for_function("window.dashboardReady === true", timeout=300_000)
            loads.append(time.perf_counter() - t)
            views.append(page_.evaluate("window.dashboard.timings"))
            if errors:
                print("console errors:", errors[:5])
            page_.close()
        browser.close()
    per_view = {k: statistics.median(v[k] for v in views) / 1000 for k in views[0]}
    print(f"page and plotly.js parsed after {per_view.pop('script start'):.2f} s (median)")
    print("then (median, s): " + ", ".join(f"{k} {v:.2f}" for k, v in per_view.items()))
    print(f"loads (s): {', '.join(f'{x:.2f}' for x in loads)}")
    print(f"load with {n} trials: {statistics.median(loads):.2f} s")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
