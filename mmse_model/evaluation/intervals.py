"""Per-subject prediction intervals calibrated on the nested cross-validation's outer folds.

The residuals a conformal interval is made of must come from subjects that neither trained
nor selected the model that predicted them. The shipped models' own out-of-fold residuals
(CV+, mmse_model/evaluation/conformal.py) do not qualify: those subjects' validation losses
chose each fold-model's epoch and the winner among every sample and signature. The outer
folds of the repeated nested cross-validation do: each subject is predicted by a model whose
training and whole selection ran on other folds. Their signed residuals r = y - y_hat
calibrate the intervals here.

The method is Mondrian (split-conformal within each class; Vovk et al. 2005) with the
classes being bands of the prediction: the calibration predictions' terciles cut the scale
into three bands, and within band b the interval around a prediction y_hat is

    [y_hat + r_(lo), y_hat + r_(hi)]
    lo = floor((alpha/2)(n_b + 1)),  hi = ceil((1 - alpha/2)(n_b + 1))

the lo-th and hi-th smallest of the band's n_b signed residuals (an infinite bound where
the rank does not exist), clipped to the score range. Signed and per band because the
errors are not symmetric where it matters: a model regresses to the mean, so at low
predictions the truth tends to lie below and at high ones above; one symmetric width for all
(`symmetric`) wastes width in the middle and misses at the extremes. Which prediction assigns
the band: for calibration the outer fold's model's, for a new subject the shipped model's,
with the same cut points.

The guarantee that holds: for a model of the nested procedure and a new subject exchangeable
with the calibration subjects, coverage of at least 1 - alpha within each band (split
conformal's, per class) -- the cross-fitted coverage reported with the intervals measures
it. The shipped models are not those models (they learnt from every subject with the full
search), so for them there is no formal guarantee: the fresh-draw check
(`benchmarks/coverage_fresh.py`, the demo's last step) carries the claim. Coverage
conditional on the true score cannot be guaranteed by any method; it is reported, not
promised.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mmse_model.evaluation.conformal import wilson_interval

MONDRIAN, SYMMETRIC = "mondrian-bands", "symmetric"
# How each method's intervals are named where they are reported.
METHOD_WORDS = {
    MONDRIAN: "outer-fold calibrated (Mondrian by band)",
    SYMMETRIC: "outer-fold calibrated (symmetric)",
}
BANDS = 3
_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Calibration:
    """What a new prediction's interval needs: the band cut points on the prediction scale
    and each band's offsets (signed residual quantiles), from `n` calibration residuals."""

    method: str
    level: float
    cuts: tuple[float, ...]  # len bands - 1, ascending
    lower: tuple[float, ...]  # per band: offset added to the prediction (may be -inf)
    upper: tuple[float, ...]
    n: tuple[int, ...]  # calibration residuals per band

    def band_of(self, predicted: np.ndarray) -> np.ndarray:
        return np.searchsorted(np.asarray(self.cuts), np.asarray(predicted, float), side="right")

    def interval(
        self, predicted: np.ndarray, score_range: tuple[float, float]
    ) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) for predictions, clipped to the score range."""
        predicted = np.asarray(predicted, dtype=float)
        band = self.band_of(predicted)
        low = predicted + np.asarray(self.lower)[band]
        high = predicted + np.asarray(self.upper)[band]
        return np.clip(low, *score_range), np.clip(high, *score_range)


def calibration_from(record: Any) -> Calibration:
    """A calibration as a file records it (a mapping or a model with its fields; a null
    bound is an infinite one)."""

    def get(name: str) -> Any:
        return record[name] if isinstance(record, dict) else getattr(record, name)

    return Calibration(
        get("method"),
        float(get("level")),
        tuple(float(c) for c in get("cuts")),
        tuple(-math.inf if v is None else float(v) for v in get("lower")),
        tuple(math.inf if v is None else float(v) for v in get("upper")),
        tuple(int(n) for n in get("n")),
    )


def calibrate(
    predicted: np.ndarray,
    truth: np.ndarray,
    level: float,
    method: str = MONDRIAN,
    bands: int = BANDS,
) -> Calibration:
    """The calibration of `method` from outer-fold predictions and true scores."""
    predicted = np.asarray(predicted, dtype=float)
    residual = np.asarray(truth, dtype=float) - predicted
    if method == SYMMETRIC:
        q = _upper_quantile(np.abs(residual), level)
        return Calibration(method, level, (), (-q,), (q,), (len(residual),))
    if method != MONDRIAN:
        raise ValueError(f"interval method {method!r}: expected {MONDRIAN} or {SYMMETRIC}")
    cuts = tuple(float(c) for c in np.quantile(predicted, [i / bands for i in range(1, bands)]))
    band = np.searchsorted(np.asarray(cuts), predicted, side="right")
    lower, upper, counts = [], [], []
    for b in range(bands):
        r = np.sort(residual[band == b])
        lower.append(_rank(r, math.floor((1 - level) / 2 * (len(r) + 1) + _TOLERANCE)))
        upper.append(_rank(r, math.ceil((1 - (1 - level) / 2) * (len(r) + 1) - _TOLERANCE)))
        counts.append(len(r))
    return Calibration(method, level, cuts, tuple(lower), tuple(upper), tuple(counts))


def _rank(sorted_values: np.ndarray, rank: int) -> float:
    """The rank-th smallest (1-based); -inf below 1, +inf above n."""
    if rank < 1:
        return -math.inf
    if rank > len(sorted_values):
        return math.inf
    return float(sorted_values[rank - 1])


def _upper_quantile(values: np.ndarray, level: float) -> float:
    return _rank(np.sort(values), math.ceil(level * (len(values) + 1) - _TOLERANCE))


def integer_set(lower: float, upper: float) -> str:
    """The item's scores inside an interval, as `2-4`, `3`, or "" for none."""
    low, high = math.ceil(lower - _TOLERANCE), math.floor(upper + _TOLERANCE)
    if high < low:
        return ""
    return str(low) if low == high else f"{low}-{high}"


