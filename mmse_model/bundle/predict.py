"""Predict sub-scores for new subjects with one trained checkpoint (`mmse predict --model`).

The features must be of the model's task and signature, as the file records them, its path
says them (`<signature>/<task>.npz`) or `--signature`/`--task` state them (checked against
the file's own word); the whole bundle of five tasks is `mmse predict --bundle` (apply.py).
"""

from __future__ import annotations

from pathlib import Path

from mmse_model.bundle.inputs import check_applicable, read_task_input
from mmse_model.core import atomic, csvsafe, outputs, storage
from mmse_model.core.errors import InputError
from mmse_model.core.identity import DatasetIdentity
from mmse_model.core.inputs import MAX_FILE_MB
from mmse_model.training.checkpoint import FoldEnsemble, load_checkpoint


def predict_file(
    model: str | Path,
    input_path: str | Path,
    out_path: str | Path,
    signature: str | None = None,
    task: str | None = None,
    overwrite: bool = False,
    max_file_mb: float = MAX_FILE_MB,
) -> int:
    """Write `subject_id,<task>_predicted,fold_sd` rows; returns the number of subjects.
    `model`: a checkpoint folder or model.pt, a local path or a storage URI. `signature`
    picks one out of a checkpoint of several (a sweep trial's). A checkpoint whose tensors
    do not fit its architecture or are not finite is refused in one line naming it.
    `out_path` must not be (or lie inside) the checkpoint or the input, nor anything but a
    regular file; an existing one is replaced only with `overwrite` (core/outputs.py)."""
    outputs.check_output_file(
        out_path, [("--model", str(model)), ("--input", input_path)], overwrite=overwrite
    )
    where = storage.redact(str(model))
    ensemble = FoldEnsemble.from_checkpoint(load_checkpoint(model), signature, where)
    features = read_task_input(input_path, signature, task, max_file_mb)
    check_applicable(
        features,
        DatasetIdentity(ensemble.signature, ensemble.task),
        ensemble.feature_names,
        f"the model's, {model}",
    )
    per_fold = ensemble.predict_folds(features.X)  # (K, N)
    text = csvsafe.csv_text(
        ["subject_id", f"{ensemble.task}_predicted", "fold_sd"],
        (
            [sid, f"{mean:.4f}", f"{sd:.4f}"]
            for sid, mean, sd in zip(
                features.subject_ids.tolist(), per_fold.mean(axis=0), per_fold.std(axis=0, ddof=1)
            )
        ),
    )
    try:
        atomic.write_text(out_path, text)
    except OSError as exc:  # a folder that is a file, no permission, a full disk
        raise InputError(f"{out_path}: cannot write ({exc.strerror or exc})") from None
    return len(features.subject_ids)
