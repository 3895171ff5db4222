"""A sweep's results: one row per (signature, task, sample), each task's winner, the summary.

Ray-free: `ray_jobs/sweep.py` hands over each trial's config, its per-epoch history (as
Tune recorded it) and the checkpoint it names; the rows are read from that checkpoint,
which holds every signature's best epoch, metrics and weights (mmse_model/training/checkpoint.py),
so a row and the weights it names always agree. The rules (what a row holds, its status,
the best row, the winner) are `mmse_model/sweeps/rules.py`'s, which the dashboard uses too;
this module adds what needs the checkpoints (and so torch) and the summary document.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

from mmse_model.core.errors import CheckpointError
from mmse_model.evaluation.conformal import format_coverage
from mmse_model.evaluation.metrics import MONITOR
from mmse_model.sweeps.rules import (
    COMPLETED,
    EARLY_STOPPED,
    ERRORED,
    STOPPED_BY_ASHA,
    VALIDATION_KEYS,
    TrialRow,
    best_per_signature_task,
    is_finite_number,
    ranked_by_task,
    row_status,
    winners_per_task,
)
from mmse_model.training.checkpoint import CheckpointPayload


def choose_checkpoint(
    history: list[dict[str, Any]], load: Callable[[str], CheckpointPayload]
) -> tuple[str, CheckpointPayload] | None:
    """The newest checkpoint Tune recorded for a trial that still loads, with its payload.

    Every checkpoint holds each signature's best weights so far, so the newest is the most
    complete. A checkpoint can be gone (Train keeps the most recent few) or unreadable (a
    trial killed while it was written): the next older one is taken then, never a name
    without a loadable file behind it.
    """
    paths = {
        int(r["epoch"]): r["checkpoint_path"]
        for r in history
        if has_checkpoint(r) and is_finite_number(r.get("epoch"))
    }
    for epoch in sorted(paths, reverse=True):
        try:
            return paths[epoch], load(paths[epoch])
        except (CheckpointError, OSError):  # gone (OSError), or half-written or foreign
            continue
    return None


def signature_rows(
    trial_id: str,
    task: str,
    group: str,
    signatures: list[str],
    sample: int,
    hyperparameters: dict[str, Any],
    history: list[dict[str, Any]],
    chosen: tuple[str, CheckpointPayload] | None,
    *,
    max_epochs: int,
    errored: bool = False,
) -> list[TrialRow]:
    """The rows of one trial, one per signature, read from its chosen checkpoint."""
    last_epoch = int(
        max((r["epoch"] for r in history if is_finite_number(r.get("epoch"))), default=0)
    )
    rows = []
    for signature in signatures:
        if chosen is None:
            rows.append(
                TrialRow(
                    trial_id=trial_id,
                    signature=signature,
                    task=task,
                    group=group,
                    sample=sample,
                    hyperparameters=hyperparameters,
                    epochs_run=last_epoch,
                    best_epoch=0,
                    status=ERRORED if errored else STOPPED_BY_ASHA,
                    validation={},
                    checkpoint_uri="",
                )
            )
            continue
        uri, payload = chosen
        state = payload.state(signature)
        trial_epochs = max(payload.epoch, last_epoch)
        status = row_status(
            errored=errored,
            stopped_early=not state.active,
            epochs=trial_epochs,
            max_epochs=max_epochs,
        )
        # The epochs it ran: to its early stop, to the limit, else as far as its trial went.
        epochs = {EARLY_STOPPED: state.stop_epoch, COMPLETED: max_epochs}.get(status, payload.epoch)
        validation = {
            "loss": state.best_val_loss,
            **{k: state.best_metrics[k] for k in VALIDATION_KEYS[1:] if k in state.best_metrics},
        }
        rows.append(
            TrialRow(
                trial_id=trial_id,
                signature=signature,
                task=task,
                group=group,
                sample=sample,
                hyperparameters=hyperparameters,
                epochs_run=epochs,
                best_epoch=state.best_epoch,
                status=status,
                validation=validation,
                checkpoint_uri=uri,
            )
        )
    return rows


def build_summary(
    rows: list[TrialRow],
    test_metrics: dict[str, dict[str, Any]],
    baselines: dict[str, dict[str, dict[str, Any]]],
    experiment: str = "",
) -> dict[str, Any]:
    """The sweep in one document: winners with test metrics next to baselines, per task,
    and the best validation RMSE of every (signature, task)."""
    tasks = {}
    for task, row in winners_per_task(rows).items():
        tasks[task] = {
            "winner": {
                "trial_id": row.trial_id,
                "signature": row.signature,
                "sample": row.sample,
                "hyperparameters": row.hyperparameters,
                "best_epoch": row.best_epoch,
                "selection": {f"val/{k}": v for k, v in row.validation.items()},
                "checkpoint_uri": row.checkpoint_uri,
            },
            "test": test_metrics.get(task, {}),
            "baselines": baselines.get(task, {}),
        }
    statuses: dict[str, int] = {}
    for row in rows:
        statuses[row.status] = statuses.get(row.status, 0) + 1
    return {
        "experiment": experiment,
        "metric": MONITOR,
        "n_rows": len(rows),
        "n_trials": len({row.trial_id for row in rows}),
        "row_status": dict(sorted(statuses.items())),
        # Trials that failed for good (Tune's retries spent): the sweep is not whole, and says so.
        "failed_trials": failed_trials(rows),
        "tasks": tasks,
        "best_per_signature_task": [
            {
                "signature": r.signature,
                "task": r.task,
                "trial_id": r.trial_id,
                MONITOR: r.loss,
                "val/rmse": r.validation.get("rmse", math.nan),
                "val/rmse_sd": r.validation.get("rmse_sd", math.nan),
            }
            for r in ranked_by_task(best_per_signature_task(rows).values())
        ],
    }


def failed_trials(rows: Iterable[TrialRow]) -> list[str]:
    """Ids of the trials whose rows say they failed, sorted."""
    return sorted({row.trial_id for row in rows if row.status == ERRORED})


def failure_line(summary: dict[str, Any]) -> str:
    """The one line that says a sweep is not whole ("" when every trial ended well)."""
    failed = summary.get("failed_trials") or []
    if not failed:
        return ""
    return (
        f"INCOMPLETE: {len(failed)} of {summary['n_trials']} trials failed ({', '.join(failed)}; the reason is in "
        "each trial folder's error.txt); their rows are marked error (with the last checkpoint they "
        "wrote, if any); run the same command with --resume to run them again"
    )


SYNTHETIC_LINE = (
    "SYNTHETIC cohort: every number below comes from simulated subjects, not people "
    "(the data root's dataset.json says so)"
)
GROUP_ORDER = ("healthy", "mci", "dementia")  # matched ignoring case; other groups follow, sorted


def format_summary(summary: dict[str, Any]) -> str:
    """The printed report: SYNTHETIC first where the cohort is; per task, who it learnt from,
    the winner's test metrics beside the baselines' with 95 % intervals, the verdict against
    the declared primary comparator (paired interval; "better" only where it excludes 0) and
    the secondary comparisons, the error per group, the nested estimate when made; the
    subtotal; then the best validation RMSE of every (signature, task), which selects and does
    not estimate."""
    lines = [
        f"sweep {summary['experiment']}: {summary['n_trials']} trials, {summary['n_rows']} signature rows "
        f"({', '.join(f'{k} {v}' for k, v in summary['row_status'].items())}); "
        "test metrics in sub-score points on held-out subjects, [95 % bootstrap interval]"
    ]
    if failure_line(summary):
        lines.insert(0, failure_line(summary))
    if summary.get("synthetic"):
        lines.insert(0, SYNTHETIC_LINE)
    if summary.get("comparator"):
        c = summary["comparator"]
        lines.append(
            f"verdicts: each winner against {c['primary']} (primary, declared in the sweep config); "
            f"{', '.join(c['secondary'])} secondary; paired {c['level']:.0%} intervals, ".replace(
                "%", " %"
            )
            + ("Holm-adjusted" if c["adjustment"] == "holm" else "unadjusted")
            + f" for the {c['n_tasks']} task{'s' if c['n_tasks'] != 1 else ''}"
        )
    if "excluded_recordings" in summary:
        excluded = summary["excluded_recordings"]
        lines.append(
            "recordings the data build excluded: "
            + (
                "unknown (the data root has no build report)"
                if excluded is None
                else f"{excluded} (listed in the data root's build_report.csv)"
            )
        )
    header = f"  {'model':<26}{'RMSE':>7}{'[interval]':>16}{'MAE':>7}{'R^2':>7}{'r':>7}{'slope':>7}{'icpt':>7}"
    for task, entry in summary["tasks"].items():
        winner, test = entry["winner"], entry["test"]
        lines.append(
            f"{task}: winner {winner['signature']} (trial {winner['trial_id']}, selection val RMSE "
            f"{winner['selection'].get('val/rmse', math.nan):.3f}), n = {test.get('n', '?')} test subjects"
        )
        if entry.get("training"):
            lines.append(f"  {_training_line(entry['training'])}")
        lines.append(header)
        lines.append(_test_line("network (winner)", test))
        for name, metrics in entry["baselines"].items():
            lines.append(_test_line(name, metrics))
        chosen = [
            f"{name} {m['signature']}"
            for name, m in entry["baselines"].items()
            if m.get("signature") and name != "train_mean"
        ]
        if chosen:
            lines.append(
                f"  baselines' signatures, each chosen by CV on the folds: {', '.join(chosen)}"
            )
        comparisons = entry.get("comparisons", {})
        for name, c in sorted(
            comparisons.items(), key=lambda item: not item[1].get("primary", True)
        ):
            low, high = c["rmse_diff_ci"]
            line = f"  network - {name}: RMSE {c['rmse_diff']:+.3f} [{low:+.3f}, {high:+.3f}]"
            if c.get("primary", True):
                result = (
                    "network better"
                    if c["better"]
                    else f"{name} better"
                    if c["worse"]
                    else "no difference shown"
                )
                lines.append(
                    f"{line}: {result}" + (" (primary: the verdict)" if "primary" in c else "")
                )
            else:
                lines.append(f"{line} (secondary)")
        if entry.get("per_group"):
            lines.append(f"  {_group_line(entry['per_group'], 3)}")
        if entry.get("intervals"):
            lines.append(f"  per-subject intervals: {format_coverage(entry['intervals'])}")
        if entry.get("nested_estimate"):
            lines.append(f"  {format_nested(entry['nested_estimate'])}")
    sub = summary.get("subtotal") or {}
    if sub.get("rmse") is not None:
        lines.append(
            f"subtotal of {'+'.join(sub['tasks'])} (range {sub['range'][0]:g}-{sub['range'][1]:g}) for "
            f"{sub['n']} test subjects: RMSE {sub['rmse']:.2f} {_ci(sub.get('rmse_ci'))}, "
            f"MAE {sub['mae']:.2f} {_ci(sub.get('mae_ci'))}, r {sub['pearson_r']:.2f}, calibration "
            + _calibration(sub)
        )
        if sub.get("per_group"):
            lines.append(f"  {_group_line(sub['per_group'], 2)}")
        if sub.get("intervals"):
            lines.append(f"  per-subject subtotal intervals: {format_coverage(sub['intervals'])}")
        auc = sub.get("dementia_auc") or {}
        if "auc" in auc:
            lines.append(
                f"  {'SYNTHETIC cohort: ' if auc['synthetic'] else ''}AUC of the predicted subtotal for the "
                f"dementia group ({auc['n_dementia']} vs {auc['n_other']}): {auc['auc']:.2f} "
                f"{_ci(auc.get('auc_ci'))}; no clinical cut-off is implied"
            )
    lines.append(
        "best validation RMSE per (signature, task), mean (sd) over folds (selection, not an estimate):"
    )
    for r in summary["best_per_signature_task"]:
        lines.append(
            f"  {r['task']}  {r['signature']:<28}{r['val/rmse']:>7.3f} ({r['val/rmse_sd']:.3f})"
        )
    return "\n".join(lines)


def format_nested(estimate: dict[str, Any]) -> str:
    """The nested estimate in one line that says what it is: the search's size, the number of
    outer splits, then each model's mean test RMSE over them with its sd (none for one split)."""
    search, repeats = estimate["search"], estimate["repeats"]
    parts = []
    for name, model in estimate["models"].items():
        spread = "" if model.get("rmse_sd") is None else f" (sd {model['rmse_sd']:.3f})"
        parts.append(f"{name}{' RMSE' if not parts else ''} {model['rmse_mean']:.3f}{spread}")
    return (
        f"nested estimate (reduced search: {search['samples']} samples x {search['signatures']} signatures, "
        f"{repeats} outer split{'' if repeats == 1 else 's'}): {'; '.join(parts)}"
    )


