"""The dashboard in a real browser: Playwright driving Debian's chromium, network refused.

The page is opened from disk; every request other than the file itself is aborted (and
recorded: there must be none). Checked: no console error, the SYNTHETIC banner, the estimate
first (each task's and the subtotal's models and differences, numbers and words as the
summary has them, its plot, the looks), the prediction intervals' coverage over the outer
folds (method, level, guarantee, every cell the summary's with the short ones marked, the
plot of coverage per true score), one heatmap cell per signature x task with the
estimate's verdict mark on each task's winner only, the held-out split apart from the
estimate with its subtotal, coverage, training and per-group sections, a page without a
held-out split that says so in one line (and an older demo's page, which has no estimate and
says "not recorded" for what its summary lacks), a click on a cell shows exactly that cell's
trials, trials ASHA stopped end at a rung, the table sorts, filters (50 rows a page) and
exports, a served page reloads itself. A screenshot is saved (to $DASHBOARD_SCREENSHOT too,
when set).

Skipped when chromium (or the playwright package) is missing, except under CI=true, where
that is a failure: `.ci/run` installs chromium (apt-get) and the test extras install
playwright.
"""

from __future__ import annotations

import itertools
import math
import os
import shutil
from pathlib import Path

import pytest

from mmse_app.dashboard import write_dashboard
from mmse_app.dashboard_results import NOT_RECORDED, VERDICT_MARKS, fixed, signed
from mmse_model.sweeps import rules
from mmse_model.sweeps.summary_schema import read_summary
from tests.fixtures.synthetic_sweep import many_signatures, write_synthetic_sweep
from tests.fixtures.trained_sweep import write_sited_sweep

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


