"""The sweep guard's rules (ray_jobs/watchdog.py), with made-up clocks: no Ray, no waiting."""

from __future__ import annotations

import sys

import pytest

from ray_jobs.watchdog import Observation, Verdict, Watchdog

STALL, SILENT = 100.0, 300.0


def seen(now, waiting=0, groups=0, nodes=0, running=None) -> Observation:
    return Observation(now, waiting, groups, nodes, running or {})


def test_the_rules_load_without_ray():
    import subprocess

    code = "import sys, ray_jobs.watchdog; print('ray' in sys.modules)"
    assert (
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout
        == "False\n"
    )


def test_waiting_with_no_report_for_the_stall_timeout_is_a_stall():
    dog = Watchdog(STALL, SILENT, now=0.0)
    assert not dog.needs_look(99.0, {})
    assert dog.verdict(seen(99.0, waiting=2)) == Verdict(False, 99.0)
    assert dog.needs_look(100.0, {})
    assert dog.verdict(seen(100.0, waiting=2)) == Verdict(True, 100.0)
    # A Train worker group waiting for resources is waiting too.
    assert Watchdog(STALL, SILENT, now=0.0).verdict(seen(150.0, groups=1)).stalled


def test_progress_restarts_the_stall_clock():
    dog = Watchdog(STALL, SILENT, now=0.0)
    dog.progress(60.0)
    assert not dog.verdict(seen(150.0, waiting=1)).stalled
    assert dog.verdict(seen(160.0, waiting=1)) == Verdict(True, 100.0)


def test_nothing_waiting_is_no_stall_however_long():
    dog = Watchdog(STALL, 0.0, now=0.0)
    assert dog.verdict(seen(10_000.0, running={"a": 0.0})) == Verdict(False, 10_000.0)


def test_pending_nodes_hold_the_stall_and_the_clock_starts_again_after_them():
    dog = Watchdog(STALL, SILENT, now=0.0)
    # The autoscaler is launching a node: trials waiting for it are not stalled.
    assert dog.verdict(seen(500.0, waiting=3, nodes=1)) == Verdict(False, 0.0)
    assert dog.verdict(seen(900.0, waiting=3, nodes=2)) == Verdict(False, 0.0)
    # The node came up (none pending) and still nothing reports: stalled a full timeout later.
    assert not dog.verdict(seen(999.0, waiting=3)).stalled
    assert dog.verdict(seen(1000.0, waiting=3)) == Verdict(True, 100.0)


def test_a_silent_running_trial_is_named_after_its_own_timeout():
    dog = Watchdog(STALL, SILENT, now=0.0)
    running = {"quiet": 0.0, "talks": 250.0}
    # Past the stall timeout but not the silent one: nothing to kill.
    assert dog.verdict(seen(200.0, running=running)).silent == ()
    verdict = dog.verdict(seen(300.0, running=running))
    assert verdict == Verdict(False, 300.0, ("quiet",))
    # Its retry has to be scheduled: the stall clock starts again.
    assert dog.last_progress == 300.0


def test_trials_waiting_for_a_slot_do_not_protect_a_silent_one():
    dog = Watchdog(10_000.0, SILENT, now=0.0)
    assert dog.verdict(seen(400.0, waiting=4, running={"stuck": 50.0})).silent == ("stuck",)


@pytest.mark.parametrize("what", [{"groups": 1}, {"nodes": 1}])
def test_no_kill_while_workers_or_nodes_are_on_their_way(what):
    """A trial waiting for its Train workers' resources is silent without being stuck."""
    dog = Watchdog(10_000.0, SILENT, now=0.0)
    assert dog.verdict(seen(1000.0, running={"starting": 0.0}, **what)).silent == ()


def test_zero_turns_the_silent_trial_kill_off():
    dog = Watchdog(STALL, 0.0, now=0.0)
    assert not dog.needs_look(50.0, {"quiet": 0.0})
    assert dog.verdict(seen(1e6, running={"quiet": 0.0})).silent == ()


def test_the_autoscalers_report_is_read_as_ray_writes_it():
    """Autoscaler v1's report, built with Ray's own AutoscalerSummary: pending nodes and
    launches count; no report (a cluster without an autoscaler) or a broken one is none."""
    import json
    from dataclasses import asdict

    from ray.autoscaler._private.autoscaler import AutoscalerSummary

    from ray_jobs.ray_internals import pending_nodes_in_status

    summary = AutoscalerSummary(
        active_nodes={"head": 1},
        idle_nodes={},
        failed_nodes=[],
        pending_nodes=[("10.0.0.5", "gpu", "setting-up")],
        pending_launches={"gpu": 2},
    )
    raw = json.dumps(
        {"load_metrics_report": {}, "autoscaler_report": asdict(summary), "time": 1.0}
    ).encode()
    assert pending_nodes_in_status(raw) == 3
    idle = AutoscalerSummary(
        active_nodes={"head": 1},
        idle_nodes={},
        failed_nodes=[],
        pending_nodes=[],
        pending_launches={},
    )
    assert pending_nodes_in_status(json.dumps({"autoscaler_report": asdict(idle)}).encode()) == 0
    assert pending_nodes_in_status(None) == 0
    # A format this version does not know is an error, not "no node pending".
    for broken in (b"not json", b'{"autoscaler_report": {"pending_launches": {"gpu": "two"}}}'):
        with pytest.raises(ValueError, match="format this version does not know"):
            pending_nodes_in_status(broken)


def test_an_unreadable_autoscaler_report_is_said_once_and_counts_as_no_node(monkeypatch, capsys):
    from ray_jobs import guard, ray_internals

    def unreadable() -> int:
        raise ValueError(
            "the autoscaler's status report has a format this version does not know (x)"
        )

    monkeypatch.setattr(ray_internals, "autoscaler_pending_nodes", unreadable)
    monkeypatch.setattr(guard, "_warned_about_autoscaler", False)
    assert [guard.pending_nodes() for _ in range(3)] == [0, 0, 0]
    err = capsys.readouterr().err
    assert err.count("could not read the autoscaler's report") == 1 and "format this version" in err
