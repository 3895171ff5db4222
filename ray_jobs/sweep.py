"""The sweep: Ray Tune over (signature, task, hyper-parameters), ASHA within each task.

Train V2 shape (DESIGN.md section 5): each Tune trial is a function that builds one
`TorchTrainer` (from `ray_jobs/train.py`) with `TuneReportCallback`, so every epoch's
`val/loss` reaches Tune and ASHA can stop the trial. Trials are compared only within their
task (section 6): `PerTaskASHA` keeps one ASHA (one set of brackets) per task.

    python ray_jobs/sweep.py --config configs/demo.yaml [--data DIR] [--storage URI] [--resume]
    ray job submit --working-dir . -- python ray_jobs/sweep.py --config configs/demo.yaml \
        --data /abs/data --storage /abs/runs
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Sequence

from ray.tune.schedulers import AsyncHyperBandScheduler, FIFOScheduler, TrialScheduler

from mmse_model.config import Config
from mmse_model.errors import InputError
from mmse_model.metrics import MONITOR
from mmse_model.sweep_config import SweepConfig, apply_sample, discover, load_sweep_config
from mmse_model.trainer import RunSpec
from ray_jobs.guard import SweepGuard, SweepStalled
from ray_jobs.release import ReleaseOnStop, release_orphaned_groups
from ray_jobs.train import absolute_storage, build_trainer, connect, storage_join

TRAIN_RUNS = "train_runs"  # <storage>/<experiment>/train_runs/<trial_id>/checkpoint_*


# --- ASHA, one set of brackets per task ------------------------------------------------------


class PerTaskASHA(FIFOScheduler):
    """Routes every trial to the ASHA of its task (`trial.config["task"]`).

    Validation losses of different tasks differ in scale and difficulty; one pool would stop
    the hard task's trials because of the easy task's losses. Each task gets its own
    `AsyncHyperBandScheduler`, so a trial's rung is compared only with trials of its task.
    """

    def __init__(self, time_attr: str = "epoch", max_t: int = 100, grace_period: int = 5,
                 reduction_factor: float = 3, brackets: int = 1):
        super().__init__()
        self._asha_args = dict(time_attr=time_attr, max_t=max_t, grace_period=grace_period,
                               reduction_factor=reduction_factor, brackets=brackets)
        self._mode: str | None = None
        self.by_task: dict[str, AsyncHyperBandScheduler] = {}
        self.stopped: set[str] = set()  # trial ids this scheduler stopped (this driver only)

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        if (self._metric and metric) or (self._mode and mode):
            return False
        self._metric = metric or self._metric
        self._mode = mode or self._mode
        return True

    def _asha(self, trial) -> AsyncHyperBandScheduler:
        task = trial.config["task"]
        if task not in self.by_task:
            self.by_task[task] = AsyncHyperBandScheduler(
                metric=self._metric, mode=self._mode, **self._asha_args
            )
        return self.by_task[task]

    def _known(self, trial) -> AsyncHyperBandScheduler:
        asha = self._asha(trial)
        if trial.trial_id not in asha._trial_info:  # e.g. a trial restored by Tuner.restore
            asha.on_trial_add(None, trial)
        return asha

    def on_trial_add(self, tune_controller, trial) -> None:
        self._known(trial)

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        decision = self._known(trial).on_trial_result(tune_controller, trial, result)
        if decision == TrialScheduler.STOP:
            self.stopped.add(trial.trial_id)
        return decision

    def on_trial_complete(self, tune_controller, trial, result: dict) -> None:
        asha = self._known(trial)
        if result and asha._time_attr in result and asha._metric in result:
            asha.on_trial_complete(tune_controller, trial, result)
        else:
            asha._trial_info.pop(trial.trial_id, None)

    def on_trial_remove(self, tune_controller, trial) -> None:
        self._asha(trial)._trial_info.pop(trial.trial_id, None)

    def on_trial_error(self, tune_controller, trial) -> None:
        self._asha(trial)._trial_info.pop(trial.trial_id, None)

    def debug_string(self) -> str:
        return "\n".join(f"{task}: {asha.debug_string()}" for task, asha in sorted(self.by_task.items()))


# --- one trial ------------------------------------------------------------------------------


def run_trial(trial_config: dict[str, Any]) -> None:
    """A Tune trial: one TorchTrainer run of (signature, task, hyper-parameter sample).

    The Train run is named after the trial id, so when a restored sweep restarts this trial
    the rebuilt trainer finds the run's checkpoints and resumes from the latest.
    """
    from ray import tune
    from ray.tune.integration.ray_train import TuneReportCallback

    config = apply_sample(Config.from_dict(trial_config["base"]), trial_config["hp"])
    run = RunSpec(trial_config["data_root"], trial_config["signature"], trial_config["task"], config)
    trial_id = tune.get_context().get_trial_id()
    # Train's own retries stay off in a sweep (ray_jobs/release.py): Tune retries the trial,
    # and the rebuilt trainer resumes the run from its latest checkpoint.
    trainer = build_trainer(run, trial_config["train_storage"], trial_id, [TuneReportCallback()],
                            time_epochs=trial_config.get("time_epochs", False), max_failures=0)
    trainer.fit()


# Tune's wrap_function mixes these into the trial actor: ending a trial releases its Train run.
run_trial.__mixins__ = (ReleaseOnStop,)


def trainable(sweep: SweepConfig):
    from ray import tune

    return tune.with_resources(run_trial, {"CPU": sweep.resources.trial_cpus})


def _domain(spec: dict[str, list]):
    from ray import tune

    kind, args = next(iter(spec.items()))
    return {"choice": lambda: tune.choice(args), "uniform": lambda: tune.uniform(*args),
            "loguniform": lambda: tune.loguniform(*args), "randint": lambda: tune.randint(*args)}[kind]()


def max_concurrent_trials(sweep: SweepConfig, config: Config) -> int:
    """How many trials fit the cluster at once (trial function + its Train workers)."""
    import ray

    if sweep.resources.max_concurrent_trials:
        return sweep.resources.max_concurrent_trials
    total = ray.cluster_resources()
    per_trial_cpu = sweep.resources.trial_cpus + config.ray.num_workers * config.ray.cpus_per_worker
    fits = [total.get("CPU", 0.0) / per_trial_cpu]
    if config.ray.use_gpu:
        fits.append(total.get("GPU", 0.0) / (config.ray.num_workers * config.ray.gpus_per_worker))
    return max(1, math.floor(min(fits) + 1e-9))


def build_tuner(sweep: SweepConfig, signatures, tasks, experiment_storage: str, time_epochs: bool = False,
                reuse_actors: bool = False):
    """`reuse_actors` is for the benchmark only (docs/sweep_overhead.md): a trial that ASHA
    stops is blocked in `fit()`, so its actor cannot be reset and reuse does not help here."""
    from ray import tune
    from ray.tune import CLIReporter
    from ray.tune.logger import TBXLoggerCallback
    from ray.tune.search.basic_variant import BasicVariantGenerator

    base = sweep.base_config()
    param_space = {
        "signature": tune.grid_search(list(signatures)),
        "task": tune.grid_search(list(tasks)),
        "hp": {key: _domain(spec) for key, spec in sorted(sweep.search_space.items())},
        "data_root": str(Path(sweep.data_root).resolve()),
        "base": base.to_dict(),
        "train_storage": storage_join(experiment_storage, sweep.name, TRAIN_RUNS),
        "time_epochs": time_epochs,  # the benchmark's per-epoch timer
    }
    reporter = CLIReporter(
        parameter_columns={"signature": "signature", "task": "task",
                           **{f"hp/{k}": k.split(".")[-1] for k in sorted(sweep.search_space)}},
        metric_columns={"epoch": "epoch", MONITOR: MONITOR, "val/rmse": "val/rmse"},
        max_report_frequency=10,
    )
    return tune.Tuner(
        trainable(sweep),
        param_space=param_space,
        tune_config=tune.TuneConfig(
            metric=MONITOR,
            mode="min",
            num_samples=sweep.samples,
            scheduler=PerTaskASHA(
                max_t=sweep.max_t(),
                grace_period=sweep.asha.grace_period,
                reduction_factor=sweep.asha.reduction_factor,
                brackets=sweep.asha.brackets,
            ),
            # A SearchGenerator ignores TuneConfig.max_concurrent_trials (Tune warns and runs
            # every trial at once): the limit goes to the generator itself.
            search_alg=BasicVariantGenerator(
                random_state=sweep.search_seed, max_concurrent=max_concurrent_trials(sweep, base)
            ),
            reuse_actors=reuse_actors,
        ),
        run_config=tune.RunConfig(
            name=sweep.name,
            storage_path=experiment_storage,
            callbacks=[TBXLoggerCallback(), guard(sweep)],
            progress_reporter=reporter,
            failure_config=tune.FailureConfig(max_failures=base.ray.max_failures),
        ),
    )


def guard(sweep: SweepConfig) -> SweepGuard:
    hint = "Free what holds them, then run the same command with --resume."
    return SweepGuard(sweep.watchdog.interval_s, sweep.watchdog.stall_timeout_s, hint)


# --- results --------------------------------------------------------------------------------


def collect_rows(result_grid, train_storage: str) -> list[dict[str, Any]]:
    from mmse_model.errors import CheckpointError
    from mmse_model.results import trial_row

    from ray_jobs.train import _uri

    def usable(record: dict[str, Any]) -> bool:
        try:
            load_payload(_uri(train_storage, str(record["checkpoint_path"])))
        except (CheckpointError, OSError):
            return False
        return True

    rows = []
    for result in result_grid:
        cfg = result.config or {}
        base = Config.from_dict(cfg["base"])
        config = apply_sample(base, cfg["hp"])
        frame = result.metrics_dataframe
        history = [] if frame is None else frame.to_dict("records")
        trial_id = (result.metrics or {}).get("trial_id") or Path(result.path).name
        es = config.early_stopping
        row = trial_row(
            trial_id, cfg["signature"], cfg["task"], dict(cfg["hp"]), history,
            max_epochs=config.training.epochs,
            early_stopping=(es.patience, es.min_delta) if es.enable else None,
            errored=result.error is not None,
            checkpoint_usable=usable,
        )
        path = row.pop("checkpoint_path")
        row["checkpoint_uri"] = _uri(train_storage, path) if path else ""
        rows.append(row)
    return rows


def load_payload(checkpoint_uri: str) -> dict[str, Any]:
    """A checkpoint's payload from a local path or an `s3://` (etc.) URI."""
    from mmse_model.checkpoint import FILENAME, load_checkpoint

    if "://" not in checkpoint_uri:
        return load_checkpoint(checkpoint_uri)
    import pyarrow.fs

    fs, path = pyarrow.fs.FileSystem.from_uri(checkpoint_uri)
    with tempfile.TemporaryDirectory() as tmp:
        pyarrow.fs.copy_files(f"{path}/{FILENAME}", f"{tmp}/{FILENAME}", source_filesystem=fs)
        return load_checkpoint(tmp)


