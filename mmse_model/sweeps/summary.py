"""Scoring a finished sweep on the held-out subjects: winners, baselines, intervals, subtotal.

Everything here is measured on the test subjects of the data root's one shared split,
which no trial, scheduler or early stop saw:

- each task's winner (its checkpoint's fold ensemble) and the baselines, trained the same
  way (mmse_model/evaluation/baselines.py), with 95 % bootstrap intervals over test subjects, and the
  winner minus each baseline as a paired interval: "better" only where it excludes 0;
- per-subject CV+ prediction intervals (mmse_model/evaluation/conformal.py) from each
  winner's fold-models and its out-of-fold residuals on the training subjects, for every task
  and the subtotal, and their coverage on the test subjects with a Wilson interval;
- the five-task subtotal (0-21) of the test subjects that every task's winner scored, with
  intervals, and where subject groups are given (a SYNTHETIC cohort's labels), the AUC of
  the predicted subtotal for telling the dementia group apart; no clinical cut-off;
- optionally (`evaluation.outer_repeats`), an estimate of the whole procedure: the winning
  hyper-parameters re-run on fresh outer splits, choosing the signature again each time on
  the inner folds and scoring the choice on that split's test subjects. The repeats are
  training runs: the caller says where they run (`run_repeats`, mmse_model/sweeps/repeats.py).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mmse_model.core import atomic, storage
from mmse_model.core.domain import SUBTOTAL_RANGE, TASKS
from mmse_model.core.errors import InputError
from mmse_model.data.dataset import Split, load_group
from mmse_model.evaluation.baselines import baselines_over_signatures
from mmse_model.evaluation.conformal import DEFAULT_LEVEL, coverage
from mmse_model.evaluation.scoring import (
    bootstrap_auc_interval,
    bootstrap_intervals,
    held_out_rows,
    score_predictions,
)
from mmse_model.sweeps.repeats import (
    RepeatRunner,
    procedure_estimate,
    repeat_runs,
    run_repeats_in_process,
)
from mmse_model.sweeps.results import build_summary
from mmse_model.sweeps.rules import TrialRow, trials_csv_text, winners_per_task
from mmse_model.training.checkpoint import CheckpointPayload
from mmse_model.training.held_out import (
    HeldOutIntervals,
    OutOfFold,
    evaluate_winner,
    subtotal_intervals,
    test_predictions,
)

NETWORK = "network"
# lo, hi: the subject's CV+ prediction interval at the summary's interval level
PREDICTION_COLUMNS = ("task", "signature", "subject_id", "true", "predicted", "fold_sd", "lo", "hi")


def summarise_sweep(
    name: str,
    rows: list[TrialRow],
    data_root: str | Path,
    load: Callable[[str], CheckpointPayload],
    *,
    outer_repeats: int = 0,
    groups_file: str = "",
    seed: int = 0,
    provenance: dict[str, Any] | None = None,
    run_repeats: RepeatRunner = run_repeats_in_process,
    interval_level: float = DEFAULT_LEVEL,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(summary document, per-subject test predictions of every task's winner).

    Every task's `outer_repeats` go to `run_repeats` in one list, so a Ray runner can run
    them all at once."""
    test, baselines, comparisons, conformal = {}, {}, {}, {}
    conformal_parts: dict[str, tuple[OutOfFold, HeldOutIntervals]] = {}
    repeats: dict[str, list] = {}  # task -> its repeat runs
    predictions: list[dict[str, Any]] = []
    winners = winners_per_task(rows)
    for task, row in winners.items():
        winner = evaluate_winner(load(row.checkpoint_uri), data_root, task, row.signature, interval_level)
        payload, score_range, data, split, oof, held = (winner.payload, winner.score_range, winner.data,
                                                        winner.split, winner.oof, winner.held)
        config = payload.training_config()
        ids, y_true, y_pred, spread = test_predictions(payload, data, split, row.signature)
        conformal[task] = coverage(held.y, held.lower, held.upper, interval_level)
        conformal_parts[task] = (oof, held)
        predictions += [{"task": task, "signature": row.signature, "subject_id": str(s), "true": float(t),
                         "predicted": float(p), "fold_sd": float(d), "lo": float(lo), "hi": float(hi)}
                        for s, t, p, d, lo, hi in zip(ids, y_true, y_pred, spread, held.lower, held.upper)]
        models = {NETWORK: y_pred}
        chosen = {}
        signatures = sorted({r.signature for r in rows if r.task == task})
        for baseline, (pred, settings) in task_baselines(data_root, signatures, task, split, score_range,
                                                         config.seed, ids).items():
            models[baseline], chosen[baseline] = pred, settings
        intervals, comparisons[task] = bootstrap_intervals(y_true, models, score_range, NETWORK, seed=seed,
                                                           subjects=ids)
        test[task] = {**score_predictions(y_true, y_pred, score_range), **intervals[NETWORK]}
        baselines[task] = {b: {**score_predictions(y_true, models[b], score_range), **intervals[b], **chosen[b]}
                           for b in chosen}
        if outer_repeats:
            repeats[task] = repeat_runs(data_root, task, sorted({r.signature for r in rows if r.task == task}),
                                        config, outer_repeats)
    estimates = outer_estimates(repeats, run_repeats)
    summary = build_summary(rows, test, baselines, experiment=name)
    for task, entry in summary["tasks"].items():
        entry["comparisons"] = comparisons.get(task, {})
        if task in estimates:
            entry["procedure_estimate"] = estimates[task]
        if task in conformal:
            entry["intervals"] = conformal[task]
    summary["subtotal"] = subtotal(predictions, groups_file, seed)
    if len(conformal_parts) == len(summary["subtotal"]["tasks"]) and conformal_parts:
        summary["subtotal"]["intervals"] = subtotal_coverage(conformal_parts, interval_level)
    summary["provenance"] = provenance or {}
    return summary, predictions


