"""The sweep driver's guard: a placement-group watchdog and a stall detector.

Both run inside Tune's own loop (a Tune `Callback`), so they need no thread of their own
and see every trial event as it happens.

- Watchdog: every `interval_s`, placement groups of this sweep's job whose creating actor
  is dead are removed (`ray_jobs/release.py`): a dead Train controller's run has ended, so
  its group is a leftover whatever the reason it was left. A group whose creator lives is
  never touched.
- Stall detector: when no trial has reported for `stall_timeout_s` while trials wait for
  resources (and the autoscaler launches no node), the sweep stops with `SweepStalled`,
  whose one-line message says what this sweep reserves and by whom. Tune's experiment state
  is kept, so `--resume` continues it once the resources are free.
- The driver's lease: every step first asks the driver lock whether this driver still holds
  the sweep (`lease_check`); one that lost it stops with `LeaseLost` before Tune writes more.
- Silent trials: a running trial that has reported nothing for `silent_trial_timeout_s`
  (0 = off) is killed, and Tune retries it from its latest checkpoint. Seen here under a CPU
  hog (Ray 2.60): a trial whose Train run had ended stayed blocked for good in Tune's
  function-trainable session, its main thread putting a late report from the Train
  controller into the result queue that only it drains (ray/train/_internal/session.py,
  `get_next` -> `_get_result_from_queues` -> `report`); the sweep waited on it forever.

The rules themselves are in `ray_jobs/watchdog.py` (no Ray, tested with made-up clocks).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from ray.tune import Callback

from mmse_model.core.errors import RunFailure
from ray_jobs import ray_internals
from ray_jobs.release import release_orphaned_groups
from ray_jobs.watchdog import Observation, Watchdog


class SweepStalled(RunFailure):
    """No trial made progress for too long while trials waited for resources."""


class SweepInterrupted(RunFailure):
    """Tune's loop returned before every trial ended (Ctrl-C, a signal)."""


class SweepGuard(Callback):
    def __init__(
        self,
        interval_s: float = 5.0,
        stall_timeout_s: float = 900.0,
        resume_hint: str = "",
        silent_trial_timeout_s: float = 1800.0,
        lease_check: Callable[[], None] | None = None,
    ):
        self.interval_s, self.stall_timeout_s, self.resume_hint = (
            interval_s,
            stall_timeout_s,
            resume_hint,
        )
        self.silent_trial_timeout_s = silent_trial_timeout_s
        # The driver lock's check (mmse_model/sweeps/lock.py): raises LeaseLost once this
        # driver no longer holds the sweep, which stops Tune's loop before its next step.
        self.lease_check = lease_check
        self._reset()

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its callbacks with the Tuner; the lock is this process's. A restored
        # sweep gets a new guard with its own driver's check (`ray_internals.replace_callback`).
        return {**self.__dict__, "lease_check": None}

    def _reset(self) -> None:
        self.watchdog = Watchdog(
            self.stall_timeout_s, self.silent_trial_timeout_s, time.monotonic()
        )
        self.last_check = 0.0
        self.released = 0
        self.last_heard: dict[str, float] = {}  # trial id -> when it started or last reported
        self.killed: list[str] = []

    # Tune calls setup when a run starts (a resumed sweep's driver puts in a new guard with
    # today's settings: `ray_internals.replace_callback`).
    def setup(self, **info: Any) -> None:
        self._reset()

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        now = self.last_heard[trial.trial_id] = time.monotonic()
        self.watchdog.progress(now)

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        now = self.last_heard[trial.trial_id] = time.monotonic()
        self.watchdog.progress(now)

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self.watchdog.progress(time.monotonic())
        self.last_check = 0.0  # a trial ended: look for its leftovers at the next step

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self.watchdog.progress(time.monotonic())
        self.last_check = 0.0

    def on_step_end(self, iteration, trials, **info) -> None:
        if self.lease_check is not None:
            self.lease_check()
        now = time.monotonic()
        if now - self.last_check < self.interval_s:
            return
        self.last_check = now
        import ray

        job = ray.get_runtime_context().get_job_id()
        for item in release_orphaned_groups(job):
            self.released += 1
            print(
                f"watchdog: released placement group {item.group_id[:12]} {_show(item.resources)} "
                f"left by {item.creator}",
                file=sys.stderr,
                flush=True,
            )
        running = {
            t.trial_id: self.last_heard[t.trial_id]
            for t in trials
            if t.status == "RUNNING" and t.trial_id in self.last_heard
        }
        if not self.watchdog.needs_look(now, running):
            return
        waiting = [t for t in trials if t.status == "PENDING"]
        # Train worker groups (made by a controller actor) waiting to start: their trials are
        # RUNNING and silent without being stuck. Tune's own groups (the driver's) are those of
        # PENDING trials, counted above; a trial that trains itself has no other.
        pending_groups = [
            g
            for g in ray_internals.placement_groups(job)
            if g.state == "PENDING" and g.creator_actor_id
        ]
        verdict = self.watchdog.verdict(
            Observation(now, len(waiting), len(pending_groups), pending_nodes(), running)
        )
        if verdict.stalled:
            raise SweepStalled(
                stall_message(
                    verdict.idle_s, len(waiting) + len(pending_groups), job, self.resume_hint
                )
            )
        self.kill_trials([t for t in trials if t.trial_id in verdict.silent], now)

    def kill_trials(self, trials, now: float) -> None:
        """Kill trials that have said nothing for `silent_trial_timeout_s`: Tune sees the actor
        die and retries the trial from its latest checkpoint."""
        import ray

        for trial in trials:
            actor = ray_internals.trial_actor(trial)
            if actor is None:
                continue
            print(
                f"watchdog: trial {trial.trial_id} reported nothing for "
                f"{now - self.last_heard[trial.trial_id]:.0f} s "
                "(watchdog.silent_trial_timeout_s); killed it so that Tune retries it from its "
                "latest checkpoint",
                file=sys.stderr,
                flush=True,
            )
            ray.kill(actor, no_restart=True)
            self.killed.append(trial.trial_id)
            self.last_heard[trial.trial_id] = now


