"""A bundle's `manifest.json`: one checked document (pydantic, unknown keys refused).

Per task: the winner's signature, feature names, score range, the build parameters and
builder version its features were made with (what new features must match), its
hyper-parameters and training config (the architecture to rebuild), test metrics with 95 %
intervals next to the baselines', the CV+ interval level and measured coverage, and the
training range of every feature. For the bundle: format and version, the sweep it came
from, the data's fingerprint, the split's hash, SYNTHETIC or not, the sha256 of every
weights file, the folder's marker (`tool`, `kind`, `contents`: an mmse bundle, and every file
in it), and `digest`: one sha256 over everything else in the manifest (`manifest_digest`),
so that the manifest and the weights' hashes it lists are checked as one.

`read_manifest` refuses, in one line naming the file: a digest that differs (the manifest was
edited or damaged), a non-finite number anywhere, and a manifest that contradicts itself or
the domain (`check_consistent`: a task under another key, a weights file not named by the
layout, a score range empty, reversed or other than the item's, feature bounds of another
length, a subtotal without all five tasks, a `files` list other than the weights named,
`contents` without the weights). A manifest of format 2 or older has no digest and no marker:
it is read, its weights still checked by sha256 and by what they record, and `not_recorded`
names `contents` and `digest` (docs/design.md, "The model bundle", says why it is read rather
than refused).
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any, ClassVar, Literal

from mmse_model.bundle.layout import (
    CARD,
    FORMAT,
    FORMAT_VERSION,
    KIND,
    MANIFEST,
    SUBTOTAL,
    weights_file,
)
from mmse_model.core.config import Config
from mmse_model.core.contract import Contract, Record, check_version, tagged
from mmse_model.core.domain import N_FEATURES, SCORE_RANGES, SUBTOTAL_RANGE, TASKS, parse_signature
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
    Transfer,
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
    transfer: Transfer | None = None  # its leave-one-site-out estimate, where made
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
    transfer: Transfer | None = None
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
    # sha256 over the rest of the manifest (`manifest_digest`); None: format 2 or older
    digest: str | None = None

    @classmethod
    def file_kind(cls) -> str:
        return "an mmse model bundle's manifest"

    @classmethod
    def from_document(cls, where: str, document: Any) -> BundleManifest:
        """The manifest of a parsed document, refused when it holds a non-finite number (the
        writer never does) or, from format 3 on, when its digest differs."""
        version = cls.version_of(where, document)
        check_version(where, cls.FORMAT, version, 0, cls.FORMAT_VERSION, InputError)  # newer
        at = _non_finite(document)
        if at is not None:
            raise InputError(f"{where}: {at or 'a value'} is not a finite number")
        if version >= 3:
            recorded = document.get("digest")
            if not isinstance(recorded, str):
                raise InputError(f"{where}: records no digest (format {version} has one)")
            found = manifest_digest(document)
            if found != recorded:
                raise InputError(
                    f"{where}: digest {found}, the manifest records {recorded}; it was changed "
                    "or damaged after it was written"
                )
        return super().from_document(where, document)

    def sealed(self) -> BundleManifest:
        """This manifest with its digest: what the writer writes."""
        document = json.loads(self.model_copy(update={"digest": None}).to_json())
        return self.model_copy(update={"digest": manifest_digest(document)})

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
    files it lists are then manifest.json, model_card.md and the weights) and without a digest
    (unchecked); its weights' metadata records only format, task and signature
    (weights.ALWAYS_RECORDED)."""
    return tagged(
        BundleManifest,
        {
            **old,
            "tool": TOOL,
            "kind": KIND,
            "contents": None,
            "digest": None,
            "not_recorded": sorted({*old.get("not_recorded", ()), "contents", "digest"}),
        },
        3,
    )


BundleManifest.UPGRADES = {1: _upgrade_1, 2: _upgrade_2}


