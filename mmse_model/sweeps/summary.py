"""Scoring a finished sweep on the held-out subjects: winners, baselines, intervals, subtotal.

Everything here is measured on the test subjects of the data root's one shared split,
which no trial, scheduler or early stop saw:

- each task's winner (its checkpoint's fold ensemble) and the baselines, trained the same
  way and each choosing its own signature on the split's folds
  (mmse_model/evaluation/baselines.py), with 95 % bootstrap intervals over test subjects, and
  the winner minus each baseline as a paired interval. The verdict ("better" only where the
  interval excludes 0) comes from the primary comparator the sweep config declared
  (`evaluation.primary_comparator`, Ridge by default); the other baselines are secondary.
  The intervals are not adjusted for the number of tasks, and the summary says so;
- who each task learnt from and was tested on (subjects, score distribution), and the error
  per subject group where a groups file is given;
- per-subject CV+ prediction intervals (mmse_model/evaluation/conformal.py) from each
  winner's fold-models and its out-of-fold residuals on the training subjects, for every task
  and the subtotal, and their coverage on the test subjects with a Wilson interval;
- the subtotal of the tasks present (0-21 with all five) of the test subjects that every
  task's winner scored, with intervals, and where subject groups are given (a SYNTHETIC
  cohort's labels), the AUC of the predicted subtotal for telling the dementia group apart;
  no clinical cut-off;
- whether the data root is SYNTHETIC (`data/manifest.is_synthetic`) and how many recordings
  its build left out;
- optionally (`evaluation.outer_repeats`), the nested estimate: on fresh outer splits the
  whole selection runs again on each split's training subjects (a reduced search of the
  sweep's search space x every signature), and the chosen network and every baseline are
  scored on that split's test subjects (mmse_model/sweeps/nested.py). The repeats are training
  runs: the caller says where they run (`run_repeats`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mmse_model.core import atomic, storage
from mmse_model.core.domain import TASKS
from mmse_model.core.errors import InputError
from mmse_model.data.dataset import Split, TaskData, load_group
from mmse_model.data.manifest import excluded_recordings, is_synthetic
from mmse_model.evaluation.baselines import BASELINES, baselines_over_signatures, training_folds
from mmse_model.evaluation.conformal import DEFAULT_LEVEL, coverage
from mmse_model.evaluation.scoring import (
    INTERVAL,
    bootstrap_auc_interval,
    bootstrap_intervals,
    group_errors,
    held_out_rows,
    outcome_distribution,
    score_predictions,
)
from mmse_model.sweeps.nested import (
    NETWORK,
    NestedSearch,
    OuterRepeat,
    RepeatRunner,
    nested_estimate,
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

# lo, hi: the subject's CV+ prediction interval at the summary's interval level
PREDICTION_COLUMNS = ("task", "signature", "subject_id", "true", "predicted", "fold_sd", "lo", "hi")


def summarise_sweep(
    name: str,
    rows: list[TrialRow],
    data_root: str | Path,
    load: Callable[[str], CheckpointPayload],
    *,
    nested: NestedSearch | None = None,
    groups_file: str = "",
    seed: int = 0,
    provenance: dict[str, Any] | None = None,
    run_repeats: RepeatRunner = run_repeats_in_process,
    interval_level: float = DEFAULT_LEVEL,
    primary_comparator: str = "ridge",
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(summary document, per-subject test predictions of every task's winner).

    Each task's verdict is its winner against `primary_comparator` (declared in the sweep
    config before anything ran); the other baselines are secondary. Every task's
    outer repeats of the `nested` search go to `run_repeats` in one list, so a Ray runner can
    run them all at once."""
    if primary_comparator not in BASELINES:
        raise ValueError(
            f"primary_comparator: expected one of {', '.join(BASELINES)}, got {primary_comparator!r}"
        )
    groups = read_groups(groups_file) if groups_file else {}
    test, baselines, comparisons, conformal, training, per_group = {}, {}, {}, {}, {}, {}
    score_ranges: dict[str, tuple[float, float]] = {}
    conformal_parts: dict[str, tuple[OutOfFold, HeldOutIntervals]] = {}
    repeats: dict[str, list[OuterRepeat]] = {}  # task -> its outer repeats
    predictions: list[dict[str, Any]] = []
    winners = winners_per_task(rows)
    for task, row in winners.items():
        winner = evaluate_winner(
            load(row.checkpoint_uri), data_root, task, row.signature, interval_level
        )
        payload, score_range, data, split, oof, held = (
            winner.payload,
            winner.score_range,
            winner.data,
            winner.split,
            winner.oof,
            winner.held,
        )
        config = payload.training_config()
        score_ranges[task] = score_range
        training[task] = training_description(data, split)
        ids, y_true, y_pred, spread = test_predictions(payload, data, split, row.signature)
        conformal[task] = coverage(held.y, held.lower, held.upper, interval_level)
        conformal_parts[task] = (oof, held)
        predictions += [
            {
                "task": task,
                "signature": row.signature,
                "subject_id": str(s),
                "true": float(t),
                "predicted": float(p),
                "fold_sd": float(d),
                "lo": float(lo),
                "hi": float(hi),
            }
            for s, t, p, d, lo, hi in zip(ids, y_true, y_pred, spread, held.lower, held.upper)
        ]
        models = {NETWORK: y_pred}
        chosen = {}
        signatures = sorted({r.signature for r in rows if r.task == task})
        for baseline, (pred, settings) in task_baselines(
            data_root, signatures, task, split, score_range, config.seed, ids
        ).items():
            models[baseline], chosen[baseline] = pred, settings
        intervals, comparisons[task] = bootstrap_intervals(
            y_true, models, score_range, NETWORK, seed=seed, subjects=ids
        )
        test[task] = {**score_predictions(y_true, y_pred, score_range, ids), **intervals[NETWORK]}
        baselines[task] = {
            b: {
                **score_predictions(y_true, models[b], score_range, ids),
                **intervals[b],
                **chosen[b],
            }
            for b in chosen
        }
        if groups:
            per_group[task] = group_errors(ids, y_true, y_pred, groups)
        if nested is not None:
            repeats[task] = nested.repeats_of(
                data_root, task, sorted({r.signature for r in rows if r.task == task})
            )
    estimates = nested_estimates(nested, repeats, run_repeats) if nested is not None else {}
    summary = build_summary(rows, test, baselines, experiment=name)
    for task, entry in summary["tasks"].items():
        entry["comparisons"] = {
            b: {**c, "primary": b == primary_comparator}
            for b, c in comparisons.get(task, {}).items()
        }
        if primary_comparator in entry["comparisons"]:
            entry["verdict"] = verdict(primary_comparator, entry["comparisons"][primary_comparator])
        entry["training"] = training[task]
        if task in per_group:
            entry["per_group"] = per_group[task]
        if task in estimates:
            entry["nested_estimate"] = estimates[task]
        if task in conformal:
            entry["intervals"] = conformal[task]
    synthetic = is_synthetic(data_root)
    summary["synthetic"] = synthetic
    summary["comparator"] = comparator(primary_comparator, len(summary["tasks"]))
    summary["excluded_recordings"] = excluded_recordings(data_root)
    summary["subtotal"] = subtotal(predictions, score_ranges, groups_file, seed, synthetic)
    if len(conformal_parts) == len(summary["subtotal"]["tasks"]) and conformal_parts:
        summary["subtotal"]["intervals"] = subtotal_coverage(conformal_parts, interval_level)
    summary["provenance"] = provenance or {}
    return summary, predictions


