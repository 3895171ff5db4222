"""The end of a sweep, once Tune has returned and its rows are read: score the winners, write
the results, print the report, deliver the bundle. Ray-free: `ray_jobs/sweep.py` hands over
the rows, where the nested estimate's repeats run, and what writes the bundle (the bundle
package sits above this one: `mmse_model.bundle.write.deliver`).
"""

from __future__ import annotations

import platform
import subprocess
import sys
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from mmse_model.core.errors import RunFailure
from mmse_model.sweeps.config import SweepConfig
from mmse_model.sweeps.looks import Look, digest, now, record_look
from mmse_model.sweeps.nested import NestedSearch, RepeatRunner
from mmse_model.sweeps.phases import Phases
from mmse_model.sweeps.predictions import SUBTOTAL
from mmse_model.sweeps.record import trial_config
from mmse_model.sweeps.report import failure_line, format_summary
from mmse_model.sweeps.rules import TrialRow
from mmse_model.sweeps.summary import read_groups, summarise_sweep, write_results
from mmse_model.sweeps.summary_schema import Provenance, Summary
from mmse_model.sweeps.transfer import data_sites
from mmse_model.training.checkpoint import CheckpointPayload


class SweepTrialsFailed(RunFailure):
    """Every trial ended, but some failed for good: results are written (the failed trials'
    rows marked), the exit status says the sweep is not whole, and `--resume` runs the
    failed trials again. Carries the summary that was written."""

    def __init__(self, message: str, summary: Summary):
        super().__init__(message)
        self.summary = summary


def finish_sweep(
    sweep: SweepConfig,
    experiment: str,
    rows: list[TrialRow],
    load: Callable[[str], CheckpointPayload],
    *,
    data_fingerprint: str,
    started: str,
    run_repeats: RepeatRunner,
    deliver: Callable[[Summary, Path, str], str] | None = None,
    before_write: Callable[[], None] = lambda: None,
    phases: Phases | None = None,
) -> Summary:
    """Score the sweep's winners and write its results into `experiment`; then, for a whole
    sweep, `deliver(summary, data_root, experiment)` writes the bundle and says where.
    `before_write()` runs before each of those writes (the looks log, the results, the
    bundle): the driver lock's check, which raises once this driver lost the sweep.
    `phases` records where the time went (sweeps/phases.py); the summary's provenance
    carries what it measured before the results were written."""
    phases = phases or Phases()
    data_root = Path(sweep.data_root).resolve()
    evaluation = sweep.evaluation
    summary, predictions = summarise_sweep(
        sweep.name,
        rows,
        data_root,
        load,
        nested=NestedSearch.of_sweep(sweep),
        groups_file=evaluation.groups_file,
        seed=evaluation.bootstrap_seed,
        provenance={**provenance(sweep, started), "data_fingerprint": data_fingerprint},
        run_repeats=run_repeats,
        interval_level=evaluation.interval_level,
        primary_comparator=evaluation.primary_comparator,
        integer_sets=evaluation.integer_sets,
        transfer_by=evaluation.transfer_by,
        phases=phases,
    )
    with phases.timed("results"):
        before_write()
        timed = (summary.provenance or Provenance()).model_copy(
            update={"phases": phases.recorded()}
        )
        summary = summary.model_copy(
            update={
                "looks": record_look(experiment, look_of(summary, sweep, predictions)),
                "provenance": timed,
            }
        )
        text = format_summary(summary)
        before_write()
        write_results(experiment, rows, summary, text, predictions)
    print(text)
    print(
        f"results: {experiment}/trials.csv, summary.json; TensorBoard: tensorboard --logdir "
        f"{experiment}"
    )
    if summary.failed_trials:
        # Written, and marked, but not a finished sweep: exit status 1, and --resume reruns them.
        # No bundle: a model delivered from a sweep that did not finish would read as final.
        raise SweepTrialsFailed(f"{experiment}: {failure_line(summary)}", summary)
    if summary.tasks and deliver is not None:
        # What leaves the sweep: the winners as one bundle (weights, manifest, model card).
        before_write()
        with phases.timed("bundle"):
            print(deliver(summary, data_root, experiment))
    sys.stdout.flush()
    return summary


def check_evaluation_inputs(sweep: SweepConfig, signatures: Sequence[str]) -> None:
    """Read what the sweep's end will read besides its trials, before the first trial: the
    labels file, and with `transfer_by` every subject's site (an error found here costs
    seconds; found after the trials, a night's sweep)."""
    evaluation = sweep.evaluation
    if evaluation.groups_file:
        read_groups(evaluation.groups_file)
    nested = NestedSearch.of_sweep(sweep)
    if evaluation.transfer_by and nested is not None:
        data_sites(
            sweep.data_root, signatures[0], evaluation.groups_file, evaluation.transfer_by, nested
        )


def look_of(summary: Summary, sweep: SweepConfig, predictions: list[dict[str, Any]]) -> Look:
    """This scoring as the looks log records it."""
    estimate = next((t.estimate for t in summary.tasks.values() if t.estimate), None)
    held_out = sorted({p["subject_id"] for p in predictions if p["task"] != SUBTOTAL})
    return Look(
        time=now(),
        outer_folds=estimate.partition if estimate is not None else None,
        held_out_split=digest(held_out) if held_out else None,
        config=digest({"trials": trial_config(sweep), "evaluation": sweep.evaluation.to_dict()}),
    )


def provenance(sweep: SweepConfig, started: str) -> dict[str, Any]:
    """What produced these results: config, data, code version, library versions, times."""
    commit = None
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        commit = done.stdout.strip() if done.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired):
        pass
    return {
        "sweep_config": sweep.to_dict(),
        "data_root": str(Path(sweep.data_root).resolve()),
        "git_commit": commit,
        "versions": {
            "ray": _version("ray"),
            "torch": _version("torch"),
            "python": platform.python_version(),
        },
        "started": started,
        "ended": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"
