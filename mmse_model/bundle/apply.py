"""Applying a bundle to new subjects (`mmse predict --bundle`): sub-scores with CV+ intervals.

`load_bundle` checks the manifest (format version, digest, consistency), the sha256 of every
weights file before it is read, what each weights file records against the manifest and
every tensor, and rebuilds each task's K fold-models; no Ray, no pickle. `predict` gives one
row per subject: each task's prediction (the mean of its K fold-models) and CV+ interval,
the subtotal and its interval when the bundle has all five tasks and the subject all five
predictions, and which features lie far outside the training range.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mmse_model.bundle import weights
from mmse_model.bundle.inputs import TaskInput, check_applicable, read_task_input
from mmse_model.bundle.manifest import BundleManifest, TaskModel, read_manifest
from mmse_model.core import atomic, csvsafe
from mmse_model.core.config import Config
from mmse_model.core.domain import TASKS
from mmse_model.core.errors import DataError, InputError
from mmse_model.core.hashing import sha256_file
from mmse_model.core.identity import DatasetIdentity
from mmse_model.core.inputs import MAX_FILE_MB
from mmse_model.data.dataset import dataset_path
from mmse_model.evaluation.conformal import clip_to_range, cv_plus_intervals
from mmse_model.evaluation.intervals import calibration_from, integer_set
from mmse_model.training.checkpoint import FoldEnsemble

# A feature is flagged when it lies outside the training subjects' range by more than this
# share of the range's width: a little past the edge is ordinary sampling, far past it is
# extrapolation the model has no data for.
OUT_OF_RANGE_MARGIN = 0.25
SUBTOTAL = "subtotal"


@dataclass(frozen=True)
class TaskPredictor:
    model: TaskModel
    ensemble: FoldEnsemble
    residuals: np.ndarray  # (n,) out-of-fold residuals of the training subjects
    folds: np.ndarray  # (n,)
    feature_min: np.ndarray  # (10,)
    feature_max: np.ndarray  # (10,)

    @property
    def identity(self) -> DatasetIdentity:
        return DatasetIdentity(
            self.model.signature, self.model.task, self.model.build(), self.model.builder_version
        )


@dataclass(frozen=True)
class Bundle:
    folder: Path
    manifest: BundleManifest
    tasks: dict[str, TaskPredictor]
    subtotal: tuple[np.ndarray, np.ndarray] | None  # (residuals, folds)


def load_bundle(folder: str | Path) -> Bundle:
    """The bundle in `folder`, checked before anything is predicted: the manifest (format,
    digest, consistency: manifest.read_manifest), every weights file's sha256, what each
    weights file records against the manifest's word for it, and every tensor's presence,
    shape and values (bundle/weights.py). Anything wrong is an InputError naming the file."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    complete = manifest.digest is not None  # format 3 on: the weights record all of it
    for name, expected in manifest.files.items():
        path = folder / name
        if not path.is_file():
            raise InputError(f"{path}: missing (the manifest lists it)")
        found = sha256_file(path)
        if found != expected:
            raise InputError(
                f"{path}: sha256 {found}, the manifest expects {expected}; the file was changed "
                "or damaged"
            )
    tasks = {}
    for task, model in manifest.tasks.items():
        path = _listed(folder, manifest, model.weights)
        tensors, metadata = weights.read_weights(path)
        names = tuple(model.feature_names)
        score_range = (model.score_range[0], model.score_range[1])
        weights.check_metadata(
            path,
            metadata,
            weights.task_metadata(task, model.signature, model.folds, names, score_range),
            complete,
            f"the manifest's tasks.{task}",
        )
        arch = Config.parse(model.config).arch
        weights.check_task_tensors(
            path,
            tensors,
            arch,
            model.folds,
            model.n_training_subjects,
            tuple(model.feature_min),
            tuple(model.feature_max),
        )
        ensemble = weights.ensemble_from_tensors(
            path, tensors, arch, model.folds, task, model.signature, names, score_range
        )
        tasks[task] = TaskPredictor(
            model,
            ensemble,
            tensors["conformal.residual"].double().numpy(),
            tensors["conformal.fold"].long().numpy(),
            tensors["features.min"].double().numpy(),
            tensors["features.max"].double().numpy(),
        )
    subtotal = None
    if manifest.subtotal is not None:  # read_manifest checked that all five tasks are there
        sub = manifest.subtotal
        path = _listed(folder, manifest, sub.weights)
        tensors, metadata = weights.read_weights(path)
        folds = next(iter(manifest.tasks.values())).folds
        weights.check_metadata(
            path,
            metadata,
            weights.subtotal_metadata(
                tuple(sub.tasks), folds, (sub.score_range[0], sub.score_range[1])
            ),
            complete,
            "the manifest's subtotal",
        )
        weights.check_subtotal_tensors(path, tensors, folds, sub.n_training_subjects)
        subtotal = (
            tensors["conformal.residual"].double().numpy(),
            tensors["conformal.fold"].long().numpy(),
        )
    return Bundle(folder, manifest, tasks, subtotal)


