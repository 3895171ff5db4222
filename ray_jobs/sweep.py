"""The sweep: Ray Tune over (task, hyper-parameter sample, signature group), ASHA per task.

Train V2 shape (docs/design.md, "Ray"): each Tune trial is a function that builds one
`TorchTrainer` (from `ray_jobs/train.py`) with `TuneReportCallback`, so every epoch's
`val/loss` (the best signature's) reaches Tune and ASHA can stop the trial. With
`ray.num_workers: 0` the trainer runs in local mode: the trial actor trains itself, reserves
its worker's resources, reports each epoch to Tune directly and keeps its checkpoints where
a Train run would (`train_runs/<trial_id>/`). A trial trains
a group of signatures of one task as one batched model: every signature of a task holds the
same subjects and split, so `signatures_per_trial` signatures x K folds cost one Train run's
start-up. ASHA compares trials only within their task (`ray_jobs/scheduler.py`).

    python ray_jobs/sweep.py --config configs/demo.yaml [--data DIR] [--storage URI] [--resume]
    ray job submit --working-dir . -- python ray_jobs/sweep.py --config configs/demo.yaml \\
        --data /abs/data --storage /abs/runs
"""

from __future__ import annotations

import argparse
import math
import sys
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any, Callable, Sequence

from mmse_model.core.atomic import json_text
from mmse_model.core.config import Config
from mmse_model.core.errors import InputError, RunFailure, first_line
from mmse_model.core.storage import (
    StorageUnavailable,
    absolute,
    filesystem,
    join,
    read_text,
    redact,
    uri_of,
)
from mmse_model.core.storage import errors as storage_errors
from mmse_model.core.storage import write_text as write_location
from mmse_model.evaluation.metrics import MONITOR
from mmse_model.sweeps.config import SweepConfig, apply_sample, discover, load_sweep_config
from mmse_model.sweeps.nested import NestedSearch
from mmse_model.sweeps.record import (
    RECORD_NAME,
    check_same_sweep,
    data_fingerprint,
    make_record,
    parse_record,
)
from mmse_model.sweeps.results import (
    choose_checkpoint,
    failure_line,
    format_summary,
    signature_rows,
)
from mmse_model.sweeps.rules import TrialRow, is_finite_number
from mmse_model.sweeps.rungs import rungs
from mmse_model.sweeps.summary import summarise_sweep, write_results
from mmse_model.training.checkpoint import load_checkpoint
from mmse_model.training.loop import RunSpec
from ray_jobs import ray_internals
from ray_jobs.guard import SweepGuard, SweepInterrupted, SweepTrialsFailed
from ray_jobs.release import ReleaseOnStop, release_orphaned_groups
from ray_jobs.repeats import run_repeats_on_ray
from ray_jobs.scheduler import PerTaskASHA
from ray_jobs.train import (
    CHECKPOINT_PREFIX,
    build_trainer,
    checkpoint_names,
    connect,
    in_trial,
    worker_label_selector,
    worker_resources,
)

TRAIN_RUNS = "train_runs"  # <storage>/<experiment>/train_runs/<trial_id>/checkpoint_*
RESUME_HINT = (
    "the sweep's state is kept: run the same command with --resume once the storage works again"
)


# --- one trial ------------------------------------------------------------------------------


def run_trial(trial_config: dict[str, Any]) -> None:
    """A Tune trial: one TorchTrainer run of (task, hyper-parameter sample, signature group).

    The Train run is named after the trial id, so when a restored sweep restarts this trial
    the rebuilt trainer finds the run's checkpoints and resumes from the latest.
    """
    from ray import tune
    from ray.tune.integration.ray_train import TuneReportCallback

    config = apply_sample(Config.from_dict(trial_config["base"]), trial_config["hp"])
    checkpoint_epochs = trial_config.get(
        "checkpoint_epochs", trial_config["rungs"]
    )  # older sweeps: rungs
    run = RunSpec(
        trial_config["data_root"],
        tuple(trial_config["group"]["signatures"]),
        trial_config["task"],
        config,
        checkpoint_epochs=tuple(checkpoint_epochs),
    )
    trial_id = tune.get_context().get_trial_id()
    # In local mode the run reports to Tune itself; the callback would start a queue actor.
    callbacks = [] if in_trial(config.ray) else [TuneReportCallback()]
    # Train's retries of a failed worker group stay off in a sweep (docs/design.md,
    # "Releasing resources"): Tune retries the trial, and the rebuilt trainer resumes the run
    # from its latest checkpoint. Start-up failures Train still retries itself.
    trainer = build_trainer(run, trial_config["train_storage"], trial_id, callbacks, max_failures=0)
    trainer.fit()


