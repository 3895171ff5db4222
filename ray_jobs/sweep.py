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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any

from mmse_model.bundle.write import deliver
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
from mmse_model.sweeps.finish import SweepTrialsFailed, check_evaluation_inputs, finish_sweep
from mmse_model.sweeps.phases import Phases
from mmse_model.sweeps.plan import (
    TrialPoint,
    hyperparameter_samples,
    plan_trials,
    signature_groups,
)
from mmse_model.sweeps.record import (
    RECORD_NAME,
    SweepRecord,
    check_same_sweep,
    data_fingerprint,
    make_record,
    read_record,
)
from mmse_model.sweeps.results import choose_checkpoint, signature_rows
from mmse_model.sweeps.rules import TrialRow, is_finite_number
from mmse_model.sweeps.rungs import rungs
from mmse_model.sweeps.summary_schema import Summary
from mmse_model.training.checkpoint import load_checkpoint
from mmse_model.training.loop import RunSpec
from ray_jobs import ray_internals
from ray_jobs.guard import SweepGuard, SweepInterrupted
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


@dataclass(frozen=True)
class TrialConstants:
    """What every trial of a sweep shares, handed to trials by `tune.with_parameters` (once,
    through the object store) rather than written into every trial's config and result line."""

    base: dict[str, Any]  # the training config before any sample
    data_root: str
    train_storage: str  # <experiment>/train_runs: each trial's checkpoints in <trial_id>/
    checkpoint_epochs: tuple[int, ...]  # ASHA's rungs, and max_t when it ends trials early


def run_trial(config: dict[str, Any], constants: TrialConstants) -> None:
    """A Tune trial: one TorchTrainer run of (task, hyper-parameter sample, signature group).

    The Train run is named after the trial id, so when a restored sweep restarts this trial
    the rebuilt trainer finds the run's checkpoints and resumes from the latest.
    """
    from ray import tune
    from ray.tune.integration.ray_train import TuneReportCallback

    point = TrialPoint.from_config(config)
    training = apply_sample(Config.from_dict(constants.base), point.hyperparameters)
    run = RunSpec(
        constants.data_root,
        point.group.signatures,
        point.task,
        training,
        checkpoint_epochs=constants.checkpoint_epochs,
    )
    trial_id = tune.get_context().get_trial_id()
    # In local mode the run reports to Tune itself; the callback would start a queue actor.
    callbacks = [] if in_trial(training.ray) else [TuneReportCallback()]
    # Train's retries of a failed worker group stay off in a sweep (docs/design.md,
    # "Releasing resources"): Tune retries the trial, and the rebuilt trainer resumes the run
    # from its latest checkpoint. Start-up failures Train still retries itself.
    trainer = build_trainer(run, constants.train_storage, trial_id, callbacks, max_failures=0)
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


def trial_constants(sweep: SweepConfig, experiment: str) -> TrialConstants:
    base = sweep.base_config()
    max_t = sweep.max_t()
    asha_rungs = rungs(
        max_t, sweep.asha.grace_period, sweep.asha.reduction_factor, sweep.asha.brackets
    )
    return TrialConstants(
        base=base.to_dict(),
        data_root=str(Path(sweep.data_root).resolve()),
        train_storage=join(experiment, TRAIN_RUNS),
        # A checkpoint at every rung, and at max_t when ASHA stops every trial there before
        # the epoch limit: a trial ASHA stops has its weights on disk.
        checkpoint_epochs=(*asha_rungs, *([max_t] if max_t < base.training.epochs else [])),
    )


def trainable(sweep: SweepConfig, experiment: str):
    """The trial function with the sweep's constants and each trial's resources."""
    from ray import tune

    selector = trial_label_selector(sweep)
    # Tune passes a factory's keyword arguments to `placement_group()`: labels per bundle.
    labels = {"bundle_label_selector": [selector]} if selector else {}
    with_constants = tune.with_parameters(run_trial, constants=trial_constants(sweep, experiment))
    # A PlacementGroupFactory, not a dict: Tune reads keys such as "memory" in a dict itself.
    return tune.with_resources(
        with_constants, tune.PlacementGroupFactory([trial_bundle(sweep)], **labels)
    )


