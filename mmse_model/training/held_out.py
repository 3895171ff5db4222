"""Scoring a trained checkpoint's fold ensemble on the held-out test subjects of its split,
and the out-of-fold predictions on its training subjects that CV+ intervals are made of."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mmse_model.data.dataset import Split, TaskData, load_group
from mmse_model.evaluation.conformal import (
    DEFAULT_LEVEL,
    clip_to_range,
    cv_plus_intervals,
    subtotal_folds,
    summed_over_tasks,
)
from mmse_model.evaluation.scoring import held_out_rows, score_predictions
from mmse_model.training.checkpoint import CheckpointPayload, FoldEnsemble


def test_predictions(
    payload: CheckpointPayload, data: TaskData, split: Split, signature: str | None = None
):
    """(subject ids, true scores, predictions, sd over the fold-models) of the test rows."""
    rows = held_out_rows(data.subject_ids, split)
    per_fold = FoldEnsemble.from_checkpoint(payload, signature).predict_folds(
        data.X[rows]
    )  # (K, n)
    return data.subject_ids[rows], data.y[rows], per_fold.mean(axis=0), per_fold.std(axis=0, ddof=1)


def evaluate_on_test(
    payload: CheckpointPayload, data: TaskData, split: Split, signature: str | None = None
) -> dict[str, Any]:
    """The fold ensemble's metrics on the test subjects, which no fold-model has seen."""
    subjects, y_true, y_pred, _ = test_predictions(payload, data, split, signature)
    return score_predictions(
        y_true, y_pred, (payload.score_range[0], payload.score_range[1]), subjects
    )


@dataclass(frozen=True)
class OutOfFold:
    """Each training row's prediction by the fold-model that did not train on it."""

    subject_ids: np.ndarray  # (n,) str
    y: np.ndarray  # (n,) true scores
    predicted: np.ndarray  # (n,) mu_{-k(i)}(x_i), clamped to the score range as every prediction is
    folds: np.ndarray  # (n,) int: k(i)

    @property
    def residuals(self) -> np.ndarray:
        return np.abs(self.y - self.predicted)


def out_of_fold(ensemble: FoldEnsemble, data: TaskData, split: Split) -> OutOfFold:
    """The training rows' out-of-fold predictions (test subjects left out)."""
    folds = np.array([split.fold_of_subject.get(str(s), -1) for s in data.subject_ids])
    rows = folds >= 0
    if folds[rows].size and folds[rows].max() >= ensemble.model.n_models:
        raise ValueError(
            f"split has {split.folds} folds, the ensemble {ensemble.model.n_models} fold-models"
        )
    per_fold = ensemble.predict_folds(data.X[rows])  # (K, n)
    predicted = per_fold[folds[rows], np.arange(per_fold.shape[1])]
    return OutOfFold(data.subject_ids[rows].astype(str), data.y[rows], predicted, folds[rows])


@dataclass(frozen=True)
class HeldOutIntervals:
    """CV+ intervals of the test rows, clipped to the score range, with their fold predictions."""

    subject_ids: np.ndarray  # (m,) str
    y: np.ndarray  # (m,)
    fold_predictions: np.ndarray  # (K, m)
    lower: np.ndarray  # (m,)
    upper: np.ndarray  # (m,)
    score_range: tuple[float, float]


def held_out_intervals(
    ensemble: FoldEnsemble,
    data: TaskData,
    split: Split,
    oof: OutOfFold,
    level: float = DEFAULT_LEVEL,
) -> HeldOutIntervals:
    rows = held_out_rows(data.subject_ids, split)
    fold_predictions = ensemble.predict_folds(data.X[rows])
    lower, upper = cv_plus_intervals(fold_predictions, oof.residuals, oof.folds, level)
    lower, upper = clip_to_range(lower, upper, ensemble.score_range)
    return HeldOutIntervals(
        data.subject_ids[rows].astype(str),
        data.y[rows],
        fold_predictions,
        lower,
        upper,
        ensemble.score_range,
    )


@dataclass(frozen=True)
class SubtotalIntervals:
    """The subtotal as one more regression on the same folds: out-of-fold residuals of the
    training subjects every task holds, and CV+ intervals of the test subjects every task holds."""

    tasks: tuple[str, ...]
    residuals: (
        np.ndarray
    )  # (n,) |sum_t y - sum_t mu_{-k(i)}|, the signed task residuals summed per subject
    folds: np.ndarray  # (n,)
    subject_ids: np.ndarray  # (m,) test subjects
    y: np.ndarray  # (m,)
    lower: np.ndarray  # (m,)
    upper: np.ndarray  # (m,)
    score_range: tuple[float, float]


def subtotal_intervals(
    parts: dict[str, tuple[OutOfFold, HeldOutIntervals]], level: float = DEFAULT_LEVEL
) -> SubtotalIntervals:
    tasks = tuple(sorted(parts))
    oof = [parts[t][0] for t in tasks]
    held = [parts[t][1] for t in tasks]
    train_subjects, signed = summed_over_tasks([(o.subject_ids, o.y - o.predicted) for o in oof])
    folds = subtotal_folds([(o.subject_ids, o.folds) for o in oof], train_subjects)
    test_subjects, fold_predictions = summed_over_tasks(
        [(h.subject_ids, h.fold_predictions) for h in held]
    )
    _, y_true = summed_over_tasks([(h.subject_ids, h.y) for h in held])
    score_range = (sum(h.score_range[0] for h in held), sum(h.score_range[1] for h in held))
    lower, upper = cv_plus_intervals(fold_predictions, np.abs(signed), folds, level)
    lower, upper = clip_to_range(lower, upper, score_range)
    return SubtotalIntervals(
        tasks,
        np.abs(signed),
        folds,
        np.array(test_subjects, dtype=str),
        y_true,
        lower,
        upper,
        score_range,
    )


@dataclass(frozen=True)
class WinnerEvaluation:
    """A task winner's checkpoint on its data: the fold ensemble, the split it was trained
    on, its out-of-fold residuals and its held-out test subjects' intervals. The summary
    reports these, and the bundle ships them."""

    payload: CheckpointPayload
    score_range: tuple[float, float]
    data: TaskData
    split: Split
    ensemble: FoldEnsemble
    oof: OutOfFold
    held: HeldOutIntervals


def evaluate_winner(
    payload: CheckpointPayload, data_root: Any, task: str, signature: str, level: float
) -> WinnerEvaluation:
    score_range = payload.training_config().score_range(task)
    data = load_group(data_root, [signature], task, score_range).task_data(signature)
    split = Split.from_dict(payload.split)
    ensemble = FoldEnsemble.from_checkpoint(payload, signature)
    oof = out_of_fold(ensemble, data, split)
    return WinnerEvaluation(
        payload,
        score_range,
        data,
        split,
        ensemble,
        oof,
        held_out_intervals(ensemble, data, split, oof, level),
    )