def task_baselines(
    data_root: str | Path,
    signatures: list[str],
    task: str,
    split: Split,
    score_range: tuple[float, float],
    seed: int,
    test_ids: np.ndarray,
) -> dict[str, Any]:
    """The baselines on the signatures the sweep tried for the task, each choosing its own
    by cross-validation on the split's folds; their test rows are the winner's (`test_ids`)."""
    group = load_group(data_root, signatures, task, score_range)
    datas = {sig: group.task_data(sig) for sig in signatures}
    out = baselines_over_signatures(datas, split, score_range, seed)
    rows = held_out_rows(group.subject_ids, split)
    if not np.array_equal(group.subject_ids[rows], test_ids):
        raise RuntimeError(f"{task}: the baselines' test rows are not the winner's")
    return out


def comparator(primary: str, n_tasks: int) -> dict[str, Any]:
    """What the verdicts compare with, declared before the sweep ran, and what the intervals
    do not correct for: one primary comparison per task, unadjusted for the number of tasks
    (docs/design.md, "Results and evaluation")."""
    level = f"{INTERVAL:.0%}".replace("%", " %")
    return {
        "primary": primary,
        "secondary": [b for b in BASELINES if b != primary],
        "level": INTERVAL,
        "adjustment": "none",
        "n_tasks": n_tasks,
        "note": (
            f"paired {level} bootstrap intervals of the winner's RMSE minus each baseline's, on the "
            f"test subjects; unadjusted for the {n_tasks} task{'s' if n_tasks != 1 else ''}; verdicts "
            f"come from the primary comparison ({primary}) only"
        ),
    }


