"""Resume after the sweep driver is killed; the same sweep through `ray job submit`. Trials
train themselves (`ray.num_workers: 0`): one process each."""

from __future__ import annotations

import csv
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.ray

REPO = Path(__file__).resolve().parents[2]
# A trial that trains itself reports an epoch in milliseconds: enough epochs that the third
# trial is still running when the test, polling the driver's staging folder, stops it.
EPOCHS = 120


def small_sweep(path: Path, name: str, **config) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "name": name,
                "signatures": ["m2_tau1_eps0.055_lmin2"],
                "samples": 2,
                "search_space": {"training.lr": {"loguniform": [0.002, 0.01]}},
                "asha": {
                    "grace_period": EPOCHS
                },  # = epochs: ASHA stops nothing, every trial runs out
                "resources": {"trial_cpus": 0.05, **config.pop("resources", {})},
                "config": {
                    "split": {"folds": 3},
                    "training": {"epochs": EPOCHS, "checkpoint_every": 1},
                    "early_stopping": {"patience": EPOCHS},  # every trial runs to the last epoch
                    "ray": {"num_workers": 0, "cpus_per_worker": 0.5},
                },
            }
        )
    )
    return path


def trial_dirs(experiment: Path) -> list[Path]:
    """Tune's trial folders, `<task>-<signature or group>-<sample>`, in the order Tune made
    them: every task of sample 0, then of sample 1 (one signature group here)."""
    if not experiment.is_dir():
        return []
    # Beside them: bundle/ (a finished sweep's models).
    dirs = [p for p in experiment.iterdir() if p.is_dir() and re.fullmatch(r"Q\d-.+-\d+", p.name)]
    return sorted(dirs, key=lambda p: (int(p.name.rsplit("-", 1)[1]), p.name))


def result_lines(trial_dir: Path) -> list[dict]:
    """The trial's complete reports (a copy cut short can end in part of a line)."""
    path = trial_dir / "result.json"
    return (
        [json.loads(line) for line in path.read_text().split("\n")[:-1]] if path.is_file() else []
    )


def staging_folder(ray_session, name: str) -> Path:
    """Where the sweep's driver writes Tune's files before it copies them to storage (one
    driver per sweep name and session here; a path that does not exist yet until it runs)."""
    found = list(ray_session.temp_dir.glob(f"session_2*/artifacts/*/{name}/driver_artifacts"))
    assert len(found) <= 1, found
    return found[0] if found else ray_session.temp_dir / "not-staged-yet"


