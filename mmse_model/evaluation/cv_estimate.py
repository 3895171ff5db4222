"""The estimate of a procedure from repeated K-fold cross-validation, with intervals made
for cross-validation.

Each outer fold (repeat r, fold k) of the nested cross-validation scores the procedure's
model, and every comparator, on subjects that neither trained nor selected it. A metric is
computed per fold; the estimate is its mean over the J = R x K folds. A naive interval
(a bootstrap of the pooled predictions, or the folds' standard error) treats the folds as
independent; they are not (their training sets overlap), and such intervals are too narrow.
The corrected resampled t of Nadeau & Bengio (2003, "Inference for the generalization
error") inflates the variance of the folds' mean by the training overlap:

    var = (1/J + n_test/n_train) * s^2,   s^2 the sample variance of the J fold values,

with a t distribution on J - 1 degrees of freedom (Bouckaert & Frank 2004 recommend it for
repeated cross-validation). The same statistic gives the p-value of a paired difference
(network minus comparator, fold by fold). What it estimates: the expected metric of the
whole procedure (search included) trained on (K-1)/K of a cohort like this one.

Item-scale metrics read a sub-score as clinicians do: the prediction rounded to the nearest
score on the item's scale, then exact agreement, agreement within one point and
quadratic-weighted kappa (Cohen 1968) against the true score.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

INTERVAL_LEVEL = 0.95
METRICS = ("rmse", "mae", "r2", "exact", "within_1", "kappa")
SCALE_METRICS = ("exact", "within_1", "kappa")  # the item scale: not for the subtotal


@dataclass(frozen=True)
class TInterval:
    """A mean over folds with its corrected-t interval and the p-value of mean = 0."""

    mean: float | None
    low: float | None
    high: float | None
    p_value: float | None
    folds: int  # folds the metric was defined on


def corrected_t(
    values: Sequence[float | None], test_fraction: float, level: float = INTERVAL_LEVEL
) -> TInterval:
    """Nadeau & Bengio's corrected resampled t over fold values (None: undefined on that
    fold, left out); `test_fraction` = n_test / (n_test + n_train) of a fold."""
    from scipy.stats import t

    found = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    j = len(found)
    if j == 0:
        return TInterval(None, None, None, None, 0)
    mean = float(found.mean())
    if j == 1:
        return TInterval(mean, None, None, None, 1)
    ratio = test_fraction / (1.0 - test_fraction)
    se = math.sqrt((1.0 / j + ratio) * float(found.var(ddof=1)))
    if se == 0.0:
        p = 1.0 if mean == 0.0 else 0.0
        return TInterval(mean, mean, mean, p, j)
    q = float(t.ppf(0.5 + level / 2, j - 1))
    p = float(2 * t.sf(abs(mean) / se, j - 1))
    return TInterval(mean, mean - q * se, mean + q * se, p, j)


def holm(p_values: dict[str, float | None]) -> dict[str, float | None]:
    """Holm's step-down adjusted p-values (Holm 1979), for the family given; None stays."""
    known = sorted((p, key) for key, p in p_values.items() if p is not None)
    m = len(known)
    adjusted: dict[str, float | None] = dict.fromkeys(p_values)
    running = 0.0
    for i, (p, key) in enumerate(known):
        running = max(running, min(1.0, (m - i) * p))
        adjusted[key] = running
    return adjusted


def fold_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, score_range: tuple[float, float], item_scale: bool
) -> dict[str, float | None]:
    """One fold's metrics in points; with `item_scale`, also exact and within-1 agreement
    and quadratic-weighted kappa of the prediction rounded onto the item's integer scale."""
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    err = y_pred - y_true
    mse = float(np.mean(err**2))
    var = float(np.var(y_true))
    out: dict[str, float | None] = {
        "rmse": math.sqrt(mse),
        "mae": float(np.mean(np.abs(err))),
        "r2": None if var == 0.0 else 1.0 - mse / var,
    }
    if item_scale:
        rounded = rounded_scores(y_pred, score_range)
        truth = np.rint(y_true)
        out["exact"] = float(np.mean(rounded == truth))
        out["within_1"] = float(np.mean(np.abs(rounded - truth) <= 1))
        out["kappa"] = weighted_kappa(truth, rounded, score_range)
    return out


def rounded_scores(y_pred: np.ndarray, score_range: tuple[float, float]) -> np.ndarray:
    """Predictions as scores on the item's scale: rounded (halves up) and clipped to it."""
    low, high = score_range
    return np.clip(np.floor(np.asarray(y_pred, dtype=float) + 0.5), low, high)


def weighted_kappa(
    truth: np.ndarray, rated: np.ndarray, score_range: tuple[float, float]
) -> float | None:
    """Quadratic-weighted kappa over the item's scores (scikit-learn's
    `cohen_kappa_score(weights="quadratic")`); None where it is undefined (every true and
    rated score one and the same)."""
    from sklearn.metrics import cohen_kappa_score

    labels = list(range(int(score_range[0]), int(score_range[1]) + 1))
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # undefined: scikit-learn warns, and says NaN
        value = cohen_kappa_score(
            truth.astype(int), rated.astype(int), labels=labels, weights="quadratic"
        )
    return float(value) if math.isfinite(value) else None


def auc(positive: np.ndarray, score: np.ndarray) -> float | None:
    """ROC AUC of `score` for `positive` (ties count half); None with one class only."""
    positive = np.asarray(positive, dtype=bool)
    if positive.all() or not positive.any():
        return None
    from scipy.stats import rankdata

    ranks = rankdata(np.asarray(score, dtype=float))
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
