"""Prediction intervals calibrated on outer folds (mmse_model/evaluation/intervals.py) and
their coverage report (mmse_model/sweeps/interval_report.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mmse_model.evaluation.intervals import (
    MONDRIAN,
    SYMMETRIC,
    calibrate,
    calibration_from,
    coverage_cell,
    cross_fitted,
    integer_set,
)
from mmse_model.sweeps.interval_report import interval_report


def test_each_band_takes_its_own_signed_residual_ranks():
    predicted = np.repeat([1.0, 2.5, 4.0], 19)  # three bands of 19
    rng = np.random.default_rng(0)
    residual = np.concatenate(
        [rng.normal(-0.5, 0.3, 19), rng.normal(0, 0.2, 19), rng.normal(0.6, 0.4, 19)]
    )
    cal = calibrate(predicted, predicted + residual, level=0.9)
    assert cal.method == MONDRIAN and cal.n == (19, 19, 19)
    # alpha/2 = 0.05: ranks floor(0.05 * 20) = 1 and ceil(0.95 * 20) = 19 of each band's 19.
    for band in range(3):
        r = np.sort(residual[band * 19 : (band + 1) * 19])
        assert cal.lower[band] == pytest.approx(r[0]) and cal.upper[band] == pytest.approx(r[18])
    # A new prediction takes its band's offsets, clipped to the range.
    low, high = cal.interval(np.array([1.0, 4.0]), (-10.0, 10.0))
    assert low[0] == pytest.approx(1.0 + cal.lower[0]) and high[1] == pytest.approx(
        4.0 + cal.upper[2]
    )
    assert cal.interval(np.array([1.0]), (0.0, 5.0))[0][0] == max(0.0, 1.0 + cal.lower[0])
    # Too few residuals for a rank: an infinite bound, the range once clipped.
    small = calibrate(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0]), 0.9)
    assert small.lower == (-math.inf,) * 3 and small.interval(np.array([2.0]), (0, 5))[0][0] == 0


def test_symmetric_is_one_width_for_all_and_records_round_trip():
    predicted = np.linspace(0, 5, 50)
    truth = predicted + np.where(np.arange(50) % 2, 0.5, -1.0)
    cal = calibrate(predicted, truth, 0.8, method=SYMMETRIC)
    assert cal.cuts == () and cal.upper[0] == pytest.approx(1.0) and cal.lower[0] == -cal.upper[0]
    record = {
        "method": MONDRIAN,
        "level": 0.9,
        "cuts": [1.0, 2.0],
        "lower": [None, -0.5, -0.4],
        "upper": [0.5, None, 0.4],
        "n": [3, 3, 3],
    }
    back = calibration_from(record)
    assert back.lower[0] == -math.inf and back.upper[1] == math.inf and back.n == (3, 3, 3)


def test_integer_sets_are_the_items_scores_inside_the_interval():
    assert integer_set(1.2, 3.7) == "2-3"
    assert integer_set(2.0, 2.0) == "2"
    assert integer_set(2.2, 2.8) == ""  # no score inside
    assert integer_set(0.0, 5.0) == "0-5"


def test_cross_fitted_intervals_calibrate_each_fold_on_its_repeats_other_folds():
    rng = np.random.default_rng(1)
    folds = []
    for repeat in (1, 2):
        for k in range(5):
            ids = [f"S{k}_{i}" for i in range(30)]
            predicted = rng.uniform(0, 5, 30)
            folds.append((repeat, ids, predicted + rng.normal(0, 0.5, 30), predicted))
    held = cross_fitted(folds, 0.9, (-10.0, 10.0))
    # Fold 0 of repeat 1: calibrated on folds 1-4 of repeat 1 only.
    others = folds[1:5]
    cal = calibrate(
        np.concatenate([f[3] for f in others]), np.concatenate([f[2] for f in others]), 0.9
    )
    low, _ = cal.interval(folds[0][3], (-10.0, 10.0))
    np.testing.assert_allclose(held.lower[:30], low)
    assert 0.8 < held.covered.mean() < 0.97
    # Counted in subjects: each subject's share of its repeats covered.
    cell = coverage_cell(held, np.ones(len(held.subjects), bool), 0.9)
    assert cell["n"] == 150  # 5 x 30 subjects, each predicted once per repeat
    shares = {}
    for sid, ok in zip(held.subjects, held.covered):
        shares.setdefault(sid, []).append(ok)
    assert cell["coverage"] == pytest.approx(np.mean([np.mean(v) for v in shares.values()]))


def test_the_report_says_where_coverage_falls_short():
    """A model that regresses to the mean: its intervals miss the extreme true scores. The
    report lists every cell, counted in subjects, and names the ones short of nominal."""
    rng = np.random.default_rng(2)
    folds = []
    for k in range(5):
        # Most true scores in the middle, predictions that barely follow them: the intervals
        # fit the middle and miss the rare extremes.
        truth = np.clip(np.rint(rng.normal(2.5, 1.1, 100)), 0, 5)
        predicted = 2.5 + 0.1 * (truth - 2.5) + rng.normal(0, 0.3, 100)
        folds.append((1, [f"S{k}_{i}" for i in range(100)], truth, predicted))
    groups = {
        f"S{k}_{i}": ("dementia" if i < 20 else "healthy") for k in range(5) for i in range(100)
    }
    report = interval_report(folds, 0.9, (0.0, 5.0), groups)
    assert report["overall"]["n"] == 500 and len(report["by_band"]) == 3
    labels = [c["label"] for c in report["by_score"]]
    assert labels[:6] == [f"true score {s}" for s in range(6)]
    assert [c["kind"] for c in report["by_score"]][-2:] == ["low_tail", "high_tail"]
    assert labels[-2:] == [
        "lowest true scores (10th percentile or below: 1 or less)",
        "highest true scores (90th percentile or above: 4 or more)",
    ]
    assert [c["label"] for c in report["by_group"]] == ["group healthy", "group dementia"]
    extremes = {c["label"]: c for c in report["by_score"]}
    assert extremes["true score 0"]["coverage"] < 0.9 and extremes["true score 0"]["short"]
    assert "true score 0" in report["short"] and "all subjects" not in report["short"]
    assert report["calibration"]["integer_sets"] and report["calibration"]["method"] == MONDRIAN