def _browser_or_skip():
    problem = None
    if not Path(CHROMIUM).exists():
        problem = f"no chromium at {CHROMIUM} (apt-get install -y chromium)"
    else:
        try:
            from playwright.sync_api import sync_playwright  # noqa: F401
        except ImportError:
            problem = "no playwright package (pip install -e '.[test]')"
    if problem is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"the browser test must run in CI: {problem}")
    pytest.skip(problem)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    # 3 signatures x 2 tasks x 9 samples, one signature per trial: 54 trials (two table pages),
    # several stopped by ASHA (max_t 12, grace 2, reduction 2: rungs 2, 4, 8), one failed,
    # two early-stopped; the estimate and a held-out split.
    return write_synthetic_sweep(
        tmp_path_factory.mktemp("browser") / "browser_sweep",
        signatures=many_signatures(3),
        signatures_per_trial=1,
        samples=9,
        max_t=12,
        errored=1,
        early_stopped=2,
        held_out=True,
    )


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium through Playwright (one per module: Playwright's sync API runs one
    instance per thread)."""
    _browser_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


def _open(browser, page_file: Path):
    """The page opened from disk, every other request refused; (page, refused, errors, context)."""
    url = page_file.resolve().as_uri()
    refused: list[str] = []
    errors: list[str] = []

    def route(route_):
        if route_.request.url == url:
            route_.continue_()
        else:
            refused.append(route_.request.url)
            route_.abort()

    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    page.route("**/*", route)
    page.goto(url)
    page.wait_for_function("window.dashboardReady === true", timeout=120_000)
    return page, refused, errors, context


@pytest.fixture(scope="module")
def browser_page(browser, sweep):
    page, refused, errors, context = _open(browser, write_dashboard(str(sweep.path)))
    yield page, refused, errors
    context.close()


def test_one_cell_per_signature_and_task(browser_page, sweep):
    page, _, _ = browser_page
    cells = page.eval_on_selector_all(
        "#heatmap td.cell",
        "tds => tds.map(td => [td.dataset.signature, td.dataset.task, td.dataset.verdict])",
    )
    assert sorted((s, t) for s, t, _ in cells) == sorted(
        (s, t) for s in sweep.signatures for t in sweep.tasks
    )
    assert page.locator("#heatmap td.cell[data-winner=true]").count() == len(sweep.tasks)
    # A verdict mark on each task's winner only; Q3's Ridge (the declared comparator) beats
    # its winner.
    marked = page.eval_on_selector_all(
        "#heatmap td.cell",
        "tds => tds.filter(td => td.querySelector('.mark'))"
        ".map(td => [td.dataset.task, td.dataset.winner])",
    )
    assert sorted(map(tuple, marked)) == [("Q1", "true"), ("Q3", "true")]
    winners = {(sweep.summary.tasks[t].winner.signature, t) for t in sweep.tasks}
    assert {t: v for s, t, v in cells if (s, t) in winners} == {"Q1": "better", "Q3": "worse"}
    assert {v for s, t, v in cells if (s, t) not in winners} == {"none"}
    heads = page.eval_on_selector_all(
        "#heatmap th.task", "ths => ths.map(th => [th.dataset.task, th.textContent])"
    )
    assert [tuple(h) for h in heads] == [
        ("Q1", "Q1✓ network better"),
        ("Q3", "Q3✗ Ridge better"),
    ]
    assert {t: sweep.summary.tasks[t].verdict.result for t in sweep.tasks} == {
        "Q1": "better",
        "Q3": "worse",
    }
    assert "Holm-adjusted for the 2 tasks" in page.text_content("#heatmap-note")


def test_a_click_on_a_cell_shows_exactly_its_trials(browser_page, sweep):
    page, _, _ = browser_page
    for signature, task in [(sweep.signatures[1], "Q3"), (sweep.signatures[0], "Q1")]:
        page.click(f'#heatmap td.cell[data-signature="{signature}"][data-task="{task}"]')
        expected = sorted(
            r.trial_id for r in sweep.rows if r.signature == signature and r.task == task
        )
        listed = page.eval_on_selector_all(
            "#cell-trials tbody tr", "trs => trs.map(tr => tr.dataset.trialId)"
        )
        assert sorted(listed) == expected
        plotted = page.evaluate(
            "() => document.getElementById('cell-plot').data.map(t => t.meta.trial_id)"
        )
        assert sorted(plotted) == expected
        assert page.text_content("#cell-title").startswith(
            f"{task} × {signature}: {len(expected)} trials"
        )
        assert page.locator("#heatmap td.selected").count() == 1


def test_trials_asha_stopped_end_at_a_rung(browser_page, sweep):
    page, _, _ = browser_page
    assert list(sweep.rungs) == [2, 4, 8]
    for task in sweep.tasks:
        page.select_option("#task-select", task)
        traces = page.evaluate("""() => document.getElementById('curves-plot').data
            .filter(t => t.meta && t.meta.status === 'asha')
            .map(t => ({x: t.x, trials: t.meta.trials}))""")
        stopped = {t.trial_id: t for t in sweep.trials if t.task == task and t.status == "asha"}
        if not stopped:
            assert traces == []
            continue
        (trace,) = traces
        ends, segment = [], []  # each trial's curve, then a gap (null)
        for x in trace["x"] + [None]:
            if x is None and segment:
                ends.append(segment[-1])
                segment = []
            elif x is not None:
                segment.append(x)
        assert sorted(trace["trials"]) == sorted(stopped)
        assert ends == [stopped[t].last_epoch for t in trace["trials"]]
        assert set(ends) <= set(sweep.rungs)
        shapes = page.evaluate(
            "() => document.getElementById('curves-plot').layout.shapes.map(s => s.x0)"
        )
        assert shapes == list(sweep.rungs)
        counts = page.eval_on_selector_all(
            "#rung-counts tbody tr", "trs => trs.map(tr => +tr.cells[1].textContent)"
        )
        mine = [t for t in sweep.trials if t.task == task]
        assert counts == [sum(t.last_epoch >= r for t in mine) for r in sweep.rungs]
    assert any(t.status == "asha" for t in sweep.trials)


def test_the_synthetic_banner_and_the_new_sections(browser_page, sweep):
    page, _, _ = browser_page
    assert page.is_visible("#synthetic-banner")
    assert page.text_content("#synthetic-banner").startswith("SYNTHETIC: every number on this page")
    tasks, summary = sweep.tasks, sweep.summary
    # The held-out split, apart from the estimate: labelled as one split's; no older
    # estimate over fresh splits in this summary.
    assert page.is_visible("#held-out-body") and page.is_hidden("#nested-part")
    assert page.text_content("#comparison-note").startswith(
        "One held-out split's numbers, apart from the estimate (view 1)"
    )
    assert page.text_content("#comparator-note") == ""
    # The held-out split's coverage per task and for the subtotal (its intervals made as a
    # new subject's are), with the Wilson interval to as many decimals.
    coverage = page.eval_on_selector_all(
        "#coverage-table tbody tr",
        "trs => trs.map(tr => [tr.dataset.task, tr.cells[1].textContent, tr.cells[3].textContent])",
    )
    method = "outer-fold calibrated (Mondrian by band)"
    assert [tuple(c) for c in coverage] == [
        ("Q1", method, "85.0 % [64.0, 94.8] %"),
        ("Q3", method, "85.0 % [64.0, 94.8] %"),
        ("subtotal", method, "90.0 % [69.9, 97.2] %"),
    ]
    assert page.text_content("#coverage-note").startswith("The held-out split's coverage")
    # The subtotal: its interval, calibration, AUC and the plot of the summed scores.
    cells = page.eval_on_selector_all(
        "#subtotal-table tbody td", "tds => tds.map(td => td.textContent)"
    )
    # (JavaScript's toFixed rounds an exact tie up: 1.0625 is 1.063, 0.875 is 0.88.)
    assert cells == [
        "20",
        "1.750 [1.375, 2.125]",
        "1.375 [1.063, 1.688]",
        "0.500",
        "0.750",
        "0.88",
        "0.50",
    ]
    assert "AUC of the predicted subtotal" in page.text_content("#auc-line")
    assert "0.813 [0.688, 0.938]" in page.text_content("#auc-line")
    # Points, their prediction intervals, y = x and the summary's calibration line.
    assert page.evaluate("() => document.getElementById('subtotal-plot').data.length") == 4
    assert "range 0–8" in page.text_content("#subtotal-note")
    # Training N, outcomes, excluded recordings, per-group error.
    assert "excluded: 3 (from summary.json)" in page.text_content("#data-note")
    training = page.eval_on_selector_all(
        "#training-table tbody tr",
        "trs => trs.map(tr => [tr.cells[1].textContent, tr.cells[2].textContent])",
    )
    assert [tuple(t) for t in training] == [
        (str(summary.tasks[t].training.n_train), str(summary.tasks[t].training.n_test))
        for t in tasks
    ]
    assert page.locator("#groups-table tbody tr").count() == 3 * (len(tasks) + 1)
    assert page.locator('#groups-table tr[data-group="MCI"]').count() == len(tasks) + 1
    groups = page.eval_on_selector_all(
        '#groups-table tr[data-task="Q1"]', "trs => trs.map(tr => tr.dataset.group)"
    )
    assert groups == [
        "healthy",
        "MCI",
        "dementia",
    ]  # by severity, not as the JSON happens to order them
    q3_counts = page.eval_on_selector(
        '#training-table tr[data-task="Q3"]',
        "tr => Array.from(tr.cells).slice(5).map(c => c.textContent)",
    )
    assert q3_counts == [
        "4 / 4",
        "5 / 5",
        "6 / 6",
        "7 / 7",
        "",
        "",
    ]  # Q3 scores 0-3: no column for 4 or 5
    # Each baseline's own signature, and which comparison is the primary one (this split's).
    assert page.locator("#comparison-table .tag.primary").count() == len(tasks)
    assert set(page.locator("#comparison-table .tag.primary").all_text_contents()) == {
        "primary, this split only"
    }
    # The training mean predicts a constant: no calibration slope, and the page says why.
    slopes = page.locator('#comparison-table tr[data-model="train_mean"] td:nth-child(8)')
    assert slopes.all_text_contents() == ["undefined"] * len(tasks)


def _cells(page, selector):
    return page.eval_on_selector(selector, "tr => Array.from(tr.cells).map(c => c.textContent)")


def _measure(measure, digits, sign=False):
    """A measure as the page writes it (JavaScript's toFixed: `dashboard_results.fixed`)."""
    write = signed if sign else fixed
    low, high = measure.ci
    return f"{write(measure.value, digits)} [{write(low, digits)}, {write(high, digits)}]"


def _p(value):
    return "< 0.001" if value < 0.001 else fixed(value, 3)


COLUMNS = (("rmse", 3), ("mae", 3), ("r2", 3), ("exact", 2), ("within_1", 2), ("kappa", 2))


def test_the_estimate_leads_with_the_summarys_numbers_and_words(browser_page, sweep):
    page, _, _ = browser_page
    summary = sweep.summary
    sections = page.eval_on_selector_all("main > section", "ss => ss.map(s => s.id)")
    assert sections[:4] == ["estimate-view", "intervals-view", "heatmap-view", "comparison-view"]
    assert page.text_content("#estimate-note").startswith(
        "The estimate: repeated nested cross-validation over every subject (2 × 5 outer folds)."
    )
    assert page.text_content("#estimate-comparator-note") == (
        summary.comparator.note[:1].upper() + summary.comparator.note[1:] + "."
    )
    assert page.text_content("#looks-line").startswith(
        "Looks: the results were scored on these data 1 time"
    )
    assert page.locator("#transfer-part").is_hidden()  # no sites in this sweep's labels
    for task, entry in summary.tasks.items():
        estimate = entry.estimate
        block = f'#estimate-view .estimate-block[data-task="{task}"]'
        # The verdict (the primary difference's, Holm-adjusted) beside the task's name.
        assert page.text_content(f"{block} h3 .mark") == (
            f"{VERDICT_MARKS[entry.verdict.result]} {entry.verdict.words}"
        )
        assert page.text_content(f"{block} .what") == f"It estimates {estimate.what}."
        assert page.text_content(f"{block} .design").startswith("2 × 5 outer folds (10 in all)")
        for scores in (estimate.network, *estimate.baselines):
            row = _cells(page, f'{block} table.estimate-models tr[data-model="{scores.key}"]')
            chosen = ", ".join(
                f"{sig} ({n} fold{'s' if n != 1 else ''})"
                for sig, n in scores.signatures_chosen.items()
            )
            assert row == [
                scores.label,
                *(_measure(getattr(scores, key), digits) for key, digits in COLUMNS),
                chosen,
            ]
        rows = page.eval_on_selector_all(
            f"{block} table.estimate-differences tbody tr",
            "trs => trs.map(tr => tr.dataset.baseline)",
        )
        assert rows == [d.baseline for d in estimate.differences]  # the primary first
        for d in estimate.differences:
            row = _cells(
                page, f'{block} table.estimate-differences tr[data-baseline="{d.baseline}"]'
            )
            tag = "primary: the verdict, Holm-adjusted" if d.primary else "secondary, unadjusted"
            mark = f"{VERDICT_MARKS[d.result]} " if d.primary else ""
            assert row == [
                f"network − {d.label}",
                _measure(d.rmse, 3, sign=True),
                _p(d.p_value),
                _p(d.p_holm) if d.primary else "–",
                f"{mark}{d.words}{tag}",
                *(_measure(getattr(d, key), digits, sign=True) for key, digits in COLUMNS[1:]),
            ]
    # The subtotal: points only (no item scale), no verdict, and its dementia AUC.
    sub = summary.subtotal.estimate
    block = '#estimate-view .estimate-block[data-task="subtotal"]'
    assert page.text_content(f"{block} h3") == "subtotal of Q1 + Q3 (range 0–8)"
    assert page.locator(f"{block} h3 .mark").count() == 0
    for scores in (sub.network, *sub.baselines):
        row = _cells(page, f'{block} table.estimate-models tr[data-model="{scores.key}"]')
        assert row == [scores.label, *(_measure(getattr(scores, k), d) for k, d in COLUMNS[:3])]
    auc = sub.dementia_auc
    assert [
        _cells(page, f'{block} table.estimate-auc tr[data-key="{key}"]')
        for key in ("network", "ridge", "difference")
    ] == [
        ["network", _measure(auc.network, 3), ""],
        ["Ridge", _measure(auc.baseline, 3), ""],
        ["network − Ridge", _measure(auc.difference, 3, sign=True), _p(auc.p_value)],
    ]
    assert page.text_content(f"{block} .auc-note").startswith("SYNTHETIC cohort: AUC of the summed")
    # The plot: per task, each model's RMSE estimate with its interval as error bars.
    traces = page.evaluate("""() => document.getElementById('estimate-plot').data
        .map(t => [t.name, t.x, t.y, t.error_y.array, t.error_y.arrayminus])""")
    first = summary.tasks["Q1"].estimate
    assert [t[0] for t in traces] == [s.label for s in (first.network, *first.baselines)]
    for k, (name, x, y, plus, minus) in enumerate(traces):
        assert x == list(sweep.tasks)
        found = [
            [s for s in (e.network, *e.baselines)][k].rmse
            for e in (summary.tasks[t].estimate for t in sweep.tasks)
        ]
        assert y == pytest.approx([m.value for m in found])
        assert plus == pytest.approx([m.ci[1] - m.value for m in found])
        assert minus == pytest.approx([m.value - m.ci[0] for m in found])


def test_the_transfer_estimate_apart_from_the_estimate(browser, tmp_path):
    """A sweep whose labels name each subject's site: the transfer estimate under the
    estimate, each block's held-out sites with the summary's RMSEs, and no verdict there."""
    experiment, _, _ = write_sited_sweep(tmp_path / "sited")
    summary = read_summary("summary.json", (experiment / "summary.json").read_text())
    page, refused, errors, context = _open(browser, write_dashboard(str(experiment)))
    try:
        assert page.locator("#transfer-part").is_visible()
        assert page.text_content("#transfer-title") == (
            "Transfer to an unseen site: leave-one-site-out, apart from the estimate"
        )
        assert page.text_content("#transfer-note").startswith(
            "Each of the 3 sites in the labels was held out in turn"
        )
        blocks = [(t, e.transfer) for t, e in summary.tasks.items()]
        blocks.append(("subtotal", summary.subtotal.transfer))
        for task, transfer in blocks:
            block = f'#transfer-blocks .estimate-block[data-task="{task}"]'
            assert page.text_content(f"{block} .design").startswith("3 sites held out in turn")
            rows = page.eval_on_selector_all(
                f"{block} table.held-out-groups tbody tr",
                "trs => trs.map(tr => Array.from(tr.cells).map(c => c.textContent))",
            )
            assert rows == [
                [
                    site.site,
                    str(site.n_subjects),
                    str(site.n_train),
                    fixed(site.network_rmse, 2),
                    fixed(site.comparator_rmse, 2),
                ]
                for site in transfer.sites
            ]
            network = page.text_content(
                f'{block} table.estimate-models tr[data-model="network"] td[data-metric="rmse"]'
            )
            assert network == _measure(transfer.network.rmse, 3)
        # The verdicts are the estimate's: none is drawn among the transfer's blocks.
        assert page.locator("#transfer-blocks [data-verdict]").count() == 0
        assert page.locator("#estimate-blocks [data-verdict]").count() == 2
        assert refused == [] and errors == []
    finally:
        context.close()


def _coverage(cell):
    """A coverage cell as the page writes it: percent to one decimal, the Wilson interval."""
    low, high = cell.coverage_ci
    return f"{fixed(100 * cell.coverage, 1)} % [{fixed(100 * low, 1)}, {fixed(100 * high, 1)}] %"


def _cell_row(cell, mark=""):
    return [
        cell.label,
        _coverage(cell),
        f"{cell.covered} / {cell.n}",
        fixed(cell.mean_width, 2),
        mark,
    ]


def test_the_intervals_coverage_is_the_summarys(browser_page, sweep):
    """View 2: per task and for the subtotal, the intervals' method, level, guarantee and
    coverage over the outer folds, every cell the summary's, the short ones marked; the plot
    of coverage per true score, task by task, against the nominal level."""
    page, _, _ = browser_page
    summary = sweep.summary
    reports = {t: e.prediction_intervals for t, e in summary.tasks.items()}
    reports["subtotal"] = summary.subtotal.prediction_intervals
    assert page.text_content("#intervals-note").startswith(
        "Each subject's prediction interval at the nominal level, made from the signed "
        "residuals of the repeated nested cross-validation's outer folds"
    )
    overview = page.eval_on_selector_all(
        "#intervals-table tbody tr",
        "trs => trs.map(tr => Array.from(tr.cells).map(c => c.textContent))",
    )
    assert overview == [
        [
            task,
            "outer-fold calibrated (Mondrian by band)",
            "90 %",
            _coverage(r.overall),
            f"{r.overall.covered} / {r.overall.n}",
            fixed(r.overall.mean_width, 2),
            ", ".join(r.short),
        ]
        for task, r in reports.items()
    ]
    for task, report in reports.items():
        assert report.short, "the fixture makes some cell of each fall short"
        block = f'#intervals-view .interval-block[data-task="{task}"]'
        assert page.text_content(f"{block} .method") == (
            "outer-fold calibrated (Mondrian by band), nominal 90 %"
        )
        assert page.text_content(f"{block} .guarantee") == (
            f"The guarantee that holds: {report.guarantee}"
        )
        rows = page.eval_on_selector_all(
            f"{block} table.interval-cells tbody tr:not(.part)",
            "trs => trs.map(tr => Array.from(tr.cells).map(c => c.textContent))",
        )
        cells = [report.overall, *report.by_band, *report.by_score, *report.by_group]
        assert rows == [_cell_row(c, "short of 90 %" if c.short else "") for c in cells]
        # The short cells, and only those, plainly marked: the words and the warning colour.
        short = page.eval_on_selector_all(
            f'{block} tr[data-short="true"]',
            "trs => trs.map(tr => [tr.dataset.label, getComputedStyle(tr.cells[0]).color])",
        )
        assert short == [[label, "rgb(207, 34, 46)"] for label in report.short]
        parts = page.eval_on_selector_all(
            f"{block} tr.part", "trs => trs.map(tr => tr.textContent)"
        )
        assert parts[0] == "by band of the prediction" and parts[-1] == "by group"
    # The plot: one panel per task, each per-score cell at its true score, the short ones
    # apart (the warning colour), with their Wilson intervals; the nominal level dashed.
    traces = page.evaluate("""() => document.getElementById('intervals-plot').data
        .map(t => ({meta: t.meta, x: t.x, y: t.y, name: t.name, dash: t.line && t.line.dash,
            plus: t.error_y && t.error_y.array, minus: t.error_y && t.error_y.arrayminus}))""")
    assert sorted({t["meta"]["task"] for t in traces}) == sorted(sweep.tasks)
    for task in sweep.tasks:
        mine = [t for t in traces if t["meta"]["task"] == task]
        nominal = [t for t in mine if t["meta"].get("nominal")]
        assert len(nominal) == 1 and nominal[0]["y"] == [0.9, 0.9]
        assert nominal[0]["dash"] == "dash" and nominal[0]["name"] == "nominal 90 %"
        per_score = [c for c in reports[task].by_score if c.label.startswith("true score")]
        for short in (False, True):
            expected = [c for c in per_score if c.short == short]
            found = [t for t in mine if t["meta"].get("short") is short]
            if not expected:
                assert found == []
                continue
            (trace,) = found
            assert trace["name"] == ("short of 90 %" if short else "coverage [95 % Wilson CI]")
            assert trace["x"] == [float(c.label.removeprefix("true score ")) for c in expected]
            assert trace["y"] == pytest.approx([c.coverage for c in expected])
            assert trace["plus"] == pytest.approx([c.coverage_ci[1] - c.coverage for c in expected])
            assert trace["minus"] == pytest.approx(
                [c.coverage - c.coverage_ci[0] for c in expected]
            )
    assert any(t["meta"].get("short") for t in traces)
    assert page.text_content("#intervals-held-out-note").endswith("is in view 4, apart from these.")


def test_a_page_without_a_held_out_split(browser, tmp_path):
    """Today's default sweep: the estimate only; the held-out views say in one line that no
    subject was held out."""
    sweep = write_synthetic_sweep(tmp_path / "bare", samples=2)
    page, refused, errors, context = _open(browser, write_dashboard(str(sweep.path)))
    try:
        blocks = page.eval_on_selector_all(
            "#estimate-view .estimate-block", "ds => ds.map(d => d.dataset.task)"
        )
        assert blocks == ["Q1", "Q3", "subtotal"]
        assert page.evaluate("() => document.getElementById('estimate-plot').data.length") == 4
        assert page.is_hidden("#held-out-body")
        # The intervals' coverage over the outer folds: every task's and the subtotal's.
        blocks = page.eval_on_selector_all(
            "#intervals-view .interval-block", "ds => ds.map(d => d.dataset.task)"
        )
        assert blocks == ["Q1", "Q3", "subtotal"]
        assert page.locator("#intervals-table tbody tr").count() == 3
        assert page.text_content("#intervals-held-out-note") == ""
        assert page.text_content("#comparison-note") == (
            "The sweep held out no subject (the shipped models learnt from every subject): their "
            "performance is the estimate's (view 1)."
        )
        assert page.evaluate("() => document.getElementById('comparison-plot').data") is None
        assert page.text_content("#subtotal-note").startswith(
            "No subtotal on held-out subjects: the sweep held out no subject"
        )
        assert page.locator("#subtotal-table tr").count() == 0
        assert page.text_content("#groups-note") == (
            "No error per group on held-out subjects: the sweep held out no subject."
        )
        # The verdict marks: the estimate's, on the winners' cells only.
        marked = page.eval_on_selector_all(
            "#heatmap td.cell",
            "tds => tds.filter(td => td.querySelector('.mark'))"
            ".map(td => [td.dataset.task, td.dataset.winner, td.dataset.verdict])",
        )
        assert sorted(map(tuple, marked)) == [("Q1", "true", "better"), ("Q3", "true", "worse")]
        assert refused == [] and errors == []
    finally:
        context.close()


def test_an_older_demos_page(browser, tmp_path):
    """A summary from before the declared comparator and the nested estimate: Ridge's verdicts,
    labelled as undeclared; the procedure estimate labelled optimistic; no error."""
    from tests.fixtures.demo_summary import write_old_demo

    experiment = write_old_demo(tmp_path)
    page, refused, errors, context = _open(
        browser, write_dashboard(str(experiment), tmp_path / "page")
    )
    try:
        assert page.text_content("#synthetic-banner").startswith("SYNTHETIC")
        heads = page.eval_on_selector_all(
            "#heatmap th.task", "ths => ths.map(th => th.textContent)"
        )
        assert heads == [f"Q{i}≈ no difference shown" for i in range(1, 6)]
        assert "This sweep declared no comparator" in page.text_content("#comparator-note")
        # No estimate: the view says why, and the held-out split is its numbers, as before.
        assert page.text_content("#estimate-note").startswith(
            "No nested cross-validation: this sweep's summary predates it"
        )
        assert page.locator("#estimate-view .estimate-block").count() == 0
        assert page.evaluate("() => document.getElementById('estimate-plot').data") is None
        # Nor intervals calibrated on outer folds: the view says so, and where its held-out
        # split's (CV+) coverage is.
        assert page.text_content("#intervals-note") == (
            f"No prediction intervals calibrated on the outer folds: {NOT_RECORDED}."
        )
        assert page.locator("#intervals-view .interval-block").count() == 0
        assert page.locator("#intervals-table tr").count() == 0
        assert page.evaluate("() => document.getElementById('intervals-plot').data") is None
        assert "CV+ intervals on its test subjects" in page.text_content("#intervals-held-out-note")
        assert page.is_visible("#held-out-body") and page.is_visible("#nested-part")
        assert (
            "procedure estimate (winning hyper-parameters re-used: optimistic)"
            in page.text_content("#nested-note")
        )
        assert page.locator("#nested-table tbody tr").count() == 5  # the network's, per task
        assert (
            page.locator(
                '#comparison-table tr[data-model="train_mean"] td:nth-child(8)'
            ).all_text_contents()
            == ["undefined"] * 5
        )
        # What its summary predates is said to be not recorded, view by view.
        assert f"Training N and outcomes: {NOT_RECORDED}." in page.text_content("#data-note")
        assert f"excluded: {NOT_RECORDED}" in page.text_content("#data-note")
        assert page.text_content("#groups-note") == f"No error per group: {NOT_RECORDED}."
        assert page.locator("#training-table tbody tr").count() == 0
        subtotal = page.eval_on_selector_all(
            "#subtotal-table tbody td", "tds => tds.map(td => td.textContent)"
        )
        assert subtotal[0] == "60" and subtotal[-2:] == [NOT_RECORDED, NOT_RECORDED]
        assert "not recorded" in page.text_content("#subtotal-points-note")
        assert page.evaluate("() => document.getElementById('subtotal-plot').data") is None
        # Its tasks' calibration: the points of test_predictions.csv, the summary's line.
        assert page.evaluate("() => document.getElementById('calibration-plot').data.length") == 3
        assert refused == [] and errors == []
    finally:
        context.close()


def _column(page, key):
    return page.eval_on_selector_all(
        f'#trials-table tbody td[data-key="{key}"]', "tds => tds.map(td => td.textContent)"
    )


def test_the_table_sorts_filters_and_exports(browser_page, sweep, tmp_path):
    page, _, _ = browser_page
    rmse = sorted(r.validation["rmse"] for r in sweep.rows)
    page.click('#trials-table th[data-key="val/rmse"]')
    shown = [float(v) for v in _column(page, "val/rmse")]
    assert shown == [float(f"{v:.4f}") for v in rmse[:50]] and shown == sorted(shown)
    assert page.get_attribute('#trials-table th[data-key="val/rmse"]', "aria-sort") == "ascending"
    page.click('#trials-table th[data-key="val/rmse"]')
    shown = [float(v) for v in _column(page, "val/rmse")]
    assert shown == [float(f"{v:.4f}") for v in sorted(rmse, reverse=True)[:50]]
    # 50 rows a page.
    assert len(sweep.rows) > 50 and page.text_content("#page-info") == f"1–50 of {len(sweep.rows)}"
    page.click("#page-next")
    shown = [float(v) for v in _column(page, "val/rmse")]
    assert shown == [float(f"{v:.4f}") for v in sorted(rmse, reverse=True)[50:]]
    assert page.text_content("#page-info") == f"51–{len(sweep.rows)} of {len(sweep.rows)}"
    assert page.is_disabled("#page-next") and not page.is_disabled("#page-prev")
    page.click("#page-prev")
    page.click('#trials-table th[data-key="name"]')
    names = [
        n.rsplit("-", 1) for n in _column(page, "name")
    ]  # numbers compare as numbers: Q1-x-2 < Q1-x-10
    assert [n[0] for n in names] == sorted(
        (n[0] for n in names), key=lambda g: g[:2]
    )  # tasks in order
    for (group, sample), (next_group, next_sample) in itertools.pairwise(names):
        assert group != next_group or int(sample) < int(next_sample)

    page.fill("#table-filter", f"Q3 {sweep.signatures[2]}")
    expected = [r for r in sweep.rows if r.task == "Q3" and r.signature == sweep.signatures[2]]
    assert sorted(_column(page, "trial_id")) == sorted(r.trial_id for r in expected)
    assert page.text_content("#table-count") == f"{len(expected)} of {len(sweep.rows)} rows"
    with page.expect_download() as download:
        page.click("#export-csv")
    saved = tmp_path / "export.csv"
    download.value.save_as(saved)
    lines = saved.read_text().splitlines()
    assert lines[0] == (sweep.path / "trials.csv").read_text().splitlines()[0].replace(
        "trial_id,", "trial_id,name,", 1
    )
    assert len(lines) == 1 + len(expected)
    page.fill("#table-filter", "")
    page.select_option("#table-status", "asha")
    assert set(_column(page, "status")) == {rules.STATUS_WORDS[rules.STOPPED_BY_ASHA]}
    page.select_option("#table-status", "")


def test_no_console_error_no_request_no_external_reference(browser_page, sweep, tmp_path):
    page, refused, errors = browser_page
    page.select_option("#task-select", "Q1")
    page.locator("#hp-view").scroll_into_view_if_needed()  # the parallel coordinates draw when seen
    page.wait_for_function("window.dashboard.pending().length === 0", timeout=60_000)
    assert (
        page.evaluate("() => document.querySelectorAll('#parcoords-plot .parcoords').length") >= 1
    )
    assert page.evaluate("() => document.getElementById('calibration-plot').data.length") == 3
    page.locator("#top").scroll_into_view_if_needed()
    refs = page.evaluate("""() => Array
        .from(document.querySelectorAll('[src], [href], [srcset], [action]'))
        .map(e => e.getAttribute('src') || e.getAttribute('href') || e.getAttribute('srcset')
            || e.getAttribute('action'))""")
    assert [r for r in refs if r.lower().lstrip().startswith(("http:", "https:", "//"))] == []
    assert refused == [] and errors == []
    shot = tmp_path / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
    if os.environ.get("DASHBOARD_SCREENSHOT"):
        shutil.copy(shot, os.environ["DASHBOARD_SCREENSHOT"])
    assert not math.isnan(page.evaluate("window.dashboard.timings['curves-view']"))


def test_a_served_page_reloads_while_the_sweep_runs(browser, tmp_path):
    """`--serve`: the open page polls version.json and reloads itself when the rebuilt page's
    data differ (here the running trial reports one more epoch)."""
    import json

    from mmse_app.dashboard import Dashboard, start_server

    sweep = write_synthetic_sweep(tmp_path / "live", finished=False, running=1)
    board = Dashboard(str(sweep.path), tmp_path / "page", refresh_s=0.2)
    board.refresh(write_version=True)
    first = board.version
    server = start_server(tmp_path / "page", 0)
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    errors: list[str] = []
    page = browser.new_page()
    try:
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(base) else r.abort())
        page.goto(base)
        page.wait_for_function("window.dashboardReady === true", timeout=60_000)
        assert page.evaluate("window.dashboard.data.version") == first
        page.select_option("#task-select", sweep.trials[-1].task)
        result = sweep.path / sweep.trials[-1].folder / "result.json"
        last = json.loads(result.read_text().splitlines()[-1])
        result.write_text(
            result.read_text() + json.dumps({**last, "epoch": last["epoch"] + 1}) + "\n"
        )
        assert board.refresh(write_version=True) and board.version != first
        page.wait_for_function(
            f"window.dashboard && window.dashboard.data.version === {board.version!r}",
            timeout=60_000,
        )
        assert (
            page.evaluate("window.dashboard.state.task") == sweep.trials[-1].task
        )  # the view is kept
    finally:
        page.close()
        server.shutdown()
        server.server_close()
    assert errors == []
