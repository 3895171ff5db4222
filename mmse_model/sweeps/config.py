"""The sweep's own config (`configs/sweep.yaml`): what to sweep, how, and where results go.

A typed schema like the training config (mmse_model/core/schema.py), turned into Tune objects
by `ray_jobs/sweep.py`. Every trial's training config is `config` (a partial training
config) with one sample of `search_space` applied on top; search-space keys are dotted
paths of the training config.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field

from mmse_model.core.config import Config, CustomResources, read_yaml
from mmse_model.core.domain import BASELINES, TASKS, is_signature, parse_signature
from mmse_model.core.errors import ConfigError, DataError, InputError
from mmse_model.core.schema import Names, Number, Schema
from mmse_model.core.storage import check_location

DISTRIBUTIONS = ("choice", "uniform", "loguniform", "randint")
# Every trial must be scored on the same held-out subjects and folds: these are fixed.
UNSEARCHABLE = ("split.seed", "split.folds", "split.test_fraction")


class AshaConfig(Schema):
    max_t: int = Field(0, ge=0)  # epochs; 0: the config's training.epochs
    grace_period: int = Field(5, ge=1)
    reduction_factor: Number = Field(3.0, gt=1.0)
    brackets: int = Field(1, ge=1)


class ResourcesConfig(Schema):
    # The Tune trial function only builds and waits on its TorchTrainer; its workers take
    # the config's `ray.cpus_per_worker` (and GPUs) themselves.
    trial_cpus: Number = Field(0.05, ge=0.0, le=1.0)
    # Custom resources each trial reserves besides trial_cpus: only nodes that declare them
    # host trials (cluster.yaml gives the head `mmse_trial_host`). With them trial_cpus may be 0.
    trial_resources: CustomResources = Field(default_factory=dict)
    max_concurrent_trials: int = Field(0, ge=0)  # 0: from the cluster's resources


class WatchdogConfig(Schema):
    # How often the driver looks for placement groups left by ended Train runs.
    interval_s: Number = Field(5.0, gt=0.0)
    # No trial reported for this long while trials wait for resources (and the autoscaler
    # launches no node): stop with an error (resumable).
    stall_timeout_s: Number = Field(900.0, gt=0.0)
    # A running trial that reported nothing for this long is killed and retried from its
    # checkpoint (a hang seen once under load); 0: off. Keep it well above a trial's start-up
    # plus its longest epoch on a busy machine.
    silent_trial_timeout_s: Number = Field(1800.0, ge=0.0)


class EvaluationConfig(Schema):
    # The estimate of the procedure: repeated nested cross-validation over every subject,
    # `outer_repeats` repeats (0: off) of a partition into `outer_folds` folds (at least 5).
    # In each outer fold the selection runs again on the other folds' subjects alone, a
    # reduced search of `nested_samples` samples of search_space x every signature (one
    # packed training run per sample and task, `config.split.folds` inner folds), and the
    # chosen network and every baseline predict the outer fold's subjects (docs/design.md,
    # "Results and evaluation").
    outer_repeats: int = Field(0, ge=0)
    outer_folds: int = Field(5, ge=5)
    nested_samples: int = Field(4, ge=1)
    # Successive halving in that search at the rungs of the sweep's ASHA (its grace period
    # and reduction factor): the best 1/reduction_factor of the (sample, signature)
    # candidates go on at each rung, as the sweep's own trials do. false: every candidate
    # trains to its end (early stopping or the epoch limit).
    nested_halving: bool = True
    # A labels.csv with `subject_id` and `group` columns (the synthetic cohort writes one):
    # the summary then gives the AUC of the predicted subtotal for the dementia group.
    groups_file: str = ""
    # A column of that file (`site`, `headset`): the transfer estimate holds each of its
    # values out in turn (leave-one-site-out), the selection run again on the others, and
    # reports it apart from the estimate (docs/design.md, "The transfer estimate"). "": none.
    transfer_by: str = Field("", pattern=r"^([A-Za-z_][A-Za-z0-9_]*)?$")
    bootstrap_seed: int = 0
    # Nominal level of the per-subject prediction intervals (summary, bundle, predict): with
    # the nested cross-validation, calibrated on its outer folds by band of the prediction;
    # without it, CV+ on the fold-models' out-of-fold residuals.
    interval_level: float = Field(0.9, gt=0.5, lt=1.0)
    # `mmse predict --bundle` also gives each item's scores inside its interval (`Q1_set`).
    integer_sets: bool = True
    # The baseline each task's winner is judged against, named before anything runs: the
    # verdicts come from its paired difference only (Holm-adjusted across the tasks); the
    # other baselines are secondary.
    primary_comparator: str = "ridge"


class SweepConfig(Schema):
    name: str = Field("mmse_sweep", min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    data_root: str = Field("data", min_length=1)
    storage: str = Field(
        "runs", min_length=1
    )  # path, NFS path or s3://bucket/prefix (mmse_model/core/storage.py)
    signatures: Names = ()  # empty: every signature folder under data_root
    tasks: Names = ()  # empty: every task file found in all of them
    samples: int = Field(4, ge=1)  # hyper-parameter samples per task (and signature group)
    # Signatures trained together in one trial (one batched model): 0 all of a task's, N in
    # groups of N, 1 one per trial. More, smaller trials keep a large cluster busy.
    signatures_per_trial: int = Field(0, ge=0)
    search_seed: int = 0
    search_space: dict[str, dict[str, list]] = Field(default_factory=dict)
    asha: AshaConfig = AshaConfig()
    resources: ResourcesConfig = ResourcesConfig()
    watchdog: WatchdogConfig = WatchdogConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    config: dict[str, Any] = Field(default_factory=dict)  # partial training config

    @classmethod
    def parse(cls, data: Any, where: str = "") -> SweepConfig:
        sweep = super().parse(data, where)
        try:
            sweep.check()
        except ConfigError as exc:
            raise ConfigError(f"{where}{exc}") from None
        return sweep

    def check(self) -> None:
        """What one field cannot say alone: names, the base config, ASHA, the search space."""
        for sig in self.signatures:
            if not is_signature(sig):
                raise ConfigError(
                    f"signatures: {sig!r} is not m<int>_tau<int>_eps<decimal>_lmin<int>"
                )
        for task in self.tasks:
            if task not in TASKS:
                raise ConfigError(f"tasks: {task!r} is not one of {', '.join(TASKS)}")
        check_location(self.storage, "storage")
        if self.evaluation.primary_comparator not in BASELINES:
            raise ConfigError(
                f"evaluation.primary_comparator: expected one of {', '.join(BASELINES)}, "
                f"got {self.evaluation.primary_comparator!r}"
            )
        base = self.base_config()
        if not self.evaluation.outer_repeats and not base.split.test_fraction:
            raise ConfigError(
                "evaluation.outer_repeats: 0 with config.split.test_fraction 0 leaves nothing to "
                "estimate the models' performance on; set outer_repeats (the nested "
                "cross-validation) or hold out test subjects"
            )
        if base.split.outer_folds:
            raise ConfigError(
                "config.split.outer_folds: set by the nested cross-validation, not by a sweep "
                "config (use evaluation.outer_folds)"
            )
        if base.split.test_subjects:
            raise ConfigError(
                "config.split.test_subjects: set by the transfer estimate, not by a sweep "
                "config (use evaluation.transfer_by)"
            )
        if self.evaluation.transfer_by and not (
            self.evaluation.groups_file and self.evaluation.outer_repeats
        ):
            raise ConfigError(
                f"evaluation.transfer_by: {self.evaluation.transfer_by!r} names a column of the "
                "labels file: it needs evaluation.groups_file and the nested cross-validation "
                "(evaluation.outer_repeats >= 1)"
            )
        # A trial that trains itself (ray.num_workers 0) reserves its worker's CPUs.
        if (
            not self.resources.trial_cpus
            and not self.resources.trial_resources
            and base.ray.num_workers
        ):
            raise ConfigError(
                "resources.trial_cpus: 0 needs resources.trial_resources (a trial must reserve "
                "something to be placed)"
            )
        if self.asha.grace_period > self.max_t():
            raise ConfigError(
                f"asha.grace_period: expected 1..max_t ({self.max_t()}), "
                f"got {self.asha.grace_period}"
            )
        for key, spec in self.search_space.items():
            _check_dimension(base, key, spec)

    def base_config(self) -> Config:
        return Config.parse(self.config, "config.")

    def max_t(self) -> int:
        return self.asha.max_t or self.base_config().training.epochs


def load_sweep_config(
    path: str | Path, data_root: str | None = None, storage: str | None = None
) -> SweepConfig:
    """Load and check a sweep YAML; `data_root`/`storage` override the file's values."""
    sweep = SweepConfig.parse(read_yaml(path), f"{path}: ")
    changes = {k: v for k, v in (("data_root", data_root), ("storage", storage)) if v is not None}
    for key, flag in (("data_root", "--data"), ("storage", "--storage")):
        if key in changes and not changes[key].strip():
            raise ConfigError(f"{flag}: expected a path or URI, got an empty string")
    if storage is not None:
        check_location(storage, "--storage")
    return sweep.model_copy(update=changes)  # both checked above; model_copy does not validate


