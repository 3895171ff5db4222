"""The sweep's own config (`configs/sweep.yaml`): what to sweep, how, and where results go.

Ray-free: loaded and checked here (unknown keys and wrong types are `ConfigError`s that
name the key), turned into Tune objects in `ray_jobs/sweep.py`. The training config of
every trial is `config` (a partial mapping of `mmse_model.config.Config`, validated) with
one sample of `search_space` applied on top; search-space keys are dotted config paths.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from mmse_model.config import Config, TASKS
from mmse_model.data import SIGNATURE_RE
from mmse_model.errors import ConfigError, DataError

DISTRIBUTIONS = ("choice", "uniform", "loguniform", "randint")


@dataclass(frozen=True)
class AshaConfig:
    max_t: int = 0  # epochs; 0: the config's training.epochs
    grace_period: int = 5
    reduction_factor: float = 3.0
    brackets: int = 1


@dataclass(frozen=True)
class ResourcesConfig:
    # The Tune trial function only builds and waits on its TorchTrainer; its workers take
    # the config's `ray.cpus_per_worker` (and GPUs) themselves.
    trial_cpus: float = 0.05
    max_concurrent_trials: int = 0  # 0: from the cluster's resources


@dataclass(frozen=True)
class WatchdogConfig:
    # How often the driver looks for placement groups left by ended Train runs.
    interval_s: float = 5.0
    # No trial reported for this long while trials wait for resources: stop with an error
    # (resumable). Raise it on autoscaling clusters where a node can take minutes to come up.
    stall_timeout_s: float = 900.0


@dataclass(frozen=True)
class SweepConfig:
    name: str = "mmse_sweep"
    data_root: str = "data"
    storage: str = "runs"  # local path, NFS path or s3://bucket/prefix?endpoint_override=...
    signatures: tuple[str, ...] = ()  # empty: every signature folder under data_root
    tasks: tuple[str, ...] = ()  # empty: every task file found in all of them
    samples: int = 4  # hyper-parameter samples per (signature, task)
    search_seed: int = 0
    search_space: dict[str, dict[str, list]] = field(default_factory=dict)
    asha: AshaConfig = field(default_factory=AshaConfig)
    resources: ResourcesConfig = field(default_factory=ResourcesConfig)
    watchdog: WatchdogConfig = field(default_factory=WatchdogConfig)
    config: dict[str, Any] = field(default_factory=dict)  # partial training Config

    def base_config(self) -> Config:
        return Config.from_dict(self.config)

    def max_t(self) -> int:
        return self.asha.max_t or self.base_config().training.epochs

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_sweep_config(
    path: str | Path, data_root: str | None = None, storage: str | None = None
) -> SweepConfig:
    """Load and check a sweep YAML; `data_root`/`storage` override the file's values."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read sweep config ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from None
    try:
        sweep = sweep_config_from_dict(raw)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    changes = {k: v for k, v in (("data_root", data_root), ("storage", storage)) if v is not None}
    return dataclasses.replace(sweep, **changes)


def sweep_config_from_dict(raw: Any) -> SweepConfig:
    if not isinstance(raw, Mapping):
        raise ConfigError("expected a mapping at the top level")
    _only(raw, SweepConfig, "")
    kwargs: dict[str, Any] = {}
    for key in ("name", "data_root", "storage"):
        if key in raw:
            kwargs[key] = _string(raw[key], key)
    for key in ("signatures", "tasks"):
        if key in raw:
            value = raw[key] or []
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{key}: expected a list of names, got {value!r}")
            kwargs[key] = tuple(value)
    for key in ("samples", "search_seed"):
        if key in raw:
            kwargs[key] = _integer(raw[key], key)
    if "asha" in raw:
        kwargs["asha"] = _section(AshaConfig, raw["asha"], "asha")
    if "resources" in raw:
        kwargs["resources"] = _section(ResourcesConfig, raw["resources"], "resources")
    if "watchdog" in raw:
        kwargs["watchdog"] = _section(WatchdogConfig, raw["watchdog"], "watchdog")
    if "config" in raw:
        if not isinstance(raw["config"], Mapping):
            raise ConfigError(f"config: expected a mapping, got {raw['config']!r}")
        kwargs["config"] = dict(raw["config"])
    if "search_space" in raw:
        if not isinstance(raw["search_space"], Mapping):
            raise ConfigError(f"search_space: expected a mapping, got {raw['search_space']!r}")
        kwargs["search_space"] = {str(k): dict(v) if isinstance(v, Mapping) else v
                                  for k, v in raw["search_space"].items()}
    sweep = SweepConfig(**kwargs)
    validate(sweep)
    return sweep


