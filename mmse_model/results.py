"""A sweep's results: one row per trial, the best per (signature, task), each task's winner.

Ray-free: `ray_jobs/sweep.py` turns Tune's results into plain dicts (a trial's config and
its per-epoch history) and calls these functions; so do the unit tests. Every ranking is by
`MONITOR` (`val/loss`, the mean over folds of the scaled validation MSE), and only within a
task: losses of different tasks are on different scales.
"""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path
from typing import Any, Callable, Iterable

from mmse_model.metrics import MONITOR

VAL_COLUMNS = (MONITOR, "val/rmse", "val/rmse_sd", "val/mae", "val/mae_sd", "val/r2", "val/r2_sd",
               "val/pearson_r", "val/pearson_r_sd")
TEST_COLUMNS = ("rmse", "mae", "r2", "pearson_r", "calibration_slope", "calibration_intercept", "n")
# How a trial ended: ASHA stopped it at a rung, the core's early stopping ended it, it ran
# every epoch, or it failed.
STOPPED_BY_ASHA, EARLY_STOPPED, COMPLETED, ERRORED = "asha", "early_stopping", "completed", "error"


def trial_row(
    trial_id: str,
    signature: str,
    task: str,
    hyperparameters: dict[str, Any],
    history: list[dict[str, Any]],
    *,
    max_epochs: int,
    early_stopping: tuple[int, float] | None,
    errored: bool = False,
    checkpoint_usable: Callable[[dict[str, Any]], bool] | None = None,
) -> dict[str, Any]:
    """One trial's row. `history` is its per-epoch records (as Tune's result.json holds
    them); the validation metrics are those of its best checkpointed epoch, whose weights
    are the ones kept (they equal what early stopping restores). `checkpoint_usable` says
    whether an epoch's checkpoint still exists and loads: Train's rotation can delete the
    checkpoint that Tune's history calls best (docs/design.md, "Checkpoints"), so the row
    names the best epoch whose checkpoint is usable, and `checkpoint_path` that one.

    How it ended is read from the history itself, so it survives a driver restart: a trial
    that ran fewer than `max_epochs` epochs was stopped by the core's early stopping when
    the rule `early_stopping` = (patience, min_delta) fires at its last epoch, else by ASHA.
    """
    # A trial resumed from a checkpoint reports some epochs twice: keep each epoch's last.
    by_epoch = {r["epoch"]: r for r in history if _number(r.get(MONITOR)) and _number(r.get("epoch"))}
    epochs = [by_epoch[e] for e in sorted(by_epoch)]
    with_checkpoint = sorted((r for r in epochs if has_checkpoint(r)), key=lambda r: r[MONITOR])
    usable = next((r for r in with_checkpoint if checkpoint_usable is None or checkpoint_usable(r)), None)
    best = usable or min(epochs, key=lambda r: r[MONITOR], default=None)
    epochs_run = int(max((r["epoch"] for r in epochs), default=0))
    if errored:
        status = ERRORED
    elif epochs_run >= max_epochs:
        status = COMPLETED
    elif early_stopping is not None and _early_stopping_fired(epochs, *early_stopping):
        status = EARLY_STOPPED
    else:
        status = STOPPED_BY_ASHA
    row: dict[str, Any] = {
        "trial_id": trial_id,
        "signature": signature,
        "task": task,
        **{f"hp/{k}": v for k, v in sorted(hyperparameters.items())},
        "epochs_run": epochs_run,
        "best_epoch": int(best["epoch"]) if best else 0,
        "status": status,
        "stopped_early": status in (STOPPED_BY_ASHA, EARLY_STOPPED),
    }
    for column in VAL_COLUMNS:
        row[column] = float(best[column]) if best and _number(best.get(column)) else math.nan
    row["checkpoint_path"] = usable["checkpoint_path"] if usable else ""
    return row


def _early_stopping_fired(epochs: list[dict[str, Any]], patience: int, min_delta: float) -> bool:
    """Replay `EarlyStopping`'s rule over the history: did it fire at the last epoch?"""
    best, wait = math.inf, 0
    for record in sorted(epochs, key=lambda r: r["epoch"]):
        if record[MONITOR] < best - min_delta:
            best, wait = record[MONITOR], 0
        else:
            wait += 1
    return bool(epochs) and wait >= patience


