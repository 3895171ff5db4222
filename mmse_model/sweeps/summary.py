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
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mmse_model.core import csvsafe, storage
from mmse_model.core.domain import BASELINE_LABELS, BASELINES, TASK_ITEMS, TASKS
from mmse_model.core.errors import InputError
from mmse_model.data.dataset import Split, TaskData, load_group
from mmse_model.data.manifest import excluded_recordings, is_synthetic
from mmse_model.evaluation.baselines import baselines_over_signatures, training_folds
from mmse_model.evaluation.conformal import DEFAULT_LEVEL, coverage
from mmse_model.evaluation.intervals import METHOD_WORDS, calibration_from
from mmse_model.evaluation.metrics import MONITOR
from mmse_model.evaluation.scoring import (
    INTERVAL,
    bootstrap_auc_interval,
    bootstrap_intervals,
    group_errors,
    held_out_rows,
    outcome_distribution,
    score_predictions,
)
from mmse_model.sweeps.estimate import (
    holm_verdicts,
    subtotal_estimate,
    summed_fold,
    task_estimate,
)
from mmse_model.sweeps.interval_report import interval_report
from mmse_model.sweeps.nested import (
    NETWORK,
    NestedSearch,
    OuterRepeat,
    RepeatResult,
    RepeatRunner,
    run_repeats_in_process,
)
from mmse_model.sweeps.phases import Phases
from mmse_model.sweeps.predictions import PREDICTIONS_NAME, SUBTOTAL, predictions_csv_text
from mmse_model.sweeps.rules import (
    TrialRow,
    best_per_signature_task,
    ranked_by_task,
    trials_csv_text,
    winners_per_task,
)
from mmse_model.sweeps.summary_schema import (
    SUMMARY_NAME,
    Summary,
    comparator_record,
    comparison_record,
    group_list,
    status_counts,
    verdict_record,
)
from mmse_model.sweeps.transfer import (
    data_sites,
    site_repeats,
    subtotal_transfer,
    task_transfer,
)
from mmse_model.training.checkpoint import CheckpointPayload
from mmse_model.training.held_out import (
    HeldOutIntervals,
    OutOfFold,
    evaluate_winner,
    subtotal_intervals,
    test_predictions,
)


