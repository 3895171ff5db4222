"""What a features file is, and whether a model may be applied to it.

A file records its identity (`mmse data build` writes signature, task, build parameters and
builder version into every npz, mmse_model/core/identity.py), or its path says it
(`<signature>/<task>.npz`), or the user says it (`--signature`, `--task`), and then it is
checked against whatever the file or path records. Features whose identity differs from
the model's, in any part, are refused with one line naming what was expected and found.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmse_model.core.errors import DataError
from mmse_model.core.identity import DatasetIdentity, path_identity
from mmse_model.core.inputs import MAX_FILE_MB
from mmse_model.data.dataset import read_features


@dataclass(frozen=True)
class TaskInput:
    """Features to apply one task's model to, with the identity they were taken to have."""

    path: Path
    identity: DatasetIdentity  # as recorded, or as the path or the user said (then without build)
    recorded: bool  # the file itself recorded it
    X: np.ndarray  # (n, 10)
    subject_ids: np.ndarray  # (n,) str, as written
    feature_names: tuple[str, ...] | None

    def subset(self, subjects: set[str]) -> TaskInput:
        """Only the rows of `subjects`, in file order."""
        keep = np.fromiter(
            (s in subjects for s in self.subject_ids.tolist()),
            dtype=bool,
            count=len(self.subject_ids),
        )
        return TaskInput(
            self.path,
            self.identity,
            self.recorded,
            self.X[keep],
            self.subject_ids[keep],
            self.feature_names,
        )


def read_task_input(
    path: str | Path,
    signature: str | None = None,
    task: str | None = None,
    max_file_mb: float = MAX_FILE_MB,
) -> TaskInput:
    """A features file with its identity; `signature` and `task` (the user's word) must agree
    with what the file or its path records, and are needed where neither says it. A file
    above `max_file_mb` is refused before it is read."""
    path = Path(path)
    # refuses a recorded identity that contradicts the path, a file too large, no rows
    read = read_features(path, max_file_mb)
    X, ids, names, recorded = read.X, read.subject_ids, read.feature_names, read.identity
    said = path_identity(path)
    known = recorded or (DatasetIdentity(*said) if None not in said else None)
    if known is None:
        if signature is None or task is None:
            raise DataError(
                f"{path}: records no signature and task, and its path does not say them "
                "(<signature>/<task>.npz); give --signature and --task"
            )
        known = DatasetIdentity(signature, task)
    else:
        where = "the file records" if recorded else "its path says"
        if signature is not None and signature != known.signature:
            raise DataError(f"{path}: --signature {signature}, but {where} {known.signature}")
        if task is not None and task != known.task:
            raise DataError(f"{path}: --task {task}, but {where} {known.task}")
    if len(set(ids.tolist())) != len(ids):
        seen: set[str] = set()
        twice = next(s for s in ids.tolist() if s in seen or seen.add(s))
        raise DataError(
            f"{path}: subject {twice!r} has more than one row; one row per subject to predict"
        )
    return TaskInput(path, known, recorded is not None, X, ids, names)


def check_applicable(
    features: TaskInput, expected: DatasetIdentity, feature_names: tuple[str, ...], model: str
) -> None:
    """Refuse features made otherwise than the model's training features (`model` names it)."""
    problem = features.identity.mismatch(expected)
    if problem is not None:
        raise DataError(f"{features.path}: {problem} ({model})")
    if features.recorded and expected.build is not None and features.identity.build is None:
        raise DataError(
            f"{features.path}: records no build parameters; "
            f"{model} needs {expected.build.describe()}"
        )
    if features.feature_names is not None and tuple(features.feature_names) != tuple(feature_names):
        raise DataError(
            f"{features.path}: feature_names: expected {list(feature_names)}, found "
            f"{list(features.feature_names)} ({model})"
        )
