"""The results the dashboard shows (`mmse_app/dashboard_results.py`): read from version-1
summaries in each layout a sweep writes (the synthetic sweep writes them through the sweep's
own writers and, for the estimate, the core's own functions): the estimate alone (today's
default: no subject held out), the estimate and a held-out split, a held-out split alone (a
summary from before the estimate); and from an older demo's summary (version 0, upgraded by
`read_summary`, which names what it lacked).

The page recomputes nothing: its estimate, verdicts, labels, orders, calibration lines and
subtotal are the summary's, its subtotal points test_predictions.csv's; what an older summary
lacks it says is not recorded. No Ray, no browser.
"""

from __future__ import annotations

import csv
import json

import pytest

from mmse_app.dashboard import render_page
from mmse_app.dashboard_data import load_experiment, page_data
from mmse_app.dashboard_results import NOT_RECORDED, VERDICT_MARKS, fixed
from mmse_model.core.domain import BASELINE_LABELS, NETWORK_LABEL
from mmse_model.core.errors import InputError
from mmse_model.evaluation.intervals import METHOD_WORDS, MONDRIAN
from mmse_model.sweeps.predictions import COLUMNS, SUBTOTAL, read_predictions
from mmse_model.sweeps.summary_schema import OLD_PROCEDURE_LABEL, Summary, read_summary
from tests.fixtures.demo_summary import write_old_demo
from tests.fixtures.synthetic_sweep import NESTED_LABEL, write_synthetic_sweep


@pytest.fixture(scope="module")
def newest(tmp_path_factory):
    """Today's default: the estimate over every subject, no held-out split."""
    sweep = write_synthetic_sweep(tmp_path_factory.mktemp("newest") / "sweep", samples=3)
    return sweep, page_data(load_experiment(str(sweep.path)))


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    """The estimate, and a held-out split besides (split.test_fraction > 0)."""
    sweep = write_synthetic_sweep(
        tmp_path_factory.mktemp("split") / "sweep", samples=3, held_out=True
    )
    return sweep, page_data(load_experiment(str(sweep.path)))


@pytest.fixture(scope="module")
def before_estimate(tmp_path_factory):
    """A summary from before the estimate: a held-out split, the older nested estimate."""
    sweep = write_synthetic_sweep(
        tmp_path_factory.mktemp("before") / "sweep",
        samples=3,
        estimate=False,
        held_out=True,
        nested=True,
    )
    return sweep, page_data(load_experiment(str(sweep.path)))


def _rewrite_summary(sweep, change):
    summary = json.loads((sweep.path / "summary.json").read_text())
    change(summary)
    (sweep.path / "summary.json").write_text(json.dumps(summary))
    return page_data(load_experiment(str(sweep.path)))


@pytest.mark.parametrize("layout", ["newest", "split", "before_estimate"])
def test_the_fixture_writes_what_a_sweep_writes(layout, request):
    sweep, data = request.getfixturevalue(layout)
    summary = read_summary("summary.json", (sweep.path / "summary.json").read_text())
    assert (summary.format_version, summary.not_recorded) == (Summary.FORMAT_VERSION, ())
    assert summary == sweep.summary and data.results_not_recorded == ()
    # The fixture writes the file with the sweep's own writer.
    with open(sweep.path / "test_predictions.csv") as handle:
        assert tuple(next(csv.reader(handle))) == COLUMNS
    estimated = layout != "before_estimate"
    assert all((e.estimate is not None) == estimated for e in summary.tasks.values())
    assert all((e.test is not None) == (layout != "newest") for e in summary.tasks.values())
    assert (summary.comparator.adjustment == "holm") == estimated
    assert (summary.looks is not None) == estimated


# --- the estimate: repeated nested cross-validation over every subject -------------------------


