"""A bundle's `manifest.json`: one checked document (pydantic, unknown keys refused).

Per task: the winner's signature, feature names, score range, the build parameters and
builder version its features were made with (what new features must match), its
hyper-parameters and training config (the architecture to rebuild), test metrics with 95 %
intervals next to the baselines', the CV+ interval level and measured coverage, and the
training range of every feature. For the bundle: format and version, the sweep it came
from, the data's fingerprint, the split's hash, SYNTHETIC or not, and the sha256 of every
weights file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from mmse_model.bundle.layout import FORMAT, FORMAT_VERSION, MANIFEST
from mmse_model.core.errors import ConfigError, InputError
from mmse_model.core.identity import BuildParams
from mmse_model.core.schema import Schema


class TaskModel(Schema):
    task: str
    signature: str
    feature_names: list[str]
    score_range: list[float]  # [low, high], sub-score points
    build_params: dict[str, Any] | None  # BuildParams.to_dict(); None: the data recorded none
    builder_version: str | None
    folds: int
    weights: str  # file name inside the bundle
    hyperparameters: dict[str, Any]  # what the sweep searched, as the winner had them
    config: dict[str, Any]  # the winner's whole training config (architecture included)
    trial_id: str
    checkpoint_uri: str
    selection: dict[str, float]  # validation metrics that chose it (not an estimate)
    test: dict[str, Any]  # held-out test metrics in points, with 95 % intervals
    baselines: dict[str, dict[str, Any]]  # the same test subjects, same metrics
    intervals: dict[str, Any]  # CV+ level and its coverage on the test subjects (Wilson interval)
    n_training_subjects: int
    feature_min: list[float]  # training subjects' range of each feature
    feature_max: list[float]
    # The sweep's nested estimate of its selection procedure (summary.json's, less where each
    # repeat ran); None when the sweep made none.
    nested_estimate: dict[str, Any] | None = None

    def build(self) -> BuildParams | None:
        return None if self.build_params is None else BuildParams.from_dict(self.build_params)


class SubtotalModel(Schema):
    tasks: list[str]
    score_range: list[float]
    weights: str
    test: dict[str, Any]  # the summary's subtotal metrics
    intervals: dict[str, Any]
    n_training_subjects: int


class BundleManifest(Schema):
    format: Literal["mmse-bundle"] = FORMAT
    format_version: int = FORMAT_VERSION
    experiment: str  # the sweep's name
    source: str  # where the sweep's results were (experiment folder or URI)
    data_root: str
    data_fingerprint: str
    split_hash: str
    synthetic: bool
    interval_level: float
    provenance: dict[str, Any]  # the sweep's: config, code version, library versions, times
    tasks: dict[str, TaskModel]
    subtotal: SubtotalModel | None
    files: dict[str, str]  # every weights file -> sha256

    def task(self, task: str) -> TaskModel:
        return self.tasks[task]


def split_hash(split: dict[str, Any]) -> str:
    """sha256 of the split (test subjects, each training subject's fold) in canonical JSON."""
    canonical = {
        "test_subjects": sorted(str(s) for s in split["test_subjects"]),
        "fold_of_subject": {str(k): int(v) for k, v in sorted(split["fold_of_subject"].items())},
        "folds": int(split["folds"]),
    }
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


def read_manifest(folder: Path) -> BundleManifest:
    """The bundle's manifest, checked; a bundle of a newer format is refused."""
    path = Path(folder) / MANIFEST
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{folder}: not a model bundle (no {MANIFEST})") from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a readable manifest ({exc})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise InputError(
            f"{path}: not an mmse model bundle (format {document.get('format')!r}, expected {FORMAT!r})"
            if isinstance(document, dict)
            else f"{path}: not an mmse model bundle"
        )
    version = document.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise InputError(f"{path}: format_version {version!r}: expected an integer")
    if version > FORMAT_VERSION:
        raise InputError(
            f"{path}: bundle format version {version} is newer than this code reads "
            f"(up to {FORMAT_VERSION}); update mmse-model"
        )
    try:
        return BundleManifest.parse(document)
    except ConfigError as exc:
        raise InputError(f"{path}: {exc}") from None
