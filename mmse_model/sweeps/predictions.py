"""`test_predictions.csv`: each test subject's prediction, the one writer and one reader.

One row per (task's winner, test subject): task, signature, subject_id, true, predicted,
fold_sd (sd over the fold-models), lo and hi (its prediction interval); then, task
`subtotal`, each test subject's summed true and predicted scores over the tasks with the
subtotal's own interval (signature and fold_sd empty). Torch-free: the dashboard reads it.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from typing import Any

from mmse_model.core import csvsafe
from mmse_model.core.errors import InputError
from mmse_model.sweeps import rules

PREDICTIONS_NAME = "test_predictions.csv"
SUBTOTAL = "subtotal"  # the task of a subject's summed scores
COLUMNS = ("task", "signature", "subject_id", "true", "predicted", "fold_sd", "lo", "hi")


def predictions_csv_text(predictions: list[dict[str, Any]]) -> str:
    """The file's text: every winner's test subjects, one row each, then the subtotals."""
    return csvsafe.csv_text(COLUMNS, csvsafe.dict_rows(COLUMNS, predictions))


@dataclass(frozen=True)
class Prediction:
    """One row of test_predictions.csv: a test subject's true and predicted score on a task
    (or, task `subtotal`, summed over the tasks), with its interval where recorded."""

    task: str
    signature: str
    subject_id: str
    true: float
    predicted: float
    fold_sd: float | None
    lo: float | None
    hi: float | None


def read_predictions(where: str, text: str) -> list[Prediction]:
    """test_predictions.csv's rows; a row without a task or a finite true and predicted score
    is an InputError naming it."""
    out = []
    try:
        for i, raw in enumerate(csvsafe.read_dicts(text)):
            true = rules.finite_float(raw.get("true"))
            predicted = rules.finite_float(raw.get("predicted"))
            if not raw.get("task") or true is None or predicted is None:
                raise InputError(f"{where}: row {i + 2} lacks a task, a true or a predicted score")
            out.append(
                Prediction(
                    task=raw["task"],
                    signature=raw.get("signature") or "",
                    subject_id=raw.get("subject_id") or "",
                    true=true,
                    predicted=predicted,
                    fold_sd=rules.finite_float(raw.get("fold_sd")),
                    lo=rules.finite_float(raw.get("lo")),
                    hi=rules.finite_float(raw.get("hi")),
                )
            )
    except csv.Error as exc:
        raise InputError(f"{where}: not a readable CSV file ({exc})") from None
    return out
