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
    assert (
        ray_internals.resolve(constants, "HEALTH_CHECK_INTERVAL_S_ENV_VAR")
        == ray_internals.HEALTH_CHECK_ENV
    )
    assert (
        ray_internals.resolve(constants, "ENABLE_PREEMPTION_WATCHER_ENV_VAR")
        == ray_internals.PREEMPTION_WATCHER_ENV
    )
    assert (
        ray_internals.resolve(constants, "WORKER_GROUP_START_TIMEOUT_S_ENV_VAR")
        == ray_internals.WORKER_GROUP_START_TIMEOUT_ENV
    )
    # The trial actor hands each of them to the Train controller it starts.
    propagated = ray_internals.resolve(constants, "ENV_VARS_TO_PROPAGATE")
    assert {
        ray_internals.HEALTH_CHECK_ENV,
        ray_internals.PREEMPTION_WATCHER_ENV,
        ray_internals.WORKER_GROUP_START_TIMEOUT_ENV,
    } <= propagated


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
        return next(
            g for g in ray_internals.placement_groups(job) if g.group_id == record.group_id
        ).state

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


# --- Tune mechanisms without a public equivalent ------------------------------------------------


class _Marker(ray_internals.TrialStopHook):
    """Writes `<marker_dir>/<trial id>` when Tune ends the trial."""

    def on_trial_stop(self) -> None:
        from pathlib import Path

        Path(self.config["marker_dir"], self.trial_id).write_text("stopped")


def _quick_trial(config):
    return {"score": 1.0}


def test_mixins_come_before_function_trainable_in_the_trial_actor_class():
    """`__mixins__` through `wrap_function`: the mixin's `cleanup` is the one Tune calls, and
    Tune's own `FunctionTrainable.cleanup` is next in line (the hook's `super()`)."""
    from ray import tune

    wrap_function = ray_internals.resolve("ray.tune.trainable.function_trainable", "wrap_function")
    function_trainable = ray_internals.resolve(
        "ray.tune.trainable.function_trainable", "FunctionTrainable"
    )

    def trial(config):
        return None

    ray_internals.mix_into_trial_actor(trial, _Marker)
    for fn in (trial, tune.with_resources(trial, tune.PlacementGroupFactory([{"CPU": 0.05}]))):
        actor_class = wrap_function(fn)
        mro = actor_class.__mro__
        assert (
            mro.index(_Marker)
            < mro.index(ray_internals.TrialStopHook)
            < mro.index(function_trainable)
        )
        assert actor_class.cleanup is ray_internals.TrialStopHook.cleanup
        after_hook = mro[mro.index(ray_internals.TrialStopHook) + 1 :]
        assert next(c for c in after_hook if "cleanup" in vars(c)) is function_trainable


def test_the_stop_hook_runs_when_tune_ends_each_trial(ray_session, tmp_path):
    """`TrialStopHook.cleanup` in a real Tune run: called once per trial, in its actor."""
    from ray import tune

    markers = tmp_path / "markers"
    markers.mkdir()
    trainable = tune.with_resources(
        ray_internals.mix_into_trial_actor(_quick_trial, _Marker), {"CPU": 0.05}
    )
    grid = tune.Tuner(
        trainable,
        param_space={"marker_dir": str(markers), "x": tune.grid_search([1, 2])},
        run_config=tune.RunConfig(name="stop_hook", storage_path=str(tmp_path / "runs"), verbose=0),
    ).fit()
    trial_ids = {result.metrics["trial_id"] for result in grid}
    assert len(trial_ids) == 2 and not grid.errors
    assert {p.name for p in markers.iterdir()} == trial_ids
    assert {p.read_text() for p in markers.iterdir()} == {"stopped"}


