"""A Train worker process killed mid-run (`mmse train` on Ray: Train's own
FailureConfig(max_failures=ray.max_failures) restarts the worker group).

The run resumes from its last checkpoint, repeats no more epochs than the checkpoint
interval, and ends where an uninterrupted run of the same seed ends. A Train callback in
the controller logs every report and holds the run at a chosen epoch until the test has
killed the worker, so the kill lands mid-run on any machine, fast or slow.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import ray.train

from mmse_model.core.config import Config
from mmse_model.training.checkpoint import load_checkpoint
from mmse_model.training.loop import RunSpec
from mmse_model.training.runs import train_and_report, train_in_process
from ray_jobs.train import ray_runner
from tests.fixtures.checkpoints import assert_same_weights
from tests.ray.conftest import SIG

pytestmark = pytest.mark.ray

EPOCHS, EVERY, HOLD_AT = 8, 3, 5  # checkpoints at 1 (the first best), 3, 6 and 8; held at 5


class ReportLog(ray.train.UserCallback):
    """Runs in the Train controller: appends {epoch, checkpoint} per report to `path`; at the
    first report of epoch `hold_at` waits (up to `timeout_s`) until the file `go` exists."""

    def __init__(self, path: str, hold_at: int, go: str, timeout_s: float = 180.0):
        self.path, self.hold_at, self.go, self.timeout_s = path, hold_at, go, timeout_s
        self.held = False

    def after_report(self, run_context, metrics, checkpoint):
        epoch = int(metrics[0]["epoch"])
        with open(self.path, "a") as out:
            out.write(json.dumps({"epoch": epoch, "checkpoint": checkpoint is not None}) + "\n")
        if epoch == self.hold_at and not self.held:
            self.held = True
            deadline = time.monotonic() + self.timeout_s
            while not os.path.exists(self.go) and time.monotonic() < deadline:
                time.sleep(0.05)


def read_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def kill_worker_when_held(log: Path, go: Path, dashboard: str, job: str, outcome: dict) -> None:
    """In a thread: once the run is held, SIGKILL its Train worker process, then let it go."""
    from ray.util.state import list_actors

    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and not any(r["epoch"] == HOLD_AT for r in read_log(log)):
            time.sleep(0.1)
        workers = [
            a
            for a in list_actors(
                address=dashboard, filters=[("state", "=", "ALIVE")], limit=1000, detail=True
            )
            if a.job_id == job and "RayTrainWorker" in a.class_name
        ]
        outcome["workers"] = [(a.actor_id, a.pid) for a in workers]
        if len(workers) == 1:
            os.kill(workers[0].pid, signal.SIGKILL)
            outcome["killed"] = workers[0].pid
    except Exception as exc:  # noqa: BLE001 - reported by the test
        outcome["error"] = repr(exc)
    finally:
        go.touch()


def run_spec(toy_root: Path) -> RunSpec:
    config = Config().with_overrides(
        [
            f"training.epochs={EPOCHS}",
            f"training.checkpoint_every={EVERY}",
            "split.folds=3",
            "ray.cpus_per_worker=0.5",
            "ray.max_failures=1",
            # Only the first epoch counts as an improvement, so checkpoints fall on the interval
            # alone (plus the last epoch), and no early stop.
            "early_stopping.min_delta=10",
            "early_stopping.patience=50",
        ]
    )
    return RunSpec(str(toy_root), (SIG,), "Q1", config)


def test_killed_worker_resumes_from_last_checkpoint_and_matches_uninterrupted_run(
    ray_session, toy_root, tmp_path
):
    import ray

    log, go = tmp_path / "reports.jsonl", tmp_path / "go"
    outcome: dict = {}
    killer = threading.Thread(
        target=kill_worker_when_held,
        daemon=True,
        args=(log, go, ray_session.dashboard, ray.get_runtime_context().get_job_id(), outcome),
    )
    killer.start()
    try:
        result = train_and_report(
            run_spec(toy_root),
            tmp_path / "ray",
            ray_runner(
                str(tmp_path / "storage"), callbacks=[ReportLog(str(log), HOLD_AT, str(go))]
            ),
            "ray",
        )
    finally:
        go.touch()
        killer.join(timeout=60)
    assert "error" not in outcome and outcome.get("killed"), outcome

    reports = read_log(log)
    epochs = [r["epoch"] for r in reports]
    held = epochs.index(HOLD_AT)
    before, after = reports[: held + 1], reports[held + 1 :]
    last_checkpoint = max(r["epoch"] for r in before if r["checkpoint"])
    assert [r["epoch"] for r in before] == list(range(1, HOLD_AT + 1)), epochs
    # Restarted from the last checkpoint: the next report is the epoch after it, and the run
    # goes on to the end; what was repeated is at most the checkpoint interval.
    assert [r["epoch"] for r in after] == list(range(last_checkpoint + 1, EPOCHS + 1)), epochs
    repeated = HOLD_AT - last_checkpoint
    assert 1 <= repeated <= EVERY, epochs

    # The same end as an uninterrupted run with the same seed.
    plain = train_and_report(
        run_spec(toy_root), tmp_path / "plain", train_in_process(), "in-process"
    )
    assert result.epochs_run == plain.epochs_run == EPOCHS and result.best_epoch == plain.best_epoch
    for key, value in plain.test.items():
        assert result.test[key] == pytest.approx(value, rel=1e-5, abs=1e-8), key
    for key, value in plain.selection.items():
        assert result.selection[key] == pytest.approx(value, rel=1e-5, abs=1e-8), key
    # The last epoch's checkpoints (Ray's final one; the in-process run's checkpoints/latest):
    # the current weights after epoch 8, not only the best, and every metric of that epoch.
    killed = load_checkpoint(tmp_path / "ray" / "model")
    uninterrupted = load_checkpoint(tmp_path / "plain" / "checkpoints" / "latest")
    assert killed.epoch == EPOCHS
    assert_same_weights(killed, uninterrupted)
    for key, value in uninterrupted.metrics.items():
        if key.startswith(("val/", "train/")):
            assert killed.metrics[key] == pytest.approx(value, rel=1e-5, abs=1e-8), key

    _wait_until_released(ray_session.dashboard)


def _wait_until_released(dashboard: str, timeout: float = 30.0) -> None:
    """The run is over for Ray too: later modules share this job and check it for leftovers."""
    import ray
    from ray.util.state import list_actors, list_placement_groups

    job = ray.get_runtime_context().get_job_id()
    deadline = time.monotonic() + timeout
    while True:
        groups = [
            g
            for g in list_placement_groups(address=dashboard, limit=1000)
            if g.state != "REMOVED" and g.creator_job_id == job
        ]
        actors = [
            a.class_name
            for a in list_actors(address=dashboard, filters=[("state", "=", "ALIVE")], limit=1000)
            if a.job_id == job
            and ("TrainController" in a.class_name or "RayTrainWorker" in a.class_name)
        ]
        if not (groups or actors) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert not groups, groups
    assert not actors, actors
