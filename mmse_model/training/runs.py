"""One training run from the command line (`mmse train`), whatever runs it.

The application hands `train_and_report` a runner: `train_in_process` here, or the Ray
Train runner of `ray_jobs/train.py`. Either returns the run's final checkpoint payload;
everything after that (the model bundle, the test scores, `result.json`) is this module's,
so both write one `result.json` layout.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from mmse_model.core import atomic, outputs
from mmse_model.core.errors import InputError
from mmse_model.core.schema import Schema
from mmse_model.training.callbacks import DirectoryReporter, FileLogger, TensorBoardLogger
from mmse_model.training.checkpoint import CheckpointPayload, save_checkpoint
from mmse_model.training.held_out import evaluate_on_test
from mmse_model.training.loop import RunSpec, load_run_data, train_run

# (run, output folder) -> (final checkpoint payload, where the runner keeps its checkpoints)
Runner = Callable[[RunSpec, Path], tuple[CheckpointPayload, str]]


class RunResult(Schema):
    """`result.json` of `mmse train`, the same for every runner."""

    runner: str  # "in-process" or "ray"
    signature: str
    task: str
    score_range: list[float]
    epochs_run: int
    best_epoch: int
    stop_reason: str
    # Validation metrics at the best epoch (mean and sd over folds). The same folds chose
    # the epoch (early stopping, schedule), so these select; they do not estimate.
    selection: dict[str, float]
    test: dict[str, float | int]  # the held-out test subjects, in points (n: how many)
    test_subjects: list[str]
    n_subjects: int
    train_seconds: float
    checkpoints: str  # where the runner kept its checkpoints
    config: dict


def train_and_report(run: RunSpec, out: Path, runner: Runner, runner_name: str) -> RunResult:
    """Train one (signature, task), keep the model in `out/model`, score it on the test
    subjects and write `out/result.json`."""
    if len(run.signatures) != 1:
        raise InputError("mmse train takes one signature (--sig)")
    # Written into, not replaced: a new folder or an existing one, never the data or in it.
    outputs.check_output_folder(out, [("--data", run.data_root)], command="mmse train")
    if (out / "result.json").exists():
        raise InputError(f"{out}: already holds a run (result.json); choose another --out")
    group, split = load_run_data(run)  # bad data is an InputError here, before any work
    started = time.perf_counter()
    payload, checkpoints = runner(run, out)
    seconds = time.perf_counter() - started
    save_checkpoint(out / "model", payload)
    signature = run.signatures[0]
    state = payload.state(signature)
    result = RunResult(
        runner=runner_name,
        signature=signature,
        task=run.task,
        score_range=list(payload.score_range),
        epochs_run=state.stop_epoch or payload.epoch,
        best_epoch=state.best_epoch,
        stop_reason=payload.stop_reason,
        selection=dict(state.best_metrics),
        test=evaluate_on_test(payload, group.task_data(signature), split),
        test_subjects=list(split.test_subjects),
        n_subjects=len(group.subjects),
        train_seconds=seconds,
        checkpoints=checkpoints,
        config=run.config.to_dict(),
    )
    atomic.write_json(out / "result.json", result.to_dict())
    return result


def train_in_process(device: str = "cpu") -> Runner:
    """The runner of `mmse train --no-ray`: this process, checkpoints and logs in `out`."""

    def run_here(run: RunSpec, out: Path) -> tuple[CheckpointPayload, str]:
        outcome = train_run(
            run,
            DirectoryReporter(out),
            device=device,
            extra_callbacks=[TensorBoardLogger(out / "tensorboard"), FileLogger(out / "train.log")],
        )
        return outcome.checkpoint, str(out / "checkpoints")

    return run_here
