"""Recordings -> RQA datasets `<out>/<sig>/<Q>.npz` (docs/design.md, "Data").

The work splits into three phases so that Ray can run the middle one:

1. `plan_build` validates everything that is an error (signatures, labels, directories)
   before any work, and lists the (subject, task) recordings to process;
2. `compute_items` turns a batch of recordings into features for every signature. It is a
   pure function of its arguments (no torch, no globals), so a Ray task can run it;
3. `write_datasets` applies the skip policy and writes the whole data root into a staging
   folder beside `out`, which then replaces `out` as a whole: after a build the folder holds
   exactly what this build wrote, and a failed build leaves the old one untouched.

Every `<sig>/<Q>.npz` records its identity (signature, task, build parameters, builder
version: `core/identity.py`) and the root gets `dataset.json` (`data/manifest.Manifest`):
each file's sha256, the subjects of each task, the build parameters and the source
recordings' fingerprint.

Every recording is resampled to RQA_RATE_HZ first, and RQA leaves out the pairs closer in
time than the Theiler window (`theiler_window`), so that no feature follows the tracker's
sampling rate; docs/rqa.md has the choices and the measurements behind them.

Recordings are read in the layout `--format` names (features/gaze_formats.py: t,x,y, direction
vectors or a YAML mapping of another export); the conversion it applies is recorded in the
build parameters, and the fixation detector uses its field of view.

Skip policy: a recording that cannot be used (unreadable, binary or not UTF-8, empty, header
only, missing columns (a mapped column, named) or rows of another width, non-numeric, no valid
samples, coordinates far outside the screen, gaze vectors mostly pointing backwards,
timestamps that repeat or go back, longer than `max_duration_s`, a file above
`max_file_mb`, too short for some signature's embedding, no labels for its subject; a
directory, FIFO or device where the CSV should be, a symlink to nothing or leading outside
the recordings folder, never opened; `recordings.py` checks them before anything large is
allocated) is dropped from that task in *every* signature, because the data contract says a
task's files hold the same subjects in every signature. Every skip is listed in
`<out>/build_report.csv` (spreadsheet-safe cells, core/csvsafe.py) and summarised in a
`BuildWarning`; none is silent. With `strict`, any skip is an InputError instead and nothing
is written.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mmse_model.core import atomic, csvsafe, outputs
from mmse_model.core.conversion import TXY_CONVERSION, Conversion, LayoutRecord
from mmse_model.core.domain import (
    FEATURE_NAMES,
    FIELD_OF_VIEW_DEG,
    RQA_RATE_HZ,
    TASKS,
    Signature,
    parse_signatures,
)
from mmse_model.core.errors import InputError
from mmse_model.core.hashing import combined_fingerprint, sha256_bytes, sha256_file
from mmse_model.core.identity import BUILDER_VERSION, BuildParams, DatasetIdentity
from mmse_model.data.manifest import (
    BUILD_REPORT_COLUMNS,
    BUILD_REPORT_NAME,
    MANIFEST_NAME,
    Manifest,
    cohort_is_synthetic,
    foreign_content,
)
from mmse_model.features.fixations import detect_fixations
from mmse_model.features.gaze_formats import TXY, Layout
from mmse_model.features.recordings import (
    DEFAULT_LIMITS,
    Recording,
    RecordingError,
    RecordingLimits,
    read_labels,
    read_recording_bytes,
    recording_path_problem,
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
ALL_TASKS = "all"


class BuildWarning(UserWarning):
    """Some recordings were skipped; the report file lists them."""


@dataclass(frozen=True)
class WorkItem:
    subject_id: str
    task: str
    path: str
    limits: RecordingLimits = DEFAULT_LIMITS
    layout: Layout = TXY  # how the file keeps its gaze (`--format`)


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
    sha256: str = ""  # of the recording's bytes, when it was read


@dataclass(frozen=True)
class BuildPlan:
    labels: dict[str, tuple[float, ...]]
    signatures: list[Signature]
    mode: str
    items: list[WorkItem]
    skips: list[Skip] = field(default_factory=list)
    labels_sha256: str = ""
    synthetic: bool = False  # the cohort says it is SYNTHETIC (`mmse data synth`)
    layout: Layout = TXY


@dataclass(frozen=True)
class BuildReport:
    written: list[Path]
    skips: list[Skip]
    subjects_per_task: dict[str, int]
    report_path: Path


# A runner computes every item, in any order: in-process or as Ray tasks.
Runner = Callable[[list[WorkItem], list[Signature], str], list[ItemResult]]


def plan_build(
    recordings_dir: Path,
    labels_path: Path,
    signatures: Sequence[str],
    mode: str = "trajectory",
    limits: RecordingLimits = DEFAULT_LIMITS,
    layout: Layout = TXY,
) -> BuildPlan:
    """Validate the inputs (InputError on anything that is not skippable) and list the work."""
    parsed = parse_signatures(list(signatures))
    if mode not in MODES:
        raise InputError(f"mode {mode!r}: expected one of {', '.join(MODES)}")
    if not recordings_dir.is_dir():
        raise InputError(f"{recordings_dir}: recordings directory not found")
    if not (0 < limits.max_duration_s < math.inf and 0 < limits.max_file_mb < math.inf):
        raise InputError(
            f"--max-duration-s {limits.max_duration_s:g} and --max-file-mb {limits.max_file_mb:g}: "
            "expected finite numbers > 0"
        )
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
            if not os.path.lexists(path):
                skips.append(Skip(subject, task, f"missing recording {task}.csv"))
            elif problem := recording_path_problem(path, recordings_dir):
                skips.append(Skip(subject, task, f"{task}.csv is {problem}"))
            else:
                items.append(WorkItem(subject, task, str(path), limits, layout))
    if not items:
        raise InputError(f"{recordings_dir}: no recordings of subjects in {labels_path}")
    synthetic = cohort_is_synthetic(recordings_dir, recordings_dir.parent, labels_path.parent)
    return BuildPlan(
        labels, parsed, mode, items, skips, sha256_file(labels_path), synthetic, layout
    )


def state_vectors(
    recording: Recording,
    signature: Signature,
    mode: str,
    field_of_view_deg: float = FIELD_OF_VIEW_DEG,
) -> np.ndarray:
    """The embedded trajectory (n, 2m) that RQA runs on; the fixation detector converts its
    velocity threshold with the field of view the gaze was normalised with."""
    if mode == "fixation":
        fixations = detect_fixations(recording, field_of_view_deg=field_of_view_deg)
        return embed(fixations, signature.m, signature.tau)
    vectors = embed(recording.xy, signature.m, signature.tau)
    # A state vector that spans a blink gap mixes gaze from before and after the blink:
    # keep only vectors whose m samples are all valid.
    window_valid = np.ones(len(vectors), dtype=bool)
    for j in range(signature.m):
        offset = j * signature.tau
        window_valid &= recording.valid[offset : offset + len(vectors)]
    return vectors[window_valid]


def build_params(
    mode: str, conversion: Conversion = TXY_CONVERSION, layout: LayoutRecord | None = None
) -> BuildParams:
    """The settings besides the signature that a dataset's feature values depend on, and
    (recorded, not compared) the layout the recordings were read with."""
    return BuildParams(
        mode=mode,
        rate_hz=RQA_RATE_HZ,
        theiler_window=theiler_window(mode),
        conversion=conversion,
        layout=layout,
    )


def theiler_window(mode: str) -> int:
    """The Theiler window w in state vectors (pairs |i - j| < w are left out): the pairs less
    than THEILER_S apart at RQA_RATE_HZ (0.25 s: w = 23), or THEILER_FIXATIONS."""
    if mode == "fixation":
        return THEILER_FIXATIONS
    return math.ceil(THEILER_S * RQA_RATE_HZ - 1e-9)


def recording_features(
    recording: Recording,
    signatures: list[Signature],
    mode: str,
    field_of_view_deg: float = FIELD_OF_VIEW_DEG,
) -> np.ndarray:
    """(n_signatures, 10) RQA features of one recording as read (any sampling rate): it is
    resampled to RQA_RATE_HZ and embedded, and RQA leaves out the Theiler window. A
    recording that cannot be used raises RecordingError saying why."""
    recording = resample(recording, RQA_RATE_HZ)
    theiler = theiler_window(mode)
    rows = []
    for signature in signatures:
        vectors = state_vectors(recording, signature, mode, field_of_view_deg)
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
    digest = ""
    try:
        data = read_recording_bytes(Path(item.path), item.limits)
        digest = sha256_bytes(data)
        recording = item.layout.parse(data, item.limits)
        fov = item.layout.conversion.field_of_view_deg
        features = recording_features(recording, signatures, mode, fov)
    except RecordingError as exc:
        return ItemResult(item.subject_id, item.task, None, str(exc), digest)
    return ItemResult(item.subject_id, item.task, features, "", digest)


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
    limits: RecordingLimits = DEFAULT_LIMITS,
    strict: bool = False,
    layout: Layout = TXY,
) -> BuildReport:
    """Plan, compute with `runner`, write. Bad input raises InputError before any write."""
    out = Path(out)
    check_output_root(out, [("--recordings", recordings_dir), ("--labels", labels_path)])
    plan = plan_build(Path(recordings_dir), Path(labels_path), signatures, mode, limits, layout)
    results = runner(plan.items, plan.signatures, plan.mode)
    return write_datasets(plan, results, out, strict)


def check_output_root(out: Path, sources: Sequence[tuple[str, Path]] = ()) -> None:
    """`out` may be new, empty, or a data root this builder provably wrote (its dataset.json
    lists every file there: `data/manifest.foreign_content`), and must not be, lie inside or
    hold an input (`sources`: (option, path) pairs): the build replaces the folder whole."""
    outputs.check_output_folder(
        out, sources, replaces=True, owner=foreign_content, command="mmse data build"
    )


def write_datasets(
    plan: BuildPlan, results: list[ItemResult], out: Path, strict: bool = False
) -> BuildReport:
    """Apply the skip policy and write the data root: `<out>/<sig>/<Q>.npz`, the report and
    dataset.json, staged beside `out` and swapped in whole."""
    if len(results) != len(plan.items):
        raise RuntimeError(f"runner returned {len(results)} results for {len(plan.items)} items")
    skips = list(plan.skips)
    by_task: dict[str, list[ItemResult]] = {task: [] for task in TASKS}
    for result in sorted(results, key=lambda r: (r.task, r.subject_id)):
        if result.features is None:
            skips.append(Skip(result.subject_id, result.task, result.reason))
        else:
            by_task[result.task].append(result)
    for task in TASKS:
        if not by_task[task]:
            skips.append(Skip(ALL_TASKS, task, "no usable recording: no dataset written"))
    skips.sort(key=lambda s: (s.subject_id, s.task))
    if strict and skips:
        first = skips[0]
        more = f" (and {len(skips) - 1} more)" if len(skips) > 1 else ""
        raise InputError(
            f"{_where(plan, first)}: {first.reason}{more}; --strict: nothing written "
            "(without --strict these are skipped and listed in build_report.csv)"
        )
    build = build_params(plan.mode, plan.layout.conversion, plan.layout.record)
    written: dict[str, tuple[DatasetIdentity, np.ndarray]] = {}
    subjects_per_task = {task: len(by_task[task]) for task in TASKS}
    report_path = out / BUILD_REPORT_NAME
    with atomic.staged_dir(out, replace=True) as staging:
        for task_index, task in enumerate(TASKS):
            rows = by_task[task]
            if not rows:
                continue
            subject_ids = np.array(
                [r.subject_id for r in rows], dtype=np.str_
            )  # fixed-width unicode
            y = np.array([plan.labels[r.subject_id][task_index] for r in rows], dtype=np.float64)
            features = np.stack([r.features for r in rows], axis=1)  # (n_signatures, N, 10)
            for signature, X in zip(plan.signatures, features):
                identity = DatasetIdentity(signature.name, task, build, BUILDER_VERSION)
                rel = f"{signature.name}/{task}.npz"
                atomic.write_npz(
                    staging / rel,
                    {
                        "X": np.ascontiguousarray(X, dtype=np.float64),
                        "y": y,
                        "subject_id": subject_ids,
                        "feature_names": np.array(FEATURE_NAMES, dtype=np.str_),
                        **identity.arrays(),
                    },
                )
                written[rel] = (identity, subject_ids)
        _write_report(staging / BUILD_REPORT_NAME, skips)
        used = [("labels", plan.labels_sha256)]
        used += [
            (f"recordings/{r.subject_id}/{r.task}.csv", r.sha256)
            for rows in by_task.values()
            for r in rows
        ]
        manifest = Manifest.of_files(
            staging,
            written,
            build,
            combined_fingerprint(used),
            plan.synthetic,
            others=[BUILD_REPORT_NAME],
        )
        atomic.write_json(staging / MANIFEST_NAME, manifest.to_dict())
    if skips:
        warnings.warn(
            f"skipped {len(skips)} recording(s) or subject(s); see {report_path}",
            BuildWarning,
            stacklevel=2,
        )
    return BuildReport([out / rel for rel in written], skips, subjects_per_task, report_path)


def _where(plan: BuildPlan, skip: Skip) -> str:
    """The file a skip is about, for a one-line error."""
    if skip.subject_id == ALL_TASKS:
        return f"task {skip.task}"
    for item in plan.items:
        if (item.subject_id, item.task) == (skip.subject_id, skip.task):
            return item.path
    return f"subject {skip.subject_id}" + ("" if skip.task == ALL_TASKS else f" task {skip.task}")


def _write_report(path: Path, skips: list[Skip]) -> None:
    rows = ([s.subject_id, s.task, s.reason] for s in skips)
    atomic.write_text(path, csvsafe.csv_text(BUILD_REPORT_COLUMNS, rows))