# Ending a trial releases its Train run's placement groups (docs/design.md, "Releasing resources").
ray_internals.mix_into_trial_actor(run_trial, ReleaseOnStop)


def trial_resources(sweep: SweepConfig) -> dict[str, float]:
    """What each Tune trial actor reserves: `resources.trial_cpus` and the custom resources
    of `resources.trial_resources` (only nodes that declare them host trials)."""
    resources = {"CPU": sweep.resources.trial_cpus, **sweep.resources.trial_resources}
    return {name: amount for name, amount in resources.items() if amount}


def trial_bundle(sweep: SweepConfig) -> dict[str, float]:
    """What a trial's placement group reserves: its own resources, plus its one worker's
    (CPUs, a GPU with use_gpu, custom resources) when it trains itself (ray.num_workers 0)."""
    ray_cfg = sweep.base_config().ray
    bundle = trial_resources(sweep)
    if in_trial(ray_cfg):
        for name, amount in worker_resources(ray_cfg).items():
            bundle[name] = bundle.get(name, 0.0) + amount
    return bundle


def trial_label_selector(sweep: SweepConfig) -> dict[str, str] | None:
    """The labels a trial's node must carry: its worker's when it trains itself."""
    ray_cfg = sweep.base_config().ray
    return worker_label_selector(ray_cfg) if in_trial(ray_cfg) else None


def trainable(sweep: SweepConfig):
    from ray import tune

    selector = trial_label_selector(sweep)
    # Tune passes a factory's keyword arguments to `placement_group()`: labels per bundle.
    labels = {"bundle_label_selector": [selector]} if selector else {}
    # A PlacementGroupFactory, not a dict: Tune reads keys such as "memory" in a dict itself.
    return tune.with_resources(
        run_trial, tune.PlacementGroupFactory([trial_bundle(sweep)], **labels)
    )


def signature_groups(signatures: Sequence[str], per_trial: int) -> list[dict[str, Any]]:
    """The signature groups trials train: all of them (per_trial 0), or groups of per_trial.
    Each has a short label for trial names and results: the signature itself, "all", "g<i>"."""
    size = per_trial or len(signatures)
    chunks = [list(signatures[i : i + size]) for i in range(0, len(signatures), size)]

    def label(i: int, chunk: list[str]) -> str:
        return chunk[0] if len(chunk) == 1 else ("all" if len(chunks) == 1 else f"g{i}")

    return [{"label": label(i, chunk), "signatures": chunk} for i, chunk in enumerate(chunks)]


class TrialName:
    """Tune's trial name and folder: `<task>-<signature or group label>-<sample>` (`Q1-all-0`,
    `Q3-m2_tau1_eps0.055_lmin2-2`), not Tune's default of every hyper-parameter.

    Tune names a trial before it runs, when the sample number is not in its config: it is
    derived from Tune's trial counter (`ray_internals.trial_counter`). The
    generator makes every grid point (task x signature group) of sample 0, then of sample 1,
    ..., so sample = counter // grid_size: the same number `collect_rows` gives a trial
    (its rank by trial id within its task and group). A restored sweep keeps its names.
    """

    def __init__(self, grid_size: int):
        self.grid_size = max(1, grid_size)

    def __call__(self, trial) -> str:
        sample = ray_internals.trial_counter(trial) // self.grid_size
        return f"{trial.config['task']}-{trial.config['group']['label']}-{sample}"


