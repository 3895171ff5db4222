"""Releasing a Train run's placement groups when Tune ends its trial (docs/design.md,
"Releasing resources"): sweeps turn Train's own retries off, the trial actor removes its
run's groups when Tune ends it, and the driver's watchdog removes groups of dead creators."""

from __future__ import annotations

# Ray 2.60 (ray-project/ray#54305): a group made by an actor lives until that actor and its
# job are dead; when Tune ends a trial, a controller with max_failures >= 1 starts a
# replacement worker group before it dies, which Train's PlacementGroupCleaner never sees.
import logging
from dataclasses import dataclass

from ray_jobs import ray_internals

log = logging.getLogger("ray_jobs.release")


@dataclass(frozen=True)
class Released:
    group_id: str
    resources: dict[str, float]
    creator: str  # class and id of the actor that created the group


def release_groups_of_owned_actors() -> list[Released]:
    """In a trial actor: remove every live placement group created by an actor that this
    process created (its Train controllers). Returns what was removed."""
    import ray

    context = ray.get_runtime_context()
    me, job = context.get_worker_id(), context.get_job_id()
    owned = {a.actor_id: a for a in ray_internals.actors(job, "ALIVE") if a.owner_worker_id == me}
    released = []
    for group in ray_internals.placement_groups(job):
        if group.live and group.creator_actor_id in owned:
            creator = owned[group.creator_actor_id]
            ray_internals.remove_group(group.group_id)
            released.append(
                Released(
                    group.group_id,
                    group.resources(),
                    f"{creator.class_name} {creator.actor_id[:8]}",
                )
            )
    return released


def release_orphaned_groups(job_id: str) -> list[Released]:
    """Remove the live placement groups of `job_id` whose creating actor is dead.

    Groups a driver made (Tune's per-trial groups) have no creating actor and are left to
    Tune; a group whose creator is alive may still be used and is left alone.
    """
    released = []
    for group in ray_internals.placement_groups(job_id):
        if group.live and group.creator_actor_id and group.creator_actor_dead:
            creator = ray_internals.actor(group.creator_actor_id)
            name = creator.class_name if creator else "actor"
            ray_internals.remove_group(group.group_id)
            released.append(
                Released(
                    group.group_id, group.resources(), f"dead {name} {group.creator_actor_id[:8]}"
                )
            )
    return released


class ReleaseOnStop(ray_internals.TrialStopHook):
    """Mixed into the Tune trial actor (`ray_internals.mix_into_trial_actor`): when Tune ends
    the trial, the Train run's groups are removed right away."""

    def on_trial_stop(self) -> None:
        try:
            for item in release_groups_of_owned_actors():
                log.info("released %s %s of %s", item.group_id[:8], item.resources, item.creator)
        except Exception as exc:  # noqa: BLE001 - the driver's watchdog is the second line
            log.warning("could not release this trial's Train placement groups: %s", exc)