def manifest_digest(document: dict[str, Any]) -> str:
    """sha256 of the manifest's document without its `digest`, as canonical JSON (keys
    sorted, no spaces, ASCII): the same for the writer's model and the reader's file."""
    body = {key: value for key, value in document.items() if key != "digest"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _non_finite(value: Any, at: str = "") -> str | None:
    """The dotted path of the first NaN or infinity in a parsed JSON document, else None."""
    if isinstance(value, float) and not math.isfinite(value):
        return at
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, item in items:
        found = _non_finite(item, f"{at}.{key}" if at else str(key))
        if found is not None:
            return found
    return None


def check_consistent(where: str, manifest: BundleManifest) -> None:
    """Refuse a manifest that contradicts itself or the domain (one line naming `where`)."""

    def refuse(problem: str) -> None:
        raise InputError(f"{where}: {problem}")

    if not 0 < manifest.interval_level < 1:
        refuse(f"interval_level {manifest.interval_level:g}: expected a level between 0 and 1")
    if not manifest.tasks:
        refuse("holds no task model")
    named: dict[str, str] = {}
    for key, model in manifest.tasks.items():
        at = f"tasks.{key}"
        if key not in TASKS:
            refuse(f"{at}: unknown task (expected one of {', '.join(TASKS)})")
        if model.task != key:
            refuse(f"{at}.task is {model.task!r}: a model listed under another task")
        try:
            parse_signature(model.signature)
        except InputError as exc:
            refuse(f"{at}.signature: {exc}")
        if model.weights != weights_file(key):
            refuse(f"{at}.weights: expected {weights_file(key)}, found {model.weights!r}")
        named[model.weights] = at
        check_score_range(where, f"{at}.score_range", model.score_range, SCORE_RANGES[key], key)
        if model.folds < 2:
            refuse(f"{at}.folds {model.folds}: expected 2 or more fold-models")
        if model.n_training_subjects < 1:
            refuse(f"{at}.n_training_subjects {model.n_training_subjects}: expected 1 or more")
        for name in ("feature_names", "feature_min", "feature_max"):
            if len(getattr(model, name)) != N_FEATURES:
                refuse(f"{at}.{name}: {len(getattr(model, name))} values, expected {N_FEATURES}")
        if any(low > high for low, high in zip(model.feature_min, model.feature_max)):
            refuse(f"{at}: feature_min above feature_max")
        try:
            config = Config.parse(model.config)
        except InputError as exc:
            refuse(f"{at}.config: {exc}")
        if config.split.folds != model.folds:
            refuse(f"{at}.folds {model.folds}, but its config has split.folds {config.split.folds}")
        _check_calibration(refuse, f"{at}.calibration", model.calibration)
    subtotal = manifest.subtotal
    if subtotal is not None:
        if set(manifest.tasks) != set(TASKS) or tuple(subtotal.tasks) != TASKS:
            refuse(
                f"subtotal of {', '.join(subtotal.tasks)}, but the bundle's tasks are "
                f"{', '.join(manifest.tasks)}; a subtotal needs all of {', '.join(TASKS)}"
            )
        check_score_range(where, "subtotal.score_range", subtotal.score_range, SUBTOTAL_RANGE)
        if subtotal.weights != weights_file(SUBTOTAL):
            refuse(
                f"subtotal.weights: expected {weights_file(SUBTOTAL)}, found {subtotal.weights!r}"
            )
        if len({model.folds for model in manifest.tasks.values()}) != 1:
            refuse("the tasks' models have different folds; a subtotal needs the same folds")
        if subtotal.n_training_subjects < 1:
            refuse(f"subtotal.n_training_subjects {subtotal.n_training_subjects}: expected 1+")
        named[subtotal.weights] = "subtotal"
        _check_calibration(refuse, "subtotal.calibration", subtotal.calibration)
    if set(manifest.files) != set(named):
        extra = sorted(set(manifest.files) - set(named))
        missing = sorted(set(named) - set(manifest.files))
        refuse(
            f"files lists {', '.join(extra)}, which no model uses"
            if extra
            else f"files has no sha256 for {', '.join(missing)}"
        )
    if manifest.contents is not None and not {CARD, *manifest.files} <= set(manifest.contents):
        missing = sorted({CARD, *manifest.files} - set(manifest.contents))
        refuse(f"contents does not list {', '.join(missing)}")
    for name, digest in manifest.files.items():
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            refuse(f"files.{name}: {digest[:80]!r} is not a sha256")


def check_score_range(
    where: str,
    at: str,
    found: tuple[float, float],
    expected: tuple[float, float],
    task: str = SUBTOTAL,
) -> None:
    """A score range must be finite, low < high, and the item's own (core/domain.py)."""
    low, high = found
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise InputError(f"{where}: {at} [{low:g}, {high:g}] is empty or reversed")
    if (low, high) != tuple(expected):
        raise InputError(
            f"{where}: {at} [{low:g}, {high:g}], but {task} scores lie in "
            f"[{expected[0]:g}, {expected[1]:g}]"
        )


def _check_calibration(refuse: Any, at: str, calibration: Calibration | None) -> None:
    if calibration is None:
        return
    bands = len(calibration.cuts) + 1
    if not len(calibration.lower) == len(calibration.upper) == len(calibration.n) == bands:
        refuse(f"{at}: {bands} bands by its cuts, but {len(calibration.lower)} offsets")
    if list(calibration.cuts) != sorted(calibration.cuts):
        refuse(f"{at}.cuts: not in increasing order")
    if any(low > high for low, high in zip(calibration.lower, calibration.upper)):
        refuse(f"{at}: a band's lower offset above its upper one")
    if not 0 < calibration.level < 1:
        refuse(f"{at}.level {calibration.level:g}: expected a level between 0 and 1")


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
    manifest = BundleManifest.read(str(path), text)
    check_consistent(str(path), manifest)
    return manifest