# --- coverage, counted in subjects -------------------------------------------------------------


@dataclass(frozen=True)
class Held:
    """Whether each (subject, repeat) interval held the true score."""

    subjects: np.ndarray  # (m,) str
    truth: np.ndarray  # (m,)
    predicted: np.ndarray  # (m,)
    lower: np.ndarray
    upper: np.ndarray

    @property
    def covered(self) -> np.ndarray:
        return (self.truth >= self.lower - _TOLERANCE) & (self.truth <= self.upper + _TOLERANCE)


def cross_fitted(
    folds: Sequence[tuple[int, Sequence[str], np.ndarray, np.ndarray]],
    level: float,
    score_range: tuple[float, float],
    method: str = MONDRIAN,
) -> Held:
    """Intervals for every outer fold's subjects calibrated on the other folds of the same
    repeat, as a new subject's are calibrated on all of them: (repeat, subjects, truth,
    predicted) per fold."""
    subjects, truth, predicted, lower, upper = [], [], [], [], []
    for i, (repeat, ids, y, p) in enumerate(folds):
        others = [f for j, f in enumerate(folds) if j != i and f[0] == repeat]
        cal = calibrate(
            np.concatenate([f[3] for f in others]),
            np.concatenate([f[2] for f in others]),
            level,
            method,
        )
        lo, hi = cal.interval(p, score_range)
        subjects.append(np.asarray(ids, dtype=str))
        truth.append(np.asarray(y, dtype=float))
        predicted.append(np.asarray(p, dtype=float))
        lower.append(lo)
        upper.append(hi)
    return Held(*(np.concatenate(x) for x in (subjects, truth, predicted, lower, upper)))


def coverage_cell(held: Held, rows: np.ndarray, level: float) -> dict:
    """Coverage of the rows' intervals, counted in subjects: each subject's share of its
    repeats covered, summed; n = the distinct subjects (the Wilson interval takes the
    rounded count of covered subjects). Whether it falls short of nominal, plainly."""
    ids = held.subjects[rows]
    if not len(ids):
        return {"n": 0, "covered": 0, "coverage": None, "coverage_ci": None, "short": False}
    per_subject: dict[str, list[bool]] = {}
    for sid, ok in zip(ids, held.covered[rows]):
        per_subject.setdefault(str(sid), []).append(bool(ok))
    share = float(np.mean([np.mean(v) for v in per_subject.values()]))
    n = len(per_subject)
    covered = round(share * n)
    ci = wilson_interval(covered, n)
    return {
        "n": n,
        "covered": covered,
        "coverage": share,
        "coverage_ci": ci,
        "mean_width": float(np.mean(held.upper[rows] - held.lower[rows])),
        # Short of nominal: the whole Wilson interval lies below the level.
        "short": ci[1] < level,
    }