_warned_about_autoscaler = False


def pending_nodes() -> int:
    """Nodes the autoscaler is launching; a report that cannot be had counts as none (the
    stall detector then decides as it would without an autoscaler), said once per driver."""
    global _warned_about_autoscaler
    try:
        return ray_internals.autoscaler_pending_nodes()
    except Exception as exc:  # noqa: BLE001 - a missing report must not end the sweep
        if not _warned_about_autoscaler:
            _warned_about_autoscaler = True
            print(
                f"watchdog: could not read the autoscaler's report ({exc}); assuming no node is "
                "pending, so a stall is called while nodes may still be starting",
                file=sys.stderr,
                flush=True,
            )
        return 0


def stall_message(idle_s: float, n_waiting: int, job: str, resume_hint: str) -> str:
    """One line: how long, how many wait, what this sweep reserves and by whom, the total
    other jobs reserve (neither named nor their actors: they are not this sweep's to show),
    what is free."""
    import ray

    held = []
    others: dict[str, float] = {}
    creators: dict[str, ray_internals.ActorRecord | None] = {}
    for group in ray_internals.placement_groups():
        if not group.live:
            continue
        if group.job_id != job:
            for name, amount in group.resources().items():
                others[name] = others.get(name, 0.0) + amount
            continue
        if group.creator_actor_id:
            if group.creator_actor_id not in creators:
                creators[group.creator_actor_id] = ray_internals.actor(group.creator_actor_id)
            creator = creators[group.creator_actor_id]
            who = (
                f"{'dead ' if group.creator_actor_dead else ''}"
                f"{creator.class_name if creator else 'actor'} "
                f"{group.creator_actor_id[:8]}"
            )
        else:
            who = "Tune (trial actors)"
        held.append(
            f"{_show(group.resources())} {group.state.lower()} by {who} "
            f"(group {group.group_id[:12]})"
        )
    # Free resources, less the per-node and per-group ones (`CPU_group_<group id>`, ...): those
    # name groups, other jobs' among them.
    free = _show(
        {
            k: v
            for k, v in ray.available_resources().items()
            if not k.startswith(("node:", "bundle_group_"))
            and "_group_" not in k
            and "memory" not in k
        }
    )
    return (
        f"sweep stalled: no trial reported for {idle_s:.0f} s while {n_waiting} wait(s) for "
        f"resources; this sweep reserves: {'; '.join(held) or 'nothing'}; other jobs reserve: "
        f"{_show(others)}; free: {free}. {resume_hint}"
    ).strip()


def _show(resources: dict[str, float]) -> str:
    return "{" + ", ".join(f"{k}: {v:g}" for k, v in sorted(resources.items())) + "}"
