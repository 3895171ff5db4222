"""A bundle's `manifest.json`: one checked document (pydantic, unknown keys refused).

Per task: the winner's signature, feature names, score range, the build parameters and
builder version its features were made with (what new features must match), its
hyper-parameters and training config (the architecture to rebuild), test metrics with 95 %
intervals next to the baselines', the CV+ interval level and measured coverage, and the
training range of every feature. For the bundle: format and version, the sweep it came
from, the data's fingerprint, the split's hash, SYNTHETIC or not, the sha256 of every
weights file, and the folder's marker (`tool`, `kind`, `contents`): an mmse bundle, and every
file in it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, ClassVar, Literal

from mmse_model.bundle.layout import CARD, FORMAT, FORMAT_VERSION, KIND, MANIFEST
from mmse_model.core.contract import Contract, Record, tagged
from mmse_model.core.errors import InputError
from mmse_model.core.identity import BuildParams
from mmse_model.core.outputs import TOOL
from mmse_model.sweeps.looks import Looks
from mmse_model.sweeps.summary_schema import (
    Baseline,
    Calibration,
    Comparison,
    Coverage,
    Estimate,
    IntervalReport,
    NestedEstimate,
    Provenance,
    Scores,
    Stat,
    Verdict,
    estimate_models,
    old_baseline,
    old_scores,
)


class TaskModel(Record):
    task: str
    signature: str
    feature_names: tuple[str, ...]
    score_range: tuple[float, float]  # [low, high], sub-score points
    build_params: dict[str, Any] | None  # BuildParams.to_dict(); None: the data recorded none
    builder_version: str | None
    folds: int
    weights: str  # file name inside the bundle
    hyperparameters: dict[str, Any]  # what the sweep searched, as the winner had them
    config: dict[str, Any]  # the winner's whole training config (architecture included)
    trial_id: str
    checkpoint_uri: str
    selection: dict[str, Stat]  # validation metrics that chose it (not an estimate)
    test: Scores | None  # held-out test metrics in points, with 95 % intervals
    baselines: tuple[Baseline, ...]  # the same test subjects, same metrics
    comparisons: tuple[Comparison, ...] = ()  # the network minus each baseline, primary first
    verdict: Verdict | None = None
    # CV+ level and its coverage on the held-out test subjects (Wilson interval); null
    # without a held-out split
    intervals: Coverage | None
    estimate: Estimate | None = None  # the sweep's repeated nested cross-validation
    # How new subjects' intervals are made: calibrated on the nested cross-validation's outer
    # folds (null: CV+ on the fold-models' out-of-fold residuals, in the weights file)
    calibration: Calibration | None = None
    interval_report: IntervalReport | None = None
    n_training_subjects: int
    feature_min: tuple[float, ...]  # training subjects' range of each feature
    feature_max: tuple[float, ...]
    # The sweep's nested estimate of its selection procedure (summary.json's, less where each
    # repeat ran); None when the sweep made none.
    nested_estimate: NestedEstimate | None = None

    def build(self) -> BuildParams | None:
        return None if self.build_params is None else BuildParams.from_dict(self.build_params)


class SubtotalModel(Record):
    tasks: tuple[str, ...]
    score_range: tuple[float, float]
    weights: str
    test: Scores | None  # the summary's subtotal metrics
    intervals: Coverage | None
    n_training_subjects: int
    estimate: Estimate | None = None
    calibration: Calibration | None = None
    interval_report: IntervalReport | None = None


class BundleManifest(Contract):
    FORMAT: ClassVar[str] = FORMAT
    FORMAT_VERSION: ClassVar[int] = FORMAT_VERSION
    REBUILD_HINT: ClassVar[str] = "write the bundle again with `mmse bundle EXPERIMENT`"

    format: Literal["mmse-bundle"] = FORMAT
    format_version: int = FORMAT_VERSION
    experiment: str  # the sweep's name
    source: str  # where the sweep's results were (experiment folder or URI)
    data_root: str
    data_fingerprint: str
    split_hash: str
    synthetic: bool
    interval_level: float
    provenance: Provenance  # the sweep's: config, code version, library versions, times
    tasks: dict[str, TaskModel]
    subtotal: SubtotalModel | None
    files: dict[str, str]  # every weights file -> sha256
    looks: Looks | None = None  # how often the sweep's results were scored on these data
    # The folder's marker: this tool wrote it, it is a bundle, and these are all its files
    # (manifest.json, model_card.md, the weights). Required from version 3; contents None:
    # upgraded from version 1 or 2, which did not list them.
    tool: Literal["mmse"]
    kind: Literal["bundle"]
    contents: tuple[str, ...] | None

    @classmethod
    def file_kind(cls) -> str:
        return "an mmse model bundle's manifest"

    def task(self, task: str) -> TaskModel:
        return self.tasks[task]

    def listed(self) -> set[str]:
        """Every file the bundle's folder may hold: `contents`, or for an older manifest,
        which did not list them, manifest.json, model_card.md and the weights in `files`."""
        if self.contents is not None:
            return {*self.contents, MANIFEST}
        return {MANIFEST, CARD, *self.files}


def _upgrade_1(old: dict[str, Any]) -> dict[str, Any]:
    """A version-1 manifest (its results as the untyped summary held them) in version 2."""
    tasks = {}
    for task, model in old["tasks"].items():
        baselines = model.get("baselines") or {}
        tasks[task] = {
            **model,
            "test": old_scores(model["test"]) if model.get("test") else None,
            "baselines": [old_baseline(k, v, primary=False) for k, v in baselines.items()],
            "comparisons": [],
            "verdict": None,
            "nested_estimate": _old_nested(model.get("nested_estimate")),
        }
    subtotal = old.get("subtotal")
    if subtotal is not None:
        test = subtotal.get("test") or {}
        subtotal = {**subtotal, "test": old_scores(test) if test.get("rmse") is not None else None}
    provenance = {
        k: v for k, v in (old.get("provenance") or {}).items() if k in Provenance.model_fields
    }
    return tagged(
        BundleManifest,
        {
            **old,
            "tasks": tasks,
            "subtotal": subtotal,
            "provenance": provenance,
            "not_recorded": sorted(
                f"tasks.{t}.{key}" for t in tasks for key in ("comparisons", "verdict")
            ),
        },
        2,
    )


def _old_nested(nested: Any) -> dict[str, Any] | None:
    if not isinstance(nested, dict):
        return None
    return {
        "kind": "nested",
        "label": str(nested.get("label") or "nested estimate"),
        "repeats": int(nested.get("repeats") or 0),
        "search": nested.get("search"),
        "models": estimate_models(nested.get("models") or {}),
    }


def _upgrade_2(old: dict[str, Any]) -> dict[str, Any]:
    """A version-2 manifest in version 3: the same, without the folder's marker fields (the
    files it lists are then manifest.json, model_card.md and the weights)."""
    return tagged(
        BundleManifest,
        {
            **old,
            "tool": TOOL,
            "kind": KIND,
            "contents": None,
            "not_recorded": sorted({*old.get("not_recorded", ()), "contents"}),
        },
        3,
    )


BundleManifest.UPGRADES = {1: _upgrade_1, 2: _upgrade_2}


def split_hash(split: dict[str, Any]) -> str:
    """sha256 of the split (test subjects, each training subject's fold) in canonical JSON."""
    canonical = {
        "test_subjects": sorted(str(s) for s in split["test_subjects"]),
        "fold_of_subject": {str(k): int(v) for k, v in sorted(split["fold_of_subject"].items())},
        "folds": int(split["folds"]),
    }
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


def read_manifest(folder: Path) -> BundleManifest:
    """The bundle's manifest, checked and upgraded; a bundle of a newer format is refused."""
    path = Path(folder) / MANIFEST
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{folder}: not a model bundle (no {MANIFEST})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a readable manifest ({exc})") from None
    return BundleManifest.read(str(path), text)