def test_the_estimate_view_is_the_summarys(newest):
    sweep, data = newest
    view, summary = data.estimate, sweep.summary
    assert view.recorded and list(view.tasks) == list(summary.tasks) and view.missing == ()
    assert view.note.startswith(
        "The estimate: repeated nested cross-validation over every subject (2 × 5 outer folds)."
    )
    estimate = summary.tasks["Q1"].estimate
    assert "mean over the 10 outer folds with its 95 % interval" in view.note
    assert estimate.interval in view.note
    assert view.comparator_note == data.comparator.note
    assert (view.p_label, view.p_adjusted_label) == (
        "p (unadjusted)",
        "Holm-adjusted p (the verdict's)",
    )
    for task, entry in summary.tasks.items():
        estimate, block = entry.estimate, view.tasks[task]
        assert block.title == f"{task}: {entry.item} (0–{entry.score_range[1]:g})"
        assert block.design == (
            "2 × 5 outer folds (10 in all), 60 subjects; the search in each outer fold: "
            "2 hyper-parameter samples × 2 signatures on 3 inner folds, successive halving at "
            "epochs 2, 4 (best 1/2 on)"
        )
        assert (estimate.n_subjects, estimate.repeats, estimate.outer_folds) == (60, 2, 5)
        assert block.what == f"It estimates {estimate.what}."
        # Every measure, the item's scale too, in the tables' order.
        assert [c.key for c in block.columns] == [
            "rmse",
            "mae",
            "r2",
            "exact",
            "within_1",
            "kappa",
        ]
        # Every model's numbers are the summary's: the network first, then the baselines.
        assert [m.scores for m in block.models] == [estimate.network, *estimate.baselines]
        assert [m.label for m in block.models] == [
            NETWORK_LABEL,
            "training mean",
            "Ridge",
            "HistGradientBoosting",
        ]
        assert block.models[0].signatures == ", ".join(
            f"{sig} ({n} fold{'s' if n != 1 else ''})"
            for sig, n in estimate.network.signatures_chosen.items()
        )
        # The differences in the summary's order (the primary, the verdict's, first), with
        # their p-values and words; only the verdict's carries a mark.
        assert [d.difference for d in block.differences] == list(estimate.differences)
        assert [d.label for d in block.differences] == [
            "network − Ridge",
            "network − training mean",
            "network − HistGradientBoosting",
        ]
        primary, *secondary = block.differences
        assert primary.difference.primary and primary.difference.p_holm is not None
        assert primary.tag == "primary: the verdict, Holm-adjusted"
        assert primary.mark == VERDICT_MARKS[entry.verdict.result]
        assert primary.difference.words == entry.verdict.words
        assert block.verdict == entry.verdict
        assert all(d.tag == "secondary, unadjusted" and d.mark == "" for d in secondary)
        assert all(d.difference.p_holm is None for d in secondary)
    assert view.tasks["Q1"].verdict.words == "network better"
    assert view.tasks["Q3"].verdict.words == "Ridge better"
    # The heatmap's marks are the estimate's verdicts, on the winners' cells only.
    winners = {c.task: (c.verdict, c.mark) for c in data.heatmap.cells if c.winner}
    assert winners == {"Q1": ("better", "✓"), "Q3": ("worse", "✗")}
    assert all(c.verdict is None and c.mark == "" for c in data.heatmap.cells if not c.winner)


def test_the_subtotals_estimate_and_its_dementia_auc(newest):
    sweep, data = newest
    recorded = sweep.summary.subtotal.estimate
    block = data.estimate.subtotal
    assert data.estimate.subtotal_note == "" and block.task == "subtotal"
    assert block.title == "subtotal of Q1 + Q3 (range 0–8)"
    assert block.design == (
        "2 × 5 outer folds (10 in all), 60 subjects; each model's predictions summed over the "
        "tasks, subject by subject"
    )
    # No item scale for a sum of items.
    assert [c.key for c in block.columns] == ["rmse", "mae", "r2"]
    assert [m.scores for m in block.models] == [recorded.network, *recorded.baselines]
    assert [d.difference for d in block.differences] == list(recorded.differences)
    # The subtotal has no verdict: its primary comparison is unadjusted and unmarked.
    assert block.verdict is None and all(d.mark == "" for d in block.differences)
    assert block.differences[0].tag == "primary comparator, unadjusted: no verdict here"
    auc = recorded.dementia_auc
    assert [(a.key, a.label, a.measure, a.signed, a.p_value) for a in block.auc] == [
        ("network", "network", auc.network, False, None),
        ("ridge", "Ridge", auc.baseline, False, None),
        ("difference", "network − Ridge", auc.difference, True, auc.p_value),
    ]
    assert block.auc_note == (
        f"SYNTHETIC cohort: AUC of the summed prediction for telling the dementia group from "
        f"the others ({auc.n_dementia} vs {auc.n_other} subjects), the network's and the "
        "declared comparator's (Ridge), mean over the outer folds with its 95 % interval; no "
        "clinical cut-off is implied."
    )
    # The subtotal's search is each task's own: the summary's sentence says so, as drawn.
    assert "x each task's signatures" in recorded.what and block.what.endswith(f"{recorded.what}.")


def test_without_a_held_out_split_the_page_says_so_once(newest):
    sweep, data = newest
    assert not data.comparison.held_out and data.comparison.tasks == {}
    assert data.comparison.note == (
        "The sweep held out no subject (the shipped models learnt from every subject): their "
        "performance is the estimate's (view 1)."
    )
    assert data.comparison.coverage == () and data.comparison.estimate_note == ""
    assert not data.subtotal.recorded and data.subtotal.note == (
        "No subtotal on held-out subjects: the sweep held out no subject (the shipped models "
        "learnt from every subject); the subtotal's estimate is in view 1."
    )
    for task in sweep.tasks:
        assert data.calibration[task].predicted == ()
        assert data.calibration[task].note.startswith(
            f"{task}: no test predictions to calibrate: the sweep held out no subject"
        )
    assert "The sweep held out no subject: every subject trained the shipped models" in (
        data.data.note
    )
    assert [(r.task, r.n_train, r.n_test) for r in data.data.training] == [
        ("Q1", 60, 0),
        ("Q3", 60, 0),
    ]
    assert data.data.groups_note == (
        "No error per group on held-out subjects: the sweep held out no subject."
    )


