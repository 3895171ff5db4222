"""Typed training configuration: one source of defaults, validated at load and at `--set`.

The dataclass defaults below are the single source of truth; `configs/default.yaml` spells
them out for users and a unit test keeps the two equal. Every section is a frozen dataclass,
so a config can be handed to Ray (`to_dict`) and rebuilt on a worker (`from_dict`) without
anything drifting.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from mmse_model.errors import ConfigError

TASKS = ("Q1", "Q2", "Q3", "Q4", "Q5")


@dataclass(frozen=True)
class ArchConfig:
    h1: int = 64
    h2: int = 32
    dropout: float = 0.25
    use_batch_norm: bool = False

    def validate(self, path: str) -> None:
        _check(self.h1 >= 1, f"{path}.h1", "an integer >= 1", self.h1)
        _check(self.h2 >= 1, f"{path}.h2", "an integer >= 1", self.h2)
        _check(0.0 <= self.dropout < 1.0, f"{path}.dropout", "a number in [0, 1)", self.dropout)


@dataclass(frozen=True)
class TrainingConfig:
    lr: float = 1e-3
    batch_size: int = 16
    epochs: int = 100
    folds: int = 5
    test_fraction: float = 0.2
    # A checkpoint is written when validation loss improves and every `checkpoint_every`
    # epochs (0: only on improvement), so a killed run resumes from recent state.
    checkpoint_every: int = 10

    def validate(self, path: str) -> None:
        _check(self.lr > 0, f"{path}.lr", "a number > 0", self.lr)
        _check(self.batch_size >= 2, f"{path}.batch_size", "an integer >= 2", self.batch_size)
        _check(self.epochs >= 1, f"{path}.epochs", "an integer >= 1", self.epochs)
        _check(self.folds >= 2, f"{path}.folds", "an integer >= 2", self.folds)
        _check(
            0.0 < self.test_fraction < 1.0,
            f"{path}.test_fraction",
            "a number in (0, 1)",
            self.test_fraction,
        )
        _check(
            self.checkpoint_every >= 0,
            f"{path}.checkpoint_every",
            "an integer >= 0",
            self.checkpoint_every,
        )


@dataclass(frozen=True)
class RegularizationConfig:
    weight_decay: float = 1e-4
    # 0 turns clipping off.
    grad_clip_norm: float = 1.0

    def validate(self, path: str) -> None:
        _check(self.weight_decay >= 0, f"{path}.weight_decay", "a number >= 0", self.weight_decay)
        _check(
            self.grad_clip_norm >= 0, f"{path}.grad_clip_norm", "a number >= 0", self.grad_clip_norm
        )


@dataclass(frozen=True)
class LRSchedulerConfig:
    enable: bool = True
    factor: float = 0.5
    patience: int = 8
    min_lr: float = 1e-6
    threshold: float = 1e-4
    cooldown: int = 2

    def validate(self, path: str) -> None:
        _check(0.0 < self.factor < 1.0, f"{path}.factor", "a number in (0, 1)", self.factor)
        _check(self.patience >= 0, f"{path}.patience", "an integer >= 0", self.patience)
        _check(self.min_lr >= 0, f"{path}.min_lr", "a number >= 0", self.min_lr)
        _check(self.threshold >= 0, f"{path}.threshold", "a number >= 0", self.threshold)
        _check(self.cooldown >= 0, f"{path}.cooldown", "an integer >= 0", self.cooldown)


@dataclass(frozen=True)
class EarlyStoppingConfig:
    enable: bool = True
    patience: int = 10
    min_delta: float = 0.001
    restore_best: bool = True

    def validate(self, path: str) -> None:
        _check(self.patience >= 1, f"{path}.patience", "an integer >= 1", self.patience)
        _check(self.min_delta >= 0, f"{path}.min_delta", "a number >= 0", self.min_delta)


@dataclass(frozen=True)
class RayConfig:
    """How a run is placed on Ray (`mmse train`, `mmse sweep`); `--no-ray` ignores it."""

    num_workers: int = 1
    use_gpu: bool = False
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 1.0  # only with use_gpu
    # Every ray.train.report waits for the controller's poll of this period (Ray's default
    # is 2 s, which costs more than an epoch of this model); set in the runtime env.
    health_check_interval_s: float = 0.1
    # Ray Train's per-run PreemptionWatcher actor (RAY_TRAIN_ENABLE_PREEMPTION_WATCHER): an
    # extra process per run, ~1 CPU-s to start. Turn on for clusters with preemptible
    # (spot) nodes, so a run drains before its node is taken away.
    preemption_watcher: bool = False
    max_failures: int = 1  # worker-group restarts from the latest checkpoint
    checkpoints_to_keep: int = 2  # best few by val/loss

    def validate(self, path: str) -> None:
        _check(self.num_workers >= 1, f"{path}.num_workers", "an integer >= 1", self.num_workers)
        _check(self.cpus_per_worker > 0, f"{path}.cpus_per_worker", "a number > 0", self.cpus_per_worker)
        _check(self.gpus_per_worker > 0, f"{path}.gpus_per_worker", "a number > 0", self.gpus_per_worker)
        _check(
            self.health_check_interval_s > 0,
            f"{path}.health_check_interval_s",
            "a number > 0",
            self.health_check_interval_s,
        )
        _check(self.max_failures >= -1, f"{path}.max_failures", "an integer >= -1", self.max_failures)
        _check(
            self.checkpoints_to_keep >= 1,
            f"{path}.checkpoints_to_keep",
            "an integer >= 1",
            self.checkpoints_to_keep,
        )


def _default_score_ranges() -> dict[str, tuple[float, float]]:
    # MMSE items each VR task stands for (DESIGN.md section 3); the five sum to 0-21.
    return {"Q1": (0.0, 5.0), "Q2": (0.0, 5.0), "Q3": (0.0, 3.0), "Q4": (0.0, 5.0), "Q5": (0.0, 3.0)}


@dataclass(frozen=True)
class Config:
    arch: ArchConfig = field(default_factory=ArchConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    regularization: RegularizationConfig = field(default_factory=RegularizationConfig)
    lr_scheduler: LRSchedulerConfig = field(default_factory=LRSchedulerConfig)
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    ray: RayConfig = field(default_factory=RayConfig)
    seed: int = 42
    score_ranges: dict[str, tuple[float, float]] = field(default_factory=_default_score_ranges)

    def validate(self, path: str = "") -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if dataclasses.is_dataclass(value):
                value.validate(_join(path, f.name))
        ranges_path = _join(path, "score_ranges")
        for task, (low, high) in self.score_ranges.items():
            _check(task in TASKS, f"{ranges_path}.{task}", f"a task in {TASKS}", task)
            _check(low < high, f"{ranges_path}.{task}", "[low, high] with low < high", [low, high])
        missing = [t for t in TASKS if t not in self.score_ranges]
        _check(not missing, ranges_path, f"a range for every task {TASKS}", f"missing {missing}")

    def score_range(self, task: str) -> tuple[float, float]:
        if task not in self.score_ranges:
            raise ConfigError(f"task {task!r}: expected one of {TASKS}")
        return self.score_ranges[task]

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["score_ranges"] = {k: list(v) for k, v in self.score_ranges.items()}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Config":
        config = _build(cls, data, "")
        config.validate()
        return config

    def with_overrides(self, overrides: list[str]) -> "Config":
        """Apply `key.path=value` strings (YAML-parsed values) and validate the result."""
        values = {}
        for item in overrides:
            key, sep, raw = item.partition("=")
            if not sep or not key:
                raise ConfigError(f"--set {item!r}: expected key.path=value")
            values[key] = yaml.safe_load(raw) if raw.strip() else raw
        return self.with_values(values)

    def with_values(self, values: Mapping[str, Any]) -> "Config":
        """Set dotted keys (`training.lr`) to already-parsed values and validate the result."""
        data = self.to_dict()
        for key, value in values.items():
            node = data
            parts = key.split(".")
            for i, part in enumerate(parts[:-1]):
                if not isinstance(node.get(part), dict):
                    raise ConfigError(f"{'.'.join(parts[: i + 1])}: unknown key")
                node = node[part]
            if parts[-1] not in node:
                raise ConfigError(f"{key}: unknown key")
            node[parts[-1]] = value
        return Config.from_dict(data)


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Load a YAML config (defaults where the file is silent) and apply `--set` overrides."""
    data: Any = {}
    if path is not None:
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read config ({exc.strerror})") from None
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({_one_line(exc)})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level")
    try:
        config = Config.from_dict(data)
        return config.with_overrides(overrides or [])
    except ConfigError as exc:
        if path is None:
            raise
        raise ConfigError(f"{path}: {exc}") from None


