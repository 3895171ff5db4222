import numpy as np
import pytest
from scipy.stats import pearsonr
from sklearn import metrics as skm

from mmse_model.evaluation.metrics import (
    calibration,
    member_metrics,
    regression_metrics,
    summarise_folds,
    summarise_signatures,
)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_match_scikit_learn_and_scipy(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, size=50).astype(float)
    pred = np.clip(y + rng.normal(scale=0.8, size=50), 0, 3)
    m = regression_metrics(y, pred, (0.0, 3.0))
    assert m["mse"] == pytest.approx(skm.mean_squared_error(y, pred))
    assert m["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, pred)))
    assert m["mae"] == pytest.approx(skm.mean_absolute_error(y, pred))
    assert m["r2"] == pytest.approx(skm.r2_score(y, pred))
    assert m["explained_variance"] == pytest.approx(skm.explained_variance_score(y, pred))
    assert m["pearson_r"] == pytest.approx(pearsonr(y, pred).statistic)
    assert m["mape"] == pytest.approx(100 * skm.mean_absolute_error(y, pred) / 3.0)


def test_mape_is_finite_when_true_scores_are_zero():
    y = np.zeros(10)
    pred = np.full(10, 0.5)
    m = regression_metrics(y, pred, (0.0, 5.0))
    assert m["mape"] == pytest.approx(10.0)  # 0.5 points of a 5-point range


def test_constant_target_and_prediction_follow_sklearn_conventions():
    y = np.full(6, 2.0)
    assert regression_metrics(y, y, (0, 3))["r2"] == skm.r2_score(y, y) == 1.0
    assert regression_metrics(y, y + 1, (0, 3))["r2"] == 0.0
    # A constant prediction has no correlation: undefined (None, null in JSON), never 0.
    assert regression_metrics(np.arange(6.0), np.full(6, 1.0), (0, 5))["pearson_r"] is None
    assert np.isnan(
        member_metrics(np.arange(6.0)[None], np.ones((1, 6)), np.ones((1, 6), bool), (0, 5))[
            "pearson_r"
        ][0]
    )


def test_calibration_recovers_slope_and_intercept():
    pred = np.linspace(0, 5, 20)
    c = calibration(0.5 * pred + 1.0, pred)
    assert c["calibration_slope"] == pytest.approx(0.5)
    assert c["calibration_intercept"] == pytest.approx(1.0)


def test_a_constant_predictions_calibration_is_undefined_not_zero():
    # The training mean's prediction: one value for everyone. No line through it has a slope.
    y_true = np.array([0.0, 1.0, 3.0, 5.0])
    for constant in (np.full(4, 2.25), np.full(4, 2.25) + np.array([0, 1e-15, 0, -1e-15])):
        assert calibration(y_true, constant) == {
            "calibration_slope": None,
            "calibration_intercept": None,
        }
    assert calibration(y_true, np.array([0.0, 1.0, 2.0, 2.0]))["calibration_slope"] is not None


def test_summarise_folds_mean_and_sample_sd():
    s = summarise_folds({"rmse": np.array([1.0, 2.0, 3.0])})
    assert s == {"rmse": 2.0, "rmse_sd": 1.0}


@pytest.mark.parametrize("n_folds", [1, 5])
def test_summarise_signatures_is_each_signatures_mean_and_sd(n_folds):
    """All S signatures at once give, bit for bit, the mean and sample sd of each
    signature's K folds taken alone (an undefined Pearson r included)."""
    rng = np.random.default_rng(3)
    per_member = {name: rng.normal(size=4 * n_folds) for name in ("rmse", "pearson_r")}
    per_member["pearson_r"][1] = np.nan
    together = summarise_signatures(per_member, n_folds)
    assert len(together) == 4
    for s, summary in enumerate(together):
        rows = slice(s * n_folds, (s + 1) * n_folds)
        alone = {}
        for name, values in per_member.items():
            alone[name] = float(values[rows].mean())
            alone[f"{name}_sd"] = float(values[rows].std(ddof=1)) if n_folds > 1 else 0.0
        assert list(summary) == list(alone)
        np.testing.assert_array_equal(list(summary.values()), list(alone.values()))


def test_member_metrics_equal_one_set_at_a_time_with_padding():
    # M members of different lengths in one padded array: each row's metrics are those of
    # its real entries alone.
    rng = np.random.default_rng(5)
    lengths = [7, 12, 9]
    y = np.zeros((3, 12))
    pred = np.zeros((3, 12))
    mask = np.zeros((3, 12), dtype=bool)
    for m, n in enumerate(lengths):
        y[m, :n] = rng.integers(0, 6, n)
        pred[m, :n] = y[m, :n] + rng.normal(size=n)
        y[m, n:], pred[m, n:] = 99.0, -99.0  # padding must not count
        mask[m, :n] = True
    batched = member_metrics(y, pred, mask, (0.0, 5.0))
    for m, n in enumerate(lengths):
        alone = regression_metrics(y[m, :n], pred[m, :n], (0.0, 5.0))
        for name, value in alone.items():
            assert batched[name][m] == pytest.approx(value, rel=1e-12), name


def test_outcome_distribution_counts_subjects_and_never_says_minus_zero():
    from mmse_model.evaluation.scoring import outcome_distribution

    out = outcome_distribution(np.array(["a", "a", "b", "c"]), np.array([-0.0, -0.0, 2.0, 5.0]))
    assert out["n"] == 3 and out["min"] == 0.0 and str(out["min"]) == "0.0" and out["max"] == 5.0
    assert out["counts"] == {"0": 1, "2": 1, "5": 1}
