"""What the sweep's guard decides, from what it sees: no Ray here, so every rule is tested
with made-up clocks (tests/test_watchdog.py). `ray_jobs/guard.py` gathers the observations
from Tune and the GCS and carries the decisions out.

Two rules, with a timeout each:

- Stall: no trial has reported for `stall_timeout_s` while trials or Train worker groups wait
  for resources, and the autoscaler is launching no node. Nodes on their way count as
  progress: the clock starts again when none is pending any more.
- Silent trial (`silent_trial_timeout_s`, 0 = off): a running trial that has reported nothing
  for that long is killed, so that Tune retries it from its checkpoint. Never while a Train
  worker group waits for resources or nodes are on their way: a trial waiting for its workers
  is silent without being stuck. Trials waiting for a slot do not stop it: a stuck trial holds
  the slot they wait for.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Observation:
    """What the guard sees at one step."""

    now: float  # monotonic seconds
    waiting_trials: int  # Tune trials waiting for a slot (PENDING)
    pending_groups: int  # this job's placement groups waiting for resources
    pending_nodes: int  # nodes the autoscaler is launching
    running: dict[str, float] = field(
        default_factory=dict
    )  # running trial id -> when last heard of


@dataclass(frozen=True)
class Verdict:
    stalled: bool  # stop the sweep (SweepStalled)
    idle_s: float  # since the last progress
    silent: tuple[str, ...] = ()  # running trials to kill


class Watchdog:
    """The stall clock and the two rules; the guard tells it of progress (a trial started,
    reported, ended) and asks it for a verdict at each check."""

    def __init__(self, stall_timeout_s: float, silent_trial_timeout_s: float, now: float):
        self.stall_timeout_s = stall_timeout_s
        self.silent_trial_timeout_s = silent_trial_timeout_s
        self.last_progress = now

    def progress(self, now: float) -> None:
        self.last_progress = max(self.last_progress, now)

    def needs_look(self, now: float, running: dict[str, float]) -> bool:
        """Is a rule due? (Only then does the guard ask the GCS and the autoscaler.)"""
        return now - self.last_progress >= self.stall_timeout_s or bool(self._silent(now, running))

    def verdict(self, seen: Observation) -> Verdict:
        if seen.pending_nodes:
            self.progress(seen.now)  # the autoscaler is adding nodes: waiting is expected
            return Verdict(False, 0.0)
        idle = seen.now - self.last_progress
        if idle >= self.stall_timeout_s and (seen.waiting_trials or seen.pending_groups):
            return Verdict(True, idle)
        if seen.pending_groups:
            return Verdict(False, idle)
        silent = self._silent(seen.now, seen.running)
        if silent:
            # Their retries have to be scheduled: waiting for them is not a stall.
            self.progress(seen.now)
        return Verdict(False, idle, silent)

    def _silent(self, now: float, running: dict[str, float]) -> tuple[str, ...]:
        if not self.silent_trial_timeout_s:
            return ()
        return tuple(
            sorted(t for t, heard in running.items() if now - heard >= self.silent_trial_timeout_s)
        )