def task_baselines(data_root: str | Path, signatures: list[str], task: str, split: Split,
                   score_range: tuple[float, float], seed: int, test_ids: np.ndarray) -> dict[str, Any]:
    """The baselines on the signatures the sweep tried for the task, each choosing its own
    by cross-validation on the split's folds; their test rows are the winner's (`test_ids`)."""
    group = load_group(data_root, signatures, task, score_range)
    datas = {sig: group.task_data(sig) for sig in signatures}
    out = baselines_over_signatures(datas, split, score_range, seed)
    rows = held_out_rows(group.subject_ids, split)
    if not np.array_equal(group.subject_ids[rows], test_ids):
        raise RuntimeError(f"{task}: the baselines' test rows are not the winner's")
    return out


def subtotal(predictions: list[dict[str, Any]], groups_file: str = "", seed: int = 0) -> dict[str, Any]:
    """The five-task subtotal of the test subjects every task's winner scored."""
    by_subject: dict[str, dict[str, tuple[float, float]]] = {}
    tasks = sorted({p["task"] for p in predictions})
    for p in predictions:
        by_subject.setdefault(p["subject_id"], {})[p["task"]] = (p["true"], p["predicted"])
    complete = sorted(s for s, per_task in by_subject.items() if len(per_task) == len(tasks))
    out: dict[str, Any] = {"tasks": tasks, "n": len(complete), "range": list(SUBTOTAL_RANGE),
                           "all_five_tasks": tasks == list(TASKS)}
    if len(complete) < 2:
        return out
    true = np.array([sum(by_subject[s][t][0] for t in tasks) for s in complete])
    pred = np.array([sum(by_subject[s][t][1] for t in tasks) for s in complete])
    metrics = score_predictions(true, pred, SUBTOTAL_RANGE)
    intervals, _ = bootstrap_intervals(true, {NETWORK: pred}, SUBTOTAL_RANGE, NETWORK, seed=seed)
    out.update({k: metrics[k] for k in ("rmse", "mae", "r2", "pearson_r")}, **intervals[NETWORK])
    if groups_file:
        out["dementia_auc"] = dementia_auc(complete, pred, groups_file, seed)
    return out


