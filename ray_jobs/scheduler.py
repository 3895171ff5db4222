"""ASHA within each task: one `AsyncHyperBandScheduler` (one set of brackets) per task.

Validation losses of different tasks differ in scale and difficulty; one pool would stop
the hard task's trials because of the easy task's losses. `PerTaskASHA` routes every trial
to the ASHA of its task (its config's `trial.task`), keeping its own trial-to-task map and
calling only each ASHA's public `on_trial_*` methods, with the controller Tune handed it.
"""

from __future__ import annotations

from typing import Any

from ray.tune.schedulers import AsyncHyperBandScheduler, FIFOScheduler

from mmse_model.sweeps.plan import TrialPoint


class PerTaskASHA(FIFOScheduler):
    def __init__(
        self,
        time_attr: str = "epoch",
        max_t: int = 100,
        grace_period: int = 5,
        reduction_factor: float = 3,
        brackets: int = 1,
    ):
        super().__init__()
        self.asha_args = {
            "time_attr": time_attr,
            "max_t": max_t,
            "grace_period": grace_period,
            "reduction_factor": reduction_factor,
            "brackets": brackets,
        }
        self.task_metric: str | None = None
        self.task_mode: str | None = None
        self.by_task: dict[str, AsyncHyperBandScheduler] = {}
        self.task_of: dict[str, str] = {}  # trial id -> task
        self.added: set[str] = set()  # trial ids their task's ASHA is tracking

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        if (self.task_metric and metric) or (self.task_mode and mode):
            return False
        self.task_metric, self.task_mode = metric or self.task_metric, mode or self.task_mode
        return True

    def _asha(self, tune_controller, trial) -> AsyncHyperBandScheduler:
        task = self.task_of.setdefault(trial.trial_id, TrialPoint.from_config(trial.config).task)
        if task not in self.by_task:
            self.by_task[task] = AsyncHyperBandScheduler(
                metric=self.task_metric, mode=self.task_mode, **self.asha_args
            )
        asha = self.by_task[task]
        if trial.trial_id not in self.added:  # new, or restored by Tuner.restore
            asha.on_trial_add(tune_controller, trial)
            self.added.add(trial.trial_id)
        return asha

    def on_trial_add(self, tune_controller, trial) -> None:
        self._asha(tune_controller, trial)

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        return self._asha(tune_controller, trial).on_trial_result(tune_controller, trial, result)

    def on_trial_complete(self, tune_controller, trial, result: dict | None) -> None:
        if trial.trial_id in self.added:
            self._asha(tune_controller, trial).on_trial_complete(
                tune_controller, trial, result or {}
            )
            self.added.discard(trial.trial_id)

    def on_trial_remove(self, tune_controller, trial) -> None:
        if trial.trial_id in self.added:
            self._asha(tune_controller, trial).on_trial_remove(tune_controller, trial)
            self.added.discard(trial.trial_id)

    def on_trial_error(self, tune_controller, trial) -> None:
        self.on_trial_remove(tune_controller, trial)

    def debug_string(self) -> str:
        return "\n".join(
            f"{task}: {asha.debug_string()}" for task, asha in sorted(self.by_task.items())
        )
