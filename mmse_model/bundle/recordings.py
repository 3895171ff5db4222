"""`mmse predict --bundle B --recordings DIR`: build exactly the features the bundle's models
need, as their training features were built, then predict.

Each task's model names its signature and the build parameters (mode, resampling rate,
Theiler window, gaze conversion) and builder version of its training features. A bundle
whose features this code would build otherwise (another builder version, parameters it no
longer uses) is refused rather than fed features of another kind. A recording that cannot
be used (too short, unreadable) leaves that subject's task empty and is named on stderr.

The recordings may be in any layout (`--format`) whose conversion (kind, time unit, forward
axis, field of view) is the one the model's training recordings had; column names may
differ. Without `--format` they are read as the training recordings were (the bundle records
the layout, a mapping file whole). Another conversion is refused in one line.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from mmse_model.bundle.inputs import TaskInput
from mmse_model.core.domain import FEATURE_NAMES, parse_signature
from mmse_model.core.errors import DataError, InputError
from mmse_model.core.identity import BUILDER_VERSION, BuildParams, DatasetIdentity
from mmse_model.core.inputs import MAX_FILE_MB
from mmse_model.features.build import MODES, build_params, recording_features
from mmse_model.features.gaze_formats import Layout, layout_of_record
from mmse_model.features.recordings import (
    RecordingError,
    RecordingLimits,
    read_recording_bytes,
    recording_path_problem,
)


def features_from_recordings(
    bundle, recordings: Path, max_file_mb: float = MAX_FILE_MB, layout: Layout | None = None
) -> dict[str, TaskInput]:
    """Features of every `<subject>/<task>.csv` under `recordings`, per task of the bundle.
    A recording that cannot be used (`mmse data build`'s reasons, a directory, FIFO or device
    in its place, a symlink leading outside `recordings`) is named on stderr and skipped."""
    limits = RecordingLimits(max_file_mb=max_file_mb)
    if not recordings.is_dir():
        raise InputError(f"{recordings}: recordings directory not found")
    subjects = sorted(
        p.name for p in recordings.iterdir() if p.is_dir() and not p.name.startswith(".")
    )
    found: dict[str, TaskInput] = {}
    skipped: list[str] = []
    builds = {}
    for task, predictor in bundle.tasks.items():  # every model checked before any reading
        model = predictor.model
        name = f"the bundle's {task} model"
        build = _reproducible(model.build(), model.builder_version, name)
        builds[task] = (build, _layout_for(build, layout, name))
    for task, predictor in bundle.tasks.items():
        model = predictor.model
        build, task_layout = builds[task]
        fov = build.conversion.field_of_view_deg
        signature = parse_signature(model.signature)
        ids, rows = [], []
        for subject in subjects:
            path = recordings / subject / f"{task}.csv"
            if not os.path.lexists(path):
                continue
            problem = recording_path_problem(path, recordings)
            if problem is not None:
                skipped.append(f"{path}: {problem}")
                continue
            try:
                # size and duration limits, as `mmse data build`
                recording = task_layout.parse(read_recording_bytes(path, limits), limits)
                rows.append(recording_features(recording, [signature], build.mode, fov)[0])
                ids.append(subject)
            except RecordingError as exc:
                skipped.append(f"{path}: {exc}")
        if ids:
            identity = DatasetIdentity(model.signature, task, build, BUILDER_VERSION)
            found[task] = TaskInput(
                recordings / "*" / f"{task}.csv",
                identity,
                True,
                np.stack(rows),
                np.array(ids, dtype=str),
                FEATURE_NAMES,
            )
    if not found:
        raise DataError(
            f"{recordings}: no usable recording <subject>/<task>.csv of the bundle's tasks "
            f"({', '.join(bundle.tasks)})"
        )
    for line in skipped:
        print(f"mmse: skipped {line}", file=sys.stderr)
    return found


def _reproducible(
    build: BuildParams | None, builder_version: str | None, model: str
) -> BuildParams:
    """The bundle's build parameters, when this code builds features exactly so."""
    if build is None or builder_version is None:
        raise InputError(
            f"{model}: its training data recorded no build parameters, so features cannot be "
            "built to match; build them with `mmse data build` and use --features"
        )
    if builder_version != BUILDER_VERSION:
        raise InputError(
            f"{model}: features built by builder version {builder_version}; this code builds "
            f"version {BUILDER_VERSION}; use the matching mmse-model version"
        )
    ours = build_params(build.mode, build.conversion) if build.mode in MODES else None
    if ours != build:
        found = ours.describe() if ours else f"no mode {build.mode!r}"
        raise InputError(
            f"{model}: features built with {build.describe()}; this code builds {found}"
        )
    return build


def _layout_for(build: BuildParams, layout: Layout | None, model: str) -> Layout:
    """`layout` when its conversion is the model's (column names may differ), else a one-line
    InputError; without one, the layout the model's training recordings were read with."""
    if layout is None:
        return layout_of_record(build.layout, build.conversion)
    if layout.conversion != build.conversion:
        raise InputError(
            f"{model}: its features were built from gaze converted as "
            f"{build.conversion.describe()}; --format {layout.source} converts as "
            f"{layout.conversion.describe()} (the kind, time unit, forward axis and field of "
            "view must be the same)"
        )
    return layout
