"""A trial that trains itself (`ray.num_workers: 0`) whose actor process is killed mid-run:
Tune retries it, the trial resumes from the newest checkpoint in its folder, and it ends
where an uninterrupted run of the same config ends.

A Tune callback in the driver kills the trial actor when its epoch-`HOLD_AT` result arrives.
The trial cannot run ahead meanwhile: its next report waits for the driver, which is busy
in that callback, so the kill lands mid-run on any machine, fast or slow.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import yaml
from ray import tune

from mmse_model.core.config import Config
from mmse_model.core.storage import join
from mmse_model.sweeps.config import apply_sample, load_sweep_config
from mmse_model.sweeps.plan import hyperparameter_samples, plan_trials, signature_groups
from mmse_model.training.callbacks import DirectoryReporter
from mmse_model.training.loop import RunSpec, train_run
from tests.fixtures.checkpoints import assert_same_weights
from tests.ray.conftest import SIG, WEAK_SIG

pytestmark = pytest.mark.ray

EPOCHS, EVERY, HOLD_AT = 8, 3, 5  # checkpoints at 1 (the first best), 3, 6 and 8; killed at 5


class KillOnce(tune.Callback):
    """Kills the (one) trial's actor process with SIGKILL when its epoch-`epoch` result
    arrives, once."""

    def __init__(self, epoch: int, dashboard: str):
        self.epoch, self.dashboard = epoch, dashboard
        self.killed: dict[str, int] = {}

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if self.killed or int(result.get("epoch", 0)) != self.epoch:
            return
        import ray
        from ray.util.state import list_actors

        job = ray.get_runtime_context().get_job_id()
        [actor] = [
            a
            for a in list_actors(
                address=self.dashboard, filters=[("state", "=", "ALIVE")], limit=1000, detail=True
            )
            if a.job_id == job and "ImplicitFunc" in a.class_name
        ]
        os.kill(actor.pid, signal.SIGKILL)
        self.killed[trial.trial_id] = actor.pid


def test_a_killed_trial_actor_resumes_from_its_checkpoint_and_ends_as_if_uninterrupted(
    ray_session, toy_root, tmp_path
):
    from ray_jobs.sweep import TRAIN_RUNS, build_tuner, collect_rows, trial_constants

    (tmp_path / "sweep.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "killed",
                "tasks": ["Q1"],
                "samples": 1,
                "search_space": {"training.lr": {"choice": [0.005]}},
                "asha": {"grace_period": EPOCHS},  # ASHA stops nothing
                "resources": {"trial_cpus": 0.05},
                "config": {
                    "split": {"folds": 3},
                    "training": {"epochs": EPOCHS, "checkpoint_every": EVERY},
                    # Only the first epoch counts as an improvement: checkpoints fall on the
                    # interval (and the last epoch), and no signature stops early.
                    "early_stopping": {"min_delta": 10, "patience": 50},
                    "ray": {"num_workers": 0, "cpus_per_worker": 0.5, "max_failures": 1},
                },
            }
        )
    )
    sweep = load_sweep_config(tmp_path / "sweep.yaml", str(toy_root), str(tmp_path / "runs"))
    killer = KillOnce(HOLD_AT, ray_session.dashboard)
    samples = hyperparameter_samples(sweep.search_space, sweep.samples, sweep.search_seed)
    points = plan_trials(["Q1"], signature_groups([SIG, WEAK_SIG], 0), samples)
    grid = build_tuner(sweep, points, str(tmp_path / "runs"), callbacks=[killer]).fit()
    assert len(killer.killed) == 1 and grid.num_errors == 0, killer.killed

    [result] = list(grid)
    lines = Path(result.path, "result.json").read_text().splitlines()
    epochs = [json.loads(line)["epoch"] for line in lines]
    # Epochs 1-5, then the retry from the epoch-3 checkpoint: 4 to the end. Not from epoch 1.
    assert epochs == [*range(1, HOLD_AT + 1), *range(4, EPOCHS + 1)], epochs
    assert result.metrics["epoch"] == EPOCHS

    experiment = join(str(tmp_path / "runs"), "killed")
    constants = trial_constants(sweep, experiment)
    rows = collect_rows(grid, constants)
    assert {r.signature for r in rows} == {SIG, WEAK_SIG}
    assert all(r.status == "completed" and r.epochs_run == EPOCHS for r in rows), rows
    assert all(
        r.checkpoint_uri.startswith(join(experiment, TRAIN_RUNS, result.metrics["trial_id"], ""))
        for r in rows
    )
    # The trial kept its newest checkpoints (ray.checkpoints_to_keep, 3): epochs 3, 6, 8.
    assert sorted(
        p.name for p in Path(experiment, TRAIN_RUNS, result.metrics["trial_id"]).iterdir()
    ) == ["checkpoint_000003", "checkpoint_000006", "checkpoint_000008"]

    # The same end as an uninterrupted run of the trial's config, member by member.
    from mmse_model.training.checkpoint import load_checkpoint

    killed = load_checkpoint(rows[0].checkpoint_uri)
    config = apply_sample(Config.from_dict(constants.base), points[0].hyperparameters)
    run = RunSpec(
        str(toy_root), (SIG, WEAK_SIG), "Q1", config, checkpoint_epochs=constants.checkpoint_epochs
    )
    # The last checkpoint's current weights (the run's final payload has the best restored).
    train_run(run, DirectoryReporter(tmp_path / "plain"))
    plain = load_checkpoint(tmp_path / "plain" / "checkpoints" / "latest")
    assert killed.epoch == EPOCHS
    assert_same_weights(killed, plain)
    for signature in (SIG, WEAK_SIG):
        assert killed.state(signature).best_epoch == plain.state(signature).best_epoch
        assert killed.state(signature).best_val_loss == pytest.approx(
            plain.state(signature).best_val_loss, rel=1e-6
        )
