"""The evaluation protocol (no Ray): one shared split, intervals, fair baselines, subtotal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmse_model.core.config import Config
from mmse_model.core.domain import SCORE_RANGES
from mmse_model.data.dataset import Split, TaskData, load_group, shared_split
from mmse_model.evaluation.baselines import baselines_over_signatures, training_folds
from mmse_model.evaluation.scoring import (
    bootstrap_auc_interval,
    bootstrap_intervals,
    held_out_rows,
    score_predictions,
)
from mmse_model.sweeps.nested import (
    IN_PROCESS,
    NETWORK,
    Choice,
    NestedSearch,
    RepeatResult,
    run_repeats_in_process,
)
from mmse_model.sweeps.report import format_summary
from mmse_model.sweeps.results import signature_rows
from mmse_model.sweeps.summary import (
    SUBTOTAL,
    nested_estimates,
    subtotal_scores,
    summarise_sweep,
    training_description,
)
from mmse_model.training.checkpoint import load_checkpoint, save_checkpoint
from mmse_model.training.loop import RunSpec, load_run_data, train_run
from tests.conftest import SIG, WEAK_SIG
from tests.fixtures.toy_data import write_planted_root
from tests.test_trainer import Recorder


def test_one_split_for_every_task_and_signature_stratified_on_the_total(data_root):
    config = Config().with_overrides(["split.folds=3"])
    splits = [
        load_run_data(RunSpec(str(data_root), (sig,), task, config))[1]
        for sig in (SIG, WEAK_SIG)
        for task in ("Q1", "Q3")
    ]
    assert all(s == splits[0] for s in splits)
    # Stratified on the subject's total over the tasks: the test subjects' totals spread
    # over the whole range, like the cohort's.
    totals = {}
    for task in ("Q1", "Q3"):
        group = load_group(data_root, [SIG], task, config.score_range(task))
        for sid, y in zip(group.subject_ids, group.y):
            totals[sid] = totals.get(sid, 0.0) + y
    cohort = np.array(list(totals.values()))
    test = np.array([totals[s] for s in splits[0].test_subjects])
    assert len(test) == 24
    assert abs(np.median(test) - np.median(cohort)) <= 1.0
    assert test.min() <= np.percentile(cohort, 10) and test.max() >= np.percentile(cohort, 90)
    # The split seed, not the initialisation seed, decides it.
    assert shared_split(data_root, SIG, 3, 0.2, 1, config.score_ranges) != splits[0]
    assert (
        load_run_data(RunSpec(str(data_root), (SIG,), "Q1", config.with_values({"seed": 7})))[1]
        == splits[0]
    )


def test_held_out_rows_match_whole_ids_whatever_their_width():
    # One task's file may hold only short ids while the shared split names longer ones.
    split = Split(
        test_subjects=("P100", "P7"), fold_of_subject={"P10": 0, "P11": 1, "P70": 0}, folds=2
    )
    ids = np.array(["P10", "P11", "P7", "P70"])  # dtype '<U3': "P100" does not fit
    assert held_out_rows(ids, split).tolist() == [False, False, True, False]


def test_intervals_cover_the_estimate_and_paired_differences_decide_better():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 6, 80).astype(float)
    good = np.clip(y + rng.normal(0, 0.5, 80), 0, 5)
    intervals, comparisons = bootstrap_intervals(
        y,
        {"network": good, "mean": np.full(80, y.mean()), "same": good.copy()},
        (0.0, 5.0),
        "network",
    )
    rmse = float(np.sqrt(np.mean((good - y) ** 2)))
    low, high = intervals["network"]["rmse_ci"]
    assert low < rmse < high and high - low < 0.3
    assert comparisons["mean"]["better"] and not comparisons["mean"]["worse"]
    assert comparisons["mean"]["rmse_diff_ci"][1] < 0
    # Identical predictions: every paired difference is 0, so nothing is "better".
    assert comparisons["same"]["rmse_diff_ci"] == [0.0, 0.0] and not comparisons["same"]["better"]


def test_the_bootstrap_resamples_subjects_with_all_their_rows():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 6, 40).astype(float)
    pred = np.clip(y + rng.normal(0, 0.7, 40), 0, 5)
    unique = np.array([f"S{i}" for i in range(40)])
    # One row per subject: the same draws as resampling rows.
    assert bootstrap_intervals(
        y, {"n": pred}, (0.0, 5.0), "n", subjects=unique
    ) == bootstrap_intervals(y, {"n": pred}, (0.0, 5.0), "n")
    # Each subject twice (two visits with different errors): the interval is the one of
    # resampling the 40 subjects, each drawn subject bringing both its rows.
    twice = np.concatenate([unique, unique])
    y2, pred2 = (
        np.concatenate([y, y]),
        np.concatenate([pred, np.clip(y + rng.normal(0, 0.7, 40), 0, 5)]),
    )
    intervals, _ = bootstrap_intervals(
        y2, {"n": pred2}, (0.0, 5.0), "n", replicates=500, subjects=twice
    )
    order = np.array([int(name[1:]) for name in np.unique(unique)])  # subjects in sorted order
    draws = order[np.random.default_rng(0).integers(0, 40, size=(500, 40))]
    rmse = [np.sqrt(np.mean((pred2[np.r_[d, d + 40]] - y2[np.r_[d, d + 40]]) ** 2)) for d in draws]
    np.testing.assert_allclose(intervals["n"]["rmse_ci"], np.percentile(rmse, [2.5, 97.5]))


def test_baselines_are_fold_ensembles_like_the_network(data_root):
    config = Config().with_overrides(["split.folds=3"])
    group, split = load_run_data(RunSpec(str(data_root), (SIG,), "Q1", config))
    data = group.task_data(SIG)
    predictions = baselines_over_signatures({SIG: data}, split, (0.0, 5.0))
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train, folds = training_folds(data, split)
    test = held_out_rows(data.subject_ids, split)
    alpha = predictions["ridge"][1]["alpha"]
    expected = np.mean(
        [
            np.clip(
                make_pipeline(StandardScaler(), Ridge(alpha=alpha))
                .fit(data.X[train][folds != k], data.y[train][folds != k])
                .predict(data.X[test]),
                0,
                5,
            )
            for k in range(3)
        ],
        axis=0,
    )
    np.testing.assert_allclose(predictions["ridge"][0], expected)
    means = [data.y[train][folds != k].mean() for k in range(3)]
    np.testing.assert_allclose(predictions["train_mean"][0], np.mean(means))


def test_subtotal_sums_each_subjects_winners_and_reads_synthetic_groups(tmp_path):
    predictions = []
    rng = np.random.default_rng(2)
    for task in ("Q1", "Q2", "Q3", "Q4", "Q5"):
        for i in range(30):
            truth = float(i % 4)
            predictions.append(
                {
                    "task": task,
                    "signature": SIG,
                    "subject_id": f"S{i}",
                    "true": truth,
                    "predicted": truth + rng.normal(0, 0.3),
                    "fold_sd": 0.1,
                }
            )
    predictions.append(
        {
            "task": "Q1",
            "signature": SIG,
            "subject_id": "only_q1",
            "true": 1.0,
            "predicted": 1.0,
            "fold_sd": 0.0,
        }
    )
    (tmp_path / "labels.csv").write_text(
        "subject_id,group\n"
        + "".join(f"S{i},{'dementia' if i % 4 == 0 else 'healthy'}\n" for i in range(28))
    )  # S28, S29: no group
    result = subtotal_scores(
        predictions, SCORE_RANGES, str(tmp_path / "labels.csv"), synthetic=True
    )
    assert result["n"] == 30 and result["all_five_tasks"] and result["range"] == [0.0, 21.0]
    test = result["test"]
    assert test["rmse_ci"][0] <= test["rmse"] <= test["rmse_ci"][1]
    assert test["calibration_slope"] == pytest.approx(1.0, abs=0.1)
    auc = result["dementia_auc"]
    # Dementia subjects (truth 0 on every task) have the lowest subtotals: near-perfect AUC.
    assert auc["synthetic"] and auc["auc"] > 0.95
    assert (auc["n_dementia"], auc["n_other"], auc["n_without_group"]) == (7, 21, 2)
    # Per group, as the file names them; S28 and S29 have no group and are left out.
    # Listed healthy first: the groups' order is the summary's, by severity.
    groups = {g["group"]: g for g in result["per_group"]}
    assert [g["group"] for g in result["per_group"]] == ["healthy", "dementia"]
    assert (groups["dementia"]["n"], groups["healthy"]["n"]) == (7, 21)
    true = {f"S{i}": 5 * float(i % 4) for i in range(30)}
    pred = {
        f"S{i}": sum(p["predicted"] for p in predictions if p["subject_id"] == f"S{i}")
        for i in range(30)
    }
    err = np.array([pred[f"S{i}"] - true[f"S{i}"] for i in range(28) if i % 4 == 0])
    assert groups["dementia"]["bias"] == pytest.approx(err.mean())
    assert groups["dementia"]["rmse"] == pytest.approx(np.sqrt(np.mean(err**2)))
    assert not subtotal_scores(predictions, SCORE_RANGES, str(tmp_path / "labels.csv"))[
        "dementia_auc"
    ]["synthetic"]


def test_the_subtotals_range_is_the_present_tasks_and_a_constant_has_no_calibration():
    predictions = [
        {
            "task": task,
            "signature": SIG,
            "subject_id": f"S{i}",
            "true": float(i % 3),
            "predicted": 1.0,
            "fold_sd": 0.0,
        }
        for task in ("Q1", "Q3")
        for i in range(12)
    ]
    result = subtotal_scores(predictions, SCORE_RANGES)
    assert result["tasks"] == ["Q1", "Q3"] and result["range"] == [0.0, 8.0]  # Q1 0-5 + Q3 0-3
    assert not result["all_five_tasks"] and "per_group" not in result
    test = result["test"]
    assert test["calibration_slope"] is None and test["calibration_intercept"] is None
    # A constant prediction has no correlation either: undefined, null, never 0.
    assert test["pearson_r"] is None
    ranges = {**SCORE_RANGES, "Q1": (1.0, 4.0)}  # a config's own ranges are the ones summed
    assert subtotal_scores(predictions, ranges)["range"] == [1.0, 7.0]


@pytest.mark.parametrize("n, ties", [(200, True), (60, False), (9, True)])
def test_auc_interval_is_sklearns_auc_per_replicate_ties_included(n, ties):
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    labels = rng.random(n) < 0.3
    labels[:2] = True, False
    # Few values: many ties.
    score = rng.integers(0, 6, n).astype(float) if ties else rng.normal(size=n)
    draws, resample = [], np.random.default_rng(5)
    for _ in range(300):  # the same replicates, one roc_auc_score each; one-class ones left out
        index = resample.integers(0, n, n)
        if labels[index].any() and not labels[index].all():
            draws.append(roc_auc_score(labels[index], score[index]))
    expected = np.percentile(draws, [2.5, 97.5])
    assert bootstrap_auc_interval(labels, score, replicates=300, seed=5) == pytest.approx(
        expected, abs=1e-12
    )


def test_summary_of_two_tasks_end_to_end_without_ray(tmp_path):
    root = write_planted_root(
        tmp_path / "data", {SIG: 1.0, WEAK_SIG: 0.0}, tasks=("Q1", "Q3"), n_subjects=120
    )
    config = Config().with_overrides(["split.folds=3", "training.epochs=30", "training.lr=0.01"])
    rows = []
    for task in ("Q1", "Q3"):
        outcome = train_run(RunSpec(str(root), (SIG, WEAK_SIG), task, config), Recorder())
        save_checkpoint(tmp_path / task, outcome.checkpoint)
        rows += signature_rows(
            f"t_{task}",
            task,
            "all",
            [SIG, WEAK_SIG],
            0,
            {},
            outcome.fit.history,
            (str(tmp_path / task), outcome.checkpoint),
            max_epochs=30,
        )
    handed = []

    def run_repeats(repeats):  # the in-process runner, noting what it was handed
        handed.append(repeats)
        return run_repeats_in_process(repeats)

    # The nested search starts from the sweep's base config (lr 0.003, not the winners' 0.01)
    # and draws its own samples from a search space that cannot give the winners' values.
    base = Config().with_overrides(["split.folds=3", "training.epochs=10", "training.lr=0.003"])
    nested = NestedSearch(
        base,
        {"arch.h1": {"choice": [16, 24]}, "training.lr": {"uniform": [0.004, 0.008]}},
        samples=2,
        repeats=1,
    )
    summary, predictions = summarise_sweep(
        "exp", rows, root, load_checkpoint, nested=nested, run_repeats=run_repeats
    )
    # Every task's outer folds in one call (a Ray runner runs them all at once): one repeat of
    # 5 outer folds per task, each with every signature of its task and the search's samples,
    # never the winner's hyper-parameters.
    assert len(handed) == 1 and [(r.task, r.config.split.outer_fold) for r in handed[0]] == [
        (task, k) for task in ("Q1", "Q3") for k in range(5)
    ]
    assert {r.signatures for r in handed[0]} == {(SIG, WEAK_SIG)}
    assert {r.config.split.seed for r in handed[0]} == {config.split.seed + 1}
    runs = [run for repeat in handed[0] for run in repeat.runs()]
    assert len(runs) == 20 and all(0.004 <= run.config.training.lr <= 0.008 for run in runs)
    assert all(
        run.config
        == base.with_values(
            {
                "split.seed": 1,
                "split.outer_folds": 5,
                "split.outer_fold": repeat.config.split.outer_fold,
                **sample,
            }
        )
        for repeat in handed[0]
        for run, sample in zip(repeat.runs(), repeat.samples)
    )
    # Each task's 24 test subjects, then each subject's subtotal (Q1 + Q3).
    assert len(predictions) == 3 * 24
    assert {p["task"] for p in predictions} == {"Q1", "Q3", SUBTOTAL}
    for task, entry in summary.tasks.items():
        assert entry.winner.signature == SIG
        assert None not in (entry.test.rmse_ci, entry.test.mae_ci, entry.test.r2_ci)
        # Comparisons listed primary first, then in the baselines' order.
        assert [c.baseline for c in entry.comparisons] == [
            "ridge",
            "train_mean",
            "hist_gradient_boosting",
        ]
        mean = next(c for c in entry.comparisons if c.baseline == "train_mean")
        assert mean.result == "better" and mean.words == "network better"  # the signal is real
        estimate = entry.estimate
        assert estimate.method == "repeated nested cross-validation"
        assert (estimate.repeats, estimate.outer_folds, estimate.n_subjects) == (1, 5, 120)
        assert estimate.search.model_dump() == {
            "samples": 2,
            "signatures": 2,
            "folds": 3,
            "halving": None,  # the search above has none
        }
        assert [m.key for m in (estimate.network, *estimate.baselines)] == [
            NETWORK,
            "train_mean",
            "ridge",
            "hist_gradient_boosting",
        ]
        for model in (estimate.network, *estimate.baselines):
            assert len(model.fold_rmse) == 5 and model.rmse.folds == 5
            low, high = model.rmse.ci
            assert low < model.rmse.value < high
            assert model.rmse.value == pytest.approx(np.mean(model.fold_rmse))
            assert model.exact is not None and 0 <= model.exact.value <= 1
            assert model.within_1.value >= model.exact.value
        assert sum(estimate.network.signatures_chosen.values()) == 5
        assert estimate.ran_on == (IN_PROCESS,)
        # The verdict is the estimate's: the declared comparator's difference, Holm-adjusted.
        primary = estimate.differences[0]
        assert primary.baseline == "ridge" and primary.primary and primary.p_holm is not None
        assert entry.verdict.result == primary.result and "Holm" in entry.verdict.source
        assert entry.nested_estimate is None
    sub = summary.subtotal
    assert sub.n == 24 and sub.tasks == ("Q1", "Q3")
    assert not sub.all_five_tasks and sub.range == (0.0, 8.0)
    assert sub.test.calibration_slope > 0
    # The toy root's dataset.json says SYNTHETIC; it has no build report to count exclusions from.
    assert summary.synthetic is True and summary.excluded_recordings is None
    assert summary.comparator.adjustment == "holm" and summary.comparator.primary.key == "ridge"
    assert summary.comparator.note.startswith(
        "verdicts: the network minus Ridge, fold by fold over the outer folds"
    )
    # The subtotal's estimate from each subject's summed predictions, per outer fold.
    assert sub.estimate.network.rmse.folds == 5 and sub.estimate.network.exact is None
    for task, entry in summary.tasks.items():
        ridge = entry.comparisons[0]
        assert [c.baseline for c in entry.comparisons if c.primary] == ["ridge"]
        assert ridge.words in ("network better", "Ridge better", "no difference shown")
        # 120 subjects, 24 held out; each side's scores described per subject.
        training = entry.training
        assert (training.n_train, training.n_test) == (96, 24) and entry.test.n == 24
        test_scores = [p["true"] for p in predictions if p["task"] == task]
        outcome = training.outcome_test
        assert outcome.mean == pytest.approx(np.mean(test_scores)) and outcome.n == 24
        assert sum(outcome.counts.values()) == 24 and outcome.min == min(test_scores)
        assert sum(training.outcome_train.counts.values()) == 96
        # Each baseline chose its signature by CV: the planted one, never the pure-noise one.
        for name in ("ridge", "hist_gradient_boosting"):
            assert entry.baseline(name).signature == SIG and entry.baseline(name).cv_rmse > 0
        assert entry.baseline("train_mean").test.calibration_slope is None
    for task, entry in summary.tasks.items():
        intervals = entry.intervals
        assert intervals.level == 0.9 and intervals.n == 24
        assert intervals.covered == sum(
            p["lo"] <= p["true"] <= p["hi"] for p in predictions if p["task"] == task
        )
        low, high = intervals.coverage_ci
        assert low <= intervals.coverage <= high and 0 < intervals.mean_width < 5
    assert sub.intervals.n == 24 and 0 < sub.intervals.mean_width < 8
    # The subtotal's rows carry its own intervals, which held the true sums as often as said.
    sums = [p for p in predictions if p["task"] == SUBTOTAL]
    assert sum(p["lo"] <= p["true"] <= p["hi"] for p in sums) == sub.intervals.covered
    text = format_summary(summary)
    # The held-out split checks the intervals new subjects get: calibrated on the outer folds.
    assert "90% outer-fold calibrated (Mondrian by band) intervals cover" in text
    assert "per-subject subtotal intervals" in text
    # Each task's and the subtotal's intervals, as the outer folds measured them.
    assert text.count("  prediction intervals (90% outer-fold calibrated (Mondrian by band)):") == 3
    for task, entry in summary.tasks.items():
        report = entry.prediction_intervals
        assert report.overall.n == 120 and len(report.by_band) == 3
        assert [c.kind for c in report.by_score][-2:] == ["low_tail", "high_tail"]
        assert report.by_score[-2].label.startswith("lowest true scores (10th percentile")
        assert report.calibration.integer_sets and len(report.calibration.lower) == 3
        assert report.short == tuple(
            c.label
            for c in (report.overall, *report.by_band, *report.by_score)
            if c.coverage_ci[1] < 0.9
        )
    lines = text.splitlines()
    assert lines[0].startswith("SYNTHETIC cohort:")
    assert "Holm-adjusted 5 % level across the 2 tasks" in text and "(range 0-8)" in text
    for task in ("Q1", "Q3"):
        block = lines[
            lines.index(next(line for line in lines if line.startswith(f"{task}: winner"))) :
        ]
        # The estimate leads: what it is, each model, the verdict's difference first.
        assert block[2].startswith(
            "  estimate (repeated nested cross-validation: 1 x 5 outer folds, 120 subjects; "
            "search 2 samples x 2 signatures, 3 inner folds, no early cut)"
        )
        primary = next(line for line in block if line.startswith("    network - Ridge:"))
        assert primary.endswith("(primary: the verdict)") and "Holm p" in primary
        assert next(
            line for line in block if line.startswith("    network - training mean:")
        ).endswith("(secondary, unadjusted)")
        # The held-out split, apart: its comparisons are that split's, not the verdict.
        assert any(line.startswith("  held-out split, n = 24 test subjects") for line in block)
        held = next(line for line in block if line.startswith("  network - ridge:"))
        assert held.endswith("(this split only)")
        table = next(line for line in block if line.startswith("  train_mean"))
        assert table.split()[-2:] == ["-", "-"]  # the constant's calibration is undefined, not 0.00
    # The subtotal has no verdict: its primary difference says so.
    subtotal = lines[lines.index(next(line for line in lines if line.startswith("subtotal of"))) :]
    primary = next(line for line in subtotal if line.startswith("    network - Ridge:"))
    assert primary.endswith("(primary, unadjusted: no verdict)") and "Holm p" not in primary
    assert text.count("    it estimates the expected error of the whole procedure") == 2
    assert "    it estimates the sum of the tasks Q1+Q3: the expected error" in text
    assert "procedure estimate" not in text and "fresh outer splits" not in text


def test_nested_estimates_give_each_task_its_own_results_in_order():
    search = NestedSearch(Config(), {}, 1, 1, outer_folds=5)
    repeats = {
        "Q1": search.repeats_of("data", "Q1", ["s1", "s2"])[:3],
        "Q3": search.repeats_of("data", "Q3", ["s1"])[:1],
    }

    def result(
        rmse: float, signature: str, node: str
    ) -> RepeatResult:  # the runner below never trains
        return RepeatResult(
            {NETWORK: Choice(signature, rmse, 0.1), "ridge": Choice("s1", rmse + 1, 1.0)},
            0,
            (),
            node,
        )

    results = [
        result(1.0, "s1", "n1"),
        result(2.0, "s2", "n2"),
        result(4.0, "s1", "n1"),
        result(0.5, "s3", "n3"),
    ]
    handed = []

    def answer(every):
        handed.append(every)
        return results

    estimates = nested_estimates(search, repeats, answer)
    assert handed == [[*repeats["Q1"], *repeats["Q3"]]]
    # Each task gets its own folds' results, in their order.
    assert estimates == {"Q1": results[:3], "Q3": results[3:]}
    assert (
        nested_estimates(search, {}, answer) == {} and len(handed) == 1
    )  # no repeats: the runner is not called
    with pytest.raises(RuntimeError, match="2 results for 4 repeats"):
        nested_estimates(search, repeats, lambda every: results[:2])


def test_n_counts_subjects_not_rows():
    # The data contract lets a subject have several rows (here every subject has two).
    subjects = np.repeat([f"S{i}" for i in range(6)], 2)
    y = np.repeat([0.0, 1.0, 2.0, 3.0, 4.0, 5.0], 2)
    assert score_predictions(y, y + 0.5, (0.0, 5.0), subjects)["n"] == 6
    split = Split(("S0", "S3"), {"S1": 0, "S2": 1, "S4": 0, "S5": 1}, 2)
    data = TaskData(
        Path("x.npz"), np.zeros((12, 10)), y, subjects, tuple(f"f{i}" for i in range(10))
    )
    described = training_description(data, split)
    assert (described["n_train"], described["n_test"]) == (4, 2)
    train = described["outcome_train"]
    assert train["counts"] == {"1": 1, "2": 1, "4": 1, "5": 1} and train["mean"] == 3.0
    assert described["outcome_test"] == {
        "n": 2,
        "mean": 1.5,
        "sd": pytest.approx(np.std([0, 3], ddof=1)),
        "min": 0.0,
        "max": 3.0,
        "counts": {"0": 1, "3": 1},
    }


def test_the_subtotal_without_a_held_out_split_names_its_tasks_and_range():
    """No held-out split (the sweep configs' default): no test predictions, and the subtotal
    still names the tasks scored and their summed range (it once said "range 0-0")."""
    out = subtotal_scores([], {"Q3": (0.0, 3.0), "Q1": (0.0, 5.0)})
    assert out == {"tasks": ["Q1", "Q3"], "n": 0, "range": [0.0, 8.0], "all_five_tasks": False}
