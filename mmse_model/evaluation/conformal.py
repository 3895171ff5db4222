"""Per-subject prediction intervals by CV+ (Barber, Candès, Ramdas, Tibshirani 2021), and
their measured coverage.

A task's K fold-models were each trained without one fold of the training subjects; that
fold's subjects have an out-of-fold residual R_i = |y_i - mu_{-k(i)}(x_i)| under the model
that never saw them. For a new subject x, CV+ takes the n values mu_{-k(i)}(x) - R_i and
mu_{-k(i)}(x) + R_i over the n training subjects i and returns

    lower = the floor(alpha (n + 1))-th smallest of mu_{-k(i)}(x) - R_i
    upper = the ceil((1 - alpha)(n + 1))-th smallest of mu_{-k(i)}(x) + R_i

with alpha = 1 - level. Barber et al. prove coverage of at least 1 - 2 alpha - sqrt(2/n~)
for any model, and about 1 - alpha in practice; the coverage measured on held-out subjects
is the honest number, reported beside the level. Where n is too small for the rank to
exist the bound is infinite (the interval is then the task's whole range, once clipped).

The subtotal is one more regression with the same folds: its fold-k prediction is the sum
of the tasks' fold-k predictions, its residual the absolute sum of a subject's signed
per-task residuals (the tasks share one split, so a subject is out-of-fold in the same
fold for every task).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

DEFAULT_LEVEL = 0.9
COVERAGE_CONFIDENCE = 0.95  # the Wilson interval around a measured coverage
_RANK_TOLERANCE = (
    1e-9  # (n + 1) * level is often a whole number; float error must not move the rank
)


def cv_plus_ranks(n: int, level: float) -> tuple[int, int]:
    """1-based ranks (lower, upper) among n values; 0 or n + 1 mean an infinite bound."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level {level}: expected a number between 0 and 1")
    alpha = 1.0 - level
    lower = math.floor(alpha * (n + 1) + _RANK_TOLERANCE)
    upper = math.ceil(level * (n + 1) - _RANK_TOLERANCE)
    return lower, upper


def cv_plus_intervals(
    fold_predictions: np.ndarray,
    oof_residuals: np.ndarray,
    oof_folds: np.ndarray,
    level: float = DEFAULT_LEVEL,
) -> tuple[np.ndarray, np.ndarray]:
    """(lower (m,), upper (m,)) for m new subjects.

    fold_predictions: (K, m), fold-model k's prediction for each new subject;
    oof_residuals: (n,) |y_i - mu_{-k(i)}(x_i)| of the training subjects;
    oof_folds: (n,) the fold k(i) each training subject was held out in.
    """
    fold_predictions = np.asarray(fold_predictions, dtype=np.float64)
    residuals = np.asarray(oof_residuals, dtype=np.float64)
    folds = np.asarray(oof_folds, dtype=np.int64)
    if fold_predictions.ndim != 2:
        raise ValueError(f"fold_predictions must be (K, m), got shape {fold_predictions.shape}")
    if residuals.shape != folds.shape or residuals.ndim != 1:
        raise ValueError(f"residuals {residuals.shape} and folds {folds.shape} must be (n,) alike")
    if len(folds) and (folds.min() < 0 or folds.max() >= fold_predictions.shape[0]):
        raise ValueError(f"folds must lie in [0, {fold_predictions.shape[0]})")
    n, m = len(residuals), fold_predictions.shape[1]
    rank_low, rank_high = cv_plus_ranks(n, level)
    centre = fold_predictions[folds].T  # (m, n): mu_{-k(i)}(x) for every new x and training i
    lower = np.full(m, -np.inf)
    upper = np.full(m, np.inf)
    if rank_low >= 1:
        lower = np.partition(centre - residuals, rank_low - 1, axis=1)[:, rank_low - 1]
    if rank_high <= n:
        upper = np.partition(centre + residuals, rank_high - 1, axis=1)[:, rank_high - 1]
    return lower, upper


