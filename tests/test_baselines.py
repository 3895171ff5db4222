"""Baselines (Ray-free): trained on training subjects only, scored on the test subjects."""

from __future__ import annotations

import numpy as np

from mmse_model.core.config import Config
from mmse_model.evaluation.baselines import BASELINES, baseline_predictions, training_folds
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
    y_test = data.y[held_out_rows(data.subject_ids, split)]
    scores = {name: {**score_predictions(y_test, pred, config.score_range("Q1")), **chosen}
              for name, (pred, chosen) in baseline_predictions(data, split, config.score_range("Q1")).items()}
    assert set(scores) == set(BASELINES)
    for metrics in scores.values():
        assert metrics["n"] == len(test_ids)
        assert {"rmse", "mae", "r2", "pearson_r", "calibration_slope", "calibration_intercept"} <= set(metrics)
    # The planted signal is learnable: both fitted models beat predicting the mean.
    assert scores["ridge"]["rmse"] < scores["train_mean"]["rmse"]
    assert scores["hist_gradient_boosting"]["rmse"] < scores["train_mean"]["rmse"]
    assert scores["ridge"]["alpha"] > 0 and np.isfinite(scores["train_mean"]["rmse"])