def cut_short(path: Path, lines: int) -> bytes:
    """What a driver killed while Tune copies its files to storage can leave: the first
    `lines` lines of a file and half of the next."""
    text = path.read_bytes().split(b"\n")
    path.write_bytes(b"\n".join(text[:lines]) + b"\n" + text[lines][: len(text[lines]) // 2])
    return path.read_bytes()


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "killed"])
def test_resume_after_the_driver_is_stopped(ray_session, toy_root, tmp_path, stop):
    """Ctrl-C (Tune ends its loop, saves its state and returns) is a one-line error with no
    results written. A killed driver writes nothing either, may leave Tune's files in
    storage cut short, and `--resume` finishes the sweep from there (resuming after Ctrl-C
    restores the same way, from a state saved whole)."""
    name = f"resume_{stop.name.lower()}"  # its own staging folder on the node (below)
    config = small_sweep(tmp_path / "sweep.yaml", name, resources={"max_concurrent_trials": 1})
    command = [
        sys.executable,
        str(REPO / "ray_jobs" / "sweep.py"),
        "--config",
        str(config),
        "--data",
        str(toy_root),
        "--storage",
        str(tmp_path / "runs"),
    ]
    experiment = tmp_path / "runs" / name
    with open(tmp_path / "driver.log", "w") as log:  # the driver keeps its own descriptor
        driver = subprocess.Popen(
            command, env=ray_session.env, stdout=log, stderr=subprocess.STDOUT
        )
    # One trial at a time: once the third trial has reported, the first two have finished.
    # The driver writes a report to its staging folder at once and copies that folder to
    # storage only every few seconds. Ctrl-C: stop on the staging folder (polling storage,
    # the test once saw the last trial end first; Tune saves everything as it stops). A
    # kill: on storage, which must hold the first two trials the test then cuts short.
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and driver.poll() is None:
        watched = staging_folder(ray_session, name) if stop == signal.SIGINT else experiment
        trials = trial_dirs(watched)
        if len(trials) >= 3 and len(result_lines(trials[2])) >= 1:
            break
        time.sleep(0.05)
    assert driver.poll() is None, (tmp_path / "driver.log").read_text()[-3000:]
    driver.send_signal(stop)
    code = driver.wait(timeout=120)
    first, second = trial_dirs(experiment)[:2]
    if stop == signal.SIGINT:  # Tune ends its loop and saves its files to storage
        assert len(result_lines(first)) == len(result_lines(second)) == EPOCHS
    else:
        # Tune writes result.json on the driver and copies it to storage every few seconds: a
        # kill during a copy leaves a finished trial's history cut short there (seen in CI).
        # A driver resuming in the same Ray session copies its predecessor's whole file back
        # from the node's staging folder; one on another node or session has only storage's.
        # That case: cut both. Results must not lose the trial for it.
        staged = staging_folder(ray_session, name) / first.name
        assert staged.is_dir(), staged
        for folder in (first, staged):
            cut_short(folder / "result.json", lines=3)
    finished = {t.name: (t / "result.json").read_bytes() for t in (first, second)}
    assert not (experiment / "trials.csv").exists() and not (experiment / "summary.json").exists()
    if stop == signal.SIGINT:
        output = (tmp_path / "driver.log").read_text()
        errors = [line for line in output.splitlines() if line.startswith("mmse: error:")]
        assert code == 1 and len(errors) == 1, output[-3000:]
        assert "of 4 trials ended; no results written" in errors[0] and "--resume" in errors[0]
        return
    # Without --resume the same command refuses to start a second sweep in the folder.
    again = subprocess.run(
        command, env=ray_session.env, capture_output=True, text=True, timeout=300, check=False
    )
    assert again.returncode == 2 and "holds a sweep already" in again.stderr, again.stderr[-2000:]

    done = subprocess.run(
        command + ["--resume"],
        env=ray_session.env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    with open(experiment / "trials.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 1 * 2 * 2 and all(int(r["epochs_run"]) == EPOCHS for r in rows)
    # Finished trials were not run again: their histories were not rewritten (a same-session
    # resume may put back what a kill cut from the second one), and no epoch came twice.
    for trial, before in finished.items():
        after = (experiment / trial / "result.json").read_bytes()
        assert after.startswith(before[: before.rfind(b"\n") + 1]), trial
        epochs = [r["epoch"] for r in result_lines(experiment / trial)]
        assert epochs == list(range(1, len(epochs) + 1)), (trial, epochs)
    assert len(result_lines(first)) == 3  # the cut one: no copy left to put it back from
    # The interrupted trial resumed from the newest checkpoint in its folder, not from
    # epoch 1; every trial's checkpoints are in its folder (train_runs/<trial_id>).
    for trial in trial_dirs(experiment)[2:3]:
        epochs = [r["epoch"] for r in result_lines(trial)]
        assert epochs.count(1.0) == 1, epochs
    assert {Path(r["checkpoint_uri"]).parent for r in rows} == {
        experiment / "train_runs" / result_lines(t)[0]["trial_id"] for t in trial_dirs(experiment)
    }
    # Readable trial folders (TensorBoard's run names), kept by the restored sweep.
    sig = "m2_tau1_eps0.055_lmin2"
    assert [t.name for t in trial_dirs(experiment)] == [
        f"{q}-{sig}-{s}" for s in (0, 1) for q in ("Q1", "Q3")
    ]
    # ... whose sample number is the one trials.csv gives the trial.
    assert {(r["task"], int(r["sample"]), r["trial_id"]) for r in rows} == {
        (t.name[:2], int(t.name.rsplit("-", 1)[1]), result_lines(t)[0]["trial_id"])
        for t in trial_dirs(experiment)
    }


def test_ray_job_submit(ray_session, toy_root, tmp_path):
    config = small_sweep(tmp_path / "sweep.yaml", "job_sweep")
    storage = tmp_path / "runs"
    job_id = f"mmse_test_{tmp_path.name}_{int(time.time())}"
    submit = subprocess.run(
        [
            str(Path(sys.executable).with_name("ray")),
            "job",
            "submit",
            "--address",
            ray_session.dashboard,
            "--working-dir",
            str(REPO),
            "--submission-id",
            job_id,
            "--no-wait",
            "--",
            sys.executable,
            "ray_jobs/sweep.py",
            "--config",
            str(config),
            "--data",
            str(toy_root),
            "--storage",
            str(storage),
        ],
        env=ray_session.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert submit.returncode == 0, submit.stdout + submit.stderr

    from ray.job_submission import JobStatus, JobSubmissionClient

    client = JobSubmissionClient(ray_session.dashboard)
    deadline = time.monotonic() + 900
    status = client.get_job_status(job_id)
    while (
        status not in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED)
        and time.monotonic() < deadline
    ):
        time.sleep(1)
        status = client.get_job_status(job_id)
    logs = client.get_job_logs(job_id)
    assert status == JobStatus.SUCCEEDED, logs[-3000:]
    experiment = storage / "job_sweep"
    with open(experiment / "trials.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 * 2  # tasks x samples
    summary = json.loads((experiment / "summary.json").read_text())
    assert set(summary["tasks"]) == {"Q1", "Q3"} and "network (winner)" in logs
    # The finished job holds no placement group: its CPUs are free for the next job.
    from ray.util.state import list_placement_groups

    driver_job = client.get_job_info(job_id).driver_info.id
    deadline = time.monotonic() + 30
    while True:
        groups = [
            g
            for g in list_placement_groups(address=ray_session.dashboard, limit=1000)
            if g.state != "REMOVED" and g.creator_job_id == driver_job
        ]
        if not groups or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert not groups, groups
