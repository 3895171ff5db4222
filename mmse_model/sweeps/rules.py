"""The rules for reading a sweep's results, in one place for the summary and the dashboard.

Torch-free (pydantic and the standard library only), so the dashboard reads results by the
same rules as the sweep that wrote them: what a trials.csv row holds and how its cells read
back, how a signature's run ended (its status), and which row is best for a (signature,
task) and for a task. Rankings are by validation loss (the mean over folds of the scaled
validation MSE) and only within a task: losses of different tasks are on different scales.
Validation numbers select; only test numbers estimate.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Literal, TypeVar

from pydantic import ConfigDict

from mmse_model.core import csvsafe
from mmse_model.core.errors import InputError
from mmse_model.core.schema import Schema

# How a row's signature ended: ASHA stopped its trial at a rung, the core's early stopping
# ended it, it ran every epoch, or its trial failed. A running sweep's rows (the dashboard's
# provisional ones) are also "running".
STOPPED_BY_ASHA, EARLY_STOPPED, COMPLETED, ERRORED, RUNNING = (
    "asha",
    "early_stopping",
    "completed",
    "error",
    "running",
)
Status = Literal["asha", "early_stopping", "completed", "error"]
# How each ending reads, in the order every table, legend and count lists them.
STATUS_WORDS = {
    COMPLETED: "ran every epoch",
    EARLY_STOPPED: "early stopping",
    RUNNING: "still running",
    ERRORED: "failed",
    STOPPED_BY_ASHA: "stopped by ASHA at a rung",
}
# Validation metrics a row keeps (at the signature's best epoch): `loss` is the scaled MSE
# that every ranking uses, the rest are in points, mean and sd over folds.
VALIDATION_KEYS = (
    "loss",
    "rmse",
    "rmse_sd",
    "mae",
    "mae_sd",
    "r2",
    "r2_sd",
    "pearson_r",
    "pearson_r_sd",
)
# trials.csv columns that hold whole numbers; `hp/*` cells read back as what they were written from.
INT_COLUMNS = ("sample", "epochs_run", "best_epoch")


class TrialRow(Schema):
    """One signature of one trial (task, hyper-parameter sample, signature group)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)

    trial_id: str
    signature: str
    task: str
    group: str  # the trial's signature group: the signature itself, "all", or "g<i>"
    sample: int
    hyperparameters: dict[str, Any]
    epochs_run: int
    best_epoch: int
    status: Status
    validation: dict[str, float]  # VALIDATION_KEYS at best_epoch (selection metrics)
    checkpoint_uri: str

    @property
    def loss(self) -> float:
        return self.validation.get("loss", math.nan)

    def flat(self) -> dict[str, Any]:
        """The trials.csv row: hyper-parameters as `hp/<key>`, metrics as `val/<key>`."""
        return {
            "trial_id": self.trial_id,
            "signature": self.signature,
            "task": self.task,
            "group": self.group,
            "sample": self.sample,
            **{f"hp/{k}": v for k, v in sorted(self.hyperparameters.items())},
            "epochs_run": self.epochs_run,
            "best_epoch": self.best_epoch,
            "status": self.status,
            "stopped_early": self.status in (STOPPED_BY_ASHA, EARLY_STOPPED),
            **{f"val/{k}": self.validation.get(k, math.nan) for k in VALIDATION_KEYS},
            "checkpoint_uri": self.checkpoint_uri,
        }


# --- how a run ended ------------------------------------------------------------------------


def row_status(
    *,
    errored: bool,
    stopped_early: bool,
    epochs: int,
    max_epochs: int | None,
    running: bool = False,
    at_rung: bool = False,
) -> str:
    """How a signature's run ended: its trial failed; (a live sweep) it is still running;
    early stopping ended it; it reached the epoch limit; else ASHA stopped its trial. Without
    a known limit, a trial that ended at one of ASHA's rungs counts as stopped there."""
    if errored:
        return ERRORED
    if running:
        return RUNNING
    if stopped_early:
        return EARLY_STOPPED
    if max_epochs is None:
        return STOPPED_BY_ASHA if at_rung else COMPLETED
    return COMPLETED if epochs >= max_epochs else STOPPED_BY_ASHA


def trial_status(statuses: Iterable[str]) -> str:
    """A trial's ending from its rows' (one per signature): ASHA stopped the trial if it
    stopped any of them; the trial ran out only if no signature did."""
    statuses = list(statuses)
    for status in (ERRORED, RUNNING, STOPPED_BY_ASHA):
        if status in statuses:
            return status
    return EARLY_STOPPED if statuses and all(s == EARLY_STOPPED for s in statuses) else COMPLETED