def summarise(sweep: SweepConfig, rows: list[dict[str, Any]], train_storage: str) -> dict[str, Any]:
    """Score each task's winner and the baselines on the held-out test subjects."""
    from mmse_model.baselines import score_baselines
    from mmse_model.evaluate import evaluate_on_test
    from mmse_model.results import build_summary, winners_per_task
    from mmse_model.trainer import load_run_data

    base = sweep.base_config()
    test, baselines = {}, {}
    for task, row in winners_per_task(rows).items():
        payload = load_payload(row["checkpoint_uri"])
        run = RunSpec(str(Path(sweep.data_root).resolve()), row["signature"], task,
                      Config.from_dict(payload["config"]))
        data, split = load_run_data(run)
        test[task] = evaluate_on_test(payload, data, split)
        baselines[task] = score_baselines(data, split, base.score_range(task), base.seed)
    return build_summary(rows, test, baselines, experiment=sweep.name)


def write_results(experiment_uri: str, files: dict[str, Any]) -> None:
    """Write results into the experiment folder (a local path or a storage URI)."""
    from mmse_model.results import write_json, write_trials_csv

    def write(folder: Path) -> None:
        write_trials_csv(files["trials.csv"], folder / "trials.csv")
        write_json(files["summary.json"], folder / "summary.json")
        (folder / "summary.txt").write_text(files["summary.txt"] + "\n")

    if "://" not in experiment_uri:
        write(Path(experiment_uri))
        return
    import pyarrow.fs

    fs, path = pyarrow.fs.FileSystem.from_uri(experiment_uri)
    with tempfile.TemporaryDirectory() as tmp:
        write(Path(tmp))
        pyarrow.fs.copy_files(tmp, path, destination_filesystem=fs)


