"""One Ray Train run: the core's per-worker loop inside a `TorchTrainer`.

The driver only builds the trainer; `train_loop_per_worker` runs on every worker and calls
the core's `train_run` unchanged, with a reporter that is `ray.train.report`. The sweep
(`ray_jobs/sweep.py`) builds one trainer per trial; `mmse train` uses `ray_runner`.

With `ray.num_workers: 0` the trainer runs in local mode: `fit()` calls the same function in
the process that built the trainer, with no controller, worker group or placement group.
Train's local mode keeps reports in memory only, so the function keeps its checkpoints in
storage itself and resumes from there: a sweep trial in its own folder, as a Train run
would (`TrialReporter`), `mmse train` its latest (`StorageReporter`).

    python ray_jobs/train.py --data DATA_ROOT --sig SIG --q Q1 --out OUT [--storage URI]
    ray job submit --working-dir . -- python ray_jobs/train.py ...   (absolute --storage)
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mmse_model.core.config import Config, RayConfig
from mmse_model.core.errors import CheckpointError
from mmse_model.core.storage import absolute, check_location, delete, exists, join, list_dir, uri_of
from mmse_model.training.checkpoint import CheckpointPayload, load_checkpoint
from mmse_model.training.loop import RunSpec
from mmse_model.training.runs import Runner
from ray_jobs import cluster, ray_internals


def train_env(ray_cfg: RayConfig) -> dict[str, str]:
    """The RAY_TRAIN_* variables our config sets. The process that builds the trainer (a
    Tune trial actor in a sweep) passes them to the Train controller's runtime env, and the
    controller reads them: the worker-group start timeout in its WorkerGroup."""
    return {
        ray_internals.HEALTH_CHECK_ENV: str(ray_cfg.health_check_interval_s),
        ray_internals.PREEMPTION_WATCHER_ENV: "1" if ray_cfg.preemption_watcher else "0",
        ray_internals.WORKER_GROUP_START_TIMEOUT_ENV: str(ray_cfg.worker_group_start_timeout_s),
    }


# --- on every worker ------------------------------------------------------------------------


class RayReporter:
    """The core's `Reporter` on Ray: every epoch's metrics, a checkpoint when one is due."""

    def report(self, metrics: dict[str, float], checkpoint_dir: Path | None) -> None:
        import ray.train

        checkpoint = ray.train.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        # A barrier: every rank calls it once per epoch; only rank 0 hands a checkpoint.
        ray.train.report(metrics, checkpoint=checkpoint)


CHECKPOINT_PREFIX = "checkpoint_"


class TrialReporter:
    """The reporter of a run in local mode inside a Tune trial: every epoch to Tune (ASHA's
    input); each checkpoint to `folder/checkpoint_<epoch>` (the trial's Train-run folder,
    `train_runs/<trial_id>`), named in that epoch's report as `checkpoint_path`, the
    newest `keep` kept.

    Tune is not handed the checkpoints. It would delete old ones on the driver and save
    its state, which names the newest, to storage only every few seconds: a driver killed
    in between leaves a state naming a deleted checkpoint, and `--resume` then fails that
    trial on every try ("Could not recover from checkpoint", seen in tests). A restarted
    trial resumes from the newest checkpoint in its folder that loads (`newest_checkpoint`)."""

    def __init__(self, folder: str, keep: int):
        self.folder, self.keep = folder, keep

    def report(self, metrics: dict[str, float], checkpoint_dir: Path | None) -> None:
        from ray import tune

        from mmse_model.core.storage import filesystem, write_bytes
        from mmse_model.training.checkpoint import FILENAME

        if checkpoint_dir is not None:
            location = join(self.folder, f"{CHECKPOINT_PREFIX}{int(metrics['epoch']):06d}")
            write_bytes(join(location, FILENAME), (checkpoint_dir / FILENAME).read_bytes())
            metrics = {**metrics, "checkpoint_path": filesystem(location)[1]}  # as Train reports it
            for old in checkpoint_names(self.folder)[: -self.keep]:
                delete(join(self.folder, old))
        tune.report(metrics)


def checkpoint_names(folder: str) -> list[str]:
    """The `checkpoint_<epoch>` folders in `folder`, oldest first."""
    names = [
        e.name
        for e in list_dir(folder)
        if e.is_dir
        and e.name.startswith(CHECKPOINT_PREFIX)
        and e.name[len(CHECKPOINT_PREFIX) :].isdigit()
    ]
    return sorted(names, key=lambda n: int(n[len(CHECKPOINT_PREFIX) :]))


def newest_checkpoint(folder: str) -> CheckpointPayload | None:
    """The newest checkpoint in `folder` that loads (a folder the trial was killed while
    writing may hold no `model.pt`, or a foreign one), or None."""
    for name in reversed(checkpoint_names(folder)):
        try:
            return load_checkpoint(join(folder, name))
        except (CheckpointError, FileNotFoundError):
            continue
    return None


class StorageReporter:
    """The reporter of `mmse train` in local mode: the latest checkpoint at `location` (a
    folder or a URI; `model.pt` written whole), from which a rerun resumes."""

    def __init__(self, location: str):
        self.location = location

    def report(self, metrics: dict[str, float], checkpoint_dir: Path | None) -> None:
        from mmse_model.core.storage import write_bytes
        from mmse_model.training.checkpoint import FILENAME

        if checkpoint_dir is not None:
            write_bytes(join(self.location, FILENAME), (checkpoint_dir / FILENAME).read_bytes())


def in_trial(ray_cfg: RayConfig) -> bool:
    """Does the run train in the process that builds its trainer (Train's local mode)?"""
    return ray_cfg.num_workers == 0


def train_loop_per_worker(loop_config: dict[str, Any]):
    import ray.train
    import ray.train.torch

    from mmse_model.training.loop import train_run

    run = RunSpec.from_dict(loop_config["run"])
    if in_trial(run.config.ray):
        return train_in_this_process(
            run, latest=loop_config.get("latest"), trial_folder=loop_config.get("trial_folder")
        )
    context = ray.train.get_context()
    world_size, rank = context.get_world_size(), context.get_world_rank()
    resume = None
    checkpoint = ray.train.get_checkpoint()  # set when this run (same name) restarts
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            resume = load_checkpoint(directory)
    train_run(
        run,
        RayReporter(),
        device=ray.train.torch.get_device(),
        rank=rank,
        world_size=world_size,
        wrap_model=ray.train.torch.prepare_model if world_size > 1 else None,
        resume=resume,
    )


def train_in_this_process(
    run: RunSpec, latest: str | None = None, trial_folder: str | None = None
) -> CheckpointPayload:
    """Local mode: this process trains, on its GPU when the config asks for one (Ray made
    the reserved one its only visible device), else on the CPU, resuming from what an
    earlier attempt left. `latest`: where `mmse train` keeps its latest checkpoint;
    `trial_folder`: where a Tune trial keeps its checkpoints."""
    import ray.train.torch

    from mmse_model.training.loop import train_run

    # Ray shows a process without a GPU every GPU of its node: use one only when reserved.
    device = ray.train.torch.get_device() if run.config.ray.use_gpu else "cpu"
    if trial_folder is not None:
        reporter, resume = (
            TrialReporter(trial_folder, run.config.ray.checkpoints_to_keep),
            newest_checkpoint(trial_folder),
        )
    elif latest is not None:
        reporter = StorageReporter(latest)
        resume = load_checkpoint(latest) if exists(join(latest, "model.pt")) else None
    else:
        raise ValueError("local mode needs where its checkpoints last: latest or trial_folder")
    return train_run(run, reporter, device=device, resume=resume).checkpoint


# --- on the driver (or the Tune trial that stands in for it) --------------------------------


def scaling_config(ray_cfg: RayConfig):
    from ray.train import ScalingConfig

    return ScalingConfig(
        num_workers=ray_cfg.num_workers,
        use_gpu=ray_cfg.use_gpu,
        resources_per_worker=worker_resources(ray_cfg),
        label_selector=worker_label_selector(ray_cfg),
    )


def worker_resources(ray_cfg: RayConfig) -> dict[str, float]:
    """What each Train worker reserves: its CPUs, its GPUs with use_gpu, and the custom
    resources of `ray.worker_resources` (only nodes that declare them qualify)."""
    resources = {"CPU": ray_cfg.cpus_per_worker, **ray_cfg.worker_resources}
    if ray_cfg.use_gpu:
        resources["GPU"] = ray_cfg.gpus_per_worker
    return resources


def worker_label_selector(ray_cfg: RayConfig) -> dict[str, str] | None:
    """The node labels every Train worker's node must carry (None: any node)."""
    return dict(ray_cfg.worker_label_selector) or None


def build_trainer(
    run: RunSpec,
    storage: str,
    name: str,
    callbacks: list | None = None,
    max_failures: int | None = None,
    latest: str | None = None,
):
    """A TorchTrainer for one run; `name` must be stable (not a timestamp) so a rebuilt
    trainer with the same storage and name resumes from the run's latest checkpoint.
    `max_failures` overrides the config's restarts (a sweep passes 0: ray_jobs/release.py).
    In local mode, `latest` is where `mmse train` keeps its latest checkpoint; without it
    (a sweep trial) checkpoints go where a Train run's would, `<storage>/<name>/`."""
    from ray.train import CheckpointConfig, FailureConfig, LoggingConfig, RunConfig

    ray_cfg = run.config.ray
    # RAY_TRAIN_* variables are read from the environment of the process that builds the
    # trainer (and passed on to its controller): set the configured values here too.
    os.environ.update(train_env(ray_cfg))
    return ray_internals.lean_torch_trainer()(
        train_loop_per_worker,
        train_loop_config={
            "run": run.to_dict(),
            "latest": latest,
            "trial_folder": None if latest else join(storage, name),
        },
        scaling_config=scaling_config(ray_cfg),
        run_config=RunConfig(
            name=name,
            storage_path=storage,
            # Every checkpoint holds each signature's best weights so far: keep the newest.
            checkpoint_config=CheckpointConfig(num_to_keep=ray_cfg.checkpoints_to_keep),
            failure_config=FailureConfig(
                max_failures=ray_cfg.max_failures if max_failures is None else max_failures
            ),
            callbacks=callbacks or [],
            # Train logs every report at INFO; a sweep of many trials drowns in them.
            logging_config=LoggingConfig(log_level="WARNING"),
        ),
    )


def connect(address: str | None, config: Config) -> None:
    """Start or join Ray (`ray_jobs/cluster.py`) with this config's RAY_TRAIN_* settings in
    every process's environment."""
    cluster.connect(address, train_env(config.ray))


def ray_runner(
    storage: str | None = None, address: str | None = None, callbacks: list | None = None
) -> Runner:
    """The runner of `mmse train` on Ray: one TorchTrainer run, checkpoints in `storage`
    (default: the output folder), named after the run so a rerun resumes it. Train's own
    FailureConfig(ray.max_failures) restarts a failed worker group from the latest
    checkpoint. `callbacks`: Train `UserCallback`s for the run (they run in its controller)."""
    if storage is not None:
        check_location(storage, "--storage")

    def run_on_ray(run: RunSpec, out: Path) -> tuple[CheckpointPayload, str]:
        where = absolute(storage or str(out))
        connect(address, run.config)
        name = f"{run.signatures[0]}-{run.task}"
        if in_trial(run.config.ray):
            # Local mode: this process trains; its latest checkpoint lasts in storage.
            latest = join(where, name, "checkpoint_latest")
            result = build_trainer(run, where, name, callbacks, latest=latest).fit()
            return result.return_value, latest
        # In the main thread, fit() installs a SIGINT handler that holds the controller's
        # handle, which keeps that actor alive after the run; put the old handler back.
        sigint = signal.getsignal(signal.SIGINT)
        try:
            result = build_trainer(run, where, name, callbacks).fit()
        finally:
            signal.signal(signal.SIGINT, sigint)
        with result.checkpoint.as_directory() as directory:  # the last: the run's final state
            payload = load_checkpoint(directory)
        return payload, uri_of(where, result.checkpoint.path)

    return run_on_ray


# --- command line ---------------------------------------------------------------------------


def run_spec(args: argparse.Namespace) -> RunSpec:
    from mmse_model.core.config import load_config

    return RunSpec(
        str(Path(args.data).resolve()), (args.sig,), args.q, load_config(args.config, args.set)
    )


def main(argv: Sequence[str] | None = None) -> int:
    """`python ray_jobs/train.py ...` is `mmse train ...` (on Ray: the same options)."""
    from mmse_app.cli import main as mmse

    return mmse(["train", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":  # pragma: no cover
    # Run through the package module, so pickled classes and functions name
    # `ray_jobs.train`, not `__main__`.
    from ray_jobs.train import main as _main

    sys.exit(_main())