def trial_name(trial) -> str:
    """Tune's trial name and folder: `<task>-<signature or group label>-<sample>` (`Q1-all-0`,
    `Q3-m2_tau1_eps0.055_lmin2-2`), read from the trial's config."""
    return TrialPoint.from_config(trial.config).name


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


def guard(sweep: SweepConfig, lease_check: Callable[[], None] | None = None) -> SweepGuard:
    hint = "Free what holds them, then run the same command with --resume."
    return SweepGuard(
        sweep.watchdog.interval_s,
        sweep.watchdog.stall_timeout_s,
        hint,
        silent_trial_timeout_s=sweep.watchdog.silent_trial_timeout_s,
        lease_check=lease_check,
    )


def build_tuner(
    sweep: SweepConfig,
    points: Sequence[TrialPoint],
    storage: str,
    callbacks: Sequence[Any] = (),
    lease_check: Callable[[], None] | None = None,
):
    """The sweep's Tuner over its planned trials (`mmse_model/sweeps/plan.py`), in order;
    `callbacks`: Tune callbacks besides TensorBoard's and the guard; `lease_check`: the
    driver lock's check, run by the guard in every step of Tune's loop."""
    from ray import tune
    from ray.tune import CLIReporter
    from ray.tune.logger import TBXLoggerCallback
    from ray.tune.search.basic_variant import BasicVariantGenerator

    base = sweep.base_config()
    reporter = CLIReporter(
        parameter_columns={
            "trial/task": "task",
            "trial/group/label": "signatures",
            "trial/sample": "sample",
            **{f"trial/hp/{k}": k.split(".")[-1] for k in sorted(sweep.search_space)},
        },
        metric_columns={"epoch": "epoch", MONITOR: MONITOR, "val/rmse": "val/rmse"},
        max_report_frequency=10,
    )
    return tune.Tuner(
        trainable(sweep, join(storage, sweep.name)),
        # One grid axis of the planned points: Tune draws nothing, and runs them in order.
        param_space={"trial": tune.grid_search([p.to_config() for p in points])},
        tune_config=tune.TuneConfig(
            metric=MONITOR,
            mode="min",
            num_samples=1,
            trial_name_creator=trial_name,
            trial_dirname_creator=trial_name,
            scheduler=PerTaskASHA(
                max_t=sweep.max_t(),
                grace_period=sweep.asha.grace_period,
                reduction_factor=sweep.asha.reduction_factor,
                brackets=sweep.asha.brackets,
            ),
            # A SearchGenerator ignores TuneConfig.max_concurrent_trials (Tune warns and runs
            # every trial at once): the limit goes to the generator itself.
            search_alg=BasicVariantGenerator(max_concurrent=max_concurrent_trials(sweep, base)),
        ),
        run_config=tune.RunConfig(
            name=sweep.name,
            storage_path=storage,
            callbacks=[TBXLoggerCallback(), guard(sweep, lease_check), *callbacks],
            progress_reporter=reporter,
            failure_config=tune.FailureConfig(max_failures=base.ray.max_failures),
        ),
    )


# --- results --------------------------------------------------------------------------------


def collect_rows(result_grid, constants: TrialConstants) -> list[TrialRow]:
    """One row per (signature, trial), read from the newest checkpoint of each trial that
    still loads; the task, group, sample and hyper-parameters are the trial's config's."""
    train_storage = constants.train_storage

    def load(path: str):
        return load_checkpoint(uri_of(train_storage, path))

    rows: list[TrialRow] = []
    results = [(trial_id_of(r), r) for r in result_grid]
    for trial_id, result in sorted(results, key=lambda item: item[0]):
        point = TrialPoint.from_config(result.config or {})
        training = apply_sample(Config.from_dict(constants.base), point.hyperparameters)
        history = trial_history(result, partial(stored_checkpoints, join(train_storage, trial_id)))
        chosen = choose_checkpoint(history, load)
        if chosen is not None:
            chosen = (uri_of(train_storage, chosen[0]), chosen[1])
        rows += signature_rows(
            trial_id,
            point.task,
            point.group.label,
            list(point.group.signatures),
            point.sample,
            point.hyperparameters,
            history,
            chosen,
            max_epochs=training.training.epochs,
            errored=result.error is not None,
        )
    return rows


