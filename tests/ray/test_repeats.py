"""The procedure estimate's outer repeats as Ray tasks give the numbers of the in-process
runner: the same signatures chosen and the same test RMSEs, repeat by repeat, in order.
(Where they run on a cluster whose head offers no CPU: tests/ray/test_multinode.py.)"""

from __future__ import annotations

from dataclasses import replace

import pytest

from mmse_model.core.config import Config
from mmse_model.sweeps.repeats import IN_PROCESS, repeat_runs, run_repeats_in_process
from ray_jobs.repeats import run_repeats_on_ray
from tests.ray.conftest import SIG, WEAK_SIG

pytestmark = pytest.mark.ray


def test_ray_repeats_give_the_in_process_numbers(ray_session, toy_root):
    import ray

    config = Config().with_values({"split.folds": 3, "training.epochs": 8, "training.lr": 0.01,
                                   "ray.cpus_per_worker": 0.5})
    runs = [*repeat_runs(toy_root, "Q1", [SIG, WEAK_SIG], config, 2),
            *repeat_runs(toy_root, "Q3", [SIG, WEAK_SIG], config, 1)]
    here = run_repeats_in_process(runs)
    on_ray = run_repeats_on_ray(runs)
    # Deterministic runs: equal numbers, not close ones, and in the runs' order.
    assert [replace(r, ran_on=IN_PROCESS) for r in on_ray] == here
    assert len({r.rmse for r in here}) == 3 and all(r.signature == SIG for r in here)  # three different splits
    # Each ran as a Ray task on the one node of this cluster, not in this process.
    assert {r.ran_on for r in on_ray} == {ray.get_runtime_context().get_node_id()}
    assert {r.ran_on for r in here} == {IN_PROCESS}
