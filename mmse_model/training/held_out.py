"""Scoring a trained checkpoint's fold ensemble on the held-out test subjects of its split."""

from __future__ import annotations

from typing import Any


from mmse_model.data.dataset import Split, TaskData
from mmse_model.evaluation.scoring import held_out_rows, score_predictions
from mmse_model.training.checkpoint import CheckpointPayload, FoldEnsemble


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