def trial_id_of(result) -> str:
    return (result.metrics or {}).get("trial_id") or Path(result.path).name


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
    sweep: SweepConfig,
    resume: bool = False,
    address: str | None = None,
    phases: Phases | None = None,
) -> Summary:
    """Run (or resume) the sweep, then score each task's winner and write the results. One
    driver per experiment: the lock is taken before anything is written, and released at
    the end (mmse_model/sweeps/lock.py)."""
    from mmse_model.sweeps.lock import DriverLock, print_notes

    storage = absolute(sweep.storage)
    experiment = join(storage, sweep.name)
    signatures, tasks = discover(sweep.data_root, sweep.signatures, sweep.tasks)
    check_evaluation_inputs(sweep, signatures)
    lock = DriverLock(experiment)
    with storage_errors(experiment, "taking the driver lock"):
        lock.acquire()
    try:
        print_notes(lock)
        return _run_locked(
            sweep,
            resume,
            address,
            storage,
            experiment,
            list(signatures),
            list(tasks),
            lock.check,
            phases or Phases(),
        )
    finally:
        try:
            lock.release()
        # The results stand; a lock left behind names a process that has ended.
        except (OSError, InputError, RunFailure) as exc:
            print(
                f"mmse: warning: {lock.where}: could not release the driver lock "
                f"({first_line(exc)})",
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
    lease_check: Callable[[], None],
    phases: Phases,
) -> Summary:
    """The sweep under its driver lock: its record, Tune's run, then the Ray-free end
    (`mmse_model/sweeps/finish.py`). `lease_check` raises LeaseLost once this driver no
    longer holds the lock: it runs before the record and the results are written, and in
    every step of Tune's loop."""
    record = open_record(sweep, resume, experiment, signatures, tasks, lease_check)
    connect(address, sweep.base_config())
    # Credentials stay in each node's environment, out of runtime envs (logged, shown).
    ray_internals.keep_credentials_out_of_trial_envs()
    tuner = (
        restore_tuner(sweep, experiment, lease_check)
        if resume
        else new_tuner(sweep, record, storage, lease_check)
    )
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with phases.timed("trials"):
        result_grid = run_tuner(tuner)
    check_every_trial_ended(result_grid, record, experiment)
    # The results score today's files: they must be the data the sweep trained on.
    if data_fingerprint(sweep.data_root) != record.data_fingerprint:
        raise InputError(
            f"{sweep.data_root}: the data changed since the sweep started (its fingerprint differs "
            f"from {redact(join(experiment, RECORD_NAME))}'s); no results written: restore the "
            "data the sweep trained on and run the same command with --resume, or start a new "
            "sweep"
        )
    rows = collect_rows(result_grid, trial_constants(sweep, experiment))
    return finish_sweep(
        sweep,
        experiment,
        rows,
        load_checkpoint,
        data_fingerprint=record.data_fingerprint,
        started=started,
        run_repeats=partial(run_repeats_on_ray, stall_timeout_s=sweep.watchdog.stall_timeout_s),
        deliver=partial(deliver, load=load_checkpoint),
        before_write=lease_check,
        phases=phases,
    )


