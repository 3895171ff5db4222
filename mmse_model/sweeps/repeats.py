"""The procedure estimate's outer repeats: what one repeat is, and who runs a list of them.

One repeat is one packed training run (every signature of a task, the winning
hyper-parameters, a fresh outer split: `split.seed` other than the sweep's), the signature
chosen on that split's inner folds and the choice scored on its test subjects. Runs are
deterministic for a given config, so a repeat gives the same numbers wherever it runs.

`summarise_sweep` hands its repeats to a `RepeatRunner`, which maps a list of runs to their
results in the same order: `run_repeats_in_process` here (unit tests, the Ray-free path),
or `ray_jobs.repeats.run_repeats_on_ray`, one Ray task per repeat placed like a Train worker
(on cluster.yaml, the GPU workers, never the CPU-less head that runs the sweep's driver).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mmse_model.core.config import Config
from mmse_model.training.callbacks import NullReporter
from mmse_model.training.held_out import test_predictions
from mmse_model.training.loop import RunSpec, load_run_data, train_run

IN_PROCESS = "in-process"


@dataclass(frozen=True)
class RepeatResult:
    """What one repeat sends back (by value: a few numbers, no weights, no files)."""

    signature: str  # chosen on the repeat's inner folds (lowest best validation loss)
    rmse: float  # that signature's fold ensemble on the repeat's test subjects, in points
    ran_on: str = IN_PROCESS  # where it ran: a Ray node id, or "in-process"


# Runs -> their results, in the runs' order.
RepeatRunner = Callable[[list[RunSpec]], list[RepeatResult]]


def repeat_runs(data_root: str | Path, task: str, signatures: list[str], config: Config,
                repeats: int) -> list[RunSpec]:
    """The task's repeats: split seeds split.seed + 1, + 2, ... (never the sweep's own)."""
    return [RunSpec(str(data_root), tuple(signatures), task,
                    config.with_values({"split.seed": config.split.seed + 1 + r}))
            for r in range(repeats)]


def run_repeat(run: RunSpec, device: str = "cpu") -> RepeatResult:
    """Train the run, choose its signature on the inner folds, score it on the test subjects."""
    outcome = train_run(run, NullReporter(), device=device)
    best = min(outcome.checkpoint.states, key=lambda s: s.best_val_loss)
    group, split = load_run_data(run)
    _, y_true, y_pred, _ = test_predictions(outcome.checkpoint, group.task_data(best.signature), split,
                                            best.signature)
    return RepeatResult(best.signature, float(np.sqrt(np.mean((y_true - y_pred) ** 2))))


def run_repeats_in_process(runs: list[RunSpec]) -> list[RepeatResult]:
    """The runner without Ray: one repeat after the other, in this process, on the CPU."""
    return [run_repeat(run) for run in runs]


def procedure_estimate(results: list[RepeatResult]) -> dict[str, Any]:
    """A task's `procedure_estimate` entry in summary.json."""
    values = np.array([r.rmse for r in results])
    return {"repeats": len(results), "rmse_mean": float(values.mean()),
            "rmse_sd": float(values.std(ddof=1)) if len(results) > 1 else 0.0,
            "rmse_values": [r.rmse for r in results], "signatures_chosen": [r.signature for r in results],
            "ran_on": [r.ran_on for r in results]}
