"""Scoring a trained checkpoint on the held-out test subjects of its split."""

from __future__ import annotations

from typing import Any

import numpy as np

from mmse_model.checkpoint import CheckpointPayload, FoldEnsemble
from mmse_model.data import Split, TaskData
from mmse_model.metrics import calibration, regression_metrics


def held_out_rows(subject_ids: np.ndarray, split: Split) -> np.ndarray:
    """Boolean mask of the rows that belong to held-out test subjects."""
    return np.isin(subject_ids, np.array(split.test_subjects, dtype=subject_ids.dtype))


def score_predictions(
    y_true: np.ndarray, y_pred: np.ndarray, score_range: tuple[float, float]
) -> dict[str, float]:
    """Test metrics in points, with calibration (slope/intercept of true on predicted)."""
    return {
        **regression_metrics(y_true, y_pred, score_range),
        **calibration(y_true, y_pred),
        "n": int(len(y_true)),
    }


def test_predictions(payload: CheckpointPayload, data: TaskData, split: Split, signature: str | None = None):
    """(subject ids, true scores, predictions, sd over the fold-models) of the test rows."""
    rows = held_out_rows(data.subject_ids, split)
    per_fold = FoldEnsemble.from_checkpoint(payload, signature).predict_folds(data.X[rows])  # (K, n)
    return data.subject_ids[rows], data.y[rows], per_fold.mean(axis=0), per_fold.std(axis=0, ddof=1)


def evaluate_on_test(payload: CheckpointPayload, data: TaskData, split: Split,
                     signature: str | None = None) -> dict[str, Any]:
    """The fold ensemble's metrics on the test subjects, which no fold-model has seen."""
    _, y_true, y_pred, _ = test_predictions(payload, data, split, signature)
    return score_predictions(y_true, y_pred, (payload.score_range[0], payload.score_range[1]))
