"""The nested estimate's outer repeats as Ray tasks give the numbers of the in-process
runner: the same candidates' validation losses, the same choices and the same test RMSEs for
the network and every baseline, repeat by repeat, in order. (Where they run on a cluster
whose head offers no CPU: tests/ray/test_multinode.py.)"""

from __future__ import annotations

from dataclasses import replace

import pytest

from mmse_model.core.config import Config
from mmse_model.sweeps.nested import IN_PROCESS, NETWORK, NestedSearch, run_repeats_in_process
from ray_jobs.repeats import run_repeats_on_ray
from tests.ray.conftest import SIG, WEAK_SIG

pytestmark = pytest.mark.ray


def test_ray_repeats_give_the_in_process_numbers(ray_session, toy_root):
    import ray

    base = Config().with_values(
        {"split.folds": 3, "training.epochs": 8, "ray.cpus_per_worker": 0.5}
    )
    search = NestedSearch(
        base, {"training.lr": {"loguniform": [0.003, 0.03]}}, samples=2, repeats=2
    )
    # Two outer folds of repeat 0, one of repeat 1, and one of another task.
    q1 = search.repeats_of(toy_root, "Q1", [SIG, WEAK_SIG])
    repeats = [*q1[:2], q1[5], search.repeats_of(toy_root, "Q3", [SIG, WEAK_SIG])[0]]
    here = run_repeats_in_process(repeats)
    on_ray = run_repeats_on_ray(repeats)
    # Deterministic runs: equal numbers, not close ones, and in the repeats' order.
    assert [replace(r, ran_on=IN_PROCESS) for r in on_ray] == here
    assert all(len(r.candidates) == 4 for r in here)  # 2 samples x 2 signatures searched in each
    assert len({r.models[NETWORK].rmse for r in here}) == 4  # four different outer folds or tasks
    # Each sends back its outer fold's subjects and every model's predictions of them.
    assert all(set(r.predictions) == set(r.models) and r.subjects for r in here)
    assert all(r.models[NETWORK].signature == SIG for r in here)
    # Each ran as a Ray task on the one node of this cluster, not in this process.
    assert {r.ran_on for r in on_ray} == {ray.get_runtime_context().get_node_id()}
    assert {r.ran_on for r in here} == {IN_PROCESS}
