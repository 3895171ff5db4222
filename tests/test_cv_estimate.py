"""The estimate over outer folds (mmse_model/evaluation/cv_estimate.py, sweeps/estimate.py)
and the outer folds themselves (data/dataset.outer_fold_split)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import t

from mmse_model.core.config import Config
from mmse_model.data.dataset import outer_fold_split
from mmse_model.evaluation.cv_estimate import (
    auc,
    corrected_t,
    fold_metrics,
    holm,
    rounded_scores,
    weighted_kappa,
)
from mmse_model.sweeps.estimate import holm_verdicts, subtotal_estimate, task_estimate
from mmse_model.sweeps.nested import NETWORK, Choice, NestedSearch, RepeatResult


def test_corrected_t_is_nadeau_and_bengios_formula():
    values = [1.0, 1.2, 0.9, 1.1, 1.3]
    found = corrected_t(values, test_fraction=0.2)
    s2 = np.var(values, ddof=1)
    se = math.sqrt((1 / 5 + 0.2 / 0.8) * s2)  # 1/J + n_test/n_train
    q = t.ppf(0.975, 4)
    assert found.mean == pytest.approx(1.1) and found.folds == 5
    assert (found.low, found.high) == pytest.approx((1.1 - q * se, 1.1 + q * se))
    assert found.p_value == pytest.approx(2 * t.sf(1.1 / se, 4))
    # Wider than the naive interval that takes the folds as independent: by
    # sqrt((1/5 + 1/4) / (1/5)) = 1.5 here.
    naive = q * math.sqrt(s2 / 5)
    assert found.high - found.mean == pytest.approx(1.5 * naive)
    # Undefined folds are left out; one fold gives a mean and no interval; none gives nothing.
    assert corrected_t([1.0, None, 2.0, math.nan], 0.2).folds == 2
    one = corrected_t([0.5], 0.2)
    assert (one.mean, one.low, one.p_value) == (0.5, None, None)
    assert corrected_t([None], 0.2).mean is None


def test_holm_adjusts_step_down_and_keeps_order():
    adjusted = holm({"Q1": 0.01, "Q2": 0.04, "Q3": 0.03, "Q4": None, "Q5": 0.005})
    # sorted: 0.005*4, 0.01*3, 0.03*2, 0.04*1 -> 0.02, 0.03, 0.06, max(0.06, 0.04)
    assert adjusted == pytest.approx({"Q5": 0.02, "Q1": 0.03, "Q3": 0.06, "Q2": 0.06, "Q4": None})


def test_item_scale_metrics_round_onto_the_items_scores():
    truth = np.array([0, 1, 2, 3, 3, 2, 1, 0], dtype=float)
    predicted = np.array([0.4, 1.6, 2.5, 3.9, 2.2, 2.0, -0.3, 1.49])
    assert list(rounded_scores(predicted, (0, 3))) == [0, 2, 3, 3, 2, 2, 0, 1]
    m = fold_metrics(truth, predicted, (0.0, 3.0), item_scale=True)
    assert m["exact"] == pytest.approx(3 / 8) and m["within_1"] == pytest.approx(1.0)
    from sklearn.metrics import cohen_kappa_score

    expected = cohen_kappa_score(
        truth.astype(int), [0, 2, 3, 3, 2, 2, 0, 1], labels=[0, 1, 2, 3], weights="quadratic"
    )
    assert m["kappa"] == pytest.approx(expected)
    assert m["rmse"] == pytest.approx(np.sqrt(np.mean((predicted - truth) ** 2)))
    # Undefined, not 0: kappa with one score on both sides, R^2 of a constant truth.
    assert weighted_kappa(np.full(4, 2.0), np.full(4, 2.0), (0, 3)) is None
    assert fold_metrics(np.full(4, 2.0), np.full(4, 2.5), (0, 3), item_scale=False)["r2"] is None
    assert "exact" not in fold_metrics(truth, predicted, (0, 3), item_scale=False)


def test_auc_is_sklearns_and_undefined_with_one_class():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    positive = rng.random(40) < 0.3
    score = rng.integers(0, 5, 40).astype(float)  # ties
    assert auc(positive, score) == pytest.approx(roc_auc_score(positive, score))
    assert auc(np.ones(5, bool), score[:5]) is None


def test_outer_folds_partition_every_subject_once_stratified_and_apart_from_the_inner_folds():
    ids = np.array([f"S{i:03d}" for i in range(53)])
    totals = np.arange(53, dtype=float) % 22
    tests = []
    for k in range(5):
        split = outer_fold_split(ids, totals, 5, k, folds=3, seed=7)
        assert not set(split.test_subjects) & set(split.fold_of_subject)
        assert set(split.test_subjects) | set(split.fold_of_subject) == set(ids)
        assert set(split.fold_of_subject.values()) == {0, 1, 2}
        tests.append(split.test_subjects)
    assert sorted(s for fold in tests for s in fold) == sorted(ids)
    assert {len(fold) for fold in tests} <= {10, 11}
    # Stratified: every fold's mean total is near the cohort's.
    by_id = dict(zip(ids, totals))
    for fold in tests:
        assert abs(np.mean([by_id[s] for s in fold]) - totals.mean()) < 2.5
    # Another repeat (seed) deals another partition; the same seed the same one.
    assert outer_fold_split(ids, totals, 5, 0, 3, seed=8).test_subjects != tests[0]
    assert outer_fold_split(ids, totals, 5, 0, 3, seed=7).test_subjects == tests[0]


def _results(network_errors, ridge_errors, n_train=40, subjects_per_fold=10, seed=0):
    """Outer folds whose predictions miss by the given amounts (one value per fold)."""
    rng = np.random.default_rng(seed)
    out = []
    for k, (net, ridge) in enumerate(zip(network_errors, ridge_errors)):
        subjects = tuple(f"S{k}_{i}" for i in range(subjects_per_fold))
        truth = rng.integers(0, 6, subjects_per_fold).astype(float)
        signs = np.where(np.arange(subjects_per_fold) % 2, 1.0, -1.0)
        out.append(
            RepeatResult(
                {NETWORK: Choice("sigA", 0.0, 0.0), "ridge": Choice("sigB", 0.0, 0.0)},
                0,
                subjects=subjects,
                y_true=tuple(truth),
                predictions={
                    NETWORK: tuple(truth + signs * net),
                    "ridge": tuple(truth + signs * ridge),
                },
                n_train=n_train,
            )
        )
    return out


def test_a_tasks_estimate_is_the_mean_over_folds_with_its_paired_difference():
    search = NestedSearch(Config(), {}, 1, repeats=1, outer_folds=5)
    results = _results([0.5, 0.6, 0.4, 0.5, 0.5], [1.0, 1.1, 0.9, 1.0, 1.2])
    repeats = search.repeats_of("data", "Q1", ["sigA", "sigB"])
    assert len(repeats) == 5 and [r.config.split.outer_fold for r in repeats] == list(range(5))
    estimate = task_estimate(search, repeats, results, (0.0, 5.0), "ridge")
    assert estimate["network"]["rmse"]["value"] == pytest.approx(0.5)
    assert estimate["network"]["fold_rmse"] == pytest.approx([0.5, 0.6, 0.4, 0.5, 0.5])
    difference = estimate["differences"][0]
    assert difference["baseline"] == "ridge" and difference["primary"]
    expected = corrected_t([-0.5, -0.5, -0.5, -0.5, -0.7], 10 / 50)
    assert difference["rmse"]["value"] == pytest.approx(expected.mean)
    assert difference["rmse"]["ci"] == pytest.approx([expected.low, expected.high])
    assert difference["p_value"] == pytest.approx(expected.p_value)
    assert estimate["network"]["signatures_chosen"] == {"sigA": 5}
    assert estimate["n_subjects"] == 50 and estimate["outer_folds"] == 5
    # The verdict: Holm across the tasks decides.
    other = task_estimate(
        search, repeats, _results([1.0] * 5, [1.01, 0.99, 1.0, 1.02, 0.98]), (0, 5), "ridge"
    )
    verdicts = holm_verdicts({"Q1": estimate, "Q2": other}, "ridge")
    assert verdicts["Q1"]["result"] == "better" and verdicts["Q1"]["words"] == "network better"
    assert verdicts["Q2"]["result"] == "level"
    p1 = estimate["differences"][0]["p_value"]
    assert estimate["differences"][0]["p_holm"] == pytest.approx(min(1.0, 2 * p1))


def test_the_subtotal_estimate_sums_each_subjects_tasks_per_fold():
    search = NestedSearch(Config(), {}, 1, repeats=1, outer_folds=5)
    q1 = _results([0.5] * 5, [1.0] * 5, seed=1)
    q3 = _results([0.5] * 5, [1.0] * 5, seed=2)
    groups = {
        s: ("dementia" if i % 3 == 0 else "healthy") for r in q1 for i, s in enumerate(r.subjects)
    }
    estimate = subtotal_estimate(
        search, {"Q1": q1, "Q3": q3}, {"Q1": (0, 5), "Q3": (0, 3)}, "ridge", groups, True
    )
    # The errors have the same sign per subject in both tasks: the sums miss by 1.0 and 2.0.
    assert estimate["network"]["rmse"]["value"] == pytest.approx(1.0)
    assert estimate["baselines"][0]["rmse"]["value"] == pytest.approx(2.0)
    assert estimate["network"].get("exact") is None  # no item scale for a sum of items
    assert estimate["dementia_auc"]["synthetic"] and estimate["dementia_auc"]["n_dementia"] == 20
