"""Sweeps never wait on what their own ended trials hold; stalls stop with a resumable error.

ray_jobs/release.py explains the Ray behaviour: a placement group made by an actor outlives
that actor while its job lives. These tests reproduce that state, check that ended trials
release their Train groups by themselves (the watchdog releases nothing in a normal sweep),
that the watchdog frees a leaked group so the sweep finishes, and that a real shortage
becomes a one-line error after which `--resume` finishes the sweep.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mmse_model.sweeps.config import load_sweep_config
from mmse_model.sweeps.rules import read_trials_csv
from mmse_model.training.checkpoint import load_checkpoint
from ray_jobs import ray_internals
from tests.ray.leftovers import wait_for_nothing_left

pytestmark = pytest.mark.ray

REPO = Path(__file__).resolve().parents[2]


# With this search seed samples 0 and 1 draw the good rate and sample 2 the hopeless one:
# trials 0-3 (two signatures each) train well, trials 4 and 5 cannot. Trials 4 and 5 start only
# after two trials ended, and a trial ends no earlier than the first rung: whatever the
# timing, they meet good values recorded there and ASHA stops them.
ASHA_STOPS = {"search_seed": 11, "search_space": {"training.lr": {"choice": [0.02, 0.00002]}}}


def sweep_yaml(
    path: Path, name: str, *, samples=3, epochs=6, stall_timeout_s=300.0, num_workers=1, **changes
) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "name": name,
                "signatures": ["m2_tau1_eps0.055_lmin2", "m3_tau2_eps0.1_lmin2"],
                "tasks": ["Q1"],
                "samples": samples,
                "signatures_per_trial": 1,  # one trial per signature: more trials than slots
                "search_space": {"training.lr": {"loguniform": [0.002, 0.02]}},
                **changes,
                "asha": {"grace_period": 2, "reduction_factor": 2},
                "resources": {"trial_cpus": 0.05},
                # A trial silent for 300 s is killed and retried: a Train run whose
                # controller died left its trial waiting in fit() once at load ~12 (CI beside
                # a demo), and the default 1,800 s would hold CI that long.
                "watchdog": {
                    "interval_s": 1.0,
                    "stall_timeout_s": stall_timeout_s,
                    "silent_trial_timeout_s": 300,
                },
                "config": {
                    "split": {"folds": 3},
                    "training": {"epochs": epochs, "checkpoint_every": 0},
                    "early_stopping": {"patience": 20},
                    "ray": {"num_workers": num_workers, "cpus_per_worker": 0.5},
                },
            }
        )
    )
    return path


def test_train_runs_release_their_groups_themselves(ray_session, toy_root, tmp_path, capfd):
    """The full Train path (a Train run per trial, hence a worker placement group per trial):
    more trials (6) than slots (3) and ASHA stopping trials. The sweep finishes, its ended
    trials released their Train groups themselves (the watchdog found nothing to release),
    and the job holds no Train group, controller or worker afterwards, so the next sweep
    starts with every CPU free. Each row's checkpoint is its Train run's, and loads."""
    import ray

    from ray_jobs.sweep import run_sweep

    job = ray.get_runtime_context().get_job_id()
    config = sweep_yaml(tmp_path / "sweep.yaml", "train_runs", stall_timeout_s=120, **ASHA_STOPS)
    summary = run_sweep(load_sweep_config(config, str(toy_root), str(tmp_path / "runs")))
    assert summary.n_trials == 6
    statuses = {c.status: c.n for c in summary.row_status}
    assert statuses.get("asha", 0) >= 2, statuses  # trials 4 and 5 at least
    groups, actors, processes = wait_for_nothing_left(ray_session, job)
    assert (groups, actors, processes) == ([], [], [])
    assert "watchdog: released" not in capfd.readouterr().err
    experiment = tmp_path / "runs" / "train_runs"
    rows = read_trials_csv((experiment / "trials.csv").read_text())
    assert len(rows) == 6
    for row in rows:
        assert Path(row["checkpoint_uri"]).parent == experiment / "train_runs" / row["trial_id"], (
            row
        )
        state = load_checkpoint(row["checkpoint_uri"]).state(row["signature"])
        assert row["best_epoch"] == state.best_epoch and row["val/loss"] == state.best_val_loss
    # Tune's folders hold the histories and TensorBoard events, Train's the checkpoints.
    assert not list(experiment.glob("Q*/checkpoint_*"))
    assert len(list(experiment.glob("Q*/events.out.tfevents*"))) == 6


def test_a_leaked_group_is_released_and_the_sweep_finishes(ray_session, toy_root, tmp_path, capfd):
    """The leak, reproduced: an actor makes a placement group and dies; the group stays
    reserved (1.6 of the head's 2 CPUs, so no trial could start). The watchdog sees its
    creator is dead, releases it, and the sweep runs to the end. Its trials train themselves
    (ray.num_workers 0): the watchdog guards the job's groups whoever made them."""
    import ray
    from ray.util.placement_group import placement_group

    @ray.remote(num_cpus=0)
    class GroupMaker:
        def make(self) -> str:
            group = placement_group([{"CPU": 1.6}])
            ray.get(group.ready())
            return group.id.hex()

    maker = GroupMaker.remote()
    leaked = ray.get(maker.make.remote())
    ray.kill(maker)
    job = ray.get_runtime_context().get_job_id()
    import time

    deadline = time.monotonic() + 30
    while True:
        record = next(g for g in ray_internals.placement_groups(job) if g.group_id == leaked)
        if record.creator_actor_dead or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    # Ray's behaviour: the creator is dead, the group is still reserved.
    assert record.creator_actor_dead and record.state == "CREATED"

    from ray_jobs.sweep import run_sweep

    config = sweep_yaml(
        tmp_path / "sweep.yaml", "leaked", samples=1, epochs=3, stall_timeout_s=120, num_workers=0
    )
    summary = run_sweep(load_sweep_config(config, str(toy_root), str(tmp_path / "runs")))
    assert summary.n_trials == 2
    assert f"watchdog: released placement group {leaked[:12]}" in capfd.readouterr().err
    assert (
        next(g for g in ray_internals.placement_groups(job) if g.group_id == leaked).state
        == "REMOVED"
    )


def test_stall_is_a_one_line_error_and_resume_finishes(ray_session, toy_root, tmp_path):
    """Another job holds every CPU: no trial can start. The sweep stops with exit status 1
    and one line naming the reservation; once it is freed, `--resume` finishes the sweep.
    Trials that train themselves (ray.num_workers 0) wait for resources as Train runs do."""
    import ray
    from ray.util.placement_group import placement_group, remove_placement_group

    hog = placement_group([{"CPU": 2.0}])  # the pytest driver's job: a job other than the sweep's
    ray.get(hog.ready())
    config = sweep_yaml(
        tmp_path / "sweep.yaml", "stalled", samples=1, epochs=3, stall_timeout_s=15, num_workers=0
    )
    command = [
        sys.executable,
        "-m",
        "mmse_app.cli",
        "sweep",
        "--config",
        str(config),
        "--data",
        str(toy_root),
        "--storage",
        str(tmp_path / "runs"),
    ]
    try:
        stalled = subprocess.run(
            command, env=ray_session.env, capture_output=True, text=True, timeout=600, check=False
        )
    finally:
        remove_placement_group(hog)
    assert stalled.returncode == 1, stalled.stderr[-3000:]
    error = [line for line in stalled.stderr.splitlines() if line.startswith("mmse: error:")]
    assert len(error) == 1, stalled.stderr[-3000:]
    assert "sweep stalled: no trial reported for" in error[0]
    # The other job's reservation is counted, never named (nor its actors).
    assert "other jobs reserve: {CPU: 2}" in error[0]
    assert ray.get_runtime_context().get_job_id() not in error[0]
    assert "--resume" in error[0]
    experiment = tmp_path / "runs" / "stalled"
    assert not (experiment / "trials.csv").exists()

    # The resume watches with a stall timeout a user would keep: its trials' actors start
    # with their resources reserved, which takes longer than 15 s on a loaded machine (once
    # in CI at load ~14, the resume stopped as stalled with every trial PENDING). The watchdog
    # is not part of what a resume must match (record.TRIAL_KEYS).
    sweep_yaml(config, "stalled", samples=1, epochs=3, stall_timeout_s=300, num_workers=0)
    resumed = subprocess.run(
        command + ["--resume"],
        env=ray_session.env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    with open(experiment / "trials.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 and all(int(r["epochs_run"]) >= 1 for r in rows)


def _hangs_on_its_first_attempt(config):
    """A trial that, on its first attempt, stays RUNNING and never reports (as a trial stuck in
    Tune's session does); on its retry it reports and ends."""
    import time

    from ray import tune

    marker = Path(config["marker"])
    if not marker.exists():
        marker.write_text("first attempt")
        time.sleep(300)  # without the guard: an error after 300 s, retried, and no kill recorded
        raise RuntimeError("nobody ended the silent attempt")
    tune.report({"epoch": 1, "val/loss": 0.5})


def test_a_silent_trial_is_killed_and_retried(ray_session, tmp_path, capfd):
    """A running trial says nothing for silent_trial_timeout_s (its own timeout, far below the
    stall timeout): the guard kills its actor and Tune's retry finishes it (the sweep does not
    wait forever)."""
    from ray import tune

    from ray_jobs.guard import SweepGuard

    guard = SweepGuard(interval_s=0.5, stall_timeout_s=600.0, silent_trial_timeout_s=5.0)
    tuner = tune.Tuner(
        tune.with_resources(_hangs_on_its_first_attempt, {"CPU": 0.05}),
        param_space={"marker": str(tmp_path / "marker")},
        run_config=tune.RunConfig(
            name="silent",
            storage_path=str(tmp_path / "runs"),
            callbacks=[guard],
            failure_config=tune.FailureConfig(max_failures=1),
        ),
    )
    results = tuner.fit()
    assert results.num_errors == 0 and results[0].metrics["val/loss"] == 0.5
    assert len(guard.killed) == 1 and guard.killed[0] == results[0].metrics["trial_id"]
    assert f"watchdog: trial {guard.killed[0]} reported nothing for" in capfd.readouterr().err