def _ci(interval: list[float] | None, digits: int = 2) -> str:
    """An interval with as many decimals as the estimate it goes with."""
    return f"[{interval[0]:.{digits}f}, {interval[1]:.{digits}f}]" if interval else ""


def _maybe(value: float | None, spec: str) -> str:
    """A number that can be undefined (a constant prediction's calibration): "-" then."""
    return "-" if value is None else format(value, spec)


def _calibration(m: dict[str, Any]) -> str:
    if m.get("calibration_slope") is None:
        return "undefined (constant prediction)"
    return f"slope {m['calibration_slope']:.2f}, intercept {m['calibration_intercept']:.2f}"


def _training_line(training: dict[str, Any]) -> str:
    def side(name: str, n: int, d: dict[str, Any]) -> str:
        if not d.get("n"):
            return f"{name} {n} subjects"
        return (
            f"{name} {n} subjects, score mean {d['mean']:.2f} (sd {_maybe(d['sd'], '.2f')}, "
            f"{d['min']:g}-{d['max']:g})"
        )

    outcome = training["outcome"]
    return f"{side('trained on', training['n_train'], outcome['train'])}; {side('tested on', training['n_test'], outcome['test'])}"


def _group_line(per_group: dict[str, dict[str, Any]], digits: int) -> str:
    order = sorted(
        per_group,
        key=lambda g: (
            GROUP_ORDER.index(g.lower()) if g.lower() in GROUP_ORDER else len(GROUP_ORDER),
            g,
        ),
    )
    return "per group (RMSE, MAE, bias = predicted - true): " + "; ".join(
        f"{g} n {per_group[g]['n']}: {per_group[g]['rmse']:.{digits}f}, {per_group[g]['mae']:.{digits}f}, "
        f"{per_group[g]['bias']:+.{digits}f}"
        for g in order
    )


def _test_line(name: str, m: dict[str, Any]) -> str:
    if not m:
        return f"  {name:<26}   (not scored)"
    return (
        f"  {name:<26}{m['rmse']:>7.3f}{_ci(m.get('rmse_ci'), 3):>16}{m['mae']:>7.3f}{m['r2']:>7.3f}"
        f"{m['pearson_r']:>7.3f}{_maybe(m['calibration_slope'], '.2f'):>7}{_maybe(m['calibration_intercept'], '.2f'):>7}"
    )


def has_checkpoint(record: dict[str, Any]) -> bool:
    """Did this epoch's report carry a checkpoint? (Tune's table holds NaN where not.)"""
    path = record.get("checkpoint_path")
    return isinstance(path, str) and bool(path)