def _check_dimension(base: Config, key: str, spec: dict[str, list]) -> None:
    where = f"search_space.{key}"
    if key in UNSEARCHABLE:
        raise ConfigError(
            f"{where}: the split is fixed for a whole sweep (every trial is scored on the same "
            "subjects); set it under config.split instead"
        )
    if key.startswith("ray."):
        # Tune reserves a trial's resources before the trial sees its sample.
        raise ConfigError(
            f"{where}: placement is fixed for a whole sweep (every trial reserves the same "
            "resources); set it under config.ray instead"
        )
    if len(spec) != 1 or next(iter(spec)) not in DISTRIBUTIONS:
        raise ConfigError(
            f"{where}: expected one of {{{', '.join(DISTRIBUTIONS)}: [...]}}, got {spec!r}"
        )
    kind, args = next(iter(spec.items()))
    if not args:
        raise ConfigError(f"{where}.{kind}: expected a non-empty list")
    if kind != "choice":
        if len(args) != 2 or not all(
            isinstance(a, (int, float)) and not isinstance(a, bool) for a in args
        ):
            raise ConfigError(f"{where}.{kind}: expected [low, high], got {args!r}")
        if not args[0] < args[1] or (kind == "loguniform" and args[0] <= 0):
            raise ConfigError(f"{where}.{kind}: expected 0 < low < high, got {args!r}")
    # Every value the dimension can take must make a valid config (type and range).
    values = args if kind == "choice" else [args[0], args[1] - (1 if kind == "randint" else 0)]
    for value in values:
        try:
            apply_sample(base, {key: value})
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None


