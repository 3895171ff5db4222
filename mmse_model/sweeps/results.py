"""A sweep's rows: one per (signature, task, sample), read from the checkpoint each names.

Ray-free: `ray_jobs/sweep.py` hands over each trial's config, its per-epoch history (as
Tune recorded it) and the checkpoint it names; the rows are read from that checkpoint,
which holds every signature's best epoch, metrics and weights (mmse_model/training/checkpoint.py),
so a row and the weights it names always agree. The rules (what a row holds, its status,
the best row, the winner) are `mmse_model/sweeps/rules.py`'s, which the dashboard uses too;
this module adds what needs the checkpoints (and so torch). The summary is
`summary.py`'s, the printed report `report.py`'s.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mmse_model.core.errors import CheckpointError
from mmse_model.sweeps.rules import (
    COMPLETED,
    EARLY_STOPPED,
    ERRORED,
    STOPPED_BY_ASHA,
    VALIDATION_KEYS,
    TrialRow,
    is_finite_number,
    row_status,
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


def has_checkpoint(record: dict[str, Any]) -> bool:
    """Did this epoch's report carry a checkpoint? (Tune's table holds NaN where not.)"""
    path = record.get("checkpoint_path")
    return isinstance(path, str) and bool(path)