def verdict(baseline: str, comparison: dict[str, Any]) -> dict[str, Any]:
    """A task's verdict: its winner against the primary baseline, from the paired interval."""
    result = (
        "better"
        if comparison["better"]
        else "worse"
        if comparison["worse"]
        else "no difference shown"
    )
    return {
        "baseline": baseline,
        "result": result,
        "rmse_diff": comparison["rmse_diff"],
        "rmse_diff_ci": comparison["rmse_diff_ci"],
    }


def training_description(data: TaskData, split: Split) -> dict[str, Any]:
    """Who a task's models learnt from and were tested on: subjects on each side (not rows)
    and the distribution of their scores."""
    train, _ = training_folds(data, split)
    test = held_out_rows(data.subject_ids, split)
    return {
        "n_train": len(np.unique(data.subject_ids[train])),
        "n_test": len(np.unique(data.subject_ids[test])),
        "outcome": {
            "train": outcome_distribution(data.subject_ids[train], data.y[train]),
            "test": outcome_distribution(data.subject_ids[test], data.y[test]),
        },
    }


def subtotal(
    predictions: list[dict[str, Any]],
    score_ranges: dict[str, tuple[float, float]],
    groups_file: str = "",
    seed: int = 0,
    synthetic: bool = False,
) -> dict[str, Any]:
    """The subtotal of the tasks present, for the test subjects every task's winner scored;
    its range is the sum of those tasks' ranges (0-21 with all five)."""
    by_subject: dict[str, dict[str, tuple[float, float]]] = {}
    tasks = sorted({p["task"] for p in predictions})
    for p in predictions:
        by_subject.setdefault(p["subject_id"], {})[p["task"]] = (p["true"], p["predicted"])
    complete = sorted(s for s, per_task in by_subject.items() if len(per_task) == len(tasks))
    score_range = (sum(score_ranges[t][0] for t in tasks), sum(score_ranges[t][1] for t in tasks))
    out: dict[str, Any] = {
        "tasks": tasks,
        "n": len(complete),
        "range": list(score_range),
        "all_five_tasks": tasks == list(TASKS),
    }
    if len(complete) < 2:
        return out
    true = np.array([sum(by_subject[s][t][0] for t in tasks) for s in complete])
    pred = np.array([sum(by_subject[s][t][1] for t in tasks) for s in complete])
    metrics = score_predictions(true, pred, score_range, np.array(complete))
    intervals, _ = bootstrap_intervals(true, {NETWORK: pred}, score_range, NETWORK, seed=seed)
    out.update(
        {
            k: metrics[k]
            for k in (
                "rmse",
                "mae",
                "r2",
                "pearson_r",
                "calibration_slope",
                "calibration_intercept",
            )
        },
        **intervals[NETWORK],
    )
    if groups_file:
        groups = read_groups(groups_file)
        out["per_group"] = group_errors(np.array(complete), true, pred, groups)
        out["dementia_auc"] = dementia_auc(complete, pred, groups, groups_file, seed, synthetic)
    return out