def best_per_signature_task(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """For every (signature, task): its best trial by validation loss (sorted by task)."""
    best: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        if not _number(row.get(MONITOR)):
            continue
        key = (row["signature"], row["task"])
        if key not in best or row[MONITOR] < best[key][MONITOR]:
            best[key] = row
    return [best[k] for k in sorted(best, key=lambda k: (k[1], best[k][MONITOR]))]


def winners_per_task(rows: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each task's winning trial (any signature, any hyper-parameters) by validation loss."""
    winners: dict[str, dict[str, Any]] = {}
    for row in best_per_signature_task(rows):
        task = row["task"]
        if task not in winners or row[MONITOR] < winners[task][MONITOR]:
            winners[task] = row
    return dict(sorted(winners.items()))


def build_summary(
    rows: list[dict[str, Any]],
    test_metrics: dict[str, dict[str, Any]],
    baselines: dict[str, dict[str, dict[str, Any]]],
    experiment: str = "",
) -> dict[str, Any]:
    """The sweep in one document: winners with test metrics next to baselines, per task,
    and the best validation RMSE of every (signature, task)."""
    winners = winners_per_task(rows)
    tasks = {}
    for task, row in winners.items():
        tasks[task] = {
            "winner": {
                "trial_id": row["trial_id"],
                "signature": row["signature"],
                "hyperparameters": {k[3:]: v for k, v in row.items() if k.startswith("hp/")},
                "best_epoch": row["best_epoch"],
                "validation": {k: row[k] for k in VAL_COLUMNS},
                "checkpoint_uri": row["checkpoint_uri"],
            },
            "test": test_metrics.get(task, {}),
            "baselines": baselines.get(task, {}),
        }
    statuses: dict[str, int] = {}
    for row in rows:
        statuses[row["status"]] = statuses.get(row["status"], 0) + 1
    return {
        "experiment": experiment,
        "metric": MONITOR,
        "n_trials": len(rows),
        "trial_status": dict(sorted(statuses.items())),
        "tasks": tasks,
        "best_per_signature_task": [
            {
                "signature": r["signature"],
                "task": r["task"],
                "trial_id": r["trial_id"],
                MONITOR: r[MONITOR],
                "val/rmse": r["val/rmse"],
                "val/rmse_sd": r["val/rmse_sd"],
            }
            for r in best_per_signature_task(rows)
        ],
    }


def format_summary(summary: dict[str, Any]) -> str:
    """The printed table: per task, the winner's test metrics beside the baselines', then
    the best validation RMSE of every (signature, task)."""
    lines = [
        f"sweep {summary['experiment']}: {summary['n_trials']} trials "
        f"({', '.join(f'{k} {v}' for k, v in summary['trial_status'].items())}); "
        "metrics in sub-score points on held-out test subjects"
    ]
    header = f"  {'model':<34}{'RMSE':>7}{'MAE':>7}{'R^2':>7}{'r':>7}{'slope':>7}{'icpt':>7}"
    for task, entry in summary["tasks"].items():
        winner, test = entry["winner"], entry["test"]
        lines.append(f"{task}: winner {winner['signature']} (trial {winner['trial_id']}, "
                     f"val RMSE {winner['validation']['val/rmse']:.3f}), n = {test.get('n', '?')} test subjects")
        lines.append(header)
        lines.append(_test_line("network (winner)", test))
        for name, metrics in entry["baselines"].items():
            lines.append(_test_line(name, metrics))
    lines.append("best validation RMSE per (signature, task), mean (sd) over folds:")
    for r in summary["best_per_signature_task"]:
        lines.append(f"  {r['task']}  {r['signature']:<28}{r['val/rmse']:>7.3f} ({r['val/rmse_sd']:.3f})")
    return "\n".join(lines)


def _test_line(name: str, m: dict[str, Any]) -> str:
    if not m:
        return f"  {name:<34}   (not scored)"
    return (f"  {name:<34}{m['rmse']:>7.3f}{m['mae']:>7.3f}{m['r2']:>7.3f}{m['pearson_r']:>7.3f}"
            f"{m['calibration_slope']:>7.2f}{m['calibration_intercept']:>7.2f}")


def write_trials_csv(rows: list[dict[str, Any]], path: str | Path) -> Path:
    """`trials.csv`: one row per trial; columns are the union over rows, in first-seen order."""
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)
    return path


def write_json(payload: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=_plain))
    os.replace(tmp, path)
    return path


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else str(value)


def has_checkpoint(record: dict[str, Any]) -> bool:
    """Did this epoch's report carry a checkpoint? (Tune's table holds NaN where not.)"""
    path = record.get("checkpoint_path")
    return isinstance(path, str) and bool(path)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
