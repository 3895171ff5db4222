"""The sweep driver's guard: a placement-group watchdog and a stall detector.

Both run inside Tune's own loop (a Tune `Callback`), so they need no thread of their own
and see every trial event as it happens.

- Watchdog: every `interval_s`, placement groups of this sweep's job whose creating actor
  is dead are removed (`ray_jobs/release.py`): a dead Train controller's run has ended, so
  its group is a leftover whatever the reason it was left. A group whose creator lives is
  never touched.
- Stall detector: when no trial has reported for `stall_timeout_s` while trials wait for
  resources, the sweep stops with `SweepStalled`, whose one-line message says what is
  reserved and by whom. Tune's experiment state is kept, so `--resume` continues it once
  the resources are free.
- Silent trials: a running trial that has reported nothing for `stall_timeout_s` while
  nothing waits for resources is killed, and Tune retries it from its latest checkpoint.
  Seen here under a CPU hog (Ray 2.60): a trial whose Train run had ended stayed blocked for
  good in Tune's function-trainable session, its main thread putting a late report from the
  Train controller into the result queue that only it drains (ray/train/_internal/session.py,
  `get_next` -> `_get_result_from_queues` -> `report`); the sweep waited on it forever.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from ray.tune import Callback

from mmse_model.core.errors import RunFailure
from ray_jobs import ray_internals
from ray_jobs.release import release_orphaned_groups


class SweepStalled(RunFailure):
    """No trial made progress for too long while trials waited for resources."""


class SweepInterrupted(RunFailure):
    """Tune's loop returned before every trial ended (Ctrl-C, a signal)."""


class SweepGuard(Callback):
    # A resumed sweep runs the guard pickled at its first start; `run_sweep` puts the
    # settings of today's command here so that a raised stall timeout takes effect.
    current_settings: tuple[float, float] | None = None

    def __init__(self, interval_s: float = 5.0, stall_timeout_s: float = 900.0, resume_hint: str = ""):
        self.interval_s, self.stall_timeout_s, self.resume_hint = interval_s, stall_timeout_s, resume_hint
        self._reset()

    def _reset(self) -> None:
        self.last_progress = time.monotonic()
        self.last_check = 0.0
        self.released = 0
        self.last_heard: dict[str, float] = {}  # trial id -> when it started or last reported
        self.killed: list[str] = []

    # Tune calls setup when a run starts (again after a restore, on the unpickled copy).
    def setup(self, **info: Any) -> None:
        if SweepGuard.current_settings is not None:
            self.interval_s, self.stall_timeout_s = SweepGuard.current_settings
        self._reset()

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        self.last_progress = self.last_heard[trial.trial_id] = time.monotonic()

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        self.last_progress = self.last_heard[trial.trial_id] = time.monotonic()

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self.last_progress = time.monotonic()
        self.last_check = 0.0  # a trial ended: look for its leftovers at the next step

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self.last_progress = time.monotonic()
        self.last_check = 0.0

    def on_step_end(self, iteration, trials, **info) -> None:
        now = time.monotonic()
        if now - self.last_check < self.interval_s:
            return
        self.last_check = now
        import ray

        job = ray.get_runtime_context().get_job_id()
        for item in release_orphaned_groups(job):
            self.released += 1
            print(f"watchdog: released placement group {item.group_id[:12]} {_show(item.resources)} "
                  f"left by {item.creator}", file=sys.stderr, flush=True)
        idle = now - self.last_progress
        if idle >= self.stall_timeout_s:
            waiting = [t for t in trials if t.status == "PENDING"]
            pending_groups = [g for g in ray_internals.placement_groups(job) if g.state == "PENDING"]
            if waiting or pending_groups:
                raise SweepStalled(stall_message(idle, len(waiting) + len(pending_groups), job, self.resume_hint))
            self.kill_silent_trials(trials, now)

    def kill_silent_trials(self, trials, now: float) -> None:
        """Kill running trials that have said nothing for `stall_timeout_s` (nothing waits for
        resources: the caller checked): Tune sees the actor die and retries the trial."""
        import ray

        for trial in trials:
            heard = self.last_heard.get(trial.trial_id)
            if trial.status != "RUNNING" or heard is None or now - heard < self.stall_timeout_s:
                continue
            actor = ray_internals.trial_actor(trial)
            if actor is None:
                continue
            print(f"watchdog: trial {trial.trial_id} reported nothing for {now - heard:.0f} s with nothing "
                  "waiting for resources; killed it so that Tune retries it from its latest checkpoint",
                  file=sys.stderr, flush=True)
            ray.kill(actor, no_restart=True)
            self.killed.append(trial.trial_id)
            # Its retry has to be scheduled: waiting for it is not a stall.
            self.last_progress = self.last_heard[trial.trial_id] = now


def stall_message(idle_s: float, n_waiting: int, job: str, resume_hint: str) -> str:
    """One line: how long, how many wait, what is reserved and by whom, what is free."""
    import ray

    held = []
    creators: dict[str, ray_internals.ActorRecord | None] = {}
    for group in ray_internals.placement_groups():
        if not group.live:
            continue
        if group.creator_actor_id:
            if group.creator_actor_id not in creators:
                creators[group.creator_actor_id] = ray_internals.actor(group.creator_actor_id)
            creator = creators[group.creator_actor_id]
            who = f"{'dead ' if group.creator_actor_dead else ''}{creator.class_name if creator else 'actor'} " \
                  f"{group.creator_actor_id[:8]}"
        else:
            who = "Tune (trial actors)" if group.job_id == job else "its driver"
        owner = "this sweep" if group.job_id == job else f"job {group.job_id}"
        held.append(f"{_show(group.resources())} {group.state.lower()} by {who} of {owner} (group {group.group_id[:12]})")
    free = _show({k: v for k, v in ray.available_resources().items()
                  if not k.startswith("node:") and "memory" not in k})
    return (f"sweep stalled: no trial reported for {idle_s:.0f} s while {n_waiting} wait(s) for resources; "
            f"reserved: {'; '.join(held) or 'nothing'}; free: {free}. {resume_hint}").strip()


def _show(resources: dict[str, float]) -> str:
    return "{" + ", ".join(f"{k}: {v:g}" for k, v in sorted(resources.items())) + "}"