def test_the_looks_and_a_config_changed_between_them(newest, tmp_path):
    _, data = newest
    assert data.estimate.looks == (
        "Looks: the results were scored on these data 1 time (looks.jsonl beside the sweep "
        "record); the config did not change between looks."
    )
    assert data.estimate.looks_changed is False
    sweep = write_synthetic_sweep(tmp_path / "s", samples=2, looks=3, config_changed=True)
    assert (sweep.summary.looks.count, sweep.summary.looks.config_changed) == (3, True)
    assert len((sweep.path / "looks.jsonl").read_text().splitlines()) == 3
    view = page_data(load_experiment(str(sweep.path))).estimate
    assert view.looks_changed and view.looks == (
        "Looks: the results were scored on these data 3 times (looks.jsonl beside the sweep "
        "record); the config changed between looks: these numbers may reflect choices made "
        "after seeing earlier ones."
    )


def test_the_estimate_and_a_held_out_split_apart(split):
    sweep, data = split
    # The estimate leads, as in the layout without a held-out split.
    assert data.estimate.recorded and list(data.estimate.tasks) == ["Q1", "Q3"]
    for task, entry in sweep.summary.tasks.items():
        assert data.estimate.tasks[task].models[0].scores == entry.estimate.network
        # The held-out split's numbers, labelled as one split's: they decide nothing.
        cmp = data.comparison.tasks[task]
        assert cmp.models[0].test == entry.test and cmp.verdict == entry.verdict
        assert [m.tag for m in cmp.models] == [
            "",
            "secondary, this split only",
            "primary, this split only",
            "secondary, this split only",
        ]
    assert data.comparison.held_out and data.comparison.note.startswith(
        "One held-out split's numbers, apart from the estimate (view 1): one draw of test "
        "subjects, so they vary with the draw; the verdicts are the estimate's"
    )
    assert data.comparison.comparator_note == "" and data.comparison.estimate_note == ""
    assert data.subtotal.recorded and data.subtotal.note.startswith(
        "One held-out split's numbers, apart from the estimate (view 1). The sum of Q1 + Q3"
    )
    assert data.subtotal.points is not None and data.calibration["Q1"].predicted


def test_a_declared_comparator_other_than_the_lowest_estimate_gives_the_verdict(tmp_path):
    sweep = write_synthetic_sweep(tmp_path / "s", samples=2, primary="train_mean")
    data = page_data(load_experiment(str(sweep.path)))
    assert data.comparator.primary_label == BASELINE_LABELS["train_mean"]
    for task, entry in sweep.summary.tasks.items():
        lowest = min(entry.estimate.baselines, key=lambda b: b.rmse.value)
        assert lowest.key != "train_mean"
        block = data.estimate.tasks[task]
        assert entry.verdict.baseline == "train_mean" and block.verdict == entry.verdict
        assert [(d.difference.baseline, d.tag) for d in block.differences] == [
            ("train_mean", "primary: the verdict, Holm-adjusted"),
            ("ridge", "secondary, unadjusted"),
            ("hist_gradient_boosting", "secondary, unadjusted"),
        ]
    # Q3's Ridge beats its network, but the declared training mean does not: no "worse".
    assert data.estimate.tasks["Q3"].verdict.result == "level"
    assert data.estimate.tasks["Q3"].verdict.words == "no difference shown"
    assert data.estimate.tasks["Q3"].differences[1].difference.words == "Ridge better"
    assert {c.task: c.mark for c in data.heatmap.cells if c.winner} == {"Q1": "✓", "Q3": "≈"}
    assert "the task's verdict against training mean" in data.heatmap.note


@pytest.mark.parametrize(
    "nested, reason",
    [
        (
            True,
            (
                "this sweep ran the earlier nested estimate over fresh outer splits instead, "
                "shown with the held-out split (view 4)"
            ),
        ),
        (
            False,
            (
                "the sweep ran none (evaluation.outer_repeats 0); its numbers are the held-out "
                "split's (view 4)"
            ),
        ),
    ],
)
def test_a_summary_without_the_estimate_says_why(tmp_path, nested, reason):
    sweep = write_synthetic_sweep(
        tmp_path / "s", samples=2, estimate=False, held_out=True, nested=nested
    )
    view = page_data(load_experiment(str(sweep.path))).estimate
    assert not view.recorded and view.tasks == {} and view.subtotal is None
    assert view.note == f"No nested cross-validation: {reason}."
    assert view.looks == "Looks (how often results were scored on these data): not recorded."


