"""The training configuration: one typed schema with one source of defaults.

The defaults below are the single source of truth; `configs/default.yaml` spells them out
for users and a unit test keeps the two equal. A config crosses to Ray workers as a plain
dict (`to_dict`) and is rebuilt there (`from_dict`), checked again on the way in.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import AfterValidator, BeforeValidator, Field, field_validator

from mmse_model.core.domain import SCORE_RANGES, TASKS, check_task
from mmse_model.core.errors import ConfigError
from mmse_model.core.schema import Names, Number, Schema


class ArchConfig(Schema):
    hidden_layers: int = Field(2, ge=0, le=2)  # 0: a linear model on the standardised features
    h1: int = Field(64, ge=1)
    h2: int = Field(32, ge=1)
    dropout: Number = Field(0.25, ge=0.0, lt=1.0)
    use_batch_norm: bool = False


class TrainingConfig(Schema):
    lr: Number = Field(1e-3, gt=0.0)
    batch_size: int = Field(16, ge=2)
    epochs: int = Field(100, ge=1)
    # A checkpoint is also written every `checkpoint_every` epochs (0: only when one is due
    # for another reason), so a killed run resumes from recent state.
    checkpoint_every: int = Field(10, ge=0)


class SplitConfig(Schema):
    """Which subjects are held out for testing and how the rest are dealt into folds.

    Every trial of a sweep must see the same split, so none of these may be searched.
    """

    seed: int = 0
    folds: int = Field(5, ge=2)
    # Subjects held out from every fold: 0 holds none out (the sweep configs: the nested
    # cross-validation estimates, and the shipped models learn from every subject).
    test_fraction: Number = Field(0.2, ge=0.0, lt=1.0)
    # Set by the nested cross-validation, never by hand: the run's test subjects are outer
    # fold `outer_fold` of a partition of every subject into `outer_folds` folds (stratified
    # on the five-task total, shuffled by `seed`), and `folds` inner folds are dealt from the
    # rest; test_fraction is then unused. 0: no outer fold.
    outer_folds: int = Field(0, ge=0)
    outer_fold: int = Field(0, ge=0)
    # Set by the transfer estimate, never by hand: the run's test subjects are these (one
    # site's), and `folds` inner folds are dealt from the rest. Empty: none named.
    test_subjects: Names = ()


class RegularizationConfig(Schema):
    # Decoupled (AdamW, the default: decay shrinks weights by lr * weight_decay per step) or
    # Adam's L2 penalty added to the gradient (the original design's choice, far weaker under Adam).
    weight_decay: Number = Field(1e-4, ge=0.0)
    decoupled_weight_decay: bool = True
    grad_clip_norm: Number = Field(1.0, ge=0.0)  # per fold-model; 0 turns clipping off


class LRSchedulerConfig(Schema):
    enable: bool = True
    factor: Number = Field(0.5, gt=0.0, lt=1.0)
    patience: int = Field(8, ge=0)
    min_lr: Number = Field(1e-6, ge=0.0)
    threshold: Number = Field(1e-4, ge=0.0)
    cooldown: int = Field(2, ge=0)


class EarlyStoppingConfig(Schema):
    enable: bool = True
    patience: int = Field(10, ge=1)
    min_delta: Number = Field(0.001, ge=0.0)
    restore_best: bool = True


# Ray's own resources, each set by its own key (cpus_per_worker, use_gpu, trial_cpus); Tune
# reads "custom_resources" in a resource dict as a nested one.
RAY_OWN_RESOURCES = (
    "CPU",
    "GPU",
    "TPU",
    "memory",
    "object_store_memory",
    "cpu",
    "gpu",
    "custom_resources",
)


def _custom_resources(resources: dict[str, float]) -> dict[str, float]:
    for name in resources:
        if name in RAY_OWN_RESOURCES or not name.strip():
            raise ValueError(
                f"{name!r} is not a custom resource name (CPUs and GPUs have keys of their own)"
            )
    return resources


def _label_selector(selector: dict[str, str]) -> dict[str, str]:
    for key, value in selector.items():
        if not key.strip() or not value.strip():
            raise ValueError("expected non-empty labels and values")
    return selector


# {name: amount} of custom resources a node declares (`ray start --resources`, a node type's
# `resources:` in a cluster config); amounts > 0.
CustomResources = Annotated[
    dict[str, Annotated[Number, Field(gt=0.0)]], AfterValidator(_custom_resources)
]
# {label: value} a node must carry (`ray start --labels`, a node type's `labels:`); Ray's
# selector syntax: "value", "!value", "in(a,b)", "!in(a,b)".
LabelSelector = Annotated[dict[str, str], AfterValidator(_label_selector)]


class RayConfig(Schema):
    """How a run is placed on Ray (`mmse train`, `mmse sweep`); `--no-ray` ignores it."""

    # 0: no Train worker group; the run trains in the process that builds the trainer
    # (a sweep's Tune trial actor, or the `mmse train` process), which then reserves the one
    # worker's resources below itself (TorchTrainer's local mode). 1: one Train worker. 2 or
    # more: DDP over that many workers.
    num_workers: int = Field(1, ge=0)
    use_gpu: bool = False
    cpus_per_worker: Number = Field(1.0, gt=0.0)
    gpus_per_worker: Number = Field(1.0, gt=0.0)  # only with use_gpu
    # Where Train workers may run, beyond CPUs and GPUs: custom resources each worker
    # reserves (only nodes that declare them qualify) and node labels a worker's node must
    # carry. Empty: any node with the CPUs (and GPUs). See cluster.yaml.
    worker_resources: CustomResources = Field(default_factory=dict)
    worker_label_selector: LabelSelector = Field(default_factory=dict)
    # Every ray.train.report waits for the controller's poll of this period (Ray's default
    # is 2 s, which costs more than an epoch of this model).
    health_check_interval_s: Number = Field(0.1, gt=0.0)
    # Ray Train's per-run PreemptionWatcher actor: one more process per run (~1 CPU-s).
    # Turn on for clusters with preemptible (spot) nodes.
    preemption_watcher: bool = False
    # Restarts after a failure, resuming from the latest checkpoint (in a sweep Tune
    # restarts the trial; see ray_jobs/release.py).
    max_failures: int = Field(1, ge=-1)
    checkpoints_to_keep: int = Field(3, ge=1)  # the most recent few
    # How long Train waits for a worker group's resources before it gives up on that start
    # and tries again (RAY_TRAIN_WORKER_GROUP_START_TIMEOUT_S; Ray's default is 60 s). Each
    # retry makes a new placement group; on a busy machine or while the autoscaler adds a
    # node, 60 s is short.
    worker_group_start_timeout_s: Number = Field(600.0, gt=0.0)


# [low, high] in YAML and JSON; a tuple once checked.
ScoreRange = Annotated[
    tuple[Number, Number], BeforeValidator(lambda v: tuple(v) if isinstance(v, list) else v)
]


class Config(Schema):
    arch: ArchConfig = ArchConfig()
    training: TrainingConfig = TrainingConfig()
    split: SplitConfig = SplitConfig()
    regularization: RegularizationConfig = RegularizationConfig()
    lr_scheduler: LRSchedulerConfig = LRSchedulerConfig()
    early_stopping: EarlyStoppingConfig = EarlyStoppingConfig()
    ray: RayConfig = RayConfig()
    seed: int = 42  # weight initialisation and dropout; the split has its own (split.seed)
    score_ranges: dict[str, ScoreRange] = Field(default_factory=lambda: dict(SCORE_RANGES))

    @field_validator("score_ranges")
    @classmethod
    def _every_task_once(
        cls, ranges: dict[str, tuple[float, float]]
    ) -> dict[str, tuple[float, float]]:
        for task, (low, high) in ranges.items():
            if task not in TASKS:
                raise ValueError(f"unknown task {task!r} (expected {', '.join(TASKS)})")
            if not low < high:
                raise ValueError(f"{task}: expected [low, high] with low < high")
        missing = [t for t in TASKS if t not in ranges]
        if missing:
            raise ValueError(f"missing a range for {', '.join(missing)}")
        return ranges

    def score_range(self, task: str) -> tuple[float, float]:
        return self.score_ranges[check_task(task)]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Config:
        return cls.parse(data)

    def with_overrides(self, overrides: list[str]) -> Config:
        """Apply `key.path=value` strings (values parsed as YAML) and check the result."""
        values = {}
        for item in overrides:
            key, sep, raw = item.partition("=")
            if not sep or not key:
                raise ConfigError(f"--set {item!r}: expected key.path=value")
            values[key] = yaml.safe_load(raw) if raw.strip() else raw
        return self.with_values(values)

    def with_values(self, values: Mapping[str, Any]) -> Config:
        """Set dotted keys (`training.lr`) to already-parsed values and check the result."""
        data = self.to_dict()
        for key, value in values.items():
            node, parts = data, key.split(".")
            for i, part in enumerate(parts[:-1]):
                if not isinstance(node.get(part), dict):
                    raise ConfigError(f"{'.'.join(parts[: i + 1])}: unknown key")
                node = node[part]
            if parts[-1] not in node:
                raise ConfigError(f"{key}: unknown key")
            node[parts[-1]] = value.item() if hasattr(value, "item") else value  # numpy scalars
        return Config.parse(data)


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """A YAML config (defaults where the file is silent) with `--set` overrides applied."""
    data = read_yaml(path) if path is not None else {}
    try:
        return Config.parse(data).with_overrides(overrides or [])
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}" if path is not None else str(exc)) from None


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping from a file; every problem is a one-line ConfigError naming it."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data