def _domain(spec: dict[str, list]):
    from ray import tune

    kind, args = next(iter(spec.items()))
    return {
        "choice": lambda: tune.choice(args),
        "uniform": lambda: tune.uniform(*args),
        "loguniform": lambda: tune.loguniform(*args),
        "randint": lambda: tune.randint(*args),
    }[kind]()


def max_concurrent_trials(sweep: SweepConfig, config: Config) -> int:
    """How many trials fit the cluster at once (trial function + its Train workers; in
    local mode the trial's bundle holds its worker's share and there are no workers)."""
    import ray

    if sweep.resources.max_concurrent_trials:
        return sweep.resources.max_concurrent_trials
    return fitting_trials(
        ray.cluster_resources(),
        trial_bundle(sweep),
        worker_resources(config.ray),
        config.ray.num_workers,
    )


def fitting_trials(
    total: dict[str, float], trial: dict[str, float], worker: dict[str, float], num_workers: int
) -> int:
    """How many (trial actor + its `num_workers` Train workers) fit in `total`, resource by
    resource."""
    need: dict[str, float] = dict(trial)
    for name, amount in worker.items():
        need[name] = need.get(name, 0.0) + num_workers * amount
    fits = [total.get(name, 0.0) / amount for name, amount in need.items() if amount > 0]
    return max(1, math.floor(min(fits, default=1) + 1e-9))


def guard(sweep: SweepConfig) -> SweepGuard:
    hint = "Free what holds them, then run the same command with --resume."
    return SweepGuard(
        sweep.watchdog.interval_s,
        sweep.watchdog.stall_timeout_s,
        hint,
        silent_trial_timeout_s=sweep.watchdog.silent_trial_timeout_s,
    )


def build_tuner(
    sweep: SweepConfig,
    signatures: Sequence[str],
    tasks: Sequence[str],
    experiment_storage: str,
    callbacks: Sequence[Any] = (),
):
    """The sweep's Tuner; `callbacks`: Tune callbacks besides TensorBoard's and the guard."""
    from ray import tune
    from ray.tune import CLIReporter
    from ray.tune.logger import TBXLoggerCallback
    from ray.tune.search.basic_variant import BasicVariantGenerator

    base = sweep.base_config()
    max_t = sweep.max_t()
    groups = signature_groups(signatures, sweep.signatures_per_trial)
    asha_rungs = rungs(
        max_t, sweep.asha.grace_period, sweep.asha.reduction_factor, sweep.asha.brackets
    )
    param_space = {
        "task": tune.grid_search(list(tasks)),
        "group": tune.grid_search(groups),
        "hp": {key: _domain(spec) for key, spec in sorted(sweep.search_space.items())},
        "data_root": str(Path(sweep.data_root).resolve()),
        "base": base.to_dict(),
        "train_storage": join(experiment_storage, sweep.name, TRAIN_RUNS),
        "rungs": list(asha_rungs),
        # A checkpoint at every rung, and at max_t when ASHA stops every trial there before the
        # epoch limit: a trial ASHA stops has its weights on disk.
        "checkpoint_epochs": [*asha_rungs, *([max_t] if max_t < base.training.epochs else [])],
    }
    reporter = CLIReporter(
        parameter_columns={
            "task": "task",
            "group/label": "signatures",
            **{f"hp/{k}": k.split(".")[-1] for k in sorted(sweep.search_space)},
        },
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
            trial_name_creator=TrialName(len(tasks) * len(groups)),
            trial_dirname_creator=TrialName(len(tasks) * len(groups)),
            scheduler=PerTaskASHA(
                max_t=max_t,
                grace_period=sweep.asha.grace_period,
                reduction_factor=sweep.asha.reduction_factor,
                brackets=sweep.asha.brackets,
            ),
            # A SearchGenerator ignores TuneConfig.max_concurrent_trials (Tune warns and runs
            # every trial at once): the limit goes to the generator itself.
            search_alg=BasicVariantGenerator(
                random_state=sweep.search_seed, max_concurrent=max_concurrent_trials(sweep, base)
            ),
        ),
        run_config=tune.RunConfig(
            name=sweep.name,
            storage_path=experiment_storage,
            callbacks=[TBXLoggerCallback(), guard(sweep), *callbacks],
            progress_reporter=reporter,
            failure_config=tune.FailureConfig(max_failures=base.ray.max_failures),
        ),
    )


