"""Releasing a Train run's placement groups when Tune ends its trial (workaround, Ray 2.60).

Ray behaviour: a placement group made by an actor lives until its creator actor *and* its
creator job are both dead, so one that a Train V2 controller made stays reserved for as long
as the sweep's job runs (ray-project/ray#54305). Train's PlacementGroupCleaner (ray PR
#58515) removes the group when the controller dies, but learns of a group only once its
worker group has started. When Tune ends a trial, the trial actor exits and the controller
and its workers die with it; the workers go first, the controller's failure handling (a
`FailureConfig(max_failures >= 1)`) starts a replacement worker group, and that new group
is never registered with the cleaner: it stays reserved, with no actor in it, until the
sweep ends. Enough of them and the next trial waits forever (docs/design.md, "Releasing
resources").

What this module does about it:
- sweeps build their trainers with Train's own retries off (`max_failures=0`) and leave
  retries to Tune, which rebuilds the trainer and resumes the run from its checkpoint: no
  replacement group can be started by a controller that is being torn down;
- `ReleaseOnStop`, mixed into the trial actor, removes the groups of the Train runs this
  trial started when Tune ends the trial (stopped by ASHA, finished, or errored);
- `release_orphaned_groups`, called by the driver's watchdog (`ray_jobs/guard.py`), removes
  any group of the sweep's job whose creating actor is dead: a dead controller's run has
  ended, so nothing can use that group any more.
"""

from __future__ import annotations

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
            released.append(Released(group.group_id, group.resources(), f"{creator.class_name} {creator.actor_id[:8]}"))
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
            released.append(Released(group.group_id, group.resources(), f"dead {name} {group.creator_actor_id[:8]}"))
    return released


class ReleaseOnStop:
    """Mixed into the Tune trial actor (`run_trial.__mixins__`, which Tune's `wrap_function`
    honours): when Tune ends the trial, the Train run's groups are removed right away."""

    def cleanup(self) -> None:
        try:
            super().cleanup()  # Tune's own: stop the trial thread (without waiting for it)
        finally:
            try:
                for item in release_groups_of_owned_actors():
                    log.info("released %s %s of %s", item.group_id[:8], item.resources, item.creator)
            except Exception as exc:  # the driver's watchdog is the second line
                log.warning("could not release this trial's Train placement groups: %s", exc)
