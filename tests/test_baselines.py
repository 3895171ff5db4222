"""Baselines (Ray-free): trained on training subjects only, scored on the test subjects."""

from __future__ import annotations

import numpy as np
import pytest

from mmse_model.core.config import Config
from mmse_model.core.domain import BASELINES
from mmse_model.evaluation.baselines import (
    HGB_SCREEN,
    RIDGE_ALPHAS,
    baselines_over_signatures,
    hgb_screen,
    ridge_search,
    training_folds,
)
from mmse_model.evaluation.scoring import held_out_rows, score_predictions
from mmse_model.training.loop import RunSpec, load_run_data
from tests.fixtures.toy_data import write_planted_root

SIG = "m2_tau1_eps0.055_lmin2"


def test_baselines_use_training_folds_and_score_test_subjects(tmp_path):
    root = write_planted_root(tmp_path, {SIG: 1.0}, tasks=("Q1",), n_subjects=120)
    config = Config().with_overrides(["split.folds=3"])
    group, split = load_run_data(RunSpec(str(root), (SIG,), "Q1", config))
    data = group.task_data(SIG)
    rows, folds = training_folds(data, split)
    test_ids = set(split.test_subjects)
    assert not test_ids & set(data.subject_ids[rows])  # no test subject among training rows
    assert set(folds) == {0, 1, 2}

    # Scored as the sweep's summary scores them (mmse_model/sweeps/summary.py).
    test_rows = held_out_rows(data.subject_ids, split)
    y_test = data.y[test_rows]
    scores = {
        name: {
            **score_predictions(
                y_test, pred, config.score_range("Q1"), data.subject_ids[test_rows]
            ),
            **chosen,
        }
        for name, (pred, chosen) in baselines_over_signatures(
            {SIG: data}, split, config.score_range("Q1")
        ).items()
    }
    assert set(scores) == set(BASELINES)
    for metrics in scores.values():
        assert metrics["n"] == len(test_ids)
        assert {
            "rmse",
            "mae",
            "r2",
            "pearson_r",
            "calibration_slope",
            "calibration_intercept",
        } <= set(metrics)
    # The planted signal is learnable: both fitted models beat predicting the mean.
    assert scores["ridge"]["rmse"] < scores["train_mean"]["rmse"]
    assert scores["hist_gradient_boosting"]["rmse"] < scores["train_mean"]["rmse"]
    assert scores["ridge"]["alpha"] > 0 and np.isfinite(scores["train_mean"]["rmse"])
    assert all(metrics["signature"] == SIG for metrics in scores.values())


NOISE = "m3_tau2_eps0.1_lmin2"


@pytest.mark.parametrize("informative", [SIG, NOISE])
def test_each_baseline_chooses_the_informative_signature_by_cross_validation(tmp_path, informative):
    # One signature carries the planted signal, the other none; whichever sorts first, the
    # fitted baselines must pick the informative one on the training folds alone.
    signals = {SIG: 0.0, NOISE: 0.0, informative: 1.0}
    root = write_planted_root(tmp_path, signals, tasks=("Q1",), n_subjects=120)
    config = Config().with_overrides(["split.folds=3"])
    score_range = config.score_range("Q1")
    group, split = load_run_data(RunSpec(str(root), (SIG, NOISE), "Q1", config))
    datas = {sig: group.task_data(sig) for sig in (SIG, NOISE)}
    chosen = baselines_over_signatures(datas, split, score_range)

    assert chosen["ridge"][1]["signature"] == informative
    assert chosen["hist_gradient_boosting"][1]["signature"] == informative
    assert chosen["train_mean"][1]["signature"] == SIG  # it ignores the features: the first
    # The choice is the one-signature run of the chosen signature, not a mixture.
    alone = baselines_over_signatures({informative: datas[informative]}, split, score_range)
    for name in BASELINES:
        np.testing.assert_allclose(chosen[name][0], alone[name][0])
        assert chosen[name][1]["cv_rmse"] == pytest.approx(alone[name][1]["cv_rmse"])
    # The chosen CV RMSE is the lower of the two signatures' and the other's is higher.
    other = NOISE if informative == SIG else SIG
    rejected = baselines_over_signatures({other: datas[other]}, split, score_range)
    for name in ("ridge", "hist_gradient_boosting"):
        assert chosen[name][1]["cv_rmse"] < rejected[name][1]["cv_rmse"]
    # The training mean's CV RMSE is that of predicting each fold by the other folds' mean.
    train, folds = training_folds(datas[SIG], split)
    y = datas[SIG].y[train]
    mse = np.mean([np.mean((y[folds == k] - y[folds != k].mean()) ** 2) for k in range(3)])
    assert chosen["train_mean"][1]["cv_rmse"] == pytest.approx(np.sqrt(mse))


