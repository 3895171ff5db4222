"""PerTaskASHA: a trial is compared only with trials of its own task (no cluster needed)."""

from __future__ import annotations

import pytest
from ray.tune.schedulers import AsyncHyperBandScheduler, TrialScheduler

from mmse_model.sweeps.plan import SignatureGroup, TrialPoint
from ray_jobs.scheduler import PerTaskASHA

pytestmark = pytest.mark.ray


class FakeTrial:
    def __init__(self, trial_id: str, task: str):
        group = SignatureGroup("m2_tau1_eps0.055_lmin2", ("m2_tau1_eps0.055_lmin2",))
        self.trial_id = trial_id
        self.config = {"trial": TrialPoint(task, group, 0, {}).to_config()}


def _feed(scheduler, trials_and_losses):
    decisions = {}
    for trial, loss in trials_and_losses:
        scheduler.on_trial_add(None, trial)
    for trial, loss in trials_and_losses:
        decisions[trial.trial_id] = scheduler.on_trial_result(
            None, trial, {"epoch": 2, "val/loss": loss}
        )
    return decisions


def _trials():
    # Q1 is easy (small losses), Q3 hard (large losses); each task has a good and a bad trial.
    return [
        (FakeTrial("q1_good", "Q1"), 0.01),
        (FakeTrial("q1_bad", "Q1"), 0.02),
        (FakeTrial("q3_good", "Q3"), 5.0),
        (FakeTrial("q3_bad", "Q3"), 9.0),
    ]


def test_hard_task_is_not_stopped_by_easy_task_losses():
    scheduler = PerTaskASHA(time_attr="epoch", max_t=10, grace_period=2, reduction_factor=2)
    assert scheduler.set_search_properties("val/loss", "min")
    decisions = _feed(scheduler, _trials())
    # The best Q3 trial continues although its loss is far above every Q1 loss; within each
    # task the worse trial of the rung is stopped.
    assert decisions["q3_good"] == TrialScheduler.CONTINUE
    assert decisions["q1_good"] == TrialScheduler.CONTINUE
    assert decisions["q1_bad"] == TrialScheduler.STOP
    assert decisions["q3_bad"] == TrialScheduler.STOP
    assert set(scheduler.by_task) == {"Q1", "Q3"}


def test_one_pool_would_have_stopped_it():
    # The control: a single ASHA over both tasks stops the hard task's best trial.
    pooled = AsyncHyperBandScheduler(
        time_attr="epoch",
        metric="val/loss",
        mode="min",
        max_t=10,
        grace_period=2,
        reduction_factor=2,
    )
    assert _feed(pooled, _trials())["q3_good"] == TrialScheduler.STOP
