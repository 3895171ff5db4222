"""One Ray Train run: the core's per-worker loop inside a `TorchTrainer`.

The driver only builds the trainer; `train_loop_per_worker` runs on every worker and calls
the core's `train_task` unchanged, with a reporter that is `ray.train.report`. The sweep
(`ray_jobs/sweep.py`) imports `build_trainer` and builds one trainer per trial.

    python ray_jobs/train.py --data DATA_ROOT --sig SIG --q Q1 --out OUT [--storage URI]
    ray job submit --working-dir . -- python ray_jobs/train.py ...   (absolute --storage)
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from mmse_model.callbacks import Callback
from mmse_model.config import Config, RayConfig
from mmse_model.errors import InputError
from mmse_model.metrics import MONITOR
from mmse_model.trainer import RunSpec

HEALTH_CHECK_ENV = "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"
PREEMPTION_WATCHER_ENV = "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER"
PLAIN_TRAINER_ENV = "MMSE_PLAIN_TORCH_TRAINER"  # "1": Ray's TorchTrainer as is (benchmark baseline)


def train_env(ray_cfg: RayConfig) -> dict[str, str]:
    """The RAY_TRAIN_* variables our config sets. Ray reads them in the process that builds
    the trainer (a Tune trial actor in a sweep) and passes them on to the controller."""
    return {
        HEALTH_CHECK_ENV: str(ray_cfg.health_check_interval_s),
        PREEMPTION_WATCHER_ENV: "1" if ray_cfg.preemption_watcher else "0",
    }


# --- on every worker ------------------------------------------------------------------------


class RayReporter:
    """The core's `Reporter` on Ray: every epoch's metrics, a checkpoint when one is due."""

    def report(self, metrics: dict[str, float], checkpoint_dir: Path | None) -> None:
        import ray.train

        checkpoint = ray.train.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        # A barrier: every rank calls it once per epoch; only rank 0 hands a checkpoint.
        ray.train.report(metrics, checkpoint=checkpoint)


class EpochTimer(Callback):
    """Adds `time/epoch_s` (the epoch's own compute, before it is reported) to the record;
    `benchmarks/sweep_overhead.py` uses it to split a trial's wall time."""

    def on_epoch_begin(self, epoch: int, **kwargs: Any) -> None:
        import time

        self.started = time.perf_counter()

    def on_epoch_end(self, epoch: int, record: dict[str, float], **kwargs: Any) -> None:
        import time

        record["time/epoch_s"] = time.perf_counter() - self.started


def train_loop_per_worker(loop_config: dict[str, Any]) -> None:
    import ray.train
    import ray.train.torch

    from mmse_model.checkpoint import load_checkpoint
    from mmse_model.trainer import train_task

    run = RunSpec.from_dict(loop_config["run"])
    context = ray.train.get_context()
    world_size, rank = context.get_world_size(), context.get_world_rank()
    resume = None
    checkpoint = ray.train.get_checkpoint()  # set when this run (same name) restarts
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            resume = load_checkpoint(directory)
    extra = [EpochTimer()] if loop_config.get("time_epochs") else []
    train_task(
        run,
        RayReporter(),
        extra_callbacks=extra,
        device=ray.train.torch.get_device(),
        rank=rank,
        world_size=world_size,
        wrap_model=ray.train.torch.prepare_model if world_size > 1 else None,
        resume=resume,
    )


# --- on the driver (or the Tune trial that stands in for it) --------------------------------


def scaling_config(ray_cfg: RayConfig):
    from ray.train import ScalingConfig

    resources = {"CPU": ray_cfg.cpus_per_worker}
    if ray_cfg.use_gpu:
        resources["GPU"] = ray_cfg.gpus_per_worker
    return ScalingConfig(
        num_workers=ray_cfg.num_workers, use_gpu=ray_cfg.use_gpu, resources_per_worker=resources
    )


@functools.lru_cache(maxsize=None)
def lean_trainer_class():
    """`TorchTrainer` without the per-run actors this project does not use.

    Ray Train V2 starts several actors for every run, each a new process that imports Ray
    (~1 CPU-s apiece; docs/sweep_overhead.md). `DatasetsCallback` starts a `DatasetManager`
    actor even when the trainer has no Ray Datasets (ours never has: the loop reads its own
    arrays); it is dropped then, matched by class, everything else kept. The
    `PlacementGroupCleanerCallback` (a detached actor per run) stays: when ASHA stops a
    trial its controller dies ungracefully, and without the cleaner the trial's workers'
    placement group stays reserved until the sweep's job ends (docs/sweep_overhead.md).
    """
    from ray.train.torch import TorchTrainer

    class LeanTorchTrainer(TorchTrainer):
        def _create_default_callbacks(self):
            callbacks = super()._create_default_callbacks()
            if os.environ.get(PLAIN_TRAINER_ENV) == "1":  # benchmarks/sweep_overhead.py's baseline
                return callbacks
            datasets_callback = _ray_class("ray.train.v2._internal.callbacks.datasets", "DatasetsCallback")
            if self.datasets or datasets_callback is None:
                return callbacks
            return [cb for cb in callbacks if not isinstance(cb, datasets_callback)]

    return LeanTorchTrainer


def _ray_class(module: str, name: str):
    """A Ray-internal class, or None when this Ray version moved it (then nothing is dropped)."""
    import importlib

    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None


def build_trainer(
    run: RunSpec, storage: str, name: str, callbacks: list | None = None, time_epochs: bool = False,
    max_failures: int | None = None,
):
    """A TorchTrainer for one run; `name` must be stable (not a timestamp) so a rebuilt
    trainer with the same storage and name resumes from the run's latest checkpoint.
    `max_failures` overrides the config's worker-group restarts (a sweep passes 0)."""
    from ray.train import CheckpointConfig, FailureConfig, RunConfig
    from ray.train import LoggingConfig

    ray_cfg = run.config.ray
    # RAY_TRAIN_* variables are read from the environment of the process that builds the
    # trainer (and passed on to its controller): set the configured values here too.
    os.environ.update(train_env(ray_cfg))
    return lean_trainer_class()(
        train_loop_per_worker,
        train_loop_config={"run": run.to_dict(), "time_epochs": time_epochs},
        scaling_config=scaling_config(ray_cfg),
        run_config=RunConfig(
            name=name,
            storage_path=storage,
            checkpoint_config=CheckpointConfig(
                num_to_keep=ray_cfg.checkpoints_to_keep,
                checkpoint_score_attribute=MONITOR,
                checkpoint_score_order="min",
            ),
            failure_config=FailureConfig(
                max_failures=ray_cfg.max_failures if max_failures is None else max_failures
            ),
            callbacks=callbacks or [],
            # Train logs every report at INFO; a sweep of many trials drowns in them.
            logging_config=LoggingConfig(log_level="WARNING"),
        ),
    )


def connect(address: str | None, config: Config) -> None:
    """Connect to a cluster (--address or RAY_ADDRESS) or start a local one sized to this
    machine; either way the runtime env carries our RAY_TRAIN_* settings to every process."""
    import ray

    if ray.is_initialized():
        return
    env = train_env(config.ray)
    address = address or os.environ.get("RAY_ADDRESS")
    # Worker output stays in the Ray session's logs (/tmp/ray/session_latest/logs): every
    # trial that ASHA stops would otherwise print its workers' dying tracebacks here, burying
    # the progress table. Trial errors still reach the driver through Tune's results.
    if address:
        ray.init(address=address, runtime_env={"env_vars": env}, log_to_driver=False)
    else:
        ray.init(num_cpus=os.cpu_count(), runtime_env={"env_vars": env}, log_to_driver=False)


def absolute_storage(storage: str) -> str:
    """Ray wants an absolute path or a URI (`s3://bucket/prefix?endpoint_override=...`)."""
    return storage if "://" in storage else str(Path(storage).expanduser().resolve())


def storage_join(storage: str, *parts: str) -> str:
    """Append path parts to a storage path or URI, before any `?query` of the URI."""
    base, sep, query = storage.partition("?")
    return "/".join([base.rstrip("/"), *parts]) + (sep + query if sep else "")


def best_checkpoint(result) -> Any:
    """The Train result's best checkpoint by MONITOR (the weights early stopping restores)."""
    ranked = [(m[MONITOR], c) for c, m in result.best_checkpoints if MONITOR in m]
    return min(ranked, key=lambda pair: pair[0])[1] if ranked else result.checkpoint


def run_one(
    data_root: str, signature: str, task: str, config: Config, out: Path,
    storage: str | None = None, address: str | None = None,
) -> dict[str, Any]:
    """Train one (signature, task) on Ray, score its best checkpoint on the test subjects."""
    from mmse_model.checkpoint import load_checkpoint
    from mmse_model.evaluate import evaluate_on_test
    from mmse_model.trainer import load_run_data

    run = RunSpec(str(Path(data_root).resolve()), signature, task, config)
    data, split = load_run_data(run)  # bad data is an InputError here, before Ray starts
    storage = absolute_storage(storage or str(out))
    connect(address, config)
    name = f"{signature}-{task}"  # stable, so a rerun with the same storage resumes
    import signal

    # In the main thread, fit() installs a SIGINT handler that holds the controller's
    # handle, which keeps that actor alive after the run; put the old handler back.
    sigint = signal.getsignal(signal.SIGINT)
    try:
        result = build_trainer(run, storage, name).fit()
    finally:
        signal.signal(signal.SIGINT, sigint)
    checkpoint = best_checkpoint(result)
    with checkpoint.as_directory() as directory:
        payload = load_checkpoint(directory)
    from mmse_model import checkpoint as ckpt

    ckpt.save_checkpoint(out / "model", payload)
    return {
        "signature": signature,
        "task": task,
        "score_range": list(config.score_range(task)),
        "best_val_loss": float(payload["metrics"][MONITOR]),
        "best_epoch": int(payload["metrics"]["epoch"]),
        "cv": {k: v for k, v in payload["metrics"].items() if k.startswith("val/")},
        "test": evaluate_on_test(payload, data, split),
        "test_subjects": list(split.test_subjects),
        "n_subjects": int(len(data.subjects)),
        "checkpoint_uri": _uri(storage, checkpoint.path),
        "config": config.to_dict(),
    }


def _uri(storage: str, fs_path: str) -> str:
    """A checkpoint's URI under `storage`, keeping the storage URI's query (an S3 endpoint)."""
    scheme = storage.split("://", 1)[0] if "://" in storage else ""
    if not scheme or scheme == "file":
        return fs_path
    _, sep, query = storage.partition("?")
    return f"{scheme}://{fs_path}" + (sep + query if sep else "")


# --- command line ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="One TorchTrainer run of the MMSE trainer")
    parser.add_argument("--data", required=True, help="data root holding <sig>/<Q>.npz")
    parser.add_argument("--sig", required=True)
    parser.add_argument("--q", required=True)
    parser.add_argument("--config", help="YAML config (default: built-in defaults)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", required=True, help="folder for result.json and model/")
    parser.add_argument("--storage", help="Ray storage path or URI (default: --out)")
    parser.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS or local)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    import json

    from mmse_model.config import load_config

    args = build_parser().parse_args(argv)
    try:
        config = load_config(args.config, args.set)
        out = Path(args.out)
        result = run_one(args.data, args.sig, args.q, config, out, args.storage, args.address)
    except InputError as exc:
        print(f"train: error: {exc}", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    (out / "result.json").write_text(json.dumps(result, indent=2, sort_keys=True))
    print(json.dumps({k: result[k] for k in ("signature", "task", "best_val_loss", "test")}, indent=2))
    return 0


if __name__ == "__main__":  # pragma: no cover
    # Run through the package module, so pickled classes and functions (Tune's saved
    # experiment state) name `ray_jobs.train`, not `__main__`, and a later resume finds them.
    from ray_jobs.train import main as _main

    sys.exit(_main())