# --- the prediction intervals: their coverage over the outer folds ---------------------------


def _interval_blocks(sweep, view):
    """(report, block) per task and for the subtotal: the summary's and the page's."""
    summary = sweep.summary
    pairs = [(e.prediction_intervals, view.tasks[t]) for t, e in summary.tasks.items()]
    return [*pairs, (summary.subtotal.prediction_intervals, view.subtotal)]


@pytest.mark.parametrize("layout", ["newest", "split"])
def test_the_intervals_view_is_the_summarys(layout, request):
    sweep, data = request.getfixturevalue(layout)
    view = data.intervals
    assert view.recorded and list(view.tasks) == list(sweep.summary.tasks)
    assert view.missing == () and view.subtotal_note == ""
    source = sweep.summary.tasks["Q1"].prediction_intervals.source
    assert view.note.startswith(
        f"Each subject's prediction interval at the nominal level, made from the {source}."
    )
    assert "counted in subjects" in view.note and "95 % Wilson interval" in view.note
    for report, block in _interval_blocks(sweep, view):
        # How they are made and what holds: the summary's, its method in words.
        assert block.method == METHOD_WORDS[report.method] == METHOD_WORDS[MONDRIAN]
        assert (block.level, block.level_text) == (report.level, "90 %") == (0.9, "90 %")
        assert block.guarantee == report.guarantee and block.nominal_label == "nominal 90 %"
        # Every cell the summary's, in its order: overall, by band, by true score, by group.
        assert block.overall.cell == report.overall
        assert [p.key for p in block.parts] == ["band", "score", "group"]
        assert [[c.cell for c in p.cells] for p in block.parts] == [
            list(report.by_band),
            list(report.by_score),
            list(report.by_group),
        ]
        cells = [block.overall, *(c for p in block.parts for c in p.cells)]
        # The cells the summary lists as short, and only those, marked plainly.
        assert report.short, "the fixture makes some cell fall short"
        assert [c.cell.label for c in cells if c.mark] == list(report.short) == list(block.short)
        assert {c.mark for c in cells if c.cell.short} == {block.short_label} == {"short of 90 %"}
        assert block.short_text == ", ".join(report.short)
        assert all(c.absent == "" for c in cells)
        calibration = report.calibration
        assert block.calibration.startswith(
            "Calibrated on every outer fold's signed residuals, in 3 bands of the prediction, "
            f"cut at {fixed(calibration.cuts[0], 2)} and {fixed(calibration.cuts[1], 2)}"
        )
    # The plot's points: each task's per-score cells at their true score; the subtotal's
    # cells are thirds, in its table only.
    for task, entry in sweep.summary.tasks.items():
        block = view.tasks[task]
        per_score = [c for c in entry.prediction_intervals.by_score if c.label.startswith("true")]
        assert [(p.score, p.cell) for p in block.points] == [
            (float(c.label.removeprefix("true score ")), c) for c in per_score
        ]
        assert block.title == f"{task}: {entry.item} (0–{entry.score_range[1]:g})"
    assert view.subtotal.points == () and view.subtotal.title == "subtotal of Q1 + Q3 (range 0–8)"
    assert "The subtotal's, by third of its true scores, is in its table." in view.plot_note
    # Q3's lowest true scores fall short (the made-up network regresses to the mean).
    assert {c.cell.label for c in view.tasks["Q3"].points if c.mark} >= {"true score 0"}
    held_out = layout == "split"
    assert bool(view.held_out_note) == held_out
    if held_out:
        assert view.held_out_note == (
            "The held-out split's coverage (outer-fold calibrated (Mondrian by band) intervals "
            "on its test subjects, one split) is in view 4, apart from these."
        )


def test_the_held_out_splits_coverage_apart(split):
    sweep, data = split
    rows = data.comparison.coverage
    summary = sweep.summary
    assert [(r.task, r.coverage, r.level_text) for r in rows] == [
        *((t, e.intervals, "90 %") for t, e in summary.tasks.items()),
        (SUBTOTAL, summary.subtotal.intervals, "90 %"),
    ]
    assert {r.coverage.method for r in rows} == {METHOD_WORDS[MONDRIAN]}
    assert data.comparison.coverage_note.startswith("The held-out split's coverage (one split)")
    assert "apart from the coverage over the outer folds (view 2)" in data.comparison.coverage_note
    assert data.comparison.coverage_columns[:3] == ("task", "intervals", "nominal level")


def test_a_summary_without_the_intervals_says_why(before_estimate):
    _, data = before_estimate
    view = data.intervals
    assert not view.recorded and view.tasks == {} and view.subtotal is None
    assert view.note == (
        "No prediction intervals calibrated on the outer folds: they are calibrated on the "
        "outer folds of the repeated nested cross-validation, and the sweep ran none "
        "(evaluation.outer_repeats 0)."
    )
    # Its held-out split's coverage (CV+) stays where it was, said to be that.
    assert view.held_out_note == (
        "The held-out split's coverage (CV+ intervals on its test subjects, one split) is in "
        "view 4, apart from these."
    )
    assert {r.coverage.method for r in data.comparison.coverage} == {"CV+"}
    assert "(view 2)" not in data.comparison.coverage_note


