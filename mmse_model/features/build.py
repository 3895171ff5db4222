"""Recordings -> RQA datasets `<out>/<sig>/<Q>.npz` (docs/design.md, "Data").

The work splits into three phases so that Ray can run the middle one:

1. `plan_build` validates everything that is an error (signatures, labels, directories)
   before any work, and lists the (subject, task) recordings to process;
2. `compute_items` turns a batch of recordings into features for every signature. It is a
   pure function of its arguments (no torch, no globals), so a Ray task can run it;
3. `write_datasets` applies the skip policy and writes every file atomically.

Every recording is resampled to RQA_RATE_HZ first, and RQA leaves out the pairs closer in
time than the Theiler window (`theiler_window`), so that no feature follows the tracker's
sampling rate; docs/rqa.md has the choices and the measurements behind them.

Skip policy: a recording that cannot be used (unreadable, empty, missing columns,
non-numeric, no valid samples, too short for some signature's embedding, no labels for its
subject) is dropped from that task in *every* signature, because the data contract says a
task's files hold the same subjects in every signature. Every skip is listed in
`<out>/build_report.csv` and summarised in a `BuildWarning`; none is silent.
"""

from __future__ import annotations

import csv
import io
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mmse_model.core import atomic
from mmse_model.core.domain import FEATURE_NAMES, RQA_RATE_HZ, TASKS, Signature, parse_signatures
from mmse_model.core.errors import InputError
from mmse_model.features.fixations import detect_fixations
from mmse_model.features.recordings import (
    Recording,
    RecordingError,
    read_labels,
    read_recording,
    resample,
)
from mmse_model.features.rqa import embed, rqa_measures

MODES = ("trajectory", "fixation")
# Fewer state vectors (outside the Theiler window) than this give RQA measures that are
# mostly noise.
MIN_STATE_VECTORS = 10
# Theiler window of trajectory RQA in seconds: pairs of samples closer in time than this
# are left out of the recurrence plot. One typical fixation (docs/rqa.md, "Theiler window").
THEILER_S = 0.25
# Theiler window of fixation-sequence RQA, in fixations: the line of identity only (a
# fixation trivially recurs with itself; Anderson et al. 2013 use the upper triangle).
THEILER_FIXATIONS = 1
REPORT_NAME = "build_report.csv"
ALL_TASKS = "all"


class BuildWarning(UserWarning):
    """Some recordings were skipped; the report file lists them."""


@dataclass(frozen=True)
class WorkItem:
    subject_id: str
    task: str
    path: str


@dataclass(frozen=True)
class Skip:
    subject_id: str
    task: str
    reason: str


@dataclass(frozen=True)
class ItemResult:
    subject_id: str
    task: str
    features: np.ndarray | None  # (n_signatures, 10) in signature order; None if skipped
    reason: str = ""


@dataclass(frozen=True)
class BuildPlan:
    labels: dict[str, tuple[float, ...]]
    signatures: list[Signature]
    mode: str
    items: list[WorkItem]
    skips: list[Skip] = field(default_factory=list)


@dataclass(frozen=True)
class BuildReport:
    written: list[Path]
    skips: list[Skip]
    subjects_per_task: dict[str, int]
    report_path: Path


# A runner computes every item, in any order: in-process or as Ray tasks.
Runner = Callable[[list[WorkItem], list[Signature], str], list[ItemResult]]


def plan_build(
    recordings_dir: Path, labels_path: Path, signatures: Sequence[str], mode: str = "trajectory"
) -> BuildPlan:
    """Validate the inputs (InputError on anything that is not skippable) and list the work."""
    parsed = parse_signatures(list(signatures))
    if mode not in MODES:
        raise InputError(f"mode {mode!r}: expected one of {', '.join(MODES)}")
    if not recordings_dir.is_dir():
        raise InputError(f"{recordings_dir}: recordings directory not found")
    labels = read_labels(labels_path)
    subject_dirs = {
        p.name: p for p in recordings_dir.iterdir() if p.is_dir() and not p.name.startswith(".")
    }
    items, skips = [], []
    for subject in sorted(set(subject_dirs) | set(labels)):
        if subject not in labels:
            skips.append(Skip(subject, ALL_TASKS, f"no labels for this subject in {labels_path}"))
            continue
        if subject not in subject_dirs:
            skips.append(Skip(subject, ALL_TASKS, "no recordings directory"))
            continue
        for task in TASKS:
            path = subject_dirs[subject] / f"{task}.csv"
            if path.is_file():
                items.append(WorkItem(subject, task, str(path)))
            else:
                skips.append(Skip(subject, task, f"missing recording {task}.csv"))
    if not items:
        raise InputError(f"{recordings_dir}: no recordings of subjects in {labels_path}")
    return BuildPlan(labels, parsed, mode, items, skips)


def state_vectors(recording: Recording, signature: Signature, mode: str) -> np.ndarray:
    """The embedded trajectory (n, 2m) that RQA runs on."""
    if mode == "fixation":
        return embed(detect_fixations(recording), signature.m, signature.tau)
    vectors = embed(recording.xy, signature.m, signature.tau)
    # A state vector that spans a blink gap mixes gaze from before and after the blink:
    # keep only vectors whose m samples are all valid.
    window_valid = np.ones(len(vectors), dtype=bool)
    for j in range(signature.m):
        offset = j * signature.tau
        window_valid &= recording.valid[offset : offset + len(vectors)]
    return vectors[window_valid]


