"""Regression metrics in sub-score points, per fold and summarised over folds.

Names are namespaced (`val/rmse`) and the same everywhere: the loop's record, TensorBoard,
Ray Tune's `metric`, the checkpoint policy, the results table and the dashboard.

MAPE: the original design divided by `y + 1e-8`, so a true score of 0 (common: a subject
who recalls no word scores Q5 = 0) made it explode. Here the percentage error is taken
relative to the task's score range, `100 * mean(|y - y_hat|) / (high - low)` (a
range-normalised MAE, often called NMAE): defined for every score, comparable across tasks
with different ranges.
"""

from __future__ import annotations

import numpy as np

# The value early stopping, the LR scheduler, checkpoint ranking and ASHA all minimise:
# mean over folds of the validation MSE on the [0, 1]-scaled target. Multiplied by
# (high - low)^2 it is the mean fold MSE in squared points of the raw outputs, so ranking
# by it within a task is ranking by cross-validated MSE in points. (The val/* metrics in
# points score the outputs clamped to the task's range, as predictions are.)
MONITOR = "val/loss"


def member_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, mask: np.ndarray, score_range: tuple[float, float]
) -> dict[str, np.ndarray]:
    """Every metric for M sets of predictions at once: (M, n) arrays with a mask of the
    real entries -> {name: (M,)}, in points. The one implementation of every formula."""
    y_true, y_pred = np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
    w = np.asarray(mask, dtype=np.float64)
    n = w.sum(axis=1)

    def mean(values: np.ndarray) -> np.ndarray:
        return (values * w).sum(axis=1) / n

    err = y_true - y_pred
    mse = mean(err**2)
    mae = mean(np.abs(err))
    centred_true = y_true - mean(y_true)[:, None]
    centred_pred = y_pred - mean(y_pred)[:, None]
    var_true = mean(centred_true**2)
    var_err = mean((err - mean(err)[:, None]) ** 2)
    low, high = score_range
    return {
        "mse": mse,
        "rmse": np.sqrt(mse),
        "mae": mae,
        # r2 and explained variance follow scikit-learn, including its choice for a constant
        # target (1.0 when the prediction is perfect, 0.0 otherwise).
        "r2": _ratio_score(mse, var_true),
        "explained_variance": _ratio_score(var_err, var_true),
        "pearson_r": _pearson(centred_true, centred_pred, mean),
        "mape": 100.0 * mae / (high - low),
    }


def regression_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, score_range: tuple[float, float]
) -> dict[str, float | None]:
    """All metrics for one set of predictions, in points; None where one is undefined (the
    Pearson r of a constant prediction)."""
    y_true, y_pred = np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
    values = member_metrics(
        y_true[None], y_pred[None], np.ones((1, len(y_true)), dtype=bool), score_range
    )
    return {name: float(v[0]) if np.isfinite(v[0]) else None for name, v in values.items()}


def _ratio_score(residual: np.ndarray, total: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        score = 1.0 - residual / total
    return np.where(total == 0.0, np.where(residual == 0.0, 1.0, 0.0), score)


def _pearson(centred_a: np.ndarray, centred_b: np.ndarray, mean) -> np.ndarray:
    # Undefined when either side is constant: NaN (null in every file), not 0, which would
    # read as "no linear association", a finding rather than the absence of one.
    var_a, var_b = mean(centred_a**2), mean(centred_b**2)
    constant = (var_a <= 1e-24) | (var_b <= 1e-24)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = mean(centred_a * centred_b) / np.sqrt(var_a * var_b)
    return np.where(constant, np.nan, r)


def calibration(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float | None]:
    """Slope and intercept of the true score regressed on the prediction (1 and 0 is ideal);
    both None (JSON null) for a constant prediction, which has no slope."""
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    # A constant prediction (the training-mean baseline) leaves the regression undefined: a
    # slope of 0 would read as "predictions carry no information about the truth", which is a
    # finding, not the absence of one. Tested by range, since the std of a constant float
    # array can come out as ~1e-16 and make polyfit meaningless.
    if np.ptp(y_pred) <= 1e-9 * max(1.0, float(np.abs(y_pred).max())):
        return {"calibration_slope": None, "calibration_intercept": None}
    slope, intercept = np.polyfit(y_pred, y_true, 1)
    return {"calibration_slope": float(slope), "calibration_intercept": float(intercept)}


def summarise_folds(per_fold: dict[str, np.ndarray]) -> dict[str, float]:
    """Mean and sample sd over one signature's K folds: {'rmse': m, 'rmse_sd': s, ...}."""
    n_folds = len(next(iter(per_fold.values()))) if per_fold else 1
    return summarise_signatures(per_fold, n_folds)[0] if per_fold else {}


def summarise_signatures(per_member: dict[str, np.ndarray], n_folds: int) -> list[dict[str, float]]:
    """`summarise_folds` for S signatures at once, member s*K + k being signature s's fold
    k: {name: (S*K,)} -> one {'rmse': m, 'rmse_sd': s, ...} per signature. One reduction per
    metric instead of two per metric and signature: the loop summarises 36 signatures every
    epoch."""
    columns: dict[str, np.ndarray] = {}
    for name, values in per_member.items():
        folds = np.asarray(values, dtype=np.float64).reshape(-1, n_folds)  # (S, K)
        columns[name] = folds.mean(axis=1)
        columns[f"{name}_sd"] = folds.std(axis=1, ddof=1) if n_folds > 1 else np.zeros(len(folds))
    rows = [column.tolist() for column in columns.values()]
    return [dict(zip(columns, values)) for values in zip(*rows)]