def open_record(
    sweep: SweepConfig,
    resume: bool,
    experiment: str,
    signatures: list[str],
    tasks: list[str],
    before_write: Callable[[], None] = lambda: None,
) -> SweepRecord:
    """The sweep's record: written at its first start (`before_write()` first: the driver
    lock's check); on `--resume` read and compared with today's config and data (a changed
    sweep is refused, exit status 2)."""
    from ray import tune

    groups = signature_groups(signatures, sweep.signatures_per_trial)
    samples = hyperparameter_samples(sweep.search_space, sweep.samples, sweep.search_seed)
    today = make_record(
        sweep,
        signatures,
        tasks,
        len(plan_trials(tasks, groups, samples)),
        samples,
        data=data_fingerprint(sweep.data_root),
    )
    where = join(experiment, RECORD_NAME)
    if not resume:
        # Tune would reuse the folder and append to each trial's result.json: two sweeps mixed.
        with storage_errors(experiment, "looking for an earlier sweep"):
            if tune.Tuner.can_restore(experiment):
                raise InputError(
                    f"{experiment}: holds a sweep already; continue it with --resume, or give "
                    "the sweep another name or --storage"
                )
        before_write()
        write_location(where, today.to_json())
        return today
    with storage_errors(experiment, "looking for the sweep to resume"):
        if not tune.Tuner.can_restore(experiment):
            raise InputError(f"{experiment}: no sweep to resume there")
        try:
            text = read_text(where)
        except FileNotFoundError:
            raise InputError(
                f"{redact(where)}: missing, so this sweep was started by an earlier version of "
                "mmse; it cannot be resumed by this one: start it again (another name or --storage)"
            ) from None
    recorded = read_record(redact(where), text)
    check_same_sweep(redact(where), recorded, today)
    return recorded


def new_tuner(
    sweep: SweepConfig,
    record: SweepRecord,
    storage: str,
    lease_check: Callable[[], None] | None = None,
):
    """A Tuner over the trials the record plans, in order."""
    groups = signature_groups(list(record.signatures), sweep.signatures_per_trial)
    points = plan_trials(list(record.tasks), groups, list(record.samples))
    return build_tuner(sweep, points, storage, lease_check=lease_check)


def restore_tuner(
    sweep: SweepConfig, experiment: str, lease_check: Callable[[], None] | None = None
):
    """The interrupted sweep's Tuner, with today's watchdog and this driver's lease check:
    Tune restores the callbacks pickled at the first start, and a resumed driver applies
    today's watchdog settings."""
    from ray import tune

    with storage_errors(experiment, "restoring the sweep"):
        tuner = tune.Tuner.restore(
            experiment,
            trainable=trainable(sweep, experiment),
            resume_unfinished=True,
            resume_errored=True,
        )
    ray_internals.replace_callback(tuner, SweepGuard, guard(sweep, lease_check))
    return tuner


def run_tuner(tuner):
    """Tune's run with the classic progress table; then the watchdog's last pass over
    placement groups of trials that ended in Tune's final step."""
    import ray

    # The CLIReporter table (the columns chosen in build_tuner) is the live progress table.
    ray_internals.use_classic_progress_table()
    result_grid = tuner.fit()
    for item in release_orphaned_groups(ray.get_runtime_context().get_job_id()):
        print(
            f"watchdog: released placement group {item.group_id[:12]} left by {item.creator}",
            file=sys.stderr,
        )
    return result_grid


def check_every_trial_ended(result_grid, record: SweepRecord, experiment: str) -> None:
    """Tune returns normally after Ctrl-C (it handles SIGINT itself) and marks the trials it
    cut off TERMINATED: results of a sweep that did not end would read as final, so none are
    written. A trial that ended (its function returned, or the scheduler stopped it) has
    `done` in its last result; one that failed for good has an error. Counted from the
    sweep's record (its first start), never from today's YAML."""
    ended = sum(
        1 for r in result_grid if r.error is not None or (r.metrics or {}).get("done") is True
    )
    if ended < record.n_trials:
        raise SweepInterrupted(
            f"{experiment}: the sweep stopped with {ended} of {record.n_trials} trials ended; no "
            "results written; its state is kept: run the same command with --resume to finish it"
        )


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
    phases = Phases()
    try:
        run_sweep(sweep, args.resume, args.address, phases)
    except StorageUnavailable as exc:
        raise StorageUnavailable(f"{exc}; {RESUME_HINT}") from None
    except SweepTrialsFailed:
        if after is not None:
            after(experiment)
        raise
    if after is not None:
        with phases.timed("dashboard"):
            after(experiment)
    print(phases.line(), flush=True)
    return experiment


if __name__ == "__main__":  # pragma: no cover
    # Run through the package module, so pickled classes and functions (Tune's saved
    # experiment state) name `ray_jobs.sweep`, not `__main__`, and a later resume finds them.
    from ray_jobs.sweep import main as _main

    sys.exit(_main())
