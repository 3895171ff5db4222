"""Every Ray internal the project relies on is where ray_jobs/ray_internals.py expects it.

An upgrade that moves one fails here, naming the Ray symbol, instead of deep in a sweep.
"""

from __future__ import annotations

import pytest

from ray_jobs import ray_internals

pytestmark = pytest.mark.ray


@pytest.mark.parametrize("module, attribute", ray_internals.SYMBOLS, ids=lambda v: v)
def test_symbol_is_where_we_expect_it(module, attribute):
    try:
        ray_internals.resolve(module, attribute)
    except (ImportError, AttributeError) as exc:
        pytest.fail(f"Ray moved {module}.{attribute}: {exc}")


def test_environment_variables_are_the_ones_train_reads():
    constants = "ray.train.v2._internal.constants"
    assert ray_internals.resolve(constants, "HEALTH_CHECK_INTERVAL_S_ENV_VAR") == ray_internals.HEALTH_CHECK_ENV
    assert ray_internals.resolve(constants, "ENABLE_PREEMPTION_WATCHER_ENV_VAR") == ray_internals.PREEMPTION_WATCHER_ENV


def test_gcs_tables_read_and_a_group_is_removed_by_id(ray_session):
    import ray
    from ray.util.placement_group import placement_group

    job = ray.get_runtime_context().get_job_id()
    group = placement_group([{"CPU": 0.01}])
    ray.get(group.ready())
    record = next(g for g in ray_internals.placement_groups(job) if g.group_id == group.id.hex())
    # Made by this driver: no creating actor; a job id; its bundle as asked.
    assert (record.state, record.creator_actor_id, record.job_id) == ("CREATED", "", job)
    assert record.resources() == {"CPU": 0.01}
    ray_internals.remove_group(record.group_id)
    import time

    def state() -> str:
        return next(g for g in ray_internals.placement_groups(job) if g.group_id == record.group_id).state

    deadline = time.monotonic() + 300  # a hang guard: removal is asynchronous in the GCS
    while state() != "REMOVED" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert state() == "REMOVED", "the group was not removed"

    @ray.remote(num_cpus=0)
    class Probe:
        def ping(self) -> str:
            return ray.get_runtime_context().get_worker_id()

    probe = Probe.remote()
    ray.get(probe.ping.remote())
    me = ray.get_runtime_context().get_worker_id()
    mine = [a for a in ray_internals.actors(job, "ALIVE") if a.class_name.endswith("Probe")]
    assert len(mine) == 1 and mine[0].owner_worker_id == me and mine[0].pid > 0
    assert ray_internals.actor(mine[0].actor_id).state == "ALIVE"
    ray.kill(probe)


def test_tune_no_longer_copies_credentials_into_trial_envs():
    propagated = ray_internals.resolve("ray.tune.execution.class_cache", "ENV_VARS_TO_PROPAGATE")
    assert isinstance(propagated, set) and "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S" in propagated
    ray_internals.keep_credentials_out_of_trial_envs()
    assert not set(ray_internals.CREDENTIAL_ENV_VARS) & propagated
    assert "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S" in propagated  # the rest still travels