# --- results --------------------------------------------------------------------------------


def collect_rows(result_grid, train_storage: str) -> list[TrialRow]:
    """One row per (signature, trial), read from the newest checkpoint of each trial that
    still loads; samples are numbered within each (task, signature group)."""

    def load(path: str):
        return load_checkpoint(uri_of(train_storage, path))

    trials = []
    for result in result_grid:
        cfg = result.config or {}
        trial_id = (result.metrics or {}).get("trial_id") or Path(result.path).name
        history = trial_history(result, partial(stored_checkpoints, join(train_storage, trial_id)))
        trials.append((trial_id, cfg, history, result.error is not None))
    samples: dict[tuple[str, str], int] = {}
    rows: list[TrialRow] = []
    for trial_id, cfg, history, errored in sorted(trials, key=lambda t: t[0]):
        key = (cfg["task"], cfg["group"]["label"])
        samples[key] = samples.get(key, -1) + 1
        config = apply_sample(Config.from_dict(cfg["base"]), cfg["hp"])
        chosen = choose_checkpoint(history, load)
        if chosen is not None:
            chosen = (uri_of(train_storage, chosen[0]), chosen[1])
        rows += signature_rows(
            trial_id,
            cfg["task"],
            cfg["group"]["label"],
            list(cfg["group"]["signatures"]),
            samples[key],
            dict(cfg["hp"]),
            history,
            chosen,
            max_epochs=config.training.epochs,
            errored=errored,
        )
    return rows


