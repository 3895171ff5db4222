"""Predict sub-scores for new subjects with a trained checkpoint (`mmse predict`)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from mmse_model.core import atomic
from mmse_model.core.errors import DataError, InputError
from mmse_model.data.dataset import load_features
from mmse_model.training.checkpoint import FoldEnsemble, load_checkpoint


def predict_file(model: str | Path, input_path: str | Path, out_path: str | Path, signature: str | None = None) -> int:
    """Write `subject_id,<task>_predicted,fold_sd` rows; returns the number of subjects.
    `model`: a checkpoint folder or model.pt, a local path or a storage URI. `signature`
    picks one out of a checkpoint of several (a sweep trial's)."""
    ensemble = FoldEnsemble.from_checkpoint(load_checkpoint(model), signature)
    X, subject_ids, names = load_features(Path(input_path))
    if names is not None and ensemble.feature_names and tuple(names) != ensemble.feature_names:
        raise DataError(
            f"{input_path}: feature_names {list(names)} differ from the model's "
            f"{list(ensemble.feature_names)}"
        )
    per_fold = ensemble.predict_folds(X)  # (K, N)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["subject_id", f"{ensemble.task}_predicted", "fold_sd"])
    for sid, mean, sd in zip(subject_ids, per_fold.mean(axis=0), per_fold.std(axis=0, ddof=1)):
        writer.writerow([sid, f"{mean:.4f}", f"{sd:.4f}"])
    try:
        atomic.write_text(out_path, buffer.getvalue())
    except OSError as exc:  # a folder that is a file, no permission, a full disk
        raise InputError(f"{out_path}: cannot write ({exc.strerror or exc})") from None
    return len(subject_ids)