def test_signatures_with_different_rows_are_refused(tmp_path):
    root = write_planted_root(tmp_path, {SIG: 1.0, NOISE: 1.0}, tasks=("Q1",), n_subjects=60)
    config = Config().with_overrides(["split.folds=3"])
    group, split = load_run_data(RunSpec(str(root), (SIG, NOISE), "Q1", config))
    shuffled = group.task_data(NOISE)
    order = np.random.default_rng(0).permutation(len(shuffled.y))
    shuffled = type(shuffled)(
        shuffled.path,
        shuffled.X[order],
        shuffled.y[order],
        shuffled.subject_ids[order],
        shuffled.feature_names,
    )
    with pytest.raises(ValueError, match="rows differ"):
        baselines_over_signatures(
            {SIG: group.task_data(SIG), NOISE: shuffled}, split, config.score_range("Q1")
        )


@pytest.mark.parametrize("seed", range(4))
def test_the_closed_form_ridge_search_is_scikit_learns_grid_search(seed):
    """The same alpha and CV error as GridSearchCV over StandardScaler + Ridge, on data with
    a constant feature, two collinear ones and a signal whose best alpha varies by seed."""
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import GridSearchCV, PredefinedSplit
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(120, 10)) * rng.uniform(0.01, 100, size=10)
    X[:, 3] = 7.0
    X[:, 4] = 2 * X[:, 5] + 1e-9 * rng.normal(size=120)
    y = X[:, 0] / X[:, 0].std() * (seed + 0.5) + rng.normal(size=120) * 2
    folds = rng.permutation(np.arange(120) % 5)
    search = GridSearchCV(
        make_pipeline(StandardScaler(), Ridge()),
        {"ridge__alpha": list(RIDGE_ALPHAS)},
        cv=PredefinedSplit(folds),
        scoring="neg_mean_squared_error",
        refit=False,
    ).fit(X, y)
    settings, mse = ridge_search(X, y, folds)
    assert settings == search.best_params_
    assert mse == pytest.approx(-search.best_score_, rel=1e-10)


def screen_mse(X: np.ndarray, y: np.ndarray, folds: np.ndarray) -> float:
    """scikit-learn's grid search over the one HGB_SCREEN setting: its CV MSE."""
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.model_selection import GridSearchCV, PredefinedSplit

    search = GridSearchCV(
        HistGradientBoostingRegressor(random_state=0),
        {k: [v] for k, v in HGB_SCREEN.items()},
        cv=PredefinedSplit(folds),
        scoring="neg_mean_squared_error",
        refit=False,
    ).fit(X, y)
    return -float(search.best_score_)


def test_gradient_boostings_halving_screen_keeps_the_whole_screens_numbers():
    """Warm starts add rounds to the same trees: the signatures that reach the last rung
    have scikit-learn's CV MSE of the whole screen, and the halving keeps the best of them;
    without rungs the screen is the whole one's choice."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="openmp"):  # as the baselines run (and fast)
        _halving_screen_checks()


def _halving_screen_checks() -> None:
    rng = np.random.default_rng(5)
    n, folds = 150, np.arange(150) % 5
    latent = rng.normal(size=n)
    y = np.clip(np.round(2 + latent), 0, 5)
    X = {
        f"s{i:02d}": rng.normal(size=(n, 10)) + strength * latent[:, None] * (rng.random(10) > 0.5)
        for i, strength in enumerate([0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 0.1, 0.3, 0.5])
    }
    whole = {sig: screen_mse(x, y, folds) for sig, x in X.items()}
    best = min(sorted(whole), key=lambda sig: whole[sig])
    chosen, mse = hgb_screen(X, y, folds, rungs=())
    assert chosen == best and mse == pytest.approx(whole[best], rel=1e-12)
    halved, mse = hgb_screen(X, y, folds)  # rung at 10 rounds, the best third on
    assert mse == pytest.approx(whole[halved], rel=1e-12)  # 10 rounds + 20 = 30 rounds
    # Against a screen scored by hand at 10 rounds: the chosen one was in its best third.
    from sklearn.ensemble import HistGradientBoostingRegressor

    at_10 = {}
    for sig, x in X.items():
        errors = []
        for k in range(5):
            model = HistGradientBoostingRegressor(**{**HGB_SCREEN, "max_iter": 10}, random_state=0)
            model.fit(x[folds != k], y[folds != k])
            errors.append(np.mean((y[folds == k] - model.predict(x[folds == k])) ** 2))
        at_10[sig] = np.mean(errors)
    assert halved in sorted(at_10, key=lambda sig: (at_10[sig], sig))[:3]