def ordered_statuses(statuses: Iterable[str]) -> list[str]:
    """Statuses in STATUS_WORDS's order, unknown ones after them by name."""
    order = list(STATUS_WORDS)
    return sorted(set(statuses), key=lambda s: (order.index(s) if s in order else len(order), s))


# --- verdicts: the network against a baseline, from their paired interval ---------------------

BETTER, LEVEL, WORSE = "better", "level", "worse"


def paired_result(better: Any, worse: Any) -> str | None:
    """better or worse where the paired interval of network minus baseline excludes 0,
    level where it does not; None without a paired interval (two test RMSEs alone never
    say "better")."""
    if not isinstance(better, bool):
        return None
    return BETTER if better else WORSE if worse is True else LEVEL


def result_words(result: str | None, baseline_label: str) -> str:
    """A paired result as every output says it."""
    return {
        BETTER: "network better",
        WORSE: f"{baseline_label} better",
        LEVEL: "no difference shown",
    }.get(result or "", "no paired comparison")


# --- best rows ------------------------------------------------------------------------------

Row = TypeVar("Row", TrialRow, dict)


def _loss(row: TrialRow | dict[str, Any]) -> Any:
    return row.loss if isinstance(row, TrialRow) else row.get("val/loss")


def _get(row: TrialRow | dict[str, Any], key: str) -> Any:
    return getattr(row, key) if isinstance(row, TrialRow) else row.get(key)


def best_per_signature_task(
    rows: Iterable[Row], require_checkpoint: bool = True
) -> dict[tuple[str, str], Row]:
    """For every (signature, task): its row with the lowest validation loss (the first of
    equal ones), in order of first appearance. Rows are `TrialRow`s or trials.csv rows.
    A row without a checkpoint names no weights and cannot win (`require_checkpoint`; a
    running sweep's provisional rows have none yet)."""
    best: dict[tuple[str, str], Row] = {}
    for row in rows:
        if not is_finite_number(_loss(row)) or (
            require_checkpoint and not _get(row, "checkpoint_uri")
        ):
            continue
        key = (_get(row, "signature"), _get(row, "task"))
        if key not in best or _loss(row) < _loss(best[key]):
            best[key] = row
    return best


def winners_per_task(rows: Iterable[Row], require_checkpoint: bool = True) -> dict[str, Row]:
    """Each task's winner (any signature, any hyper-parameters) by validation loss, by task."""
    winners: dict[str, Row] = {}
    for row in best_per_signature_task(rows, require_checkpoint).values():
        task = _get(row, "task")
        if task not in winners or _loss(row) < _loss(winners[task]):
            winners[task] = row
    return dict(sorted(winners.items()))


def ranked_by_task(rows: Iterable[Row]) -> list[Row]:
    """Rows by task, then by validation loss within the task (equal ones keep their order)."""
    return sorted(rows, key=lambda row: (_get(row, "task"), _loss(row)))


# --- trials.csv -----------------------------------------------------------------------------


def trials_csv_text(rows: Iterable[TrialRow]) -> str:
    """`trials.csv`: one row per (signature, trial); columns are the union over rows."""
    flat = [row.flat() for row in rows]
    columns: list[str] = []
    for row in flat:
        columns += [k for k in row if k not in columns]
    return csvsafe.csv_text(columns, csvsafe.dict_rows(columns, flat))


def read_trials_csv(text: str, where: str = "trials.csv") -> list[dict[str, Any]]:
    """trials.csv's rows with typed cells (`cell`); columns a row lacks (older sweeps: group,
    sample) stay absent. A row without trial_id, signature or task is an InputError."""
    rows = []
    for i, raw in enumerate(csvsafe.read_dicts(text)):
        if not raw.get("trial_id") or not raw.get("signature") or not raw.get("task"):
            raise InputError(f"{where}: row {i + 2} lacks trial_id, signature or task")
        rows.append({key: cell(key, value) for key, value in raw.items() if key is not None})
    return rows


def cell(column: str, text: str | None) -> Any:
    """A trials.csv cell back to its type: `hp/*` as written (int, float, bool or string),
    `val/*` a finite float or None (empty, NaN), whole-number columns an int or None,
    `stopped_early` a bool, anything else the string."""
    if column.startswith("hp/"):
        return csv_value(text or "")
    if column.startswith("val/"):
        return finite_float(text)
    if column in INT_COLUMNS:
        try:
            return int(text)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return None
    if column == "stopped_early":
        return text == "True"
    return text


def csv_value(text: str) -> Any:
    """A cell back to the int, float, bool or string it was written from."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"True": True, "False": False}.get(text, text)


def finite_float(text: Any) -> float | None:
    """A number from a cell or a JSON value; None for text, NaN or infinity."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def is_finite_number(value: Any) -> bool:
    """A real number (not a bool), finite."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