def _listed(folder: Path, manifest: BundleManifest, name: str) -> Path:
    if name not in manifest.files:  # every file read must have been checked above
        raise InputError(f"{folder / 'manifest.json'}: {name} has no sha256 in 'files'")
    return folder / name


def features_for(
    bundle: Bundle,
    features: str | Path,
    signature: str | None = None,
    task: str | None = None,
    max_file_mb: float = MAX_FILE_MB,
) -> dict[str, TaskInput]:
    """The features to apply each task's model to: from a data root (`<signature>/<task>.npz`
    of each task's signature) or one file. Each is checked against its task's model; a file
    above `max_file_mb`, of no rows, or that is not a regular file is refused."""
    features = Path(features)
    found: dict[str, TaskInput] = {}
    if features.is_dir():
        if signature is not None or task is not None:
            raise InputError(
                f"{features}: --signature and --task are for one features file, not a data root"
            )
        for name, predictor in bundle.tasks.items():
            path = dataset_path(features, predictor.model.signature, name)
            if os.path.lexists(path):  # there: a regular file or refused, never skipped
                found[name] = read_task_input(path, max_file_mb=max_file_mb)
        if not found:
            expected = ", ".join(f"{m.signature}/{t}.npz" for t, m in bundle.manifest.tasks.items())
            raise DataError(
                f"{features}: holds none of the bundle's features (expected {expected})"
            )
    else:
        one = read_task_input(features, signature, task, max_file_mb)
        if one.identity.task not in bundle.tasks:
            raise DataError(
                f"{features}: task {one.identity.task}, but the bundle has models for "
                f"{', '.join(bundle.tasks)} only"
            )
        found[one.identity.task] = one
    for name, one in found.items():
        predictor = bundle.tasks[name]
        check_applicable(
            one,
            predictor.identity,
            tuple(predictor.model.feature_names),
            f"the bundle's {name} model",
        )
    return found


@dataclass(frozen=True)
class Predictions:
    subject_ids: list[str]
    columns: list[str]
    # column -> one value per subject (None: not predicted); `<task>_set` columns hold text
    values: dict[str, list[Any]]
    out_of_range: list[str]