def apply_sample(base: Config, sample: Mapping[str, Any]) -> Config:
    """The base config with one search-space sample (dotted key -> value) applied."""
    return base.with_values(sample)


def _signature_folder(folder: Path) -> bool:
    """Is this folder a signature's? One that looks like it but is misspelt is an error,
    not something to skip in silence."""
    if not (folder.name.startswith("m") and "_tau" in folder.name and "_eps" in folder.name):
        return False
    try:
        parse_signature(folder.name)
    except InputError as exc:
        raise DataError(f"{folder}: {exc}") from None
    return True


def discover(data_root: str | Path, signatures: tuple[str, ...], tasks: tuple[str, ...]):
    """(signatures, tasks) to sweep: the named ones, or every signature folder and every task
    whose file exists in all of them. A named pair without a file is a `DataError`."""
    root = Path(data_root)
    if not root.is_dir():
        raise DataError(f"{root}: no such data root")
    sigs = list(signatures) or sorted(
        p.name for p in root.iterdir() if p.is_dir() and _signature_folder(p)
    )
    if not sigs:
        raise DataError(f"{root}: no signature folders (m<int>_tau<int>_eps<decimal>_lmin<int>)")
    if tasks:
        for sig in sigs:
            for task in tasks:
                if not (root / sig / f"{task}.npz").is_file():
                    raise DataError(f"{root / sig / (task + '.npz')}: no such dataset file")
        return tuple(sigs), tuple(tasks)
    found = [t for t in TASKS if all((root / s / f"{t}.npz").is_file() for s in sigs)]
    if not found:
        raise DataError(f"{root}: no task file (Q1..Q5.npz) present in every signature folder")
    return tuple(sigs), tuple(found)