@pytest.mark.parametrize(
    "max_t, grace, factor, brackets",
    [(100, 10, 3, 1), (100, 10, 2, 1), (60, 5, 2.2, 2), (8, 2, 2, 1), (100, 25, 2.2, 3)],
)
def test_rung_arithmetic_is_tunes_bracket(max_t, grace, factor, brackets):
    """mmse_model/sweeps/rungs.py copies ASHA's milestones without Ray; each is the first
    epoch at or past one of Tune's own `_Bracket` milestones below max_t."""
    import math

    from mmse_model.sweeps.rungs import rungs

    tunes = set()
    for s in range(brackets):
        tunes |= {
            math.ceil(m - 1e-9)
            for m in ray_internals.asha_milestones(max_t, grace, factor, s)
            if m < max_t
        }
    assert rungs(max_t, grace, factor, brackets) == tuple(sorted(e for e in tunes if e < max_t))


def test_replace_callback_swaps_a_restored_tuners_callback(tmp_path):
    """`Tuner.restore` gives back the callbacks pickled at the first start; a resumed driver
    swaps in its own (today's watchdog settings), and the restored run uses it."""
    from ray import tune

    class Counter(tune.Callback):
        def __init__(self, tag: str):
            self.tag = tag

        def on_trial_result(self, iteration, trials, trial, result, **info):
            (tmp_path / f"{self.tag}-{trial.trial_id}").touch()

    storage = str(tmp_path / "runs")
    tune.Tuner(
        _quick_trial,
        param_space={"marker_dir": str(tmp_path), "x": tune.grid_search([1])},
        run_config=tune.RunConfig(
            name="restore", storage_path=storage, verbose=0, callbacks=[Counter("first")]
        ),
    ).fit()
    tuner = tune.Tuner.restore(
        f"{storage}/restore", trainable=_quick_trial, restart_errored=True, resume_unfinished=True
    )
    ray_internals.replace_callback(tuner, Counter, Counter("today"))
    callbacks = tuner._local_tuner.get_run_config().callbacks
    assert [c.tag for c in callbacks if isinstance(c, Counter)] == ["today"]


def test_classic_progress_table_turns_off_tunes_new_output(monkeypatch):
    """`RAY_AIR_NEW_OUTPUT`: one of Ray's AIR variables; "0" makes `get_air_verbosity` answer
    None, which is when Tune prints a ProgressReporter's table. A value already set is kept."""
    get_air_verbosity = ray_internals.resolve("ray.tune.experimental.output", "get_air_verbosity")
    assert ray_internals.NEW_OUTPUT_ENV in ray_internals.resolve(
        "ray.air.constants", "AIR_ENV_VARS"
    )
    monkeypatch.delenv(ray_internals.NEW_OUTPUT_ENV, raising=False)
    assert get_air_verbosity(1) is not None  # Ray's default: the new output
    ray_internals.use_classic_progress_table()
    assert get_air_verbosity(1) is None
    monkeypatch.setenv(ray_internals.NEW_OUTPUT_ENV, "1")
    ray_internals.use_classic_progress_table()
    assert get_air_verbosity(1) is not None


def test_the_autoscalers_report_is_where_ray_status_reads_it(ray_session):
    """A `ray start` head runs the autoscaler's monitor, which writes its report under the
    key `ray status` reads; on this fixed cluster no node is pending. (A report with pending
    nodes, as Ray's AutoscalerSummary writes it, is read in tests/test_watchdog.py.)"""
    import time

    from ray.experimental.internal_kv import _internal_kv_get

    deadline = time.monotonic() + 120  # a hang guard: the monitor reports every few seconds
    while (
        _internal_kv_get(ray_internals.AUTOSCALING_STATUS_KEY) is None
        and time.monotonic() < deadline
    ):
        time.sleep(0.5)
    raw = _internal_kv_get(ray_internals.AUTOSCALING_STATUS_KEY)
    import json

    report = json.loads(raw)
    assert "load_metrics_report" in report
    # Once the monitor's autoscaler has run an update, its part holds the fields read here.
    autoscaler = report.get("autoscaler_report")
    assert autoscaler is None or {"pending_nodes", "pending_launches"} <= set(autoscaler), (
        autoscaler
    )
    assert (
        ray_internals.resolve("ray._private.ray_constants", "DEBUG_AUTOSCALING_STATUS")
        == ray_internals.AUTOSCALING_STATUS_KEY
    )
    assert ray_internals.pending_nodes_in_status(raw) == 0
    assert ray_internals.autoscaler_pending_nodes() == 0
