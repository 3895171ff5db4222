"""Every Ray internal this project relies on, in one module (written against Ray 2.60.0).

Public Ray APIs are used everywhere else. What is here has no public equivalent:

- the GCS tables of placement groups and actors, which carry who created a placement group
  and whether that creator is dead (the state API's `list_placement_groups` does not say);
- the `RAY_TRAIN_*` environment variables the project sets;
- Train V2's `DatasetsCallback`, dropped from runs that have no Ray Datasets, and the
  `_create_default_callbacks` hook through which it is dropped;
- Tune's list of environment variables it copies from the driver into every trial actor's
  runtime env, from which the AWS credentials are taken out;
- a Tune trial's actor handle (`trial.temporary_state.ray_actor`), which the guard kills
  when a trial hangs;
- classes mixed into a function trial's actor (`__mixins__`, which Tune's `wrap_function`
  honours) and the `cleanup` they extend, so that a trial releases its Train run's
  placement groups when Tune ends it (`TrialStopHook`);
- a restored Tuner's run config (`Tuner._local_tuner`), whose pickled watchdog a resumed
  driver replaces with today's (`replace_callback`);
- ASHA's `_Bracket`, whose milestones the Ray-free rung arithmetic copies
  (`asha_milestones`, compared with `mmse_model/sweeps/rungs.py` in the tests);
- `RAY_AIR_NEW_OUTPUT`, which turns off Tune's newer console output (it ignores a
  `ProgressReporter`);
- the autoscaler's report of nodes being launched (autoscaler v1's status in the GCS's
  internal KV, which `ray status` reads; v2's `get_cluster_status`), so that the stall
  detector waits while nodes are on their way.

`tests/ray/test_ray_internals.py` touches each of them, so an upgrade that moves one fails
there, naming the Ray symbol, instead of somewhere deep inside a sweep.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Any

# Read by the process that builds a TorchTrainer (a Tune trial actor in a sweep), which
# passes them on to the Train controller: set them in the runtime env, not only the shell.
HEALTH_CHECK_ENV = "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"
PREEMPTION_WATCHER_ENV = "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER"
# Read when a Tune run starts (`get_air_verbosity` below): "0" keeps the CLIReporter table.
NEW_OUTPUT_ENV = "RAY_AIR_NEW_OUTPUT"
# Read by the controller (its WorkerGroup) when it waits for a worker group's placement
# group; Train's default is 60 s, after which it gives up on that start and tries again.
WORKER_GROUP_START_TIMEOUT_ENV = "RAY_TRAIN_WORKER_GROUP_START_TIMEOUT_S"

# (module, attribute) of every internal symbol below, for the upgrade test.
SYMBOLS = (
    ("ray._private.state", "state"),
    ("ray.core.generated.gcs_pb2", "PlacementGroupTableData"),
    ("ray.core.generated.gcs_pb2", "ActorTableData"),
    ("ray._raylet", "PlacementGroupID"),
    ("ray._raylet", "ActorID"),
    ("ray._raylet", "JobID"),
    ("ray.train.v2._internal.callbacks.datasets", "DatasetsCallback"),
    ("ray.train.v2._internal.constants", "HEALTH_CHECK_INTERVAL_S_ENV_VAR"),
    ("ray.train.v2._internal.constants", "ENABLE_PREEMPTION_WATCHER_ENV_VAR"),
    ("ray.train.v2._internal.constants", "WORKER_GROUP_START_TIMEOUT_S_ENV_VAR"),
    ("ray.train.v2._internal.constants", "ENV_VARS_TO_PROPAGATE"),
    ("ray.train.v2.api.data_parallel_trainer", "DataParallelTrainer._create_default_callbacks"),
    ("ray.tune.execution.class_cache", "ENV_VARS_TO_PROPAGATE"),
    ("ray.tune.experiment.trial", "_TemporaryTrialState"),
    ("ray.tune.impl.tuner_internal", "TunerInternal.get_run_config"),
    ("ray.tune.schedulers.async_hyperband", "_Bracket"),
    ("ray.tune.trainable.function_trainable", "wrap_function"),
    ("ray.tune.trainable.function_trainable", "FunctionTrainable.cleanup"),
    ("ray.tune.experimental.output", "get_air_verbosity"),
    ("ray.air.constants", "AIR_ENV_VARS"),
    ("ray._private.ray_constants", "DEBUG_AUTOSCALING_STATUS"),
    ("ray.experimental.internal_kv", "_internal_kv_get"),
    ("ray.autoscaler._private.autoscaler", "AutoscalerSummary"),
    ("ray.autoscaler.v2.utils", "is_autoscaler_v2"),
    ("ray.autoscaler.v2.sdk", "get_cluster_status"),
)

# Tune copies these from the driver's environment into every trial actor's runtime env (and
# Train's controller inherits it): every node's runtime-env agent logs a runtime env in full
# (session logs/runtime_env_agent.log), and the dashboard shows it. Seen here: the test key in
# that log. Each node has its own credentials (instance role, environment, credentials file).
CREDENTIAL_ENV_VARS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SECURITY_TOKEN",
    "AWS_SESSION_TOKEN",
)


def resolve(module: str, attribute: str) -> Any:
    """The Ray object `module.attribute` (dotted attributes allowed)."""
    value: Any = importlib.import_module(module)
    for part in attribute.split("."):
        value = getattr(value, part)
    return value


# --- the GCS tables -----------------------------------------------------------------------


@dataclass(frozen=True)
class GroupRecord:
    """One placement group as the GCS knows it."""

    group_id: str  # hex
    state: str  # PENDING, PREPARED, CREATED, REMOVED, RESCHEDULING
    job_id: str  # hex of the creating job
    creator_actor_id: str  # hex; "" when a driver created it
    creator_actor_dead: bool
    bundles: tuple[dict[str, float], ...]

    @property
    def live(self) -> bool:
        return self.state != "REMOVED"

    def resources(self) -> dict[str, float]:
        total: dict[str, float] = {}
        for bundle in self.bundles:
            for name, amount in bundle.items():
                total[name] = total.get(name, 0.0) + amount
        return total


@dataclass(frozen=True)
class ActorRecord:
    actor_id: str  # hex
    class_name: str
    state: str  # DEPENDENCIES_UNREADY, PENDING_CREATION, ALIVE, RESTARTING, DEAD
    job_id: str
    owner_worker_id: str  # hex of the worker process that created the actor
    placement_group_id: str  # hex; "" when outside any group
    pid: int


def _accessor():
    return resolve("ray._private.state", "state")._connect_and_get_accessor()


def _pb(name: str):
    return resolve("ray.core.generated.gcs_pb2", name)


def _state_name(message, value: int) -> str:
    return message.DESCRIPTOR.fields_by_name["state"].enum_type.values_by_number[value].name


def _hex(raw: bytes) -> str:
    """Hex of an id, "" for a nil one (Ray's nil ids are all 0xff bytes)."""
    return raw.hex() if raw and raw.strip(b"\xff") else ""


def placement_groups(job_id: str | None = None) -> list[GroupRecord]:
    """Every placement group the GCS holds (removed ones included), optionally of one job."""
    table = _pb("PlacementGroupTableData")
    records = []
    for raw in _accessor().get_placement_group_table():
        data = table.FromString(raw)
        record = GroupRecord(
            group_id=data.placement_group_id.hex(),
            state=_state_name(table, data.state),
            job_id=data.creator_job_id.hex(),
            creator_actor_id=_hex(data.creator_actor_id),
            creator_actor_dead=bool(data.creator_actor_dead),
            bundles=tuple(dict(b.unit_resources) for b in data.bundles),
        )
        if job_id is None or record.job_id == job_id:
            records.append(record)
    return records


def actors(job_id: str | None = None, state: str | None = None) -> list[ActorRecord]:
    """Actors of one job (or all), optionally in one state ("ALIVE", "DEAD", ...)."""
    table = _pb("ActorTableData")
    job = resolve("ray._raylet", "JobID")(bytes.fromhex(job_id)) if job_id else None
    return [_actor_record(table.FromString(raw)) for raw in _accessor().get_actor_table(job, state)]


def actor(actor_id: str) -> ActorRecord | None:
    raw = _accessor().get_actor_info(resolve("ray._raylet", "ActorID")(bytes.fromhex(actor_id)))
    return None if raw is None else _actor_record(_pb("ActorTableData").FromString(raw))


def _actor_record(data) -> ActorRecord:
    return ActorRecord(
        actor_id=data.actor_id.hex(),
        class_name=data.class_name,
        state=_state_name(type(data), data.state),
        job_id=data.job_id.hex(),
        owner_worker_id=data.owner_address.worker_id.hex(),
        placement_group_id=_hex(data.placement_group_id),
        pid=int(data.pid),
    )


def remove_group(group_id: str) -> None:
    """Remove a placement group by its hex id (the public call wants a handle)."""
    from ray.util.placement_group import PlacementGroup, remove_placement_group

    group_id_cls = resolve("ray._raylet", "PlacementGroupID")
    remove_placement_group(PlacementGroup(group_id_cls(bytes.fromhex(group_id))))


# --- Tune -----------------------------------------------------------------------------------


def trial_actor(trial) -> Any:
    """The actor running a Tune trial, or None when it has none (pending, ended)."""
    state = trial.temporary_state  # ray.tune.experiment.trial._TemporaryTrialState
    return state.ray_actor


def replace_callback(tuner, kind: type, replacement: Any) -> None:
    """Swap the `kind` callback of a restored Tuner's run config for `replacement`: Tune
    restores the callbacks pickled at the first start (`Tuner.restore` takes no run config),
    and a resumed sweep's driver applies today's settings (its watchdog's timeouts)."""
    run_config = tuner._local_tuner.get_run_config()  # TunerInternal.get_run_config
    callbacks = list(run_config.callbacks or [])
    found = [i for i, c in enumerate(callbacks) if isinstance(c, kind)]
    if not found:
        callbacks.append(replacement)
    for i in found:
        callbacks[i] = replacement
    run_config.callbacks = callbacks


def asha_milestones(max_t: int, grace_period: int, reduction_factor: float, s: int) -> list[float]:
    """The milestones of ASHA's bracket `s`, as Tune's own `_Bracket` places them (ascending):
    what `mmse_model/sweeps/rungs.py` computes without Ray, checked against this."""
    from ray.tune.schedulers.async_hyperband import _Bracket

    bracket = _Bracket(grace_period, max_t, reduction_factor, s)
    return sorted(float(milestone) for milestone, _ in bracket._rungs)


class TrialStopHook:
    """Mixed into a function trial's actor (`mix_into_trial_actor`): `on_trial_stop` runs when
    Tune ends the trial (its last result, a scheduler's stop, an error), right after Tune's
    own `FunctionTrainable.cleanup`, which stops the trial thread without waiting for it."""

    def cleanup(self) -> None:
        try:
            super().cleanup()  # type: ignore[misc]  # Tune's FunctionTrainable, next in the MRO
        finally:
            self.on_trial_stop()

    def on_trial_stop(self) -> None:
        """Override: what ending the trial must release."""


def mix_into_trial_actor(function, *mixins: type):
    """Make `mixins` bases of the actor class Tune builds for the trial function: Tune's
    `wrap_function` (a DeveloperAPI) puts `function.__mixins__` before `FunctionTrainable`
    in the class's bases. `tune.with_resources` returns the same function, mixins kept."""
    function.__mixins__ = tuple(mixins)
    return function


def use_classic_progress_table() -> None:
    """Tune's newer console output (on unless `RAY_AIR_NEW_OUTPUT` is "0" when a run starts)
    ignores a `ProgressReporter`: turn it off, so the CLIReporter table is the progress shown.
    A value set in the environment is kept."""
    os.environ.setdefault(NEW_OUTPUT_ENV, "0")


def keep_credentials_out_of_trial_envs() -> None:
    """Stop Tune copying AWS credentials from this (driver) process into trial actors'
    runtime envs, where Ray logs and shows them; trials read the node's own instead."""
    propagated = resolve("ray.tune.execution.class_cache", "ENV_VARS_TO_PROPAGATE")
    for name in CREDENTIAL_ENV_VARS:
        propagated.discard(name)


# --- the autoscaler ------------------------------------------------------------------------

# Autoscaler v1's monitor writes its report (what `ray status` prints) as JSON under this key
# of the GCS's internal KV: {"autoscaler_report": {"pending_nodes": [[ip, type, status], ...],
# "pending_launches": {type: count}, ...}, ...}
# (ray.autoscaler._private.autoscaler.AutoscalerSummary).
AUTOSCALING_STATUS_KEY = "__autoscaling_status"


def autoscaler_pending_nodes() -> int:
    """How many nodes the autoscaler is launching or waiting on now (0 without an autoscaler,
    as on a local cluster). A report in a format this code does not know raises ValueError:
    a Ray upgrade must not silently turn off "wait while nodes come"."""
    import ray

    if resolve("ray.autoscaler.v2.utils", "is_autoscaler_v2")():
        status = resolve("ray.autoscaler.v2.sdk", "get_cluster_status")(
            ray.get_runtime_context().gcs_address
        )
        launching = sum(r.count for r in status.pending_launches if r.state.name == "PENDING")
        return len(status.pending_nodes) + launching
    return pending_nodes_in_status(
        resolve("ray.experimental.internal_kv", "_internal_kv_get")(AUTOSCALING_STATUS_KEY)
    )


def pending_nodes_in_status(raw: bytes | None) -> int:
    """Nodes pending or being launched in autoscaler v1's status report (None: no report, no
    autoscaler). ValueError for a report this code cannot read."""
    import json

    if not raw:
        return 0
    try:
        report = json.loads(raw).get("autoscaler_report") or {}
        return len(report.get("pending_nodes") or []) + sum(
            int(n) for n in (report.get("pending_launches") or {}).values()
        )
    except (ValueError, TypeError, AttributeError) as exc:
        raise ValueError(
            f"the autoscaler's status report has a format this version does not know ({exc})"
        ) from None


# --- Train V2 -------------------------------------------------------------------------------


def datasets_callback_class() -> type:
    return resolve("ray.train.v2._internal.callbacks.datasets", "DatasetsCallback")


def without_datasets_callback(callbacks: list) -> list:
    """Train's default callbacks less `DatasetsCallback`, which starts a DatasetManager
    actor (a process, ~1 CPU-s) even for a run that has no Ray Datasets."""
    kind = datasets_callback_class()
    return [cb for cb in callbacks if not isinstance(cb, kind)]


def lean_torch_trainer() -> type:
    """`TorchTrainer` less the DatasetManager actor (ours reads its own arrays, never Ray
    Datasets). Train V2 has no public switch for it: this overrides the private
    `_create_default_callbacks` (named in SYMBOLS) and keeps every other default."""
    global _LEAN
    if _LEAN is None:
        from ray.train.torch import TorchTrainer

        class LeanTorchTrainer(TorchTrainer):
            def _create_default_callbacks(self):
                callbacks = super()._create_default_callbacks()
                return callbacks if self.datasets else without_datasets_callback(callbacks)

        _LEAN = LeanTorchTrainer
    return _LEAN


_LEAN: type | None = None
