"""Regression metrics in sub-score points, per fold and summarised over folds.

Names are namespaced (`val/rmse`) and the same everywhere: the loop's record, TensorBoard,
Ray Tune's `metric`, the checkpoint policy, the results table and the dashboard.

MAPE: the seed divided by `y + 1e-8`, so a true score of 0 (common: a subject who recalls
no word scores Q5 = 0) made it explode. Here the percentage error is taken relative to the
task's score range, `100 * mean(|y - y_hat|) / (high - low)` (a range-normalised MAE, often
called NMAE): defined for every score, comparable across tasks with different ranges.
"""

from __future__ import annotations

import math

import numpy as np
import torch

# The value early stopping, the LR scheduler, checkpoint ranking and ASHA all minimise:
# mean over folds of the validation MSE on the [0, 1]-scaled target. Multiplied by
# (high - low)^2 it is the mean fold MSE in squared points, so ranking by it within a task
# is ranking by cross-validated MSE in points.
MONITOR = "val/loss"
METRIC_NAMES = ("mse", "rmse", "mae", "r2", "explained_variance", "pearson_r", "mape")


def regression_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, score_range: tuple[float, float]
) -> dict[str, float]:
    """All metrics for one set of predictions, both in points."""
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    err = y_true - y_pred
    mse = float(np.mean(err**2))
    var_true = float(np.var(y_true))
    low, high = score_range
    return {
        "mse": mse,
        "rmse": math.sqrt(mse),
        "mae": float(np.mean(np.abs(err))),
        # r2 and explained variance follow scikit-learn, including its choice for a constant
        # target (1.0 when the prediction is perfect, 0.0 otherwise).
        "r2": _ratio_score(float(np.sum(err**2)), float(np.sum((y_true - y_true.mean()) ** 2))),
        "explained_variance": _ratio_score(float(np.var(err)), var_true),
        "pearson_r": _pearson(y_true, y_pred),
        "mape": float(100.0 * np.mean(np.abs(err)) / (high - low)),
    }


def _ratio_score(residual: float, total: float) -> float:
    if total == 0.0:
        return 1.0 if residual == 0.0 else 0.0
    return 1.0 - residual / total


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    # Undefined when either side is constant; report 0 (no linear association) rather than NaN,
    # which would poison means over folds.
    sa, sb = a.std(), b.std()
    if np.ptp(a) == 0.0 or np.ptp(b) == 0.0:
        return 0.0
    return float(np.mean((a - a.mean()) * (b - b.mean())) / (sa * sb))


def calibration(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Slope and intercept of the true score regressed on the prediction (1 and 0 is ideal)."""
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    # A constant prediction (the training-mean baseline) has no slope; test by range, since
    # the std of a constant float array can come out as ~1e-16 and make polyfit meaningless.
    if np.ptp(y_pred) <= 1e-9 * max(1.0, float(np.abs(y_pred).max())):
        return {"calibration_slope": 0.0, "calibration_intercept": float(y_true.mean())}
    slope, intercept = np.polyfit(y_pred, y_true, 1)
    return {"calibration_slope": float(slope), "calibration_intercept": float(intercept)}


def summarise_folds(per_fold: list[dict[str, float]]) -> dict[str, float]:
    """Mean and sample sd over folds: {'rmse': m, 'rmse_sd': s, ...}."""
    out: dict[str, float] = {}
    for name in per_fold[0]:
        values = np.array([m[name] for m in per_fold])
        out[name] = float(values.mean())
        out[f"{name}_sd"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return out


def fold_metrics(
    y_true: torch.Tensor, y_pred: torch.Tensor, mask: torch.Tensor, score_range: tuple[float, float]
) -> list[dict[str, float]]:
    """Per-fold metrics from padded (K, n) tensors of points; one host transfer in all."""
    y_true, y_pred, mask = (t.detach().cpu().numpy() for t in (y_true, y_pred, mask))
    return [
        regression_metrics(y_true[k][mask[k]], y_pred[k][mask[k]], score_range)
        for k in range(y_true.shape[0])
    ]


class MetricsCalculator:
    """The seed's accumulate-then-compute helper, for code that iterates over batches."""

    def __init__(self, score_range: tuple[float, float]):
        self.score_range = score_range
        self.reset()

    def reset(self) -> None:
        self.y_true: list[np.ndarray] = []
        self.y_pred: list[np.ndarray] = []

    def update(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> None:
        self.y_true.append(y_true.detach().cpu().numpy().reshape(-1))
        self.y_pred.append(y_pred.detach().cpu().numpy().reshape(-1))

    def compute(self) -> dict[str, float]:
        if not self.y_true:
            return {}
        return regression_metrics(
            np.concatenate(self.y_true), np.concatenate(self.y_pred), self.score_range
        )
