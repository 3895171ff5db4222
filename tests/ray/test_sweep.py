"""The ASHA sweep over 2 signatures x 2 tasks: result files, per-task ASHA, no leftovers."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import time
from pathlib import Path

import pytest
import yaml

from mmse_model.checkpoint import load_checkpoint
from mmse_model.results import STOPPED_BY_ASHA
from mmse_model.sweep_config import load_sweep_config

pytestmark = pytest.mark.ray

SWEEP_CLASSES = ("TrainController", "RayTrainWorker", "ImplicitFunc", "run_trial")


def write_sweep_yaml(path: Path, **changes) -> Path:
    sweep = {
        "name": "test_sweep",
        "samples": 2,
        "search_space": {"training.lr": {"loguniform": [0.002, 0.01]},
                         "arch.h1": {"choice": [16, 32]}},
        "asha": {"grace_period": 2, "reduction_factor": 2},
        "resources": {"trial_cpus": 0.05},
        "config": {"training": {"epochs": 8, "folds": 3, "checkpoint_every": 0},
                   "early_stopping": {"patience": 20},
                   "ray": {"num_workers": 1, "cpus_per_worker": 0.5}},
    }
    for key, value in changes.items():
        sweep[key] = {**sweep[key], **value} if isinstance(value, dict) and key in sweep else value
    path.write_text(yaml.safe_dump(sweep))
    return path


@pytest.fixture(scope="module")
def sweep_run(ray_session, toy_root, tmp_path_factory):
    from ray_jobs.sweep import run_sweep

    tmp = tmp_path_factory.mktemp("sweep")
    sweep = load_sweep_config(write_sweep_yaml(tmp / "sweep.yaml"), str(toy_root), str(tmp / "runs"))
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        summary = run_sweep(sweep)
    return tmp / "runs" / "test_sweep", summary, stderr.getvalue()


def test_sweep_writes_every_result_file(sweep_run):
    experiment, summary, _ = sweep_run
    rows = list(csv.DictReader(open(experiment / "trials.csv")))
    assert len(rows) == 2 * 2 * 2  # signatures x tasks x samples
    for row in rows:
        assert row["signature"] and row["task"] in ("Q1", "Q3")
        assert row["hp/training.lr"] and row["hp/arch.h1"]
        assert float(row["val/rmse"]) > 0 and int(row["epochs_run"]) >= 1
        # The named checkpoint exists, loads, and is the epoch the row reports.
        payload = load_checkpoint(row["checkpoint_uri"])
        assert int(payload["metrics"]["epoch"]) == int(row["best_epoch"]) <= int(row["epochs_run"])
        assert float(payload["metrics"]["val/loss"]) == pytest.approx(float(row["val/loss"]))
    on_disk = json.loads((experiment / "summary.json").read_text())
    assert on_disk["n_trials"] == 8 and set(on_disk["tasks"]) == {"Q1", "Q3"}
    for task, entry in on_disk["tasks"].items():
        assert entry["winner"]["signature"]
        assert {"rmse", "mae", "r2", "pearson_r", "calibration_slope", "calibration_intercept"} <= set(entry["test"])
        assert set(entry["baselines"]) == {"train_mean", "ridge", "hist_gradient_boosting"}
    assert len(on_disk["best_per_signature_task"]) == 4
    assert "network (winner)" in (experiment / "summary.txt").read_text()
    # TensorBoard events from Tune's logger callback, one set per trial.
    assert len(list(experiment.glob("run_trial_*/events.out.tfevents*"))) == 8


def test_asha_stopped_some_trials_within_their_task(sweep_run):
    experiment, _, _ = sweep_run
    rows = list(csv.DictReader(open(experiment / "trials.csv")))
    stopped = [r for r in rows if r["status"] == STOPPED_BY_ASHA]
    assert stopped, [(r["trial_id"], r["status"], r["epochs_run"]) for r in rows]
    for row in stopped:
        # ASHA (grace 2, reduction factor 2, max_t 8) decides only at its rungs, 2 and 4.
        assert int(row["epochs_run"]) in (2, 4), row
        # A trial stops only when a trial of the same task did better at its rung, so some
        # trial of its own task ran on past it.
        same_task = [r for r in rows if r["task"] == row["task"] and r is not row]
        assert max(int(r["epochs_run"]) for r in same_task) > int(row["epochs_run"])
    # The winner of each task is on the strong signature (the other carries no signal).
    summary = json.loads((experiment / "summary.json").read_text())
    assert {e["winner"]["signature"] for e in summary["tasks"].values()} == {"m2_tau1_eps0.055_lmin2"}


def test_nothing_left_behind_after_asha_stops(sweep_run, ray_session):
    """Ended trials released their Train groups themselves: the watchdog, the second line,
    found nothing to release, and nothing of the sweep's job is left reserved."""
    import ray
    from ray.util.state import list_actors, list_placement_groups

    _, _, stderr = sweep_run
    assert "watchdog: released" not in stderr
    # The sweep ran in this process's job: look at what that job left, not at other tests'
    # jobs sharing the head node.
    job = ray.get_runtime_context().get_job_id()
    deadline = time.monotonic() + 30
    while True:
        groups = [(g.placement_group_id, g.state, g.bundles)
                  for g in list_placement_groups(address=ray_session.dashboard, limit=1000, detail=True)
                  if g.state != "REMOVED" and g.creator_job_id == job]
        actors = [a for a in list_actors(address=ray_session.dashboard, filters=[("state", "=", "ALIVE")], limit=1000)
                  if a.job_id == job and any(name in a.class_name for name in SWEEP_CLASSES)]
        processes = [cmd for cmd in descendant_cmdlines(ray_session.pid)
                     if any(name in cmd for name in SWEEP_CLASSES)]
        if not (groups or actors or processes) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert not groups, groups
    assert not actors, [(a.class_name, a.state) for a in actors]
    assert not processes, processes


def descendant_cmdlines(root: int) -> list[str]:
    """Command lines of every process below `root` (Ray renames workers `ray::<Class>...`)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            out.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            pass
    return out
