"""A task's (or the subtotal's) per-subject prediction intervals, as the summary reports them.

From the repeated nested cross-validation's outer folds: the calibration every new subject's
interval uses (`intervals.calibrate` over all of them), and the coverage those intervals
reached over the outer folds, each fold's calibrated on the other folds of its repeat
(`intervals.cross_fitted`), counted in subjects and broken down where clinicians look: by
band of the prediction, by true score, among the lowest and highest tenth of true scores,
and by subject group. A cell whose whole Wilson interval lies below the nominal level is
listed as short, plainly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mmse_model.core.domain import ordered_groups
from mmse_model.evaluation.intervals import (
    MONDRIAN,
    Held,
    calibrate,
    coverage_cell,
    cross_fitted,
)

SOURCE = (
    "signed residuals of the repeated nested cross-validation's outer folds: subjects that "
    "neither trained nor selected the model that predicted them"
)
GUARANTEE = (
    "for a model of the nested procedure and a new subject like the calibration subjects, at "
    "least the nominal coverage within each band of the prediction (split conformal, per "
    "band); the shipped models learnt from every subject with the full search, so for them "
    "there is no formal guarantee and the check on a fresh draw carries the claim; coverage "
    "for a given true score is reported, never guaranteed"
)


def interval_report(
    folds: Sequence[tuple[int, Sequence[str], np.ndarray, np.ndarray]],
    level: float,
    score_range: tuple[float, float],
    groups: dict[str, str] | None = None,
    item_scale: bool = True,
    integer_sets: bool = True,
) -> dict[str, Any]:
    """The IntervalReport fields of (repeat, subjects, truth, predicted) outer folds."""
    held = cross_fitted(folds, level, score_range)
    full = calibrate(held.predicted, held.truth, level, MONDRIAN)
    calibration = {
        "method": full.method,
        "level": level,
        "cuts": list(full.cuts),
        "lower": list(full.lower),
        "upper": list(full.upper),
        "n": list(full.n),
        "integer_sets": bool(integer_sets and item_scale),
    }
    everyone = np.ones(len(held.subjects), dtype=bool)
    cells = {
        "overall": _cell("all subjects", held, everyone, level, "all"),
        "by_band": _by_band(held, full.cuts, level),
        "by_score": _by_score(held, level, item_scale),
        "by_group": _by_group(held, groups, level) if groups else None,
    }
    every = [cells["overall"], *cells["by_band"], *cells["by_score"], *(cells["by_group"] or [])]
    return {
        "method": full.method,
        "level": level,
        "source": SOURCE,
        "guarantee": GUARANTEE,
        "calibration": calibration,
        **cells,
        "short": [c["label"] for c in every if c["short"]],
    }


def _cell(label: str, held: Held, rows: np.ndarray, level: float, kind: str) -> dict[str, Any]:
    return {"label": label, "kind": kind, **coverage_cell(held, rows, level)}


def _by_band(held: Held, cuts: Sequence[float], level: float) -> list[dict[str, Any]]:
    band = np.searchsorted(np.asarray(cuts), held.predicted, side="right")
    edges = [None, *cuts, None]
    out = []
    for b in range(len(cuts) + 1):
        low, high = edges[b], edges[b + 1]
        if low is None:
            label = f"band {b + 1}: predicted below {high:.2f}"
        elif high is None:
            label = f"band {b + 1}: predicted {low:.2f} or more"
        else:
            label = f"band {b + 1}: predicted {low:.2f} to {high:.2f}"
        out.append(_cell(label, held, band == b, level, "band"))
    return out


def _by_score(held: Held, level: float, item_scale: bool) -> list[dict[str, Any]]:
    """Per true score on an item; for the subtotal, per third of the true scores. Then the
    lowest and highest tenth of true scores, where a model regressing to the mean misses."""
    out = []
    if item_scale:
        scores = np.rint(held.truth) + 0.0  # + 0.0: a -0.0 would print as "-0"
        for score in sorted(set(scores.tolist())):
            cell = _cell(f"true score {score:g}", held, scores == score, level, "score")
            out.append({**cell, "score": score})
    else:
        cuts = np.quantile(held.truth, [1 / 3, 2 / 3])
        third = np.searchsorted(cuts, held.truth, side="right")
        for i, name in enumerate(("lowest", "middle", "highest")):
            out.append(_cell(f"{name} third of true scores", held, third == i, level, "third"))
    low, high = np.quantile(held.truth, [0.1, 0.9])
    out.append(
        _cell(
            f"lowest true scores (10th percentile or below: {low + 0.0:g} or less)",
            held,
            held.truth <= low,
            level,
            "low_tail",
        )
    )
    out.append(
        _cell(
            f"highest true scores (90th percentile or above: {high + 0.0:g} or more)",
            held,
            held.truth >= high,
            level,
            "high_tail",
        )
    )
    return out


def _by_group(held: Held, groups: dict[str, str], level: float) -> list[dict[str, Any]]:
    names = np.array([groups.get(str(s), "") for s in held.subjects])
    return [
        _cell(f"group {name}", held, names == name, level, "group")
        for name in ordered_groups(set(names) - {""})
    ]