def subtotal_coverage(parts: dict[str, tuple[OutOfFold, HeldOutIntervals]], level: float) -> dict[str, Any]:
    """Coverage of the subtotal's CV+ intervals (the sum of the tasks' predictions; residuals
    summed per subject) on the test subjects every task scored."""
    sub = subtotal_intervals(parts, level)
    return coverage(sub.y, sub.lower, sub.upper, level)


def dementia_auc(subjects: list[str], predicted_subtotal: np.ndarray, groups_file: str, seed: int) -> dict[str, Any]:
    """AUC of the predicted subtotal (lower: more impaired) for telling the dementia group
    from the others, with a bootstrap interval; marked SYNTHETIC when the cohort is."""
    path = Path(groups_file)
    try:
        with open(path, newline="") as handle:
            groups = {row["subject_id"]: row["group"] for row in csv.DictReader(handle)}
    except (OSError, KeyError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path}: cannot read subject groups (needs subject_id and group columns; {exc})") from None
    # A subject the file does not name is left out, not counted as "not dementia".
    known = [i for i, s in enumerate(subjects) if groups.get(s)]
    labels = np.array([groups[subjects[i]] == "dementia" for i in known], dtype=bool)
    predicted_subtotal = predicted_subtotal[known]
    result: dict[str, Any] = {"synthetic": (path.parent / "SYNTHETIC.txt").exists(), "n_dementia": int(labels.sum()),
                              "n_other": int((~labels).sum()), "n_without_group": len(subjects) - len(known),
                              "groups_file": str(path)}
    if labels.all() or not labels.any():
        return result
    from sklearn.metrics import roc_auc_score

    score = -predicted_subtotal
    result["auc"] = float(roc_auc_score(labels, score))
    result["auc_ci"] = bootstrap_auc_interval(labels, score, seed=seed)
    return result


def outer_estimates(repeats: dict[str, list], run_repeats: RepeatRunner) -> dict[str, dict[str, Any]]:
    """Each task's procedure estimate: its repeats (mmse_model/sweeps/repeats.py) run by
    `run_repeats`, all tasks' in one call. The hyper-parameter search itself is not
    repeated, so this is still a little optimistic; it does not reuse the sweep's test set."""
    runs = [run for task_runs in repeats.values() for run in task_runs]
    if not runs:
        return {}
    results = run_repeats(runs)
    if len(results) != len(runs):
        raise RuntimeError(f"the repeat runner returned {len(results)} results for {len(runs)} runs")
    estimates, start = {}, 0
    for task, task_runs in repeats.items():
        estimates[task] = procedure_estimate(results[start:start + len(task_runs)])
        start += len(task_runs)
    return estimates


def predictions_csv_text(predictions: list[dict[str, Any]]) -> str:
    """`test_predictions.csv`: every winner's test subjects, one row each."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=PREDICTION_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(predictions)
    return text.getvalue()


RESULT_FILES = ("trials.csv", "test_predictions.csv", "summary.txt", "summary.json")


def write_results(experiment: str, rows: list[TrialRow], summary: dict[str, Any], text: str,
                  predictions: list[dict[str, Any]]) -> None:
    """Write a sweep's result files into its experiment folder (a path or a storage URI),
    each whole. summary.json goes last: where it is, every other result file is complete
    (the dashboard reads a folder without it as a sweep still running)."""
    contents = {
        "trials.csv": trials_csv_text(rows),
        "test_predictions.csv": predictions_csv_text(predictions),
        "summary.txt": text + "\n",
        "summary.json": atomic.json_text(summary),
    }
    for name in RESULT_FILES:
        storage.write_text(storage.join(experiment, name), contents[name])