# --- building and checking -----------------------------------------------------------------


def _build(cls: type, data: Any, path: str) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path or 'config'}: expected a mapping, got {_show(data)}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in names:
            raise ConfigError(f"{_join(path, str(key))}: unknown key (expected one of {sorted(names)})")
    kwargs = {}
    for name in names & set(data):
        kwargs[name] = _coerce(hints[name], data[name], _join(path, name))
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, path: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, path)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {_show(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {_show(value)}")
        return value
    if hint is float:
        if isinstance(value, str):
            # YAML 1.1 reads `1e-3` (no dot) as a string; accept what is plainly a number.
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {_show(value)}")
        if not math.isfinite(value):
            raise ConfigError(f"{path}: expected a finite number, got {_show(value)}")
        return float(value)
    origin = typing.get_origin(hint)
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: expected a mapping, got {_show(value)}")
        _, value_hint = typing.get_args(hint)
        return {str(k): _coerce(value_hint, v, f"{path}.{k}") for k, v in value.items()}
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ConfigError(f"{path}: expected a list of {len(args)} numbers, got {_show(value)}")
        return tuple(_coerce(a, v, f"{path}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if origin in (typing.Union, types.UnionType):  # pragma: no cover - no optional keys yet
        raise NotImplementedError(path)
    raise NotImplementedError(f"{path}: unsupported type {hint}")


def _check(ok: bool, path: str, expected: str, got: Any) -> None:
    if not ok:
        raise ConfigError(f"{path}: expected {expected}, got {_show(got)}")


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _show(value: Any) -> str:
    return repr(value) if not isinstance(value, str) else f"{value!r} (a string)"


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())