def theiler_window(mode: str) -> int:
    """The Theiler window w in state vectors (pairs |i - j| < w are left out): the pairs less
    than THEILER_S apart at RQA_RATE_HZ (0.25 s: w = 23), or THEILER_FIXATIONS."""
    if mode == "fixation":
        return THEILER_FIXATIONS
    return math.ceil(THEILER_S * RQA_RATE_HZ - 1e-9)


def recording_features(recording: Recording, signatures: list[Signature], mode: str) -> np.ndarray:
    """(n_signatures, 10) RQA features of one recording as read (any sampling rate): it is
    resampled to RQA_RATE_HZ and embedded, and RQA leaves out the Theiler window. A
    recording that cannot be used raises RecordingError saying why."""
    recording = resample(recording, RQA_RATE_HZ)
    theiler = theiler_window(mode)
    rows = []
    for signature in signatures:
        vectors = state_vectors(recording, signature, mode)
        if len(vectors) < MIN_STATE_VECTORS + theiler:
            raise RecordingError(
                f"too short for the embedding of {signature.name}: {len(vectors)} state"
                f" vectors from {recording.n_valid} valid samples at {RQA_RATE_HZ:g} Hz"
                f" ({mode}), need {MIN_STATE_VECTORS + theiler}"
                f" ({MIN_STATE_VECTORS} beyond the Theiler window of {theiler})"
            )
        rows.append(rqa_measures(vectors, signature.eps, signature.lmin, theiler=theiler))
    return np.stack(rows)


def compute_item(item: WorkItem, signatures: list[Signature], mode: str) -> ItemResult:
    """Features of one recording for every signature, or the reason it cannot be used."""
    try:
        features = recording_features(read_recording(Path(item.path)), signatures, mode)
    except RecordingError as exc:
        return ItemResult(item.subject_id, item.task, None, str(exc))
    return ItemResult(item.subject_id, item.task, features)


def compute_items(
    items: list[WorkItem], signatures: list[Signature], mode: str
) -> list[ItemResult]:
    """A batch of recordings: the unit of work of one Ray task."""
    return [compute_item(item, signatures, mode) for item in items]


def run_in_process(
    items: list[WorkItem], signatures: list[Signature], mode: str
) -> list[ItemResult]:
    """The `--no-ray` runner, with a progress bar when stderr is a terminal."""
    try:
        from tqdm import tqdm
    except ImportError:  # the bar is a nicety, not a dependency
        return compute_items(items, signatures, mode)
    bar = tqdm(items, desc="rqa", unit="rec", disable=None)
    return [compute_item(item, signatures, mode) for item in bar]


def build_datasets(
    recordings_dir: Path,
    labels_path: Path,
    signatures: Sequence[str],
    out: Path,
    mode: str = "trajectory",
    runner: Runner = run_in_process,
) -> BuildReport:
    """Plan, compute with `runner`, write. Bad input raises InputError before any write."""
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: output exists and is not a directory")
    plan = plan_build(Path(recordings_dir), Path(labels_path), signatures, mode)
    results = runner(plan.items, plan.signatures, plan.mode)
    return write_datasets(plan, results, Path(out))


def write_datasets(plan: BuildPlan, results: list[ItemResult], out: Path) -> BuildReport:
    """Apply the skip policy and write `<out>/<sig>/<Q>.npz` and the report, atomically."""
    if len(results) != len(plan.items):
        raise RuntimeError(f"runner returned {len(results)} results for {len(plan.items)} items")
    skips = list(plan.skips)
    by_task: dict[str, list[ItemResult]] = {task: [] for task in TASKS}
    for result in sorted(results, key=lambda r: (r.task, r.subject_id)):
        if result.features is None:
            skips.append(Skip(result.subject_id, result.task, result.reason))
        else:
            by_task[result.task].append(result)
    written = []
    subjects_per_task = {}
    for task_index, task in enumerate(TASKS):
        rows = by_task[task]
        subjects_per_task[task] = len(rows)
        if not rows:
            skips.append(Skip(ALL_TASKS, task, "no usable recording: no dataset written"))
            continue
        subject_ids = np.array([r.subject_id for r in rows], dtype=np.str_)  # fixed-width
        y = np.array([plan.labels[r.subject_id][task_index] for r in rows], dtype=np.float64)
        features = np.stack([r.features for r in rows], axis=1)  # (n_signatures, N, 10)
        for signature, X in zip(plan.signatures, features):
            path = out / signature.name / f"{task}.npz"
            atomic.write_npz(
                path,
                {
                    "X": np.ascontiguousarray(X, dtype=np.float64),
                    "y": y,
                    "subject_id": subject_ids,
                    "feature_names": np.array(FEATURE_NAMES, dtype=np.str_),
                },
            )
            written.append(path)
    skips.sort(key=lambda s: (s.subject_id, s.task))
    report_path = out / REPORT_NAME
    _write_report(report_path, skips)
    if skips:
        warnings.warn(
            f"skipped {len(skips)} recording(s) or subject(s); see {report_path}",
            BuildWarning,
            stacklevel=2,
        )
    return BuildReport(written, skips, subjects_per_task, report_path)


def _write_report(path: Path, skips: list[Skip]) -> None:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["subject_id", "task", "reason"])
    writer.writerows([s.subject_id, s.task, s.reason] for s in skips)
    atomic.write_text(path, text.getvalue())