def trial_history(result, stored: Callable[[], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """A trial's reports, oldest first: its `result.json`, completed when that is cut short.

    Tune writes `result.json` on the driver and copies it to storage every few seconds; a
    driver killed during a copy leaves the stored file cut short or empty, and `--resume`
    does not run a finished trial again. Tune's experiment state still holds the trial's
    last report, and its checkpoints are in storage: `stored()` lists them as records
    (`epoch`, `checkpoint_path`), read only for a history that ends before the last report."""
    frame = result.metrics_dataframe
    records = [] if frame is None else frame.to_dict("records")
    last = result.metrics or {}
    seen = max((r["epoch"] for r in records if is_finite_number(r.get("epoch"))), default=0)
    if not is_finite_number(last.get("epoch")) or last["epoch"] <= seen:
        return records
    missing = {r["epoch"]: r for r in stored() if seen < r["epoch"] <= last["epoch"]}
    missing[last["epoch"]] = {**missing.get(last["epoch"], {}), **last}
    return records + [missing[epoch] for epoch in sorted(missing)]


def stored_checkpoints(folder: str) -> list[dict[str, Any]]:
    """A trial's checkpoints in its Train-run folder, as history records."""
    return [
        {
            "epoch": int(name[len(CHECKPOINT_PREFIX) :]),
            "checkpoint_path": filesystem(join(folder, name))[1],
        }
        for name in checkpoint_names(folder)
    ]


def run_sweep(
    sweep: SweepConfig, resume: bool = False, address: str | None = None
) -> dict[str, Any]:
    """Run (or resume) the sweep, then score each task's winner and write the results. One
    driver per experiment: the lock is taken before anything is written, and released at
    the end (mmse_model/sweeps/lock.py)."""
    from mmse_model.sweeps.lock import DriverLock

    storage = absolute(sweep.storage)
    experiment = join(storage, sweep.name)
    signatures, tasks = discover(sweep.data_root, sweep.signatures, sweep.tasks)
    lock = DriverLock(experiment)
    with storage_errors(experiment, "taking the driver lock"):
        lock.acquire()
    try:
        if lock.taken_over:
            print(lock.taken_over, file=sys.stderr, flush=True)
        return _run_locked(
            sweep, resume, address, storage, experiment, list(signatures), list(tasks)
        )
    finally:
        try:
            lock.release()
        # The results stand; a lock left behind names a process that has ended.
        except (OSError, InputError, RunFailure) as exc:
            print(
                f"mmse: warning: {lock.where}: could not release the driver lock ({first_line(exc)})",
                file=sys.stderr,
            )


def _run_locked(
    sweep: SweepConfig,
    resume: bool,
    address: str | None,
    storage: str,
    experiment: str,
    signatures: list[str],
    tasks: list[str],
) -> dict[str, Any]:
    import ray
    from ray import tune

    groups = signature_groups(signatures, sweep.signatures_per_trial)
    today = make_record(
        sweep,
        signatures,
        tasks,
        sweep.samples * len(tasks) * len(groups),
        data=data_fingerprint(sweep.data_root),
    )
    record_where = redact(join(experiment, RECORD_NAME))
    if resume:
        with storage_errors(experiment, "looking for the sweep to resume"):
            if not tune.Tuner.can_restore(experiment):
                raise InputError(f"{experiment}: no sweep to resume there")
            try:
                text = read_text(join(experiment, RECORD_NAME))
            except FileNotFoundError:
                text = None
        if text is None:
            print(
                f"{record_where}: no record of the sweep's first start (an earlier version started it); "
                "recorded today's config and data",
                file=sys.stderr,
                flush=True,
            )
            recorded = today
            write_location(join(experiment, RECORD_NAME), json_text(today))
        else:
            recorded = parse_record(record_where, text)
            check_same_sweep(record_where, recorded, today)
    else:
        # Tune would reuse the folder and append to each trial's result.json: two sweeps mixed.
        with storage_errors(experiment, "looking for an earlier sweep"):
            if tune.Tuner.can_restore(experiment):
                raise InputError(
                    f"{experiment}: holds a sweep already; continue it with --resume, or give "
                    "the sweep another name or --storage"
                )
        recorded = today
        write_location(join(experiment, RECORD_NAME), json_text(today))
    connect(address, sweep.base_config())
    # Credentials stay in each node's environment, out of runtime envs (logged, shown).
    ray_internals.keep_credentials_out_of_trial_envs()
    if resume:
        with storage_errors(experiment, "restoring the sweep"):
            tuner = tune.Tuner.restore(
                experiment, trainable=trainable(sweep), resume_unfinished=True, resume_errored=True
            )
    else:
        tuner = build_tuner(sweep, signatures, tasks, storage)
    # The CLIReporter table (the columns chosen in build_tuner) is the live progress table.
    ray_internals.use_classic_progress_table()
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    watch = sweep.watchdog
    SweepGuard.current_settings = (
        watch.interval_s,
        watch.stall_timeout_s,
        watch.silent_trial_timeout_s,
    )
    try:
        result_grid = tuner.fit()
    finally:
        SweepGuard.current_settings = None
    # The watchdog's last pass: trials that ended in Tune's final step.
    for item in release_orphaned_groups(ray.get_runtime_context().get_job_id()):
        print(
            f"watchdog: released placement group {item.group_id[:12]} left by {item.creator}",
            file=sys.stderr,
        )
    # Tune returns normally after Ctrl-C (it handles SIGINT itself) and marks the trials it
    # cut off TERMINATED: results of a sweep that did not end would read as final, so none
    # are written. A trial that ended (its function returned, or the scheduler stopped it)
    # has `done` in its last result; one that failed for good has an error.
    # Counted from the sweep's record (its first start), never from today's YAML.
    expected = int(recorded["n_trials"])
    ended = sum(
        1 for r in result_grid if r.error is not None or (r.metrics or {}).get("done") is True
    )
    if ended < expected:
        raise SweepInterrupted(
            f"{experiment}: the sweep stopped with {ended} of {expected} trials ended; no "
            "results written; its state is kept: run the same command with --resume to finish it"
        )
    # The results score today's files: they must be the data the sweep trained on.
    if data_fingerprint(sweep.data_root) != recorded["data_fingerprint"]:
        raise InputError(
            f"{sweep.data_root}: the data changed since the sweep started (its fingerprint differs "
            f"from {record_where}'s); no results written: restore the data the sweep trained on "
            "and run the same command with --resume, or start a new sweep"
        )
    rows = collect_rows(result_grid, join(experiment, TRAIN_RUNS))
    evaluation = sweep.evaluation
    summary, predictions = summarise_sweep(
        sweep.name,
        rows,
        Path(sweep.data_root).resolve(),
        load_checkpoint,
        nested=NestedSearch.of_sweep(sweep),
        groups_file=evaluation.groups_file,
        seed=evaluation.bootstrap_seed,
        provenance={**provenance(sweep, started), "data_fingerprint": recorded["data_fingerprint"]},
        run_repeats=partial(run_repeats_on_ray, stall_timeout_s=watch.stall_timeout_s),
        interval_level=evaluation.interval_level,
        primary_comparator=evaluation.primary_comparator,
    )
    text = format_summary(summary)
    write_results(experiment, rows, summary, text, predictions)
    print(text)
    print(
        f"results: {experiment}/trials.csv, summary.json; TensorBoard: tensorboard --logdir {experiment}"
    )
    if summary["failed_trials"]:
        # Written, and marked, but not a finished sweep: exit status 1, and --resume reruns them.
        # No bundle: a model delivered from a sweep that did not finish would read as final.
        raise SweepTrialsFailed(f"{experiment}: {failure_line(summary)}", summary)
    if summary["tasks"]:
        # What leaves the sweep: the winners as one bundle (weights, manifest, model card).
        from mmse_model.bundle.layout import BUNDLE_DIR
        from mmse_model.bundle.run import describe
        from mmse_model.bundle.write import write_bundle

        bundle = join(experiment, BUNDLE_DIR)
        manifest = write_bundle(
            summary, Path(sweep.data_root).resolve(), load_checkpoint, bundle, source=experiment
        )
        print(describe(manifest, bundle))
    return summary


def provenance(sweep: SweepConfig, started: str) -> dict[str, Any]:
    """What produced these results: config, data, code version, library versions, times."""
    import platform
    import subprocess
    from importlib.metadata import version

    commit = None
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
        commit = done.stdout.strip() if done.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired):
        pass
    return {
        "sweep_config": sweep.to_dict(),
        "data_root": str(Path(sweep.data_root).resolve()),
        "git_commit": commit,
        "versions": {
            "ray": version("ray"),
            "torch": version("torch"),
            "python": platform.python_version(),
        },
        "started": started,
        "ended": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


# --- command line ---------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """`python ray_jobs/sweep.py ...` is `mmse sweep ...` (the same options)."""
    from mmse_app.cli import main as mmse

    return mmse(["sweep", *(sys.argv[1:] if argv is None else argv)])


def run_sweep_command(args: argparse.Namespace, after: Callable[[str], Any] | None = None) -> str:
    """`mmse sweep` and this script: load the sweep config, run it; a failed storage's
    message says how to resume. `after(experiment)` runs once results are written (also
    when some trials failed). Returns the experiment's storage location."""
    sweep = load_sweep_config(args.config, args.data, args.storage)
    experiment = join(absolute(sweep.storage), sweep.name)
    try:
        run_sweep(sweep, args.resume, args.address)
    except StorageUnavailable as exc:
        raise StorageUnavailable(f"{exc}; {RESUME_HINT}") from None
    except SweepTrialsFailed:
        if after is not None:
            after(experiment)
        raise
    if after is not None:
        after(experiment)
    return experiment


if __name__ == "__main__":  # pragma: no cover
    # Run through the package module, so pickled classes and functions (Tune's saved
    # experiment state) name `ray_jobs.sweep`, not `__main__`, and a later resume finds them.
    from ray_jobs.sweep import main as _main

    sys.exit(_main())