def run_sweep(sweep: SweepConfig, resume: bool = False, address: str | None = None) -> dict[str, Any]:
    from ray import tune

    from mmse_model.results import format_summary

    storage = absolute_storage(sweep.storage)
    experiment = storage_join(storage, sweep.name)
    signatures, tasks = discover(sweep.data_root, sweep.signatures, sweep.tasks)
    connect(address, sweep.base_config())
    if resume:
        if not tune.Tuner.can_restore(experiment):
            raise InputError(f"{experiment}: no sweep to resume there")
        tuner = tune.Tuner.restore(
            experiment,
            trainable=trainable(sweep),
            resume_unfinished=True,
            resume_errored=True,
        )
    else:
        tuner = build_tuner(sweep, signatures, tasks, storage)
    # Tune's newer console output ignores a ProgressReporter; the CLIReporter table (the
    # columns chosen in build_tuner) is the live progress table.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    result_grid = tuner.fit()
    # The watchdog's last pass: trials that ended in Tune's final step.
    import ray

    for item in release_orphaned_groups(ray.get_runtime_context().get_job_id()):
        print(f"watchdog: released placement group {item.group_id[:12]} left by {item.creator}", file=sys.stderr)
    train_storage = storage_join(experiment, TRAIN_RUNS)
    rows = collect_rows(result_grid, train_storage)
    summary = summarise(sweep, rows, train_storage)
    text = format_summary(summary)
    write_results(experiment, {"trials.csv": rows, "summary.json": summary, "summary.txt": text})
    print(text)
    print(f"results: {experiment}/trials.csv, summary.json; TensorBoard: tensorboard --logdir {experiment}")
    return summary


# --- command line ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="ASHA sweep over every signature and task")
    add_arguments(parser)
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="sweep YAML (configs/sweep.yaml, configs/demo.yaml)")
    parser.add_argument("--data", help="data root (overrides the config's data_root)")
    parser.add_argument("--storage", help="storage path or URI (overrides the config's storage)")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted sweep")
    parser.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS or a local instance)")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        sweep = load_sweep_config(args.config, args.data, args.storage)
        run_sweep(sweep, args.resume, args.address)
    except InputError as exc:
        print(f"sweep: error: {exc}", file=sys.stderr)
        return 2
    except SweepStalled as exc:
        print(f"sweep: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    # Run through the package module, so pickled classes and functions (Tune's saved
    # experiment state) name `ray_jobs.sweep`, not `__main__`, and a later resume finds them.
    from ray_jobs.sweep import main as _main

    sys.exit(_main())
