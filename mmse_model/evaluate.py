"""Scoring a trained checkpoint on the held-out test subjects of its split."""

from __future__ import annotations

from typing import Any

import numpy as np

from mmse_model.checkpoint import FoldEnsemble
from mmse_model.data import Split, TaskData
from mmse_model.metrics import calibration, regression_metrics


def held_out_rows(data: TaskData, split: Split) -> np.ndarray:
    """Boolean mask of the rows that belong to held-out test subjects."""
    return np.isin(data.subject_ids, np.array(split.test_subjects, dtype=data.subject_ids.dtype))


def score_predictions(
    y_true: np.ndarray, y_pred: np.ndarray, score_range: tuple[float, float]
) -> dict[str, float]:
    """Test metrics in points, with calibration (slope/intercept of true on predicted)."""
    return {
        **regression_metrics(y_true, y_pred, score_range),
        **calibration(y_true, y_pred),
        "n": int(len(y_true)),
    }


def evaluate_on_test(payload: dict[str, Any], data: TaskData, split: Split) -> dict[str, float]:
    """The fold ensemble's metrics on the test subjects, which no fold-model has seen."""
    rows = held_out_rows(data, split)
    ensemble = FoldEnsemble.from_checkpoint(payload)
    return score_predictions(data.y[rows], ensemble.predict(data.X[rows]), ensemble.score_range)