def test_an_estimate_written_before_the_intervals_says_they_are_not_recorded(tmp_path):
    sweep = write_synthetic_sweep(tmp_path / "s", samples=2)

    def drop(summary, tasks):
        for task in tasks:
            summary["tasks"][task].pop("prediction_intervals", None)
        summary["subtotal"].pop("prediction_intervals", None)

    view = _rewrite_summary(sweep, lambda s: drop(s, ["Q3"])).intervals
    assert view.recorded and list(view.tasks) == ["Q1"] and view.subtotal is None
    assert [(m.label, m.text) for m in view.missing] == [
        ("Q3", f"no prediction intervals: {NOT_RECORDED}")
    ]
    assert view.subtotal_note == f"No intervals for the subtotal: {NOT_RECORDED}."
    view = _rewrite_summary(sweep, lambda s: drop(s, ["Q1"])).intervals
    assert not view.recorded and view.note == (
        f"No prediction intervals calibrated on the outer folds: {NOT_RECORDED}."
    )


# --- a summary from before the estimate (version 1) --------------------------------------------


def test_the_verdict_is_the_declared_comparators(before_estimate):
    sweep, data = before_estimate
    comp = data.comparator
    assert comp.declared and comp.primary == "ridge" and comp.primary_label == "Ridge"
    assert comp.adjustment == "unadjusted for the 2 tasks"
    assert comp.note.startswith("Paired 95 % bootstrap intervals")
    assert "(training mean, HistGradientBoosting) are secondary" in comp.note
    for task, entry in sweep.summary.tasks.items():
        cmp = data.comparison.tasks[task]
        assert cmp.verdict == entry.verdict and cmp.verdict.baseline == "ridge"
        # Every comparison in the summary's order (the primary first), with its words.
        compared = [m.comparison for m in cmp.models if m.comparison]
        assert sorted(compared, key=lambda c: not c.primary) == list(entry.comparisons)
        assert [m.primary for m in cmp.models[1:]] == [False, True, False]
        assert {m.key: m.signature for m in cmp.models[1:]} == {
            b.key: f"{b.signature} ({fixed(b.cv_rmse)})" for b in entry.baselines
        }
    assert data.comparison.tasks["Q1"].verdict.words == "network better"
    assert data.comparison.tasks["Q3"].verdict.words == "Ridge better"


def test_a_declared_comparator_other_than_the_lowest_test_rmse_gives_the_verdict(tmp_path):
    # Ridge has the lowest test RMSE of the baselines on both tasks; train mean is declared.
    sweep = write_synthetic_sweep(
        tmp_path / "s", samples=2, primary="train_mean", estimate=False, held_out=True
    )
    data = page_data(load_experiment(str(sweep.path)))
    assert data.comparator.primary_label == BASELINE_LABELS["train_mean"]
    for task, entry in sweep.summary.tasks.items():
        lowest = min(entry.baselines, key=lambda b: b.test.rmse)
        assert lowest.key == "ridge"
        cmp = data.comparison.tasks[task]
        assert cmp.verdict.baseline == "train_mean" and cmp.verdict.label == "training mean"
        tags = {m.key: m.tag for m in cmp.models}
        assert tags == {
            "network": "",
            "train_mean": "primary: the verdict",
            "ridge": "secondary",
            "hist_gradient_boosting": "secondary",
        }
    # Q3's Ridge beats its winner, but the declared training mean does not: no "worse" on Q3.
    assert data.comparison.tasks["Q3"].verdict.result == "better"
    winners = [c for c in data.heatmap.cells if c.winner]
    assert {c.task: (c.verdict, c.mark) for c in winners} == {
        "Q1": ("better", "✓"),
        "Q3": ("better", "✓"),
    }
    assert all(c.verdict is None and c.mark == "" for c in data.heatmap.cells if not c.winner)
    assert "its verdict against training mean" in data.heatmap.note


def test_holm_adjustment_is_said(newest):
    _, data = newest
    assert data.comparator.adjustment == "Holm-adjusted for the 2 tasks"
    assert data.comparator.note.startswith("Verdicts: the network minus Ridge, fold by fold")
    assert "Holm-adjusted for the 2 tasks" in data.heatmap.note
    assert "by chance alone" not in data.comparator.note
    # The note says itself that the other baselines are secondary: once.
    assert data.comparator.note.count("secondary") == 1