@dataclass(frozen=True)
class ScoredTask:
    """One task's winner scored on the test subjects, with what the subtotal needs."""

    result: dict[str, Any]  # a TaskResult's fields, less the nested estimate
    predictions: list[dict[str, Any]]
    score_range: tuple[float, float]
    conformal: tuple[OutOfFold, HeldOutIntervals]


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
    integer_sets: bool = True,
    transfer_by: str = "",
    phases: Phases | None = None,
) -> tuple[Summary, list[dict[str, Any]]]:
    """(the summary, per-subject test predictions of every task's winner and the subtotal).

    Each task's verdict is its winner against `primary_comparator` (declared in the sweep
    config before anything ran); the other baselines are secondary. Every task's
    outer repeats of the `nested` search go to `run_repeats` in one list, so a Ray runner can
    run them all at once; with `transfer_by` (a column of `groups_file`), so do the transfer
    estimate's folds, one per site (mmse_model/sweeps/transfer.py)."""
    if primary_comparator not in BASELINES:
        raise ValueError(
            f"primary_comparator: expected one of {', '.join(BASELINES)}, "
            f"got {primary_comparator!r}"
        )
    phases = phases or Phases()
    groups = read_groups(groups_file) if groups_file else {}
    scored: dict[str, ScoredTask] = {}
    repeats: dict[str, list[OuterRepeat]] = {}
    with phases.timed("scoring"):
        for task, row in winners_per_task(rows).items():
            signatures = sorted({r.signature for r in rows if r.task == task})
            scored[task] = score_task(
                task,
                row,
                signatures,
                data_root,
                load,
                groups,
                seed,
                interval_level,
                primary_comparator,
            )
            if nested is not None:
                repeats[task] = nested.repeats_of(data_root, task, signatures)
        predictions = [p for task in scored.values() for p in task.predictions]
        synthetic = is_synthetic(data_root)
        sub, sub_predictions = subtotal(scored, interval_level, groups_file, seed, synthetic)
    tasks = {task: dict(s.result) for task, s in scored.items()}
    comparator = comparator_record(primary_comparator, len(scored), INTERVAL)
    if nested is not None and repeats:
        sites: list[str] = []
        by_site: dict[str, list[OuterRepeat]] = {}
        if transfer_by:
            first = next(iter(repeats.values()))[0]
            subject_sites = data_sites(
                data_root, first.signatures[0], groups_file, transfer_by, nested
            )
            for task, task_repeats in repeats.items():
                sites, by_site[task] = site_repeats(
                    nested, data_root, task, task_repeats[0].signatures, subject_sites
                )
        with phases.timed("nested cross-validation"):
            ran = nested_estimates(
                nested,
                {
                    **{(NESTED, task): r for task, r in repeats.items()},
                    **{(SITES, task): r for task, r in by_site.items()},
                },
                run_repeats,
            )
        for results in ran.values():
            for result in results:
                for phase, seconds in result.seconds.items():
                    phases.add(phase, seconds)
        # Scoring the folds: the estimates, the prediction intervals and their calibration.
        started = time.perf_counter()
        outcome = {task: ran[(NESTED, task)] for task in repeats}
        site_outcome = {task: ran[(SITES, task)] for task in by_site}
        ranges = {task: s.score_range for task, s in scored.items()}
        estimates = {
            task: task_estimate(
                nested, repeats[task], outcome[task], ranges[task], primary_comparator
            )
            for task in repeats
        }
        # The verdicts: the declared comparator's difference over the outer folds, Holm-adjusted
        # across the tasks; the held-out split's, when there is one, is reported apart.
        for task, verdict in holm_verdicts(estimates, primary_comparator).items():
            tasks[task]["verdict"] = verdict
        for task, estimate in estimates.items():
            tasks[task]["estimate"] = estimate
            tasks[task]["prediction_intervals"] = interval_report(
                outer_folds(repeats[task], outcome[task]),
                interval_level,
                ranges[task],
                groups,
                item_scale=True,
                integer_sets=integer_sets,
            )
        summed = subtotal_estimate(nested, outcome, ranges, primary_comparator, groups, synthetic)
        if summed is not None:
            sub = {**(sub or {}), "estimate": summed}
            sub_range = (
                sum(ranges[t][0] for t in outcome),
                sum(ranges[t][1] for t in outcome),
            )
            sub["prediction_intervals"] = interval_report(
                summed_outer_folds(repeats, outcome),
                interval_level,
                sub_range,
                groups,
                item_scale=False,
            )
        for task, results in site_outcome.items():
            tasks[task]["transfer"] = task_transfer(
                nested,
                transfer_by,
                sites,
                by_site[task],
                results,
                ranges[task],
                primary_comparator,
            )
        if site_outcome and sub is not None:
            sub["transfer"] = subtotal_transfer(
                nested, transfer_by, sites, site_outcome, ranges, primary_comparator
            )
        # A held-out split, when kept, checks the intervals the bundle gives new subjects.
        recalibrate_held_out(predictions, tasks, ranges, interval_level)
        if sub is not None and sub.get("prediction_intervals") is not None:
            recalibrate_held_out(
                sub_predictions,
                {SUBTOTAL: sub},
                {SUBTOTAL: tuple(sub["range"])},
                interval_level,
            )
        comparator = comparator_record(primary_comparator, len(scored), INTERVAL, holm=True)
        phases.add("intervals", time.perf_counter() - started)
    summary = assemble_summary(
        name,
        rows,
        tasks,
        synthetic=synthetic,
        comparator=comparator,
        excluded=excluded_recordings(data_root),
        subtotal=sub,
        provenance=provenance,
    )
    return summary, predictions + sub_predictions


def assemble_summary(
    name: str,
    rows: list[TrialRow],
    tasks: dict[str, dict[str, Any]],
    *,
    synthetic: bool | None,
    comparator: dict[str, Any] | None,
    excluded: int | None,
    subtotal: dict[str, Any] | None,
    provenance: dict[str, Any] | None,
) -> Summary:
    """The summary of a sweep's rows and its scored tasks (TaskResult fields by task)."""
    statuses: dict[str, int] = {}
    for row in rows:
        statuses[row.status] = statuses.get(row.status, 0) + 1
    return Summary(
        experiment=name,
        metric=MONITOR,
        synthetic=synthetic,
        synthetic_source=None if synthetic is None else "the data root's dataset.json",
        n_trials=len({row.trial_id for row in rows}),
        n_rows=len(rows),
        row_status=status_counts(statuses),
        failed_trials=failed_trials(rows),
        comparator=comparator,
        excluded_recordings=excluded,
        tasks=tasks,
        subtotal=subtotal,
        best_per_signature_task=[
            {
                "task": r.task,
                "signature": r.signature,
                "trial_id": r.trial_id,
                "loss": r.loss,
                "rmse": r.validation.get("rmse"),
                "rmse_sd": r.validation.get("rmse_sd"),
            }
            for r in ranked_by_task(best_per_signature_task(rows).values())
        ],
        provenance=provenance,
    )