def validate(sweep: SweepConfig) -> None:
    try:
        base = sweep.base_config()
    except ConfigError as exc:
        raise ConfigError(f"config.{exc}") from None
    for sig in sweep.signatures:
        if not SIGNATURE_RE.match(sig):
            raise ConfigError(f"signatures: {sig!r} is not m<int>_tau<int>_eps<float>_lmin<int>")
    for task in sweep.tasks:
        if task not in TASKS:
            raise ConfigError(f"tasks: {task!r} is not one of {TASKS}")
    if sweep.samples < 1:
        raise ConfigError(f"samples: expected an integer >= 1, got {sweep.samples}")
    asha = sweep.asha
    max_t = sweep.max_t()
    if not 1 <= asha.grace_period <= max_t:
        raise ConfigError(f"asha.grace_period: expected 1..max_t ({max_t}), got {asha.grace_period}")
    if asha.max_t < 0 or asha.reduction_factor <= 1 or asha.brackets < 1:
        raise ConfigError("asha: expected max_t >= 0, reduction_factor > 1, brackets >= 1")
    if not 0 < sweep.resources.trial_cpus <= 1:
        raise ConfigError(f"resources.trial_cpus: expected a number in (0, 1], got {sweep.resources.trial_cpus}")
    if sweep.watchdog.interval_s <= 0 or sweep.watchdog.stall_timeout_s <= 0:
        raise ConfigError("watchdog: expected interval_s > 0 and stall_timeout_s > 0")
    if sweep.resources.max_concurrent_trials < 0:
        raise ConfigError("resources.max_concurrent_trials: expected an integer >= 0")
    for key, spec in sweep.search_space.items():
        _check_dimension(base, key, spec)


def _check_dimension(base: Config, key: str, spec: Any) -> None:
    where = f"search_space.{key}"
    if not isinstance(spec, Mapping) or len(spec) != 1 or next(iter(spec)) not in DISTRIBUTIONS:
        raise ConfigError(f"{where}: expected one of {{{', '.join(DISTRIBUTIONS)}: [...]}}, got {spec!r}")
    kind, args = next(iter(spec.items()))
    if not isinstance(args, list) or not args:
        raise ConfigError(f"{where}.{kind}: expected a non-empty list, got {args!r}")
    if kind != "choice":
        if len(args) != 2 or not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in args):
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
    # Tune hands numpy scalars; the config's type checks want Python ones.
    return base.with_values({k: v.item() if hasattr(v, "item") else v for k, v in sample.items()})


def discover(data_root: str | Path, signatures: tuple[str, ...], tasks: tuple[str, ...]):
    """(signatures, tasks) to sweep: the named ones, or every signature folder and every task
    whose file exists in all of them. A named pair without a file is a `DataError`."""
    root = Path(data_root)
    if not root.is_dir():
        raise DataError(f"{root}: no such data root")
    sigs = list(signatures) or sorted(
        p.name for p in root.iterdir() if p.is_dir() and SIGNATURE_RE.match(p.name)
    )
    if not sigs:
        raise DataError(f"{root}: no signature folders (m<int>_tau<int>_eps<float>_lmin<int>)")
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


# --- helpers --------------------------------------------------------------------------------


def _only(raw: Mapping, cls: type, path: str) -> None:
    names = {f.name for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in names:
            raise ConfigError(f"{path}{key}: unknown key (expected one of {sorted(names)})")


def _section(cls: type, raw: Any, path: str) -> Any:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path}: expected a mapping, got {raw!r}")
    _only(raw, cls, f"{path}.")
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in raw:
            value = raw[f.name]
            kwargs[f.name] = _integer(value, f"{path}.{f.name}") if f.type in (int, "int") else _number(
                value, f"{path}.{f.name}"
            )
    return cls(**kwargs)


def _string(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{path}: expected a non-empty string, got {value!r}")
    return value


def _integer(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{path}: expected an integer, got {value!r}")
    return value


def _number(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{path}: expected a number, got {value!r}")
    return float(value)