def clip_to_range(
    lower: np.ndarray, upper: np.ndarray, score_range: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """The interval within the score range: a true score never lies outside it, so clipping
    changes no coverage and makes infinite bounds finite."""
    low, high = score_range
    return np.clip(lower, low, high), np.clip(upper, low, high)


def wilson_interval(successes: int, n: int, confidence: float = COVERAGE_CONFIDENCE) -> list[float]:
    """Wilson score interval of a binomial proportion (good at proportions near 1)."""
    if n == 0:
        return [0.0, 1.0]
    from statistics import NormalDist

    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return [max(0.0, centre - half), min(1.0, centre + half)]


def coverage(
    y_true: np.ndarray, lower: np.ndarray, upper: np.ndarray, level: float
) -> dict[str, Any]:
    """The share of subjects whose true score lies in their interval, with its Wilson 95 %
    interval, and the intervals' mean width (in points)."""
    y_true = np.asarray(y_true, dtype=np.float64)
    inside = (y_true >= lower) & (y_true <= upper)
    n = len(y_true)
    covered = int(inside.sum())
    return {
        "level": float(level),
        "n": n,
        "covered": covered,
        "coverage": covered / n if n else math.nan,
        "coverage_ci": wilson_interval(covered, n),
        "mean_width": float(np.mean(upper - lower)) if n else math.nan,
    }


def format_coverage(c: dict[str, Any]) -> str:
    """'coverage 0.91 [0.84, 0.95] of 60 at level 0.90, mean width 1.93'."""
    low, high = c["coverage_ci"]
    return (
        f"{c['level']:.0%} CV+ intervals cover {c['coverage']:.1%} [{low:.1%}, {high:.1%}] of "
        f"{c['n']} test subjects, mean width {c['mean_width']:.2f} points"
    )


# --- the subtotal: sums over tasks, subject by subject -------------------------------------------


def per_subject(subject_ids: np.ndarray, values: np.ndarray) -> tuple[list[str], np.ndarray]:
    """(subjects in first-seen order, values (..., s) averaged over each subject's rows)."""
    ids = [str(s) for s in subject_ids]
    order = list(dict.fromkeys(ids))
    column = {s: i for i, s in enumerate(order)}
    index = np.array([column[s] for s in ids], dtype=np.int64)
    values = np.asarray(values, dtype=np.float64)
    sums = np.zeros(values.shape[:-1] + (len(order),))
    np.add.at(sums.T, index, values.T)  # along the last axis, whatever the leading shape
    counts = np.bincount(index, minlength=len(order))
    return order, sums / counts


def summed_over_tasks(
    per_task: list[tuple[np.ndarray, np.ndarray]],
) -> tuple[list[str], np.ndarray]:
    """Subjects present in every task (in the first task's order) and the sum over tasks of
    each task's per-subject values (..., n_t) -> (..., s)."""
    tables = [per_subject(ids, values) for ids, values in per_task]
    common = set(tables[0][0]).intersection(*(set(order) for order, _ in tables[1:]))
    subjects = [s for s in tables[0][0] if s in common]
    total = 0.0
    for order, values in tables:
        column = {s: i for i, s in enumerate(order)}
        total = total + values[..., np.array([column[s] for s in subjects], dtype=np.int64)]
    return subjects, np.asarray(total)


def subtotal_folds(
    per_task: list[tuple[np.ndarray, np.ndarray]], subjects: list[str]
) -> np.ndarray:
    """Each subject's fold, which must be the same in every task (one shared split)."""
    fold_of: dict[str, int] = {}
    for ids, folds in per_task:
        for sid, fold in zip(ids, folds):
            if fold_of.setdefault(str(sid), int(fold)) != int(fold):
                raise ValueError(
                    f"subject {sid!r} is in fold {fold_of[str(sid)]} for one task and {fold} "
                    "for another: the tasks do not share one split"
                )
    return np.array([fold_of[s] for s in subjects], dtype=np.int64)
