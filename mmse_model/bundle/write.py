"""Writing a model bundle from a finished sweep (`mmse bundle`, and the end of every sweep).

For each task the summary's winner is read from its checkpoint: its K fold-models and
standardisers go into `<task>.safetensors` with the out-of-fold residuals of the training
subjects (the CV+ intervals' material, mmse_model/evaluation/conformal.py) and the range
of each feature on the training subjects. The held-out test subjects measure the intervals'
coverage. With all five tasks, the subtotal's residuals go into `subtotal.safetensors`.
The manifest records what the features must be (signature, build parameters, feature
names) and the card says what the models are for and how well they did.

Nothing here imports Ray: the caller hands over how to load a checkpoint.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mmse_model.bundle import card, weights
from mmse_model.bundle.layout import BUNDLE_DIR, CARD, KIND, MANIFEST, SUBTOTAL, weights_file
from mmse_model.bundle.manifest import BundleManifest, SubtotalModel, TaskModel, split_hash
from mmse_model.core import atomic, outputs, storage
from mmse_model.core.domain import SCORE_RANGES, TASKS
from mmse_model.core.errors import InputError, first_line
from mmse_model.core.hashing import sha256_file
from mmse_model.core.identity import DatasetIdentity
from mmse_model.core.outputs import TOOL
from mmse_model.data.dataset import dataset_path
from mmse_model.data.manifest import data_fingerprint, is_synthetic
from mmse_model.evaluation.conformal import DEFAULT_LEVEL, coverage
from mmse_model.evaluation.intervals import METHOD_WORDS, calibration_from
from mmse_model.evaluation.scoring import held_out_rows
from mmse_model.sweeps.report import format_coverage
from mmse_model.sweeps.summary_schema import SUMMARY_NAME, Provenance, Summary
from mmse_model.training.checkpoint import CheckpointPayload
from mmse_model.training.held_out import (
    HeldOutIntervals,
    OutOfFold,
    evaluate_winner,
    subtotal_intervals,
)


def write_bundle(
    summary: Summary,
    data_root: str | Path,
    load: Callable[[str], CheckpointPayload],
    out: str,
    *,
    source: str,
) -> BundleManifest:
    """Write the bundle of a sweep's `summary` into `out` (a folder or a storage URI).

    `out` is replaced whole: it must be new, empty or a bundle this project wrote (its
    manifest lists every file there: `foreign_content`), and must not be, hold or lie inside
    what the bundle is made of (the data root, the winners' checkpoints, the summary)."""
    if not summary.tasks:
        raise InputError(f"{source}: the sweep has no task winner to bundle")
    if storage.is_remote(out):
        storage.check_location(out, "--out")
    inputs = [
        ("--data", str(data_root)),
        ("the sweep's summary", storage.join(source, SUMMARY_NAME)),
        *(
            (f"the {task} winner's checkpoint", entry.winner.checkpoint_uri)
            for task, entry in sorted(summary.tasks.items())
        ),
    ]
    outputs.check_output_folder(
        out, inputs, replaces=True, owner=foreign_content, command="mmse bundle"
    )
    with tempfile.TemporaryDirectory(prefix="mmse-bundle-") as tmp:
        staging = Path(tmp) / BUNDLE_DIR
        staging.mkdir()
        manifest = _fill(staging, summary, Path(data_root), load, source)
        if storage.is_remote(out):
            _upload(staging, out)
        else:
            atomic.copy_dir(staging, storage.local_path(out))
    return manifest


def foreign_content(location: str) -> str | None:
    """Why the non-empty folder `location` (a path or URI) is not a bundle this project
    provably wrote, or None when it is (it may be replaced): its manifest.json must read as
    an mmse bundle's, and every entry there must be a file it lists (`contents`; for a
    manifest older than version 3: manifest.json, model_card.md and the weights in `files`)."""
    where = storage.join(location, MANIFEST)
    if not storage.is_remote(location):
        kind = outputs.special_kind(storage.local_path(where))
        if kind is not None:  # a FIFO would block the read
            return f"its {MANIFEST} is {kind}: not a model bundle written by mmse"
    try:
        manifest = BundleManifest.read(storage.redact(where), storage.read_text(where))
    except FileNotFoundError:
        return f"holds no {MANIFEST}: not a model bundle written by mmse"
    except InputError as exc:
        return f"not a model bundle written by mmse ({first_line(exc)})"
    listed = manifest.listed()
    if storage.is_remote(location):
        extra = next(
            (
                entry.name + ("/" if entry.is_dir else "")
                for entry in storage.list_dir(location)
                if entry.is_dir or entry.name not in listed
            ),
            None,
        )
    else:
        extra = outputs.unlisted(storage.local_path(location), listed)
    if extra is not None:
        return f"holds {extra}, not a file its {MANIFEST} lists (not written by mmse bundle)"
    return None


def deliver(
    summary: Summary, data_root: Path, experiment: str, load: Callable[[str], CheckpointPayload]
) -> str:
    """A finished sweep's bundle in `<experiment>/bundle/`, and the lines that describe it."""
    bundle = storage.join(experiment, BUNDLE_DIR)
    manifest = write_bundle(summary, data_root, load, bundle, source=experiment)
    return describe(manifest, bundle)


def held_out_coverage(report, held, level: float) -> dict | None:
    """The coverage on the held-out subjects of the intervals this bundle gives: calibrated on
    the outer folds around the ensemble's prediction where the sweep made that calibration,
    else CV+ (recomputed from the bundle's own residuals). None without held-out subjects."""
    if not len(held.y):
        return None
    if report is None:
        return coverage(held.y, held.lower, held.upper, level)
    calibration = calibration_from(report.calibration)
    lower, upper = calibration.interval(held.fold_predictions.mean(axis=0), held.score_range)
    return {
        **coverage(held.y, lower, upper, level),
        "method": METHOD_WORDS[calibration.method],
    }


def describe(manifest: BundleManifest, where: str) -> str:
    lines = [
        (
            f"{'SYNTHETIC data: ' if manifest.synthetic else ''}bundle {where}: "
            f"{', '.join(f'{t} ({m.signature})' for t, m in manifest.tasks.items())}"
        )
    ]
    parts = [(task, model.intervals) for task, model in manifest.tasks.items()]
    if manifest.subtotal is not None:
        parts.append(("subtotal", manifest.subtotal.intervals))
    for name, intervals in parts:
        if intervals is not None:
            lines.append(f"  {name}: {format_coverage(intervals)}")
    return "\n".join(lines)


def level_of(summary: Summary) -> float:
    """The interval level the sweep reported its coverage at (default 90 %)."""
    for entry in summary.tasks.values():
        if entry.intervals is not None:
            return entry.intervals.level
    return DEFAULT_LEVEL


def _fill(
    folder: Path,
    summary: Summary,
    data_root: Path,
    load: Callable[[str], CheckpointPayload],
    source: str,
) -> BundleManifest:
    level = level_of(summary)
    tasks: dict[str, TaskModel] = {}
    parts: dict[str, tuple[OutOfFold, HeldOutIntervals]] = {}
    files: dict[str, str] = {}
    splits: set[str] = set()
    for task, entry in sorted(summary.tasks.items()):
        winner = entry.winner
        signature = winner.signature
        evaluated = evaluate_winner(load(winner.checkpoint_uri), data_root, task, signature, level)
        payload, score_range, data, split = (
            evaluated.payload,
            evaluated.score_range,
            evaluated.data,
            evaluated.split,
        )
        ensemble, oof, held = evaluated.ensemble, evaluated.oof, evaluated.held
        splits.add(split_hash(payload.split))
        parts[task] = (oof, held)
        training = data.X[~held_out_rows(data.subject_ids, split)]
        identity = DatasetIdentity.from_npz(
            dataset_path(data_root, signature, task)
        )  # None: written before
        name = weights_file(task)
        tensors = {
            **weights.ensemble_tensors(ensemble),
            **weights.conformal_tensors(oof.residuals, oof.folds),
            **weights.range_tensors(training.min(axis=0), training.max(axis=0)),
        }
        if tuple(score_range) != SCORE_RANGES[task]:
            raise InputError(
                f"{winner.checkpoint_uri}: trained on {task} scores in [{score_range[0]:g}, "
                f"{score_range[1]:g}], but the item's range is [{SCORE_RANGES[task][0]:g}, "
                f"{SCORE_RANGES[task][1]:g}]; a bundle holds models of the MMSE items"
            )
        weights.write_weights(
            folder / name,
            tensors,
            weights.task_metadata(
                task, signature, payload.folds, tuple(data.feature_names), score_range
            ),
        )
        files[name] = sha256_file(folder / name)
        tasks[task] = TaskModel(
            task=task,
            signature=signature,
            feature_names=list(data.feature_names),
            score_range=[float(score_range[0]), float(score_range[1])],
            build_params=None
            if identity is None or identity.build is None
            else identity.build.to_dict(),
            builder_version=None if identity is None else identity.builder_version,
            folds=payload.folds,
            weights=name,
            hyperparameters=winner.hyperparameters,
            config=payload.config,
            trial_id=winner.trial_id,
            checkpoint_uri=winner.checkpoint_uri,
            selection=winner.selection,
            test=entry.test,
            baselines=entry.baselines,
            comparisons=entry.comparisons,
            verdict=entry.verdict,
            intervals=held_out_coverage(entry.prediction_intervals, held, level),
            estimate=entry.estimate,
            transfer=entry.transfer,
            calibration=None
            if entry.prediction_intervals is None
            else entry.prediction_intervals.calibration,
            interval_report=entry.prediction_intervals,
            n_training_subjects=len(np.unique(oof.subject_ids)),
            feature_min=[float(v) for v in training.min(axis=0)],
            feature_max=[float(v) for v in training.max(axis=0)],
            nested_estimate=None
            if entry.nested_estimate is None
            else entry.nested_estimate.model_copy(update={"ran_on": ()}),
        )
    if len(splits) > 1:
        raise InputError(
            f"{source}: the task winners were trained on different splits; no shared folds to "
            "bundle"
        )
    subtotal = None
    if set(tasks) == set(TASKS):
        sub = subtotal_intervals(parts, level)
        name = weights_file(SUBTOTAL)
        weights.write_weights(
            folder / name,
            weights.conformal_tensors(sub.residuals, sub.folds),
            weights.subtotal_metadata(
                tuple(sub.tasks), next(iter(tasks.values())).folds, tuple(sub.score_range)
            ),
        )
        files[name] = sha256_file(folder / name)
        subtotal = SubtotalModel(
            tasks=list(sub.tasks),
            score_range=list(sub.score_range),
            weights=name,
            test=None if summary.subtotal is None else summary.subtotal.test,
            intervals=(
                summary.subtotal.intervals
                if summary.subtotal is not None and summary.subtotal.prediction_intervals
                else coverage(sub.y, sub.lower, sub.upper, level)
                if len(sub.y)
                else None
            ),
            n_training_subjects=len(sub.residuals),
            estimate=None if summary.subtotal is None else summary.subtotal.estimate,
            transfer=None if summary.subtotal is None else summary.subtotal.transfer,
            calibration=None
            if summary.subtotal is None or summary.subtotal.prediction_intervals is None
            else summary.subtotal.prediction_intervals.calibration,
            interval_report=None
            if summary.subtotal is None
            else summary.subtotal.prediction_intervals,
        )
    manifest = BundleManifest(
        experiment=summary.experiment,
        source=source,
        data_root=str(data_root),
        data_fingerprint=data_fingerprint(data_root),
        split_hash=splits.pop(),
        synthetic=is_synthetic(data_root),
        interval_level=level,
        provenance=summary.provenance or Provenance(),
        tasks=tasks,
        subtotal=subtotal,
        files=files,
        looks=summary.looks,
        tool=TOOL,
        kind=KIND,
        contents=sorted([*files, CARD, MANIFEST]),
    ).sealed()  # its digest covers everything it says, the weights' sha256 included
    atomic.write_text(folder / CARD, card.render(manifest))
    atomic.write_text(folder / MANIFEST, manifest.to_json())
    return manifest


def _upload(staging: Path, out: str) -> None:
    """Copy into a storage URI with `manifest.json` last (and the old one removed first, then
    the old bundle's files this one does not write), so a reader sees no bundle or a whole
    one, never a manifest naming weights not yet there, and the folder ends holding exactly
    this bundle (`foreign_content` has checked that everything there was the old bundle's)."""
    new = {path.name for path in staging.iterdir()}
    old = {entry.name for entry in storage.list_dir(out) if not entry.is_dir}
    storage.delete(storage.join(out, MANIFEST))
    for name in sorted(old - new):
        storage.delete(storage.join(out, name))
    for path in sorted(staging.iterdir(), key=lambda p: p.name == MANIFEST):
        storage.write_bytes(storage.join(out, path.name), path.read_bytes())