def test_nested_estimate_training_groups_and_coverage(before_estimate):
    sweep, data = before_estimate
    for task, entry in sweep.summary.tasks.items():
        estimate = data.comparison.tasks[task].estimate
        assert estimate.kind == "nested" and estimate.label == NESTED_LABEL
        assert estimate.repeats == 3
        assert estimate.search == "2 hyper-parameter samples × 2 signatures, 3 folds"
        # One row per model, the network first, each beside its test RMSE.
        assert [r.key for r in estimate.rows] == [
            "network",
            "train_mean",
            "ridge",
            "hist_gradient_boosting",
        ]
        by_key = {m.key: m for m in entry.nested_estimate.models}
        ridge = next(r for r in estimate.rows if r.key == "ridge")
        assert ridge.estimate == by_key["ridge"] and ridge.test_rmse == entry.baselines[1].test.rmse
    assert NESTED_LABEL in data.comparison.estimate_note
    assert [(r.task, r.coverage.coverage) for r in data.comparison.coverage] == [
        ("Q1", 0.85),
        ("Q3", 0.85),
        (SUBTOTAL, 0.9),
    ]
    view = data.data
    assert view.note.startswith("Recordings the dataset build excluded: 3 (from summary.json).")
    assert view.score_columns == ("0", "1", "2", "3", "4", "5")
    q3 = next(r for r in view.training if r.task == "Q3")
    assert q3.counts == ((4, 4), (5, 5), (6, 6), (7, 7), None, None)  # Q3 scores 0-3
    assert (q3.n_train, q3.n_test) == (
        sweep.summary.tasks["Q3"].training.n_train,
        sweep.summary.tasks["Q3"].training.n_test,
    )
    # Groups in the summary's order (by severity), for every task and the subtotal.
    assert [(r.task, [g.group for g in r.groups]) for r in view.groups] == [
        (t, ["healthy", "MCI", "dementia"]) for t in ("Q1", "Q3", SUBTOTAL)
    ]
    assert data.banner.startswith("SYNTHETIC: every number on this page")
    assert "(the data root's dataset.json says so)" in data.banner


def test_the_subtotal_with_its_calibration_auc_and_points(before_estimate):
    sweep, data = before_estimate
    recorded = sweep.summary.subtotal
    sub = data.subtotal
    assert sub.recorded and sub.tasks == ("Q1", "Q3")
    assert sub.range == (0.0, 8.0)  # Q1 0-5 plus Q3 0-3, not 0-21
    assert "range 0–8" in sub.note and "not every task was run" in sub.note
    assert sub.test == recorded.test and sub.absent == {}
    assert sub.line_label == "calibration line: true = 0.50 + 0.88 × predicted (summary.json)"
    assert sub.auc == (
        "SYNTHETIC cohort: AUC of the predicted subtotal for telling the dementia group from the "
        "others (8 vs 12 subjects): 0.813 [0.688, 0.938] (95 % bootstrap interval); no clinical "
        "cut-off is implied."
    )
    # Each test subject's summed scores and interval are test_predictions.csv's subtotal rows.
    with open(sweep.path / "test_predictions.csv") as handle:
        rows = [r for r in csv.DictReader(handle) if r["task"] == SUBTOTAL]
    assert len(rows) == 20 and sub.points.subject_id == tuple(r["subject_id"] for r in rows)
    for key in ("true", "predicted", "lo", "hi"):
        assert getattr(sub.points, key) == tuple(float(r[key]) for r in rows)


def test_a_recorded_null_slope_is_undefined(tmp_path):
    sweep = write_synthetic_sweep(tmp_path / "s", samples=2, held_out=True)
    data = _rewrite_summary(
        sweep,
        lambda s: s["subtotal"]["test"].update(calibration_slope=None, calibration_intercept=None),
    )
    assert data.subtotal.absent == {
        "calibration_slope": "undefined",
        "calibration_intercept": "undefined",
    }
    assert data.subtotal.line_label == ""


def test_a_constant_prediction_has_no_calibration_line(tmp_path):
    sweep = write_synthetic_sweep(tmp_path / "s", samples=2, held_out=True)

    def constant(summary):
        summary["tasks"]["Q1"]["test"].update(calibration_slope=None, calibration_intercept=None)

    data = _rewrite_summary(sweep, constant)
    q1 = data.calibration["Q1"]
    assert q1.line_label == "" and q1.predicted
    assert q1.note.endswith("Its prediction is constant: the calibration slope is undefined.")
    assert data.comparison.tasks["Q1"].models[0].absent["calibration_slope"] == "undefined"


def test_an_unknown_exclusion_count_and_a_real_cohort(tmp_path):
    sweep = write_synthetic_sweep(tmp_path / "s", samples=2, synthetic=False)
    data = _rewrite_summary(sweep, lambda s: s.update(excluded_recordings=None))
    assert "excluded: unknown (the data root does not say)." in data.data.note
    assert data.banner is None