def predict(bundle: Bundle, features: dict[str, TaskInput]) -> Predictions:
    """Every subject's predictions and CV+ intervals, in the order first seen (task order)."""
    level = bundle.manifest.interval_level
    column: dict[str, int] = {}
    for name in bundle.tasks:
        for subject in features[name].subject_ids.tolist() if name in features else ():
            column.setdefault(subject, len(column))
    subjects = list(column)
    values: dict[str, list[float | None]] = {}
    flags: list[list[str]] = [[] for _ in subjects]
    fold_sums = np.zeros((0, len(subjects)))
    complete = np.ones(len(subjects), dtype=bool)
    columns: list[str] = []
    for name, predictor in bundle.tasks.items():
        columns += [name, f"{name}_lo", f"{name}_hi"]
        cells: list[list[float | None]] = [[None] * len(subjects) for _ in range(3)]
        if name not in features:
            complete[:] = False
            values.update(zip(columns[-3:], cells))
            continue
        one = features[name]
        per_fold = predictor.ensemble.predict_folds(one.X)  # (K, n)
        calibration = bundle.manifest.tasks[name].calibration
        if calibration is not None:  # calibrated on the nested cross-validation's outer folds
            lower, upper = calibration_from(calibration).interval(
                per_fold.mean(axis=0), predictor.ensemble.score_range
            )
        else:  # CV+ on the shipped models' out-of-fold residuals
            lower, upper = cv_plus_intervals(per_fold, predictor.residuals, predictor.folds, level)
            lower, upper = clip_to_range(lower, upper, predictor.ensemble.score_range)
        rows = np.array([column[s] for s in one.subject_ids.tolist()], dtype=np.int64)
        for j, i in enumerate(rows):
            cells[0][i], cells[1][i], cells[2][i] = (
                float(per_fold[:, j].mean()),
                float(lower[j]),
                float(upper[j]),
            )
        values.update(zip(columns[-3:], cells))
        if calibration is not None and calibration.integer_sets:
            columns.append(f"{name}_set")
            values[f"{name}_set"] = [
                None if cells[1][i] is None else integer_set(cells[1][i], cells[2][i])
                for i in range(len(subjects))
            ]
        present = np.zeros(len(subjects), dtype=bool)
        present[rows] = True
        complete &= present
        if fold_sums.shape[0] == 0:
            fold_sums = np.zeros((per_fold.shape[0], len(subjects)))
        if per_fold.shape[0] == fold_sums.shape[0]:
            fold_sums[:, rows] += per_fold
        width = predictor.feature_max - predictor.feature_min
        far = (one.X < predictor.feature_min - OUT_OF_RANGE_MARGIN * width) | (
            one.X > predictor.feature_max + OUT_OF_RANGE_MARGIN * width
        )
        for j, i in enumerate(rows):
            flags[i] += [
                f"{name}:{predictor.model.feature_names[f]}" for f in np.flatnonzero(far[j])
            ]
    # The subtotal's interval is the five tasks' sum's: only with all five (load_bundle checks).
    if (
        bundle.subtotal is not None
        and bundle.manifest.subtotal is not None
        and set(bundle.tasks) == set(TASKS)
    ):
        columns += [SUBTOTAL, f"{SUBTOTAL}_lo", f"{SUBTOTAL}_hi"]
        cells = [[None] * len(subjects) for _ in range(3)]
        chosen = np.flatnonzero(complete)
        if len(chosen):
            sub_range = bundle.manifest.subtotal.score_range
            calibration = bundle.manifest.subtotal.calibration
            if calibration is not None:
                points = np.array([sum(values[t][i] for t in bundle.tasks) for i in chosen])
                lower, upper = calibration_from(calibration).interval(points, tuple(sub_range))
            else:
                residuals, folds = bundle.subtotal
                lower, upper = cv_plus_intervals(fold_sums[:, chosen], residuals, folds, level)
                lower, upper = clip_to_range(lower, upper, (sub_range[0], sub_range[1]))
            for j, i in enumerate(chosen):
                point = sum(values[t][i] for t in bundle.tasks)  # the sum of the tasks' predictions
                cells[0][i], cells[1][i], cells[2][i] = (
                    float(point),
                    float(lower[j]),
                    float(upper[j]),
                )
        values.update(zip(columns[-3:], cells))
    return Predictions(subjects, columns, values, [";".join(f) for f in flags])


def write_predictions(predictions: Predictions, out: str | Path) -> Path:
    rows = []
    for i, subject in enumerate(predictions.subject_ids):
        cells = [predictions.values[c][i] for c in predictions.columns]
        rows.append(
            [
                subject,
                *(None if v is None else v if isinstance(v, str) else f"{v:.4f}" for v in cells),
                predictions.out_of_range[i],
            ]
        )
    text = csvsafe.csv_text(["subject_id", *predictions.columns, "out_of_range"], rows)
    try:
        return atomic.write_text(out, text)
    except OSError as exc:  # a folder that is a file, no permission, a full disk
        raise InputError(f"{out}: cannot write ({exc.strerror or exc})") from None