def subtotal_coverage(
    parts: dict[str, tuple[OutOfFold, HeldOutIntervals]], level: float
) -> dict[str, Any]:
    """Coverage of the subtotal's CV+ intervals (the sum of the tasks' predictions; residuals
    summed per subject) on the test subjects every task scored."""
    sub = subtotal_intervals(parts, level)
    return coverage(sub.y, sub.lower, sub.upper, level)


def read_groups(groups_file: str) -> dict[str, str]:
    """Subject id -> group, as the groups file (subject_id and group columns) names them."""
    path = Path(groups_file)
    try:
        with open(path, newline="") as handle:
            return {row["subject_id"]: row["group"] for row in csv.DictReader(handle)}
    except (OSError, KeyError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(
            f"{path}: cannot read subject groups (needs subject_id and group columns; {exc})"
        ) from None


def dementia_auc(
    subjects: list[str],
    predicted_subtotal: np.ndarray,
    groups: dict[str, str],
    groups_file: str,
    seed: int,
    synthetic: bool,
) -> dict[str, Any]:
    """AUC of the predicted subtotal (lower: more impaired) for telling the dementia group
    from the others, with a bootstrap interval; marked SYNTHETIC when the data root is."""
    # A subject the file does not name is left out, not counted as "not dementia".
    known = [i for i, s in enumerate(subjects) if groups.get(s)]
    labels = np.array([groups[subjects[i]] == "dementia" for i in known], dtype=bool)
    predicted_subtotal = predicted_subtotal[known]
    result: dict[str, Any] = {
        "synthetic": synthetic,
        "n_dementia": int(labels.sum()),
        "n_other": int((~labels).sum()),
        "n_without_group": len(subjects) - len(known),
        "groups_file": str(groups_file),
    }
    if labels.all() or not labels.any():
        return result
    from sklearn.metrics import roc_auc_score

    score = -predicted_subtotal
    result["auc"] = float(roc_auc_score(labels, score))
    result["auc_ci"] = bootstrap_auc_interval(labels, score, seed=seed)
    return result


def nested_estimates(
    search: NestedSearch, repeats: dict[str, list[OuterRepeat]], run_repeats: RepeatRunner
) -> dict[str, dict[str, Any]]:
    """Each task's nested estimate (mmse_model/sweeps/nested.py): its outer repeats run by
    `run_repeats`, all tasks' in one call."""
    every = [repeat for task_repeats in repeats.values() for repeat in task_repeats]
    if not every:
        return {}
    results = run_repeats(every)
    if len(results) != len(every):
        raise RuntimeError(
            f"the repeat runner returned {len(results)} results for {len(every)} repeats"
        )
    estimates, start = {}, 0
    for task, task_repeats in repeats.items():
        estimates[task] = nested_estimate(
            search, task_repeats, results[start : start + len(task_repeats)]
        )
        start += len(task_repeats)
    return estimates


def predictions_csv_text(predictions: list[dict[str, Any]]) -> str:
    """`test_predictions.csv`: every winner's test subjects, one row each."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=PREDICTION_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(predictions)
    return text.getvalue()


RESULT_FILES = ("trials.csv", "test_predictions.csv", "summary.txt", "summary.json")


def write_results(
    experiment: str,
    rows: list[TrialRow],
    summary: dict[str, Any],
    text: str,
    predictions: list[dict[str, Any]],
) -> None:
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