def test_no_groups_file_and_no_nested_estimate(tmp_path):
    sweep = write_synthetic_sweep(
        tmp_path / "s", samples=2, groups=False, estimate=False, held_out=True
    )
    data = page_data(load_experiment(str(sweep.path)))
    assert data.data.groups == ()
    assert data.data.groups_note == "No error per group: the sweep was given no groups file."
    assert data.subtotal.auc == "No AUC: the sweep was given no groups file."
    assert all(c.estimate is None for c in data.comparison.tasks.values())
    assert data.comparison.estimate_note == (
        "No estimate over fresh splits: the sweep ran none (evaluation.outer_repeats 0)."
    )
    # The estimate's subtotal without groups: no AUC, and it says why.
    sweep = write_synthetic_sweep(tmp_path / "e", samples=2, groups=False)
    data = page_data(load_experiment(str(sweep.path)))
    view = data.estimate
    assert view.subtotal.auc == () and view.subtotal.auc_note == (
        "No AUC: the sweep was given no groups file."
    )
    # Nor coverage by group: the intervals' blocks break down by band and by true score.
    blocks = [*data.intervals.tasks.values(), data.intervals.subtotal]
    assert all(b.parts and [p.key for p in b.parts] == ["band", "score"] for b in blocks)
    render_page(data)


def test_numbers_in_sentences_read_as_the_scripts_write_them():
    # JavaScript's toFixed: halves away from zero, on the exact binary value.
    assert [fixed(0.8125), fixed(1.0625), fixed(0.875, 2), fixed(-0.0625)] == [
        "0.813",
        "1.063",
        "0.88",
        "-0.063",
    ]
    assert fixed(1.005, 2) == "1.00"  # 1.005 is 1.00499999... in binary
    assert fixed(None) == "–"


def test_test_predictions_have_one_reader():
    text = (
        "task,signature,subject_id,true,predicted,fold_sd,lo,hi\n"
        "Q1,m2_tau1_eps0.055_lmin2,s1,3.0,2.5,0.1,1.5,3.5\n"
        "subtotal,,s1,3.0,2.5,,0.5,4.5\n"
    )
    task, total = read_predictions("p.csv", text)
    assert (task.task, task.fold_sd, task.lo, task.hi) == ("Q1", 0.1, 1.5, 3.5)
    assert (total.task, total.signature, total.fold_sd, total.lo) == (SUBTOTAL, "", None, 0.5)
    with pytest.raises(InputError, match="p.csv: row 2 lacks a task, a true or a predicted score"):
        read_predictions("p.csv", "task,true,predicted\nQ1,,2\n")


# --- an older demo's summary (version 0) -------------------------------------------------------


@pytest.fixture()
def old_demo(tmp_path):
    experiment = write_old_demo(tmp_path)
    return tmp_path, experiment, page_data(load_experiment(str(experiment)))


def test_an_older_demo_reads_ridges_comparison_labelled_as_such(old_demo):
    _, experiment, data = old_demo
    assert data.comparator.declared is False and data.comparator.primary == "ridge"
    assert data.comparator.note.startswith("This sweep declared no comparator")
    summary = json.loads((experiment / "summary.json").read_text())
    q3 = summary["tasks"]["Q3"]
    # Q3: HGB has the lowest test RMSE and beats the winner; Ridge, the default comparator,
    # does not.
    assert (
        min(q3["baselines"], key=lambda b: q3["baselines"][b]["rmse"]) == "hist_gradient_boosting"
    )
    assert q3["comparisons"]["hist_gradient_boosting"]["worse"] is True
    assert {t: c.verdict.result for t, c in data.comparison.tasks.items()} == {
        t: "level" for t in ("Q1", "Q2", "Q3", "Q4", "Q5")
    }
    assert data.comparison.tasks["Q3"].verdict.source.startswith(
        "Ridge's paired comparison: this sweep declared no"
    )
    hgb = next(m for m in data.comparison.tasks["Q3"].models if m.key == "hist_gradient_boosting")
    assert hgb.comparison.result == "worse" and hgb.tag == "secondary"
    assert hgb.comparison.words == "HistGradientBoosting better"
    winner_cells = [c for c in data.heatmap.cells if c.winner]
    assert len(winner_cells) == 5 and all(c.verdict == "level" for c in winner_cells)
    assert all(c.verdict is None for c in data.heatmap.cells if not c.winner)
    assert [h.text for h in data.heatmap.heads] == ["≈ no difference shown"] * 5
    # Its verdicts are the held-out split's, and the page says so.
    assert "on the held-out test subjects" in data.heatmap.note
    assert data.comparison.held_out and data.comparison.comparator_note == data.comparator.note