def score_task(
    task: str,
    row: TrialRow,
    signatures: list[str],
    data_root: str | Path,
    load: Callable[[str], CheckpointPayload],
    groups: dict[str, str],
    seed: int,
    interval_level: float,
    primary: str,
) -> ScoredTask:
    """The task's winner and every baseline on the test subjects, paired comparisons, the
    verdict, training N, error per group and the CV+ intervals' coverage."""
    winner = evaluate_winner(
        load(row.checkpoint_uri), data_root, task, row.signature, interval_level
    )
    payload, score_range, data, split = (
        winner.payload,
        winner.score_range,
        winner.data,
        winner.split,
    )
    held = winner.held
    if not split.test_subjects:
        # No held-out split (split.test_fraction 0): the nested cross-validation estimates.
        result = task_result(
            row, score_range, None, {}, {}, primary, training=training_description(data, split)
        )
        return ScoredTask(result, [], score_range, (winner.oof, held))
    ids, y_true, y_pred, spread = test_predictions(payload, data, split, row.signature)
    predictions = [
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
    models, chosen = {NETWORK: y_pred}, {}
    for baseline, (pred, settings) in task_baselines(
        data_root, signatures, task, split, score_range, payload.training_config().seed, ids
    ).items():
        models[baseline], chosen[baseline] = pred, settings
    intervals, paired = bootstrap_intervals(
        y_true, models, score_range, NETWORK, seed=seed, subjects=ids
    )
    result = task_result(
        row,
        score_range,
        {**score_predictions(y_true, y_pred, score_range, ids), **intervals[NETWORK]},
        {
            key: (
                {**score_predictions(y_true, models[key], score_range, ids), **intervals[key]},
                found,
            )
            for key, found in chosen.items()
        },
        paired,
        primary,
        training=training_description(data, split),
        per_group=group_errors(ids, y_true, y_pred, groups) if groups else None,
        intervals=coverage(held.y, held.lower, held.upper, interval_level),
    )
    return ScoredTask(result, predictions, score_range, (winner.oof, held))


def task_result(
    row: TrialRow,
    score_range: tuple[float, float],
    test: dict[str, Any] | None,
    baselines: dict[str, tuple[dict[str, Any], dict[str, Any]]],
    paired: dict[str, dict[str, Any]],
    primary: str,
    *,
    training: dict[str, Any] | None = None,
    per_group: dict[str, dict[str, Any]] | None = None,
    intervals: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A task's TaskResult fields from its scores: the winner's `test` metrics, each
    baseline's (metrics, what its cross-validation chose), the paired comparisons of the
    network minus each baseline; the verdict is the `primary` comparison's."""
    entries = []
    for key, (metrics, found) in baselines.items():
        settings = dict(found)
        entries.append(
            {
                "key": key,
                "label": BASELINE_LABELS[key],
                "primary": key == primary,
                "signature": settings.pop("signature", None),
                "cv_rmse": settings.pop("cv_rmse", None),
                "settings": settings,
                "test": metrics,
            }
        )
    comparisons = [
        comparison_record(key, paired[key], key == primary)
        for key in sorted(paired, key=lambda k: (k != primary, BASELINES.index(k)))
    ]
    verdict = next(
        (
            verdict_record(c, "the declared comparator's paired interval")
            for c in comparisons
            if c["primary"]
        ),
        None,
    )
    return {
        "task": row.task,
        "item": TASK_ITEMS.get(row.task, ""),
        "score_range": list(score_range),
        "winner": winner_record(row),
        "test": test,
        "baselines": entries,
        "comparisons": comparisons,
        "verdict": verdict,
        "training": training,
        "per_group": group_list(per_group),
        "intervals": intervals,
    }


def winner_record(row: TrialRow) -> dict[str, Any]:
    """A task's winner as the summary records it: its row's selection metrics."""
    return {
        "trial_id": row.trial_id,
        "signature": row.signature,
        "sample": row.sample,
        "hyperparameters": row.hyperparameters,
        "best_epoch": row.best_epoch,
        "selection": {f"val/{k}": v for k, v in row.validation.items()},
        "checkpoint_uri": row.checkpoint_uri,
    }


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


def failed_trials(rows: list[TrialRow]) -> list[str]:
    """Ids of the trials whose rows say they failed, sorted."""
    from mmse_model.sweeps.rules import ERRORED

    return sorted({row.trial_id for row in rows if row.status == ERRORED})


def training_description(data: TaskData, split: Split) -> dict[str, Any]:
    """Who a task's models learnt from and were tested on: subjects on each side (not rows)
    and the distribution of their scores."""
    train, _ = training_folds(data, split)
    test = held_out_rows(data.subject_ids, split)
    return {
        "n_train": len(np.unique(data.subject_ids[train])),
        "n_test": len(np.unique(data.subject_ids[test])),
        "outcome_train": outcome_distribution(data.subject_ids[train], data.y[train]),
        "outcome_test": outcome_distribution(data.subject_ids[test], data.y[test]),
    }


def subtotal(
    scored: dict[str, ScoredTask],
    level: float,
    groups_file: str = "",
    seed: int = 0,
    synthetic: bool = False,
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The subtotal of the tasks present (`subtotal_scores`), its CV+ intervals' coverage
    (the subtotal as one more regression on the same folds) and its prediction rows."""
    if not scored:
        return None, []
    tasks = sorted(scored)
    predictions = [p for task in tasks for p in scored[task].predictions]
    out = subtotal_scores(
        predictions,
        {task: scored[task].score_range for task in tasks},
        groups_file,
        seed,
        synthetic,
    )
    sub = subtotal_intervals({task: scored[task].conformal for task in tasks}, level)
    bounds = {str(s): (lo, hi) for s, lo, hi in zip(sub.subject_ids, sub.lower, sub.upper)}
    rows = [
        {**row, "lo": bounds[row["subject_id"]][0], "hi": bounds[row["subject_id"]][1]}
        for row in subtotal_rows(predictions, tasks)
    ]
    if out.get("test") is not None:
        out["intervals"] = coverage(sub.y, sub.lower, sub.upper, level)
    return out, rows


def subtotal_rows(predictions: list[dict[str, Any]], tasks: list[str]) -> list[dict[str, Any]]:
    """Per test subject with a prediction on every task (sorted by id): its summed true and
    predicted scores, as test_predictions.csv's `subtotal` rows."""
    by_subject: dict[str, dict[str, tuple[float, float]]] = {}
    for p in predictions:
        by_subject.setdefault(p["subject_id"], {})[p["task"]] = (p["true"], p["predicted"])
    complete = sorted(s for s, per_task in by_subject.items() if len(per_task) == len(tasks))
    return [
        {
            "task": SUBTOTAL,
            "signature": "",
            "subject_id": s,
            "true": float(sum(by_subject[s][t][0] for t in tasks)),
            "predicted": float(sum(by_subject[s][t][1] for t in tasks)),
            "fold_sd": None,
        }
        for s in complete
    ]


def subtotal_scores(
    predictions: list[dict[str, Any]],
    score_ranges: dict[str, tuple[float, float]],
    groups_file: str = "",
    seed: int = 0,
    synthetic: bool = False,
) -> dict[str, Any]:
    """The subtotal of the tasks present, for the test subjects every task's winner scored;
    its range is the sum of those tasks' ranges (0-21 with all five). Without a held-out
    split there are no predictions, and the tasks are those scored (the estimate's)."""
    tasks = sorted({p["task"] for p in predictions} if predictions else score_ranges)
    rows = subtotal_rows(predictions, tasks)
    score_range = (sum(score_ranges[t][0] for t in tasks), sum(score_ranges[t][1] for t in tasks))
    out: dict[str, Any] = {
        "tasks": tasks,
        "n": len(rows),
        "range": list(score_range),
        "all_five_tasks": tasks == list(TASKS),
    }
    if len(rows) < 2:
        return out
    subjects = np.array([r["subject_id"] for r in rows])
    true = np.array([r["true"] for r in rows])
    pred = np.array([r["predicted"] for r in rows])
    intervals, _ = bootstrap_intervals(true, {NETWORK: pred}, score_range, NETWORK, seed=seed)
    out["test"] = {**score_predictions(true, pred, score_range, subjects), **intervals[NETWORK]}
    if groups_file:
        groups = read_groups(groups_file)
        out["per_group"] = group_list(group_errors(subjects, true, pred, groups))
        out["dementia_auc"] = dementia_auc(
            list(subjects), pred, groups, groups_file, seed, synthetic
        )
    return out


def read_groups(groups_file: str) -> dict[str, str]:
    """Subject id -> group, as the groups file (subject_id and group columns) names them."""
    path = Path(groups_file)
    try:
        with open(path, newline="") as handle:
            return {row["subject_id"]: row["group"] for row in csvsafe.read_dicts(handle)}
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


def recalibrate_held_out(
    predictions: list[dict[str, Any]],
    results: dict[str, dict[str, Any]],
    ranges: dict[str, tuple[float, float]],
    level: float,
) -> None:
    """The held-out rows' intervals made as a new subject's are (the calibration from the
    outer folds, around the shipped model's prediction), and their coverage, in place."""
    for task, result in results.items():
        report = result.get("prediction_intervals")
        rows = [p for p in predictions if p["task"] == task]
        if report is None or not rows:
            continue
        calibration = calibration_from(report["calibration"])
        lower, upper = calibration.interval(np.array([p["predicted"] for p in rows]), ranges[task])
        for row, lo, hi in zip(rows, lower, upper):
            row["lo"], row["hi"] = float(lo), float(hi)
        result["intervals"] = {
            **coverage(np.array([p["true"] for p in rows]), lower, upper, level),
            "method": METHOD_WORDS[calibration.method],
        }


def outer_folds(
    repeats: list[OuterRepeat], results: list[RepeatResult]
) -> list[tuple[int, tuple[str, ...], np.ndarray, np.ndarray]]:
    """(repeat, subjects, truth, the network's prediction) of a task's outer folds."""
    return [
        (
            repeat.config.split.seed,
            result.subjects,
            np.array(result.y_true),
            np.array(result.predictions[NETWORK]),
        )
        for repeat, result in zip(repeats, results)
    ]


def summed_outer_folds(
    repeats: dict[str, list[OuterRepeat]], outcome: dict[str, list[RepeatResult]]
) -> list[tuple[int, tuple[str, ...], np.ndarray, np.ndarray]]:
    """The same for the subtotal: per outer fold, the subjects every task holds, their true
    and predicted sums."""
    tasks = sorted(outcome)
    out = []
    for index, fold in enumerate(zip(*(outcome[t] for t in tasks))):
        summed = summed_fold(fold)
        if summed is not None:
            subjects, truth, predictions = summed
            seed = repeats[tasks[0]][index].config.split.seed
            out.append((seed, tuple(subjects), truth, predictions[NETWORK]))
    return out


# The keys of the outer folds' groups `nested_estimates` runs: (kind, task).
NESTED, SITES = "nested", "sites"


def nested_estimates(
    search: NestedSearch,
    repeats: Mapping[Hashable, list[OuterRepeat]],
    run_repeats: RepeatRunner,
) -> dict[Hashable, list[RepeatResult]]:
    """Every group's outer folds (a task's nested cross-validation, its sites) run by
    `run_repeats`, all in one call; each group's results in its folds' order."""
    every = [repeat for task_repeats in repeats.values() for repeat in task_repeats]
    if not every:
        return {}
    results = run_repeats(every)
    if len(results) != len(every):
        raise RuntimeError(
            f"the repeat runner returned {len(results)} results for {len(every)} repeats"
        )
    out, start = {}, 0
    for key, task_repeats in repeats.items():
        out[key] = list(results[start : start + len(task_repeats)])
        start += len(task_repeats)
    return out


RESULT_FILES = ("trials.csv", PREDICTIONS_NAME, "summary.txt", SUMMARY_NAME)


def write_results(
    experiment: str,
    rows: list[TrialRow],
    summary: Summary,
    text: str,
    predictions: list[dict[str, Any]],
) -> None:
    """Write a sweep's result files into its experiment folder (a path or a storage URI),
    each whole. summary.json goes last: where it is, every other result file is complete
    (the dashboard reads a folder without it as a sweep still running)."""
    contents = {
        "trials.csv": trials_csv_text(rows),
        PREDICTIONS_NAME: predictions_csv_text(predictions),
        "summary.txt": text + "\n",
        SUMMARY_NAME: summary.to_json(),
    }
    for name in RESULT_FILES:
        storage.write_text(storage.join(experiment, name), contents[name])