def test_an_older_demo_has_no_estimate_and_says_why(old_demo):
    _, _, data = old_demo
    # Nor the intervals calibrated on its outer folds; its held-out split's CV+ coverage is
    # the held-out view's.
    assert not data.intervals.recorded and data.intervals.tasks == {}
    assert data.intervals.note == (
        f"No prediction intervals calibrated on the outer folds: {NOT_RECORDED}."
    )
    assert "CV+ intervals on its test subjects" in data.intervals.held_out_note
    view = data.estimate
    assert not view.recorded and view.tasks == {} and view.subtotal is None
    assert view.note == (
        "No nested cross-validation: this sweep's summary predates it; its procedure estimate "
        "(the winner's hyper-parameters re-used: optimistic) is shown with the held-out split "
        "(view 4)."
    )
    assert view.looks == f"Looks (how often results were scored on these data): {NOT_RECORDED}."


def test_an_older_sweeps_nested_estimate_is_why_it_has_none():
    """The replay fixture of 3b96bae: a summary with the earlier estimate over fresh splits."""
    from pathlib import Path

    folder = Path(__file__).parent / "fixtures" / "results_3b96bae"
    data = page_data(load_experiment(str(folder)))
    assert data.estimate.note.startswith(
        "No nested cross-validation: this sweep ran the earlier nested estimate over fresh "
        "outer splits instead"
    )
    assert all(c.estimate.kind == "nested" for c in data.comparison.tasks.values())
    render_page(data)


def test_an_older_demo_says_what_it_did_not_record(old_demo):
    _, experiment, data = old_demo
    summary = json.loads((experiment / "summary.json").read_text())
    upgraded = read_summary("summary.json", (experiment / "summary.json").read_text())
    assert data.results_not_recorded == upgraded.not_recorded != ()
    for task, cmp in data.comparison.tasks.items():
        estimate = cmp.estimate
        assert estimate.kind == "procedure" and estimate.label == OLD_PROCEDURE_LABEL
        assert [r.key for r in estimate.rows] == ["network"]
        assert (
            estimate.rows[0].estimate.rmse_mean
            == summary["tasks"][task]["procedure_estimate"]["rmse_mean"]
        )
        # The training mean predicts a constant: its slope is undefined, not 0.
        train_mean = next(m for m in cmp.models if m.key == "train_mean")
        assert train_mean.test.calibration_slope is None
        assert train_mean.absent["calibration_slope"] == "undefined"
        assert next(m for m in cmp.models if m.key == "ridge").signature == "not recorded"
    assert data.data.training == () and data.data.groups == ()
    assert data.data.note.endswith(f"Training N and outcomes: {NOT_RECORDED}.")
    assert f"excluded: {NOT_RECORDED}." in data.data.note
    assert data.data.groups_note == f"No error per group: {NOT_RECORDED}."
    # The subtotal: recorded, but not its calibration (nor per-subject sums in the CSV).
    sub = data.subtotal
    assert sub.range == (0.0, 21.0) and sub.line_label == "" and sub.points is None
    assert sub.absent == {
        "calibration_slope": NOT_RECORDED,
        "calibration_intercept": NOT_RECORDED,
    }
    assert "not recorded" in sub.points_note
    assert "0.814 [0.692, 0.917]" in sub.auc
    # Each task's calibration: its points from test_predictions.csv, its line from the summary.
    q1 = data.calibration["Q1"]
    assert q1.n == 60 and q1.slope == summary["tasks"]["Q1"]["test"]["calibration_slope"]
    # Its folder holds its results, not Tune's trial folders: no curves, and the page says so.
    assert data.trials == () and "holds no trial folders" in data.curves_missing
    render_page(data)


def test_an_older_demo_says_synthetic_as_its_summary_does(old_demo):
    out, experiment, data = old_demo
    # Its summary's upgrade reads SYNTHETIC off the AUC's groups file.
    assert "(the groups file's folder (SYNTHETIC.txt) says so)" in data.banner
    # The data root is not asked: the page says what the summary says, nothing more.
    (out / "data").mkdir()
    (out / "data" / "dataset.json").write_text(json.dumps({"format": 1, "synthetic": False}))
    (out / "data" / "build_report.csv").write_text("subject_id,task,reason\ns1,Q1,empty\n")
    assert page_data(load_experiment(str(experiment))) == data


def test_a_version_1_summary_reads_as_version_2_without_halving(newest):
    """Version 2 added the nested search's halving and the driver's phases, both optional: a
    version-1 file (which had neither) reads with them null and nothing else changed."""
    sweep, _ = newest
    document = json.loads((sweep.path / "summary.json").read_text())
    assert document["format_version"] == Summary.FORMAT_VERSION == 2
    searches = [e["estimate"]["search"] for e in document["tasks"].values()]
    assert searches and all(s["halving"] is not None for s in searches)
    for search in searches:
        search["halving"] = None
    (document.get("provenance") or {}).pop("phases", None)
    expected = read_summary("summary.json", json.dumps(document))
    for search in searches:
        del search["halving"]
    document["format_version"] = 1
    old = read_summary("summary.json", json.dumps(document))
    assert old == expected and old.format_version == 2 and old.not_recorded == ()
    assert all(e.estimate.search.cut_words() == "no early cut" for e in old.tasks.values())
